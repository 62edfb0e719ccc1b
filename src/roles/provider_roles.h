// Roles that belong to PostgreSQL itself or to a managed provider: never
// created, altered or granted to on a target. Kept in one table in
// provider_roles.cc, one line per entry, so a new provider is one line.
#pragma once

#include <string>

namespace pgcourier {

// True for PostgreSQL's reserved names (pg_*: predefined roles; CREATE ROLE
// refuses the prefix) and for the roles managed providers create for
// themselves (rds*, azure*, cloudsql*, alloydb*, google*, aiven*, neon*,
// supabase*, Neon's cloud_admin). Case-sensitive, like role names. The
// bootstrap superuser's usual name, postgres, is not a provider role.
bool IsProviderRole(const std::string& name);

}  // namespace pgcourier

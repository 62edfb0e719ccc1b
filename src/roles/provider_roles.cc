#include "roles/provider_roles.h"

#include <algorithm>
#include <array>
#include <string_view>

namespace pgcourier {
namespace {

enum class Match { kPrefix, kExact };

struct ProviderRoleName {
  std::string_view text;
  Match match;
};

// PostgreSQL's reserved prefix, then the managed providers' role names, one
// line per entry.
constexpr std::array<ProviderRoleName, 10> kProviderRoleNames = {{
    {"pg_", Match::kPrefix},         // PostgreSQL: predefined roles; the prefix is reserved
    {"rds", Match::kPrefix},         // Amazon RDS / Aurora: rds_superuser, rdsadmin, ...
    {"azure", Match::kPrefix},       // Azure: azure_pg_admin, azuresu, ...
    {"cloudsql", Match::kPrefix},    // Google Cloud SQL: cloudsqlsuperuser, cloudsqladmin, ...
    {"alloydb", Match::kPrefix},     // Google AlloyDB: alloydbsuperuser, alloydbadmin, ...
    {"google", Match::kPrefix},      // Google Cloud service roles
    {"aiven", Match::kPrefix},       // Aiven
    {"neon", Match::kPrefix},        // Neon: neon_superuser, ...
    {"cloud_admin", Match::kExact},  // Neon's system role
    {"supabase", Match::kPrefix},    // Supabase: supabase_admin, ...
}};

}  // namespace

bool IsProviderRole(const std::string& name) {
  return std::any_of(
      kProviderRoleNames.begin(), kProviderRoleNames.end(), [&](const ProviderRoleName& entry) {
        return entry.match == Match::kExact ? name == entry.text : name.rfind(entry.text, 0) == 0;
      });
}

}  // namespace pgcourier

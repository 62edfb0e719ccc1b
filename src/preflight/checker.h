// `pgcourier check`: every pre-flight check, run before anything is touched.
#pragma once

#include "preflight/check.h"
#include "util/status.h"

namespace pgcourier {

// Runs every check and returns the findings. Problems with the servers are
// findings (fail/warn items), never an error: the only errors are bad input
// (an unparsable connection string: kInvalidArgument) and cancellation.
// Reads from both servers; writes nothing anywhere.
//
// Database selection: when the source connection string names a database,
// only that one is moved (into the database the target string names, if it
// names one); otherwise every connectable database of the source except
// templates and provider admin databases, narrowed by the include/exclude
// patterns.
Result<CheckReport> RunChecks(const CheckOptions& options);

// Databases that belong to a provider's management and are never moved.
bool IsProviderAdminDatabase(const std::string& name);
// Roles that belong to PostgreSQL or to a managed provider and are never
// created on a target (pg_*, rds*, azure*, cloudsql*, aiven*, neon*, ...).
bool IsProviderRole(const std::string& name);

}  // namespace pgcourier

// `pgcourier check`: every pre-flight check, run before anything is touched.
#pragma once

#include <string>
#include <vector>

#include "catalog/server_facts.h"
#include "preflight/check.h"
#include "util/status.h"

namespace pgcourier {

// Runs every check and returns the findings. Problems with the servers are
// findings (fail/warn items), never an error: the only errors are bad input
// (an unparsable connection string: kInvalidArgument) and cancellation.
// Reads from both servers; writes nothing anywhere, except the trial restore
// of schema.restorable: a transaction on the target that is rolled back (in
// a scratch database, dropped after it, when the target database does not
// exist yet) and a temporary directory removed after it.
//
// Database selection: when the source connection string names a database,
// only that one is moved (into the database the target string names, if it
// names one); otherwise every connectable database of the source except
// templates and provider admin databases, narrowed by the include/exclude
// patterns.
Result<CheckReport> RunChecks(const CheckOptions& options);

// Databases that belong to a provider's management and are never moved.
bool IsProviderAdminDatabase(const std::string& name);
// The databases to move among `databases` (a source's): `named` alone when
// the source connection string names one and no include pattern is given;
// otherwise every connectable non-template database that is not a provider's
// admin database, narrowed by the include and exclude globs.
std::vector<std::string> SelectDatabaseNames(const std::vector<DatabaseInfo>& databases,
                                             const std::string& named,
                                             const std::vector<std::string>& include,
                                             const std::vector<std::string>& exclude);

// The target database a source database moves into: the one the target
// connection string names when a single database is moved (a rename, such
// as blog -> neondb), else the same name.
std::string TargetDatabaseName(const std::string& source_name, bool single,
                               const std::string& target_named);

// Extensions that exist only at one provider; never created on a target.
std::vector<std::string> ProviderOnlyExtensions();

// The target server's cron.database_name, read over any session of it;
// empty when pg_cron is not loaded there (shared_preload_libraries) or the
// setting is hidden from the user.
Result<std::string> ReadCronDatabase(Connection& target);

// The extensions a move into `target_database` leaves out: the
// provider-only ones, less pg_cron when the target server runs it for that
// database (`cron_database`, its cron.database_name, names it): then the
// extension is created there and its jobs move as its configuration rows.
std::vector<std::string> LeftOutExtensions(const std::string& target_database,
                                           const std::string& cron_database);

}  // namespace pgcourier

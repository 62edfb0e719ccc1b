#include "verify/verify_servers.h"

#include <memory>
#include <utility>

#include "catalog/server_facts.h"
#include "pg/connection.h"
#include "pg/conninfo.h"
#include "preflight/checker.h"

namespace pgcourier {

Result<std::vector<DatabaseVerification>> VerifyServers(const VerifyServersOptions& options) {
  Result<ConnInfo> source = ConnInfo::Parse(options.source);
  if (!source.ok()) return source.status().WithContext("--source");
  Result<ConnInfo> target = ConnInfo::Parse(options.target);
  if (!target.ok()) return target.status().WithContext("--target");

  const std::string named = source->ExplicitDatabase();
  std::vector<std::string> names;
  {
    ConnectOptions connect;
    connect.role = "source";
    connect.total_timeout = options.connect_timeout;
    connect.cancel = options.cancel;
    Result<std::unique_ptr<Connection>> conn =
        Connection::Connect(named.empty() ? source->WithDatabase("postgres") : *source, connect);
    if (!conn.ok()) return conn.status();
    Result<ServerFacts> facts = ReadServerFacts(**conn, Deadline::After(std::chrono::minutes(2)));
    if (!facts.ok()) return facts.status();
    names = SelectDatabaseNames(facts->databases, named, options.include_databases,
                                options.exclude_databases);
  }
  if (names.empty()) {
    return Status(StatusCode::kInvalidArgument, "no database of the source matches the selection",
                  "check --databases / --exclude-database");
  }
  const bool single = !named.empty() && options.include_databases.empty();

  VerifyOptions verify;
  verify.jobs = options.jobs;
  verify.filter = options.filter;
  verify.owners = options.owners;
  verify.grants = options.grants;
  verify.connect_timeout = options.connect_timeout;
  verify.cancel = options.cancel;
  std::string cron_database;  // the target's cron.database_name
  {
    ConnectOptions connect;
    connect.role = "target";
    connect.total_timeout = options.connect_timeout;
    connect.cancel = options.cancel;
    const std::string named_target = target->ExplicitDatabase();
    Result<std::unique_ptr<Connection>> conn = Connection::Connect(
        named_target.empty() ? target->WithDatabase("postgres") : *target, connect);
    // Unreadable: pg_cron is left out, as everywhere it does not move.
    Result<std::string> cron =
        conn.ok() ? ReadCronDatabase(**conn) : Result<std::string>(conn.status());
    if (cron.ok()) cron_database = *cron;
  }
  std::vector<DatabaseVerification> results;
  for (const auto& name : names) {
    std::string target_name = TargetDatabaseName(name, single, target->ExplicitDatabase());
    verify.left_out_extensions = LeftOutExtensions(target_name, cron_database);
    Result<DatabaseVerification> verified =
        VerifyDatabase(source->WithDatabase(name), target->WithDatabase(target_name), verify);
    if (!verified.ok()) return verified.status();
    results.push_back(std::move(*verified));
  }
  return results;
}

}  // namespace pgcourier

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
  verify.left_out_extensions = ProviderOnlyExtensions();
  verify.connect_timeout = options.connect_timeout;
  verify.cancel = options.cancel;
  std::vector<DatabaseVerification> results;
  for (const auto& name : names) {
    std::string target_name = TargetDatabaseName(name, single, target->ExplicitDatabase());
    Result<DatabaseVerification> verified =
        VerifyDatabase(source->WithDatabase(name), target->WithDatabase(target_name), verify);
    if (!verified.ok()) return verified.status();
    results.push_back(std::move(*verified));
  }
  return results;
}

}  // namespace pgcourier

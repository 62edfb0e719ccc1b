#include "verify/verify_servers.h"

#include <memory>
#include <set>
#include <string>
#include <utility>

#include "catalog/server_facts.h"
#include "pg/connection.h"
#include "pg/conninfo.h"
#include "pg/pooler.h"
#include "preflight/checker.h"

namespace pgcourier {

namespace {

// Probes each side at each database once, before pgcourier's first session
// there (pg/pooler.h): verify holds a snapshot per side across its reads,
// which a pooler in transaction mode cannot keep.
class PoolerProbes {
 public:
  explicit PoolerProbes(const VerifyServersOptions& options) : options_(options) {}

  // RefuseTransactionPooler, once per side and database.
  Status Refuse(const ConnInfo& info, const std::string& role, Status* unreached) {
    *unreached = Status::Ok();
    if (!probed_.insert({role, info.Redacted()}).second) return Status::Ok();
    ConnectOptions connect;
    connect.role = role;
    connect.total_timeout = options_.connect_timeout;
    connect.cancel = options_.cancel;
    return RefuseTransactionPooler(info, role, connect, unreached);
  }
  // The refusal, or the probe's connection error (what the first session
  // there would meet); Ok when `info` may be used.
  Status Refuse(const ConnInfo& info, const std::string& role) {
    Status unreached;
    PGC_RETURN_IF_ERROR(Refuse(info, role, &unreached));
    return unreached;
  }

 private:
  const VerifyServersOptions& options_;
  std::set<std::pair<std::string, std::string>> probed_;
};

}  // namespace

Result<std::vector<DatabaseVerification>> VerifyServers(const VerifyServersOptions& options) {
  Result<ConnInfo> source = ConnInfo::Parse(options.source);
  if (!source.ok()) return source.status().WithContext("--source");
  Result<ConnInfo> target = ConnInfo::Parse(options.target);
  if (!target.ok()) return target.status().WithContext("--target");

  const std::string named = source->ExplicitDatabase();
  PoolerProbes probes(options);
  std::vector<std::string> names;
  {
    ConnectOptions connect;
    connect.role = "source";
    connect.total_timeout = options.connect_timeout;
    connect.cancel = options.cancel;
    const ConnInfo server = named.empty() ? source->WithDatabase("postgres") : *source;
    PGC_RETURN_IF_ERROR(probes.Refuse(server, "source"));
    Result<std::unique_ptr<Connection>> conn = Connection::Connect(server, connect);
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
  verify.lock_timeout = options.lock_timeout;
  std::string cron_database;  // the target's cron.database_name
  {
    ConnectOptions connect;
    connect.role = "target";
    connect.total_timeout = options.connect_timeout;
    connect.cancel = options.cancel;
    const std::string named_target = target->ExplicitDatabase();
    const ConnInfo server = named_target.empty() ? target->WithDatabase("postgres") : *target;
    Status unreached;
    PGC_RETURN_IF_ERROR(probes.Refuse(server, "target", &unreached));
    Result<std::unique_ptr<Connection>> conn = unreached.ok()
                                                   ? Connection::Connect(server, connect)
                                                   : Result<std::unique_ptr<Connection>>(unreached);
    // Unreadable: pg_cron is left out, as everywhere it does not move.
    Result<std::string> cron =
        conn.ok() ? ReadCronDatabase(**conn) : Result<std::string>(conn.status());
    if (cron.ok()) cron_database = *cron;
  }
  for (const auto& name : names) {
    PGC_RETURN_IF_ERROR(probes.Refuse(source->WithDatabase(name), "source"));
    PGC_RETURN_IF_ERROR(probes.Refuse(
        target->WithDatabase(TargetDatabaseName(name, single, target->ExplicitDatabase())),
        "target"));
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

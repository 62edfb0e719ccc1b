// The Checker behind RunChecks (preflight/checker.h), shared by the files
// that hold its steps: checker.cc (connecting, servers, tools, database
// selection, roles, capacity, the method per database), database_checks.cc
// (each database's readability, target state, extensions and languages) and
// replication_checks.cc (the preconditions of logical replication).
// Private to src/preflight/: nothing else includes it.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/database_facts.h"
#include "catalog/server_facts.h"
#include "pg/connection.h"
#include "pg/conninfo.h"
#include "preflight/check.h"
#include "preflight/wal_retention.h"
#include "schema/restore_script.h"
#include "util/status.h"

namespace pgcourier::checker_internal {

struct ProviderExtension {
  std::string_view name;
  std::string_view advice;
};

// The provider-only extension named `name`, or nullptr.
const ProviderExtension* FindProviderExtension(const std::string& name);

// The first `limit` names, comma-separated, then "and N more".
std::string JoinNames(const std::vector<std::string>& names, size_t limit = 10);
// JoinNames of the tables' display names.
std::string JoinTables(const std::vector<TableName>& tables, size_t limit = 10);
// The items of a comma-separated list, trimmed, without empty ones.
std::set<std::string> SplitList(const std::string& list);

// One connected side of the move.
struct Side {
  std::string role;  // "source" or "target"
  ConnInfo info;
  std::unique_ptr<Connection> conn;
  std::optional<ServerFacts> facts;
  bool pooled = false;  // reached through a connection pooler (session mode)
};

class Checker {
 public:
  explicit Checker(const CheckOptions& options) : options_(options) {}

  Result<CheckReport> Run();

 private:
  void Add(const char* code, CheckStatus status, std::string object, std::string detail,
           std::string hint = {}) {
    report_.items.push_back({code, status, std::move(object), std::move(detail), std::move(hint)});
  }
  // The status of a replication precondition that does not hold: a failure
  // when replication was asked for, a warning that selects copy under auto.
  CheckStatus ReplicationProblem() const {
    return options_.method == Method::kReplication ? CheckStatus::kFail : CheckStatus::kWarn;
  }
  Deadline QueryDeadline() const { return Deadline::After(options_.query_timeout); }
  ConnectOptions ConnectOptionsFor(const std::string& role) const {
    ConnectOptions o;
    o.role = role;
    o.total_timeout = options_.connect_timeout;
    o.attempt_timeout =
        std::min<std::chrono::milliseconds>(options_.connect_timeout, std::chrono::seconds(15));
    o.cancel = options_.cancel;
    return o;
  }

  Status ConnectSide(Side& side, const char* connect_code, const char* encryption_code);
  // Before any session that sets something on the side: a connection
  // pooler between pgcourier and the server (pg/pooler.h). False when the
  // side must not be used (a pooler in transaction mode, or one whose pool
  // cannot give pgcourier a second session), or when it cannot be reached
  // (a failure under `connect_code`).
  Result<bool> CheckPooler(Side& side, const ConnInfo& info, const char* code,
                           const char* connect_code);
  // Whether the side's session is encrypted (with the TLS version); a warning
  // when it is not and reaches another machine.
  void AddEncryption(Side& side, const char* code);
  void CheckDistinct();
  // source.standby: copying from a standby, and what keeps its recovery
  // from cancelling the copy.
  void CheckSourceStandby();
  // source.standby per database: unlogged tables a standby cannot read.
  void CheckStandbyUnlogged();
  void CheckVersions();
  void CheckTools();
  bool SelectDatabases();
  Status CheckDatabases();
  void CheckExtensions(const DatabasePlan& plan, const DatabaseFacts& source_db,
                       const std::optional<DatabaseFacts>& target_db);
  void CheckLanguages(const DatabasePlan& plan, const DatabaseFacts& source_db);
  // database.readable: every table and sequence the move dumps is readable
  // by the source user.
  Status CheckReadable(Connection& source_db, const DatabasePlan& plan);
  void CheckRoles();
  // The objects of a source database whose restore names a role (policies,
  // user mappings; owners with preserve_owners; grants and default
  // privileges with preserve_acl), into role_references_.
  Status CollectRoleReferences(Connection& source_db, const DatabasePlan& plan);
  // roles.required: a role named by the restore that is missing on the
  // target and not created by --roles fails the check.
  void CheckRequiredRoles();
  // schema.restorable, per database (schema_trial.cc).
  Status CheckSchemaTrials();
  Status CheckSchemaRestorable(const DatabasePlan& plan);
  // Runs the restore script's entries on the target (in the target database
  // when it exists, else in a scratch database made and dropped for it).
  Status TrySchema(const DatabasePlan& plan, const std::vector<ScriptEntry>& entries,
                   double dump_seconds);
  // `needed(jobs)`: the sessions a migration with that many jobs opens there.
  void CheckConnections(const Side& side, const std::function<int(int)>& needed, const char* code);
  void CheckSize();
  void CheckLockTables();
  // The preconditions of logical replication, in four steps: the source's
  // version, wal_level, slots and WAL senders; the users' rights to
  // replicate and to subscribe; the target's workers and origins; and, per
  // database, what its tables allow (publishable, replica identity, large
  // objects, unlogged tables).
  void CheckReplication();
  void CheckSourceWal();
  // replication.wal_retention: the WAL the slots will keep during the copy,
  // from the source's WAL rate since wal_start_.
  void CheckWalRetention(int64_t keep_size);
  void CheckReplicationRights();
  void CheckSubscriptionCapacity();
  void CheckReplicatedTables();
  // replication.transactions: transactions open on the source for long,
  // which the slot's creation will wait for.
  void CheckOpenTransactions();
  // One slot, WAL sender, worker and origin per database moved.
  int64_t SubscriptionsNeeded() const;
  // A failed precondition of the servers (not of one database): added with
  // ReplicationProblem()'s status, and the first one is the reason every
  // database is copied instead.
  void AddServerProblem(const char* code, const std::string& object, const std::string& detail,
                        const std::string& hint);
  bool ExtensionCreatable(const std::string& name, const AvailableExtension& available) const;

  const CheckOptions& options_;
  CheckReport report_;
  Side source_;
  Side target_;
  // The database named in each connection string, if any.
  std::string source_named_db_;
  std::string target_named_db_;
  // Per selected database (same order as report_.databases).
  std::vector<DatabaseFacts> source_dbs_;
  // Databases whose own preconditions for replication fail, with the reason.
  std::map<std::string, std::string> replication_blocked_;
  struct RoleReference {
    std::string role;
    std::string database;  // on the source
    std::string object;    // "policy readers on table public.docs"
  };
  std::vector<RoleReference> role_references_;
  // Roles the restore names that are missing on the target: the schema
  // trial creates them in its transaction, so it tries everything else.
  std::set<std::string> trial_roles_;
  // The source databases whose trial dump is kept for migrate
  // (CheckOptions::schema_dumps).
  std::set<std::string> keep_dumps_;
  std::string replication_server_problem_;
  // The source's WAL position when its facts were read, for its WAL rate
  // (replication only).
  std::optional<WalPosition> wal_start_;
};

}  // namespace pgcourier::checker_internal

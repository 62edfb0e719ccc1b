// The vocabulary of pre-flight checks: each finding has a stable code, a
// status, the object it is about, a detail and a hint saying what to do.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "catalog/object_filter.h"
#include "pg/connection.h"
#include "state/run_states.h"
#include "util/cancel.h"
#include "util/status.h"

namespace pgcourier {

enum class CheckStatus { kPass, kWarn, kFail };
const char* CheckStatusName(CheckStatus status);  // "pass", "warn", "fail"

// Stable check codes. They name the check, not its outcome; scripts may match
// on them, so they never change meaning.
namespace check_code {
inline constexpr const char* kSourceConnect = "source.connect";
inline constexpr const char* kTargetConnect = "target.connect";
inline constexpr const char* kSourcePooler = "source.pooler";
inline constexpr const char* kTargetPooler = "target.pooler";
inline constexpr const char* kSourceEncryption = "source.encryption";
inline constexpr const char* kTargetEncryption = "target.encryption";
inline constexpr const char* kServersDistinct = "servers.distinct";
inline constexpr const char* kTargetWritable = "target.writable";
inline constexpr const char* kSourceStandby = "source.standby";
inline constexpr const char* kVersionCompatible = "version.compatible";
inline constexpr const char* kPgDump = "tools.pg_dump";
inline constexpr const char* kPgDumpOnPath = "tools.path";
inline constexpr const char* kDatabasesSelected = "databases.selected";
inline constexpr const char* kDatabaseConnect = "database.connect";
inline constexpr const char* kDatabaseTarget = "database.target";
inline constexpr const char* kDatabaseReadable = "database.readable";
inline constexpr const char* kExtensionAvailable = "extension.available";
inline constexpr const char* kExtensionProvider = "extension.provider";
inline constexpr const char* kLanguageAvailable = "language.available";
inline constexpr const char* kRolesMissing = "roles.missing";
inline constexpr const char* kRolesPasswords = "roles.passwords";
inline constexpr const char* kRolesRequired = "roles.required";
inline constexpr const char* kSchemaRestorable = "schema.restorable";
inline constexpr const char* kSourceConnections = "connections.source";
inline constexpr const char* kTargetConnections = "connections.target";
inline constexpr const char* kTargetSize = "size.target";
inline constexpr const char* kSourceLocks = "locks.source";
inline constexpr const char* kTargetLocks = "locks.target";
inline constexpr const char* kReplicationStandby = "replication.standby";
inline constexpr const char* kWalLevel = "replication.wal_level";
inline constexpr const char* kReplicationSlots = "replication.slots";
inline constexpr const char* kWalSenders = "replication.senders";
inline constexpr const char* kSlotWalLimit = "replication.slot_wal_limit";
inline constexpr const char* kWalRetention = "replication.wal_retention";
inline constexpr const char* kSourceReplicationPrivilege = "replication.source_privilege";
inline constexpr const char* kPublishPrivilege = "replication.publish";
inline constexpr const char* kTargetSubscriptionPrivilege = "replication.target_privilege";
inline constexpr const char* kTargetWorkers = "replication.workers";
inline constexpr const char* kTargetOrigins = "replication.origins";
inline constexpr const char* kReplicaIdentity = "replication.identity";
inline constexpr const char* kLargeObjects = "replication.large_objects";
inline constexpr const char* kUnloggedTables = "replication.unlogged";
inline constexpr const char* kOpenTransactions = "replication.transactions";
inline constexpr const char* kMethod = "method";
}  // namespace check_code

struct CheckItem {
  std::string code;
  CheckStatus status = CheckStatus::kPass;
  std::string object;  // what it is about: "source", "shop", "shop: extension hstore", ...
  std::string detail;  // what was found
  std::string hint;    // what to do (empty for a pass)
};

// Method (state/run_states.h): kAuto, kReplication, kCopy; Name() and
// ParseName<Method>() give and read "auto", "replication", "copy".

// A database that would be moved, and how.
struct DatabasePlan {
  std::string name;               // on the source
  std::string target_name;        // on the target (the same unless the target URI names another)
  Method method = Method::kCopy;  // resolved: kReplication or kCopy
  std::string reason;             // why copy was chosen under --method auto
  bool exists_on_target = false;
  int64_t size_bytes = -1;
};

struct ServerSummary {
  std::string display;  // redacted connection string
  bool reachable = false;
  std::string version;  // server_version
  int major = 0;
  bool encrypted = false;
  std::string user;
  bool superuser = false;
  std::string tls_version;   // e.g. "TLSv1.3" when encrypted
  bool in_recovery = false;  // a standby
};

struct ToolChoice {
  std::string pg_dump;     // path, empty when none fits
  std::string pg_restore;  // path
  int major = 0;
};

struct CheckReport {
  ServerSummary source;
  ServerSummary target;
  Method method = Method::kAuto;
  ToolChoice tools;
  std::vector<DatabasePlan> databases;
  std::vector<CheckItem> items;

  // Blocked when any check failed.
  bool blocked() const;
  int Count(CheckStatus status) const;
};

// A source session whose open REPEATABLE READ READ ONLY transaction exported
// the snapshot `id`.
struct SnapshotHolder {
  std::unique_ptr<Connection> conn;
  std::string id;
};

// The schema archive of one database as the trial restore dumped it for
// migrate: `pg_dump --schema-only -Fc --snapshot=<holder.id>`, in
// `archive`. The migration copies at that snapshot (it adopts the holder)
// and restores that archive, so pg_dump runs once per database.
struct KeptSchemaDump {
  SnapshotHolder holder;
  std::string archive;
};

// What migrate (copy method) asks of the trial restore: for the copied
// databases that the pipelines start first (at most `max_databases`, the
// largest first, as the pipelines take them), dump at a snapshot exported
// by `export_snapshot` (a session with migrate's settings) into
// `directory`/<database>/schema.trial.dump, and keep the holder open and
// the archive when the trial passes. Shared between the check and the
// pipelines; Take and Discard lock.
class SchemaDumpHandover {
 public:
  SchemaDumpHandover() = default;
  SchemaDumpHandover(const SchemaDumpHandover&) = delete;
  SchemaDumpHandover& operator=(const SchemaDumpHandover&) = delete;
  ~SchemaDumpHandover() { Discard(); }

  std::string directory;
  int max_databases = 1;
  std::function<Result<SnapshotHolder>(const std::string& database)> export_snapshot;

  void Keep(const std::string& database, KeptSchemaDump dump);
  // The dump kept for `database` (a source database), taken out; nullopt
  // when none was kept.
  std::optional<KeptSchemaDump> Take(const std::string& database);
  // Closes the holders and removes the archives not taken.
  void Discard();

 private:
  std::mutex mu_;
  std::map<std::string, KeptSchemaDump> kept_;
};

struct CheckOptions {
  std::string source;  // connection strings as libpq takes them
  std::string target;
  Method method = Method::kAuto;
  int jobs = 4;
  std::vector<std::string> pg_bindirs;         // searched first for pg_dump/pg_restore
  std::vector<std::string> include_databases;  // glob patterns; empty: all
  std::vector<std::string> exclude_databases;
  std::optional<int64_t> target_storage_limit;
  // Target databases that the migration being resumed is filling: their
  // contents are its own, not data of someone else's.
  std::set<std::string> owned_target_databases;
  // The object filter the migration applies: tables it leaves out need not
  // be readable by the source user.
  ObjectFilter filter;
  // How the migration restores the schema: with preserve_owners the source's
  // owners, with preserve_acl its grants and default privileges; both name
  // roles that must exist on the target (roles.required).
  bool preserve_owners = false;
  bool preserve_acl = false;
  // migrate --roles: the source's roles missing on the target are created
  // before any schema, so objects naming them can be restored.
  bool roles = false;
  // schema.restorable: the whole schema (pre-data and post-data, as
  // pg_restore would run it) is restored on the target in a transaction that
  // is rolled back. Off: not tried.
  bool schema_trial = true;
  // How long the trial's pg_dump waits for a lock on the source (migrate's
  // --lock-timeout); 0: query_timeout.
  std::chrono::milliseconds lock_timeout{0};
  // migrate: the trial's dumps kept for the copy (see SchemaDumpHandover);
  // null for `pgcourier check`, whose trial dumps at pg_dump's own snapshot
  // into a temporary directory removed after it.
  SchemaDumpHandover* schema_dumps = nullptr;
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(30)};
  std::chrono::milliseconds query_timeout{std::chrono::minutes(2)};
  const CancelToken* cancel = nullptr;
};

// The most sessions a migration opens at once on each server, with `jobs`
// jobs and `databases` databases (of which min(jobs, databases) are in
// flight at once). What `check` budgets, and what the migration keeps to:
//   source: per job a session at the snapshot for copies and one for
//           comparisons; per database in flight the snapshot's holder and
//           pg_dump or the final verification;
//   target: per job a loading session and one for comparisons; per database
//           in flight pg_restore's post-data (--jobs workers and its leader)
//           or one session of its own, and the session holding the run's
//           claim on the database (schema/target_claim.h).
struct SessionBudget {
  int source = 0;
  int target = 0;
};
SessionBudget MigrationSessions(int jobs, int databases);

}  // namespace pgcourier

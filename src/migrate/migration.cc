#include "migrate/migration.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "catalog/copy_catalog.h"
#include "catalog/user_objects.h"
#include "copy/progress_marks.h"
#include "copy/snapshot.h"
#include "copy/table_copy.h"
#include "migrate/work_pool.h"
#include "pg/quote.h"
#include "preflight/checker.h"
#include "replication/replication.h"
#include "schema/present_objects.h"
#include "state/store.h"
#include "util/size.h"

namespace pgcourier {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

// Settings of every session that loads the target: bulk loading may lose
// the last commits on a target crash (the progress marks go with them, so
// the run redoes exactly those), never the final state, which is committed
// synchronously. Its lock_timeout is set apart (LockTimeoutSql).
constexpr const char* kTargetBulkSettings =
    "SET synchronous_commit = off; SET statement_timeout = 0; "
    "SET idle_in_transaction_session_timeout = 0; SET maintenance_work_mem = '512MB'";
// Settings of every session that reads the source: the snapshot's holder
// stays idle in its transaction for the whole move. A database cutover made
// read-only stays writable for pgcourier's own objects (a rerun of cutover
// still drops its publication); reads are in READ ONLY transactions anyway.
constexpr const char* kSourceSettings =
    "SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0; "
    "SET default_transaction_read_only = off";

// The change cutover --stop-source-writes makes (see StoredChange).
constexpr const char* kReadOnlyChange = "default_transaction_read_only = on";

// Undoes a recorded change over `conn` (a session in its database) and
// records that it was undone.
Status UndoChange(Connection& conn, StateStore& store, const StoredChange& change) {
  PGC_RETURN_IF_ERROR(conn.Run(change.undo_sql).WithContext("undoing " + change.object));
  return store.MarkChangeUndone(change);
}

// 17+: a transaction_timeout of the role or database would end the
// snapshot's transaction, and any long copy or index build.
Status NoTransactionTimeout(Connection& conn) {
  if (conn.server_version() < 170000) return Status::Ok();
  return conn.Run("SET transaction_timeout = 0");
}

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Waiting for locks held by other sessions (a user's open transaction, a
// DDL): bounded and visible. Every session waits at most
// MigrateOptions::lock_timeout for one lock. The sessions of copies, index
// builds and comparisons wait in rounds of kLockRound instead: after a round
// the sessions holding the table's lock are looked up and named in a
// progress line, and the task is tried again, until the rounds of waiting
// for sessions that are not pgcourier's own add up to the limit; then the
// database fails naming them. Waits for pgcourier's own sessions (two index
// builds of one table, pg_restore) are not limited.
constexpr std::chrono::milliseconds kLockRound{5000};

std::string LockTimeoutSql(std::chrono::milliseconds timeout) {
  return fmt::format("SET lock_timeout = {}", timeout.count());
}

bool IsLockTimeout(const Status& status) { return status.sqlstate() == "55P03"; }

// The table lock modes that conflict with `mode` (PostgreSQL's table), as a
// text[] literal.
std::string ConflictingLockModes(const std::string& mode) {
  static const std::vector<std::string> kModes = {
      "AccessShareLock", "RowShareLock",          "RowExclusiveLock", "ShareUpdateExclusiveLock",
      "ShareLock",       "ShareRowExclusiveLock", "ExclusiveLock",    "AccessExclusiveLock"};
  // Per mode, a bit per mode it conflicts with (bit 0: AccessShareLock).
  static const std::vector<unsigned> kConflicts = {0x80, 0xc0, 0xf0, 0xf8, 0xec, 0xfc, 0xfe, 0xff};
  std::string out = "{";
  for (size_t m = 0; m < kModes.size(); ++m) {
    if (kModes[m] != mode) continue;
    for (size_t c = 0; c < kModes.size(); ++c) {
      if ((kConflicts[m] & (1U << c)) == 0) continue;
      if (out.size() > 1) out += ",";
      out += kModes[c];
    }
  }
  return out + "}";
}

struct LockHolder {
  int64_t pid = 0;
  std::string mode;
  std::string relation;
  std::string description;  // application, user, state
  bool own = false;         // one of pgcourier's sessions, pg_dump or pg_restore
};

// The sessions other than `conn`'s holding a lock on `table` (quoted and
// qualified; empty: any user relation of the database) in a mode that
// conflicts with `wanted` (empty: any mode).
Result<std::vector<LockHolder>> LockHolders(Connection& conn, const std::string& table,
                                            const std::string& wanted) {
  Result<QueryResult> found = conn.ExecParams(
      "SELECT l.pid, l.mode, l.relation::pg_catalog.regclass::text, "
      "pg_catalog.format('%s, user %s, %s for %s s', coalesce(a.application_name, ''), "
      "a.usename, coalesce(a.state, 'prepared'), "
      "coalesce(extract(epoch FROM pg_catalog.now() - a.xact_start)::bigint, 0)), "
      "coalesce(a.application_name IN (pg_catalog.current_setting('application_name'), "
      "'pg_dump', 'pg_restore'), false) "
      "FROM pg_catalog.pg_locks l LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid "
      "WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_catalog.pg_backend_pid() "
      "AND l.database = (SELECT oid FROM pg_catalog.pg_database "
      "WHERE datname = pg_catalog.current_database()) AND l.relation >= 16384 "
      "AND ($1::text IS NULL OR l.relation = $1::text::pg_catalog.regclass) "
      "AND ($2::text[] IS NULL OR l.mode = ANY ($2::text[])) ORDER BY l.pid, 3",
      {table.empty() ? std::nullopt : std::optional<std::string>(table),
       wanted.empty() ? std::nullopt : std::optional<std::string>(ConflictingLockModes(wanted))},
      Deadline::After(std::chrono::seconds(30)));
  if (!found.ok()) return found.status();
  std::vector<LockHolder> holders;
  holders.reserve(static_cast<size_t>(found->rows()));
  for (int r = 0; r < found->rows(); ++r) {
    holders.push_back({found->GetInt(r, 0), found->GetString(r, 1), found->GetString(r, 2),
                       found->GetString(r, 3), found->GetString(r, 4) == "t"});
  }
  return holders;
}

// "pid 4242 (psql, user alice, idle in transaction for 12 s: AccessExclusiveLock
// on public.orders)" per holder that is not pgcourier's own.
std::string DescribeLockHolders(const std::vector<LockHolder>& holders) {
  std::string out;
  for (const auto& h : holders) {
    if (h.own) continue;
    if (!out.empty()) out += "; ";
    out += fmt::format("pid {} ({}: {} on {})", h.pid, h.description, h.mode, h.relation);
  }
  return out;
}

std::string LockHint(const std::vector<LockHolder>& holders, const std::string& work_dir) {
  std::string pids;
  for (const auto& h : holders) {
    if (h.own) continue;
    if (!pids.empty()) pids += ", ";
    pids += std::to_string(h.pid);
  }
  return fmt::format(
      "end the session(s) holding the lock (pid {}; pg_terminate_backend) or wait until they "
      "finish, then pgcourier migrate --resume --dir {}; --lock-timeout sets how long pgcourier "
      "waits",
      pids, work_dir);
}

bool Cancelled(const CancelToken* cancel) { return cancel != nullptr && cancel->cancelled(); }

std::string NewRunId() {
  std::random_device random;
  return fmt::format("{:08x}{:04x}", random(), random() & 0xffffU);
}

// What a resumed run must do as the first one did, kept in the store.
json OptionsToJson(const MigrateOptions& o) {
  return {{"jobs", o.check.jobs},
          {"include_databases", o.check.include_databases},
          {"exclude_databases", o.check.exclude_databases},
          {"pg_bindirs", o.check.pg_bindirs},
          {"include_schemas", o.filter.include_schemas},
          {"exclude_schemas", o.filter.exclude_schemas},
          {"include_tables", o.filter.include_tables},
          {"exclude_tables", o.filter.exclude_tables},
          {"exclude_table_data", o.filter.exclude_table_data},
          {"preserve_owners", o.policy.preserve_owners},
          {"preserve_acl", o.policy.preserve_acl},
          {"roles", o.roles},
          {"copy_passwords", o.role_options.copy_passwords},
          {"replica_identity_full", o.replica_identity_full},
          {"split_bytes", o.split_bytes}};
}

Status OptionsFromJson(const std::string& text, MigrateOptions& o) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Status(StatusCode::kFailedPrecondition, "the recorded options of the run are unreadable",
                  "start a new migration in another --dir");
  }
  auto list = [&j](const char* key) {
    std::vector<std::string> out;
    if (j.contains(key) && j[key].is_array()) {
      for (const auto& v : j[key]) {
        if (v.is_string()) out.push_back(v.get<std::string>());
      }
    }
    return out;
  };
  o.check.include_databases = list("include_databases");
  o.check.exclude_databases = list("exclude_databases");
  if (o.check.pg_bindirs.empty()) o.check.pg_bindirs = list("pg_bindirs");
  o.filter.include_schemas = list("include_schemas");
  o.filter.exclude_schemas = list("exclude_schemas");
  o.filter.include_tables = list("include_tables");
  o.filter.exclude_tables = list("exclude_tables");
  o.filter.exclude_table_data = list("exclude_table_data");
  o.policy.preserve_owners = j.value("preserve_owners", false);
  o.policy.preserve_acl = j.value("preserve_acl", false);
  o.roles = j.value("roles", false);
  o.role_options.copy_passwords = j.value("copy_passwords", true);
  o.replica_identity_full = j.value("replica_identity_full", false);
  o.split_bytes = j.value("split_bytes", o.split_bytes);
  return Status::Ok();
}

// The servers of a recorded run: as recorded (without passwords: libpq finds
// them in the environment or .pgpass), or as given again, when they name the
// same ones.
Status ResolveServers(const StoredRun& run, const std::string& work_dir, std::string& source,
                      std::string& target) {
  for (auto [given, recorded, side] : {std::make_tuple(&source, &run.source, "source"),
                                       std::make_tuple(&target, &run.target, "target")}) {
    if (given->empty()) {
      *given = *recorded;
      continue;
    }
    Result<ConnInfo> parsed = ConnInfo::Parse(*given);
    if (!parsed.ok()) return parsed.status();
    if (parsed->Redacted() != *recorded) {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("the migration in {} moves {} -> {}; the {} given now is {}",
                                work_dir, run.source, run.target, side, parsed->Redacted()),
                    "give the same --source and --target, or none");
    }
  }
  return Status::Ok();
}

// One database's record in the store, updated from any thread.
class DatabaseRecord {
 public:
  DatabaseRecord(StateStore& store, StoredDatabase db) : store_(store), db_(std::move(db)) {}

  template <typename F>
  void Update(F&& change) {
    std::lock_guard<std::mutex> lock(mu_);
    change(db_);
    Status put = store_.PutDatabase(db_);
    if (!put.ok()) spdlog::warn("recording the state of {}: {}", db_.name, put.ToString());
  }
  void Step(StoredStep step) {
    step.database = db_.name;
    Status put = store_.PutStep(step);
    if (!put.ok()) spdlog::warn("recording a step of {}: {}", db_.name, put.ToString());
  }
  StoredDatabase Get() {
    std::lock_guard<std::mutex> lock(mu_);
    return db_;
  }
  // Records a change about to be made on `side` (see StoredChange).
  Status Change(const std::string& side, const std::string& object, const std::string& undo) {
    return store_.RecordChange({db_.name, side, object, undo, "made", ""});
  }
  Result<std::vector<StoredChange>> Changes() { return store_.Changes(db_.name); }
  StateStore& store() { return store_; }
  RecordChangeFn ChangeRecorder(const std::string& side) {
    return [this, side](const std::string& object, const std::string& undo) {
      return Change(side, object, undo);
    };
  }

 private:
  StateStore& store_;
  std::mutex mu_;
  StoredDatabase db_;
};

class DatabaseMigration {
 public:
  DatabaseMigration(const MigrateOptions& options, const ConnInfo& source, const ConnInfo& target,
                    const CheckReport& check, WorkPool& pool, DatabaseRecord& record,
                    DatabaseOutcome& outcome, const ReplicationNames& names)
      : options_(options),
        source_db_(source.WithDatabase(outcome.name)),
        target_server_(target),
        target_db_(target.WithDatabase(outcome.target_name)),
        check_(check),
        pool_(pool),
        record_(record),
        outcome_(outcome),
        names_(names),
        replication_(outcome.method == "replication") {}

  Status Run();
  // Removes this database's replication objects, when any exist (a failed or
  // interrupted setup).
  Status RemoveReplication();
  // Finishes a replicating database (pgcourier cutover).
  Status Cutover(const CutoverOptions& options, CutoverDatabase& out);

 private:
  void Progress(const std::string& phase, const std::string& message, int64_t done = 0,
                int64_t total = 0) const {
    if (options_.on_progress) {
      options_.on_progress({outcome_.name, phase, message, done, total});
    }
  }
  void SetState(const std::string& state) {
    record_.Update([&](StoredDatabase& db) { db.state = state; });
  }
  ConnectOptions Connect(const std::string& role) const {
    ConnectOptions o;
    o.role = role;
    o.total_timeout = options_.check.connect_timeout;
    o.cancel = options_.check.cancel;
    return o;
  }
  Result<std::unique_ptr<Connection>> ConnectSource() const;
  Result<std::unique_ptr<Connection>> ConnectTarget() const;
  Status ExplainLockTimeout(const Status& status) const;
  // Runs `body` as the phase `phase`, timed and recorded as a step.
  Status Phase(const std::string& phase, const std::function<Status()>& body);

  Result<bool> SchemaRestoredEarlier();
  Status StartOver();
  Status TakeSnapshot();
  Status CreateTargetDatabase();
  RestoreListFilter RestoreFilter() const;
  Status RestorePreData();
  Status PlanSlices();
  Status PlanBlockSlices(const TableToCopy& table, int64_t count, std::vector<Slice>& slices);
  Status PlanKeySlices(const TableToCopy& table, int64_t count, std::vector<Slice>& slices);
  Status ReconcileWithMarks(Connection& target);
  Status CopyData();
  Status PostData();
  Status CopyLargeObjects();
  Status SetSequences();
  Status RefreshMaterializedViews();
  Status AnalyzeRest();
  Status Verify();
  Status FinishDurably();

  const MigrateOptions& options_;
  ConnInfo source_db_;
  ConnInfo target_server_;
  ConnInfo target_db_;
  const CheckReport& check_;
  WorkPool& pool_;
  DatabaseRecord& record_;
  DatabaseOutcome& outcome_;
  ReplicationNames names_;
  bool replication_;  // the replication method: publication, slot, subscription
  std::string archive_;
  std::string list_;
  SchemaTools tools_;
  bool resumed_schema_ = false;  // the interrupted run restored the pre-data
  // StartOver dropped the target database the interrupted run had created.
  bool dropped_incomplete_ = false;
  std::unique_ptr<ExportedSnapshot> snapshot_;
  ResolvedObjectFilter filtered_;  // options_.filter at the snapshot
  CopyCatalog catalog_;
  // Per table of catalog_.tables: its slices (none: copied whole), which of
  // its copy steps are already on the target, and how many are left.
  struct TablePlan {
    std::vector<Slice> slices;
    std::vector<bool> done;  // per slice (one entry when whole)
    std::set<size_t> indexes_done;
    int pending = 0;
    bool earlier = false;  // every copy step was done by an earlier run
  };
  std::vector<TablePlan> plans_;
  std::map<std::string, ProgressMark> marks_;  // on the target at the start
  // Tables compared with the source right after their copy.
  std::mutex compared_mu_;
  std::vector<TableVerification> compared_;
};

Result<std::unique_ptr<Connection>> DatabaseMigration::ConnectSource() const {
  Result<std::unique_ptr<Connection>> conn = Connection::Connect(source_db_, Connect("source"));
  if (!conn.ok()) return conn.status();
  PGC_RETURN_IF_ERROR((*conn)->Run(kSourceSettings));
  PGC_RETURN_IF_ERROR((*conn)->Run(LockTimeoutSql(options_.lock_timeout)));
  PGC_RETURN_IF_ERROR(NoTransactionTimeout(**conn));
  return conn;
}

Result<std::unique_ptr<Connection>> DatabaseMigration::ConnectTarget() const {
  Result<std::unique_ptr<Connection>> conn = Connection::Connect(target_db_, Connect("target"));
  if (!conn.ok()) return conn.status();
  PGC_RETURN_IF_ERROR((*conn)->Run(kTargetBulkSettings));
  PGC_RETURN_IF_ERROR((*conn)->Run(LockTimeoutSql(options_.lock_timeout)));
  PGC_RETURN_IF_ERROR(NoTransactionTimeout(**conn));
  return conn;
}

// A step that gave up waiting for a lock (lock_timeout): who holds locks on
// the database's tables, on either side, and what to do.
Status DatabaseMigration::ExplainLockTimeout(const Status& status) const {
  std::string holders;
  std::vector<LockHolder> all;
  for (const bool source : {true, false}) {
    Result<std::unique_ptr<Connection>> conn = source ? ConnectSource() : ConnectTarget();
    if (!conn.ok()) continue;
    Result<std::vector<LockHolder>> found = LockHolders(**conn, "", "");
    if (!found.ok()) continue;
    const std::string named = DescribeLockHolders(*found);
    if (named.empty()) continue;
    holders += fmt::format("{}on the {}: {}", holders.empty() ? "" : "; ",
                           source ? "source" : "target", named);
    all.insert(all.end(), found->begin(), found->end());
  }
  if (holders.empty()) return status;
  return Status(StatusCode::kFailedPrecondition,
                fmt::format("{} (waited {} s for a lock; held {})", status.message(),
                            options_.lock_timeout.count() / 1000, holders),
                LockHint(all, options_.work_dir));
}

Status DatabaseMigration::Phase(const std::string& phase, const std::function<Status()>& body) {
  auto started = Clock::now();
  StoredStep step;
  step.kind = "phase";
  step.object = phase;
  step.state = "running";
  record_.Step(step);
  Status status = body();
  if (IsLockTimeout(status)) status = ExplainLockTimeout(status);
  step.seconds = SecondsSince(started);
  outcome_.phases.push_back({phase, step.seconds});
  step.state = status.ok() ? "done" : "failed";
  if (!status.ok()) step.error = status.ToString();
  record_.Step(step);
  if (!status.ok()) return status.WithContext(phase);
  return status;
}

// Whether the interrupted run got this database past its schema: the
// progress marks are made right after the pre-data restore (which is one
// transaction), so their schema on the target says so, whatever the store
// managed to record before the run was stopped.
Result<bool> DatabaseMigration::SchemaRestoredEarlier() {
  if (!fs::exists(archive_) || !fs::exists(list_)) return false;
  ConnectOptions o = Connect("target");
  Result<std::unique_ptr<Connection>> target = Connection::Connect(target_db_, o);
  if (!target.ok()) {
    // No such database (3D000): nothing restored.
    if (target.status().sqlstate() == "3D000" ||
        target.status().message().find("does not exist") != std::string::npos) {
      return false;
    }
    return target.status();
  }
  return ProgressMarksExist(**target);
}

// A database whose schema was not completely restored is begun again from
// nothing: its target database dropped when pgcourier made it (the pre-data
// restore is one transaction, so a database that existed before is as empty
// as it was).
Status DatabaseMigration::StartOver() {
  StoredDatabase db = record_.Get();
  if (db.created_target) {
    Result<std::unique_ptr<Connection>> target =
        Connection::Connect(target_server_.WithDatabase("postgres"), Connect("target"));
    if (!target.ok()) return target.status();
    // WITH (FORCE) (13+): sessions of the killed run may still be connected
    // to it (their server processes go on until they notice the client gone).
    PGC_RETURN_IF_ERROR(
        (*target)
            ->Run("DROP DATABASE IF EXISTS " + QuoteIdent(outcome_.target_name) +
                  ((*target)->server_version() >= 130000 ? " WITH (FORCE)" : ""))
            .WithContext("dropping the incomplete target database " + outcome_.target_name));
    record_.Update([](StoredDatabase& d) { d.created_target = false; });
    dropped_incomplete_ = true;
    Progress("create", "dropped the incomplete target database " + outcome_.target_name +
                           " of the interrupted run");
  }
  return Status::Ok();
}

Status DatabaseMigration::TakeSnapshot() {
  Result<std::unique_ptr<Connection>> holder = ConnectSource();
  if (!holder.ok()) return holder.status();
  if (replication_) {
    // The tables replication can carry, published before the slot is made;
    // the bulk copy then reads at the slot's own snapshot, so every change
    // after it arrives through the slot, none twice, none missed.
    Result<CopyCatalog> now = ReadCopyCatalog(**holder, options_.filter, Deadline::Never());
    if (!now.ok()) return now.status();
    std::vector<std::string> published;
    for (const auto& t : now->tables) {
      if (!t.replicable && !t.unlogged && options_.replica_identity_full) {
        Result<QueryResult> before = (*holder)->ExecParams(
            "SELECT relreplident = 'n' FROM pg_catalog.pg_class WHERE oid = $1::regclass",
            {t.QualifiedName()});
        if (!before.ok()) return before.status();
        const bool nothing = before->rows() > 0 && before->GetBool(0, 0);
        PGC_RETURN_IF_ERROR(record_.Change("source", "REPLICA IDENTITY FULL on " + t.Display(),
                                           "ALTER TABLE ONLY " + t.QualifiedName() +
                                               " REPLICA IDENTITY " +
                                               (nothing ? "NOTHING" : "DEFAULT")));
        Status full =
            (*holder)->Run("ALTER TABLE ONLY " + t.QualifiedName() + " REPLICA IDENTITY FULL");
        if (!full.ok()) {
          return full.WithContext("setting REPLICA IDENTITY FULL on " + t.Display())
              .WithHint(
                  "the source user must own the table; or leave out --replica-identity-full "
                  "(the table is then copied again at cutover)");
        }
        Progress("snapshot", t.Display() + ": REPLICA IDENTITY FULL set on the source");
        published.push_back(t.QualifiedName());
        continue;
      }
      if (t.replicable) published.push_back(t.QualifiedName());
    }
    Result<std::string> id = StartReplication(source_db_, **holder, names_, published,
                                              Connect("source"), record_.ChangeRecorder("source"));
    if (!id.ok()) return id.status();
    snapshot_ = ExportedSnapshot::Adopt(std::move(*holder), *id);
    Progress("snapshot", fmt::format("publication {} of {} table(s) and slot {} created",
                                     names_.publication, published.size(), names_.slot));
  } else {
    Result<std::unique_ptr<ExportedSnapshot>> exported =
        ExportedSnapshot::Export(std::move(*holder), Deadline::Never());
    if (!exported.ok()) return exported.status();
    snapshot_ = std::move(*exported);
  }
  Result<ResolvedObjectFilter> filtered =
      ResolveObjectFilter(snapshot_->conn(), options_.filter, Deadline::Never());
  if (!filtered.ok()) return filtered.status();
  filtered_ = std::move(*filtered);
  Result<CopyCatalog> catalog =
      ReadCopyCatalog(snapshot_->conn(), options_.filter, Deadline::Never());
  if (!catalog.ok()) return catalog.status();
  catalog_ = std::move(*catalog);
  size_t indexes = 0;
  for (const auto& t : catalog_.tables) indexes += t.indexes.size();
  record_.Update([&](StoredDatabase& db) {
    db.snapshot = snapshot_->id();
    db.tables_total = static_cast<int64_t>(catalog_.tables.size());
    db.indexes_total = static_cast<int64_t>(indexes);
    db.bytes_total = catalog_.total_bytes;
  });
  std::string left_out;
  if (!options_.filter.empty()) {
    left_out =
        fmt::format(" (filters leave out {} schema(s), {} table(s), and the rows of {} table(s))",
                    filtered_.excluded_schemas.size(), filtered_.excluded_tables.size(),
                    filtered_.data_excluded_tables.size());
  }
  Progress("snapshot",
           fmt::format("snapshot {}: {} table(s), {}{}", snapshot_->id(), catalog_.tables.size(),
                       FormatBytes(catalog_.total_bytes), left_out));
  return Status::Ok();
}

Status DatabaseMigration::CreateTargetDatabase() {
  bool exists = false;
  for (const auto& plan : check_.databases) {
    if (plan.name == outcome_.name) exists = plan.exists_on_target;
  }
  if (exists && !record_.Get().created_target) {
    // Recheck: a resumed run may just have dropped it.
    Result<std::unique_ptr<Connection>> probe =
        Connection::Connect(target_server_.WithDatabase("postgres"), Connect("target"));
    if (!probe.ok()) return probe.status();
    Result<QueryResult> found = (*probe)->ExecParams(
        "SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1", {outcome_.target_name});
    if (!found.ok()) return found.status();
    if (found->rows() > 0) {
      Progress("create", "target database " + outcome_.target_name + " exists and is empty");
      return Status::Ok();
    }
  }
  Result<std::unique_ptr<Connection>> source =
      Connection::Connect(source_db_.WithDatabase("postgres"), Connect("source"));
  if (!source.ok()) {
    source = Connection::Connect(source_db_, Connect("source"));
    if (!source.ok()) return source.status();
  }
  Connection& src = **source;
  std::string provider = src.server_version() >= 150000 ? "d.datlocprovider" : "'c'";
  std::string icu = src.server_version() >= 170000   ? "d.datlocale"
                    : src.server_version() >= 150000 ? "d.daticulocale"
                                                     : "NULL";
  Result<QueryResult> db =
      src.ExecParams("SELECT pg_encoding_to_char(d.encoding), d.datcollate, d.datctype, " +
                         provider + ", " + icu + " FROM pg_database d WHERE d.datname = $1",
                     {outcome_.name});
  if (!db.ok()) return db.status();
  if (db->rows() != 1) {
    return Status(StatusCode::kNotFound, "database " + outcome_.name + " vanished on the source");
  }
  Result<std::unique_ptr<Connection>> target =
      Connection::Connect(target_server_.WithDatabase("postgres"), Connect("target"));
  if (!target.ok()) return target.status();
  Connection& dst = **target;
  std::string sql = fmt::format(
      "CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE {} "
      "LC_CTYPE {}",
      QuoteIdent(outcome_.target_name), QuoteLiteral(db->GetString(0, 0)),
      QuoteLiteral(db->GetString(0, 1)), QuoteLiteral(db->GetString(0, 2)));
  std::string locale_provider = db->GetString(0, 3);
  if (locale_provider == "i" || locale_provider == "b") {
    if (dst.server_version() < 150000) {
      return Status(StatusCode::kFailedPrecondition,
                    "the source database uses the ICU locale provider, which the target's "
                    "version does not support",
                    "use a target running PostgreSQL 15 or newer");
    }
    sql += locale_provider == "i" ? " LOCALE_PROVIDER icu ICU_LOCALE "
                                  : " LOCALE_PROVIDER builtin BUILTIN_LOCALE ";
    sql += QuoteLiteral(db->GetString(0, 4));
  }
  // Recorded first: a run killed right after the CREATE still knows the
  // database is its own (dropping one that does not exist is harmless).
  record_.Update([](StoredDatabase& d) { d.created_target = true; });
  Status created = dst.Run(sql);
  if (!created.ok() && dropped_incomplete_ &&
      (created.sqlstate() == "23505" || created.sqlstate() == "42P04")) {
    // The killed run's CREATE DATABASE was still running on the server when
    // its database was dropped, and committed since: it is that run's, and
    // as incomplete.
    Status dropped = dst.Run("DROP DATABASE IF EXISTS " + QuoteIdent(outcome_.target_name) +
                             (dst.server_version() >= 130000 ? " WITH (FORCE)" : ""));
    if (dropped.ok()) created = dst.Run(sql);
  }
  if (!created.ok()) {
    record_.Update([](StoredDatabase& d) { d.created_target = false; });
    return created.WithContext("creating database " + outcome_.target_name + " on the target")
        .WithHint("the target must offer the source's encoding and locale (" + db->GetString(0, 1) +
                  "); install the locale or create the database by hand");
  }
  Progress("create", "created target database " + outcome_.target_name);

  // Database-level settings (ALTER DATABASE ... SET), best effort: a setting
  // the target user may not set is reported, not fatal.
  Result<QueryResult> settings = src.ExecParams(
      "SELECT unnest(s.setconfig) FROM pg_db_role_setting s JOIN pg_database d "
      "ON d.oid = s.setdatabase WHERE d.datname = $1 AND s.setrole = 0",
      {outcome_.name});
  if (settings.ok()) {
    for (int r = 0; r < settings->rows(); ++r) {
      std::string entry = settings->GetString(r, 0);
      size_t eq = entry.find('=');
      if (eq == std::string::npos) continue;
      Status set =
          dst.Run("ALTER DATABASE " + QuoteIdent(outcome_.target_name) + " SET " +
                  QuoteIdent(entry.substr(0, eq)) + " = " + QuoteLiteral(entry.substr(eq + 1)));
      if (!set.ok())
        Progress("create", "database setting " + entry + " not applied: " + set.message());
    }
  }
  if (options_.roles) {
    Status role_settings =
        CopyRoleDatabaseSettings(src, dst, outcome_.name, outcome_.target_name, Deadline::Never());
    if (!role_settings.ok()) {
      Progress("create", "per-database role settings: " + role_settings.message());
    }
  }
  return Status::Ok();
}

// What the restore leaves out: provider-only extensions, and the indexes and
// constraints that the data phase builds itself.
RestoreListFilter DatabaseMigration::RestoreFilter() const {
  RestoreListFilter filter;
  filter.extensions = ProviderOnlyExtensions();
  for (const auto& table : catalog_.tables) {
    for (const auto& index : table.indexes) {
      filter.index_oids.insert(index.index_oid);
      if (index.constraint_oid != 0) filter.constraint_oids.insert(index.constraint_oid);
    }
  }
  return filter;
}

// pg_dump locks every table it dumps, and the pre-data restore (one
// transaction) every relation it creates, all at once: a server whose lock
// table is smaller fails with "out of shared memory". Says how much room to
// make, on which side.
Status ExplainLockTableFull(const Status& status, bool source, const CopyCatalog& catalog,
                            const std::string& work_dir) {
  if (status.message().find("max_locks_per_transaction") == std::string::npos) return status;
  size_t locks = catalog.tables.size();
  if (!source) {
    // A table, its TOAST table and the TOAST table's index; its indexes.
    locks *= 3;
    for (const auto& t : catalog.tables) locks += t.indexes.size();
  }
  return status.WithHint(
      fmt::format("{} locks about {} relations of the database at once: on the {}, raise "
                  "max_locks_per_transaction (a restart) so that max_locks_per_transaction x "
                  "(max_connections + max_prepared_transactions) is above that, then continue with "
                  "pgcourier migrate --resume --dir {}",
                  source ? "pg_dump" : "the schema restore (one transaction)", locks,
                  source ? "source" : "target", work_dir));
}

Status DatabaseMigration::RestorePreData() {
  Status dumped = DumpSchema(tools_, source_db_, snapshot_->id(), filtered_, archive_);
  if (!dumped.ok() && dumped.message().find("max_locks_per_transaction") != std::string::npos) {
    return ExplainLockTableFull(dumped, true, catalog_, options_.work_dir);
  }
  if (!dumped.ok() && dumped.message().find("LOCK TABLE") != std::string::npos) {
    // pg_dump gave up waiting for a table's lock (--lock-wait-timeout).
    return ExplainLockTimeout(Status(dumped.code(), dumped.message(), dumped.hint(), "55P03"));
  }
  PGC_RETURN_IF_ERROR(dumped);
  Result<std::string> listed = ListArchive(tools_, archive_);
  if (!listed.ok()) return listed.status();
  Result<int> kept = WriteRestoreList(*listed, RestoreFilter(), list_);
  if (!kept.ok()) return kept.status();
  PGC_RETURN_IF_ERROR(ExplainLockTableFull(
      RestoreSection(tools_, target_db_, archive_, list_, "pre-data", 1, options_.policy), false,
      catalog_, options_.work_dir));
  Result<std::unique_ptr<Connection>> target = ConnectTarget();
  if (!target.ok()) return target.status();
  // The marks' schema says that the schema is restored (SchemaRestoredEarlier):
  // committed asynchronously, a target crash could take it and leave the
  // restored schema, and a resumed run would restore it again.
  PGC_RETURN_IF_ERROR((*target)->Run("SET synchronous_commit = on"));
  PGC_RETURN_IF_ERROR(CreateProgressMarks(**target));
  Progress("pre-data", "schema restored (pre-data)");
  return Status::Ok();
}

Status DatabaseMigration::PlanSlices() {
  // Tables large enough to keep one job busy much longer than the others are
  // cut into slices, so every job has work to the end: ranges of heap blocks
  // where the source has TID range scans (14+), each slice reading only its
  // blocks; else ranges of an integer key.
  const int64_t slice = std::max<int64_t>(
      options_.split_bytes, catalog_.total_bytes / std::max(1, options_.check.jobs * 4));
  const bool by_blocks = snapshot_->conn().server_version() >= 140000;
  plans_.clear();
  for (auto& table : catalog_.tables) {
    TablePlan plan;
    const bool splittable = by_blocks || !table.split_column.empty();
    if (splittable && table.bytes > slice * 3 / 2) {
      const int64_t wanted = std::min<int64_t>(64, (table.bytes + slice - 1) / slice);
      Status planned = by_blocks ? PlanBlockSlices(table, wanted, plan.slices)
                                 : PlanKeySlices(table, wanted, plan.slices);
      if (!planned.ok()) return planned.WithContext("planning the slices of " + table.Display());
    }
    plan.done.assign(plan.slices.empty() ? 1 : plan.slices.size(), false);
    plan.pending = static_cast<int>(plan.done.size());
    plans_.push_back(std::move(plan));
  }
  return Status::Ok();
}

Status DatabaseMigration::PlanBlockSlices(const TableToCopy& table, int64_t count,
                                          std::vector<Slice>& slices) {
  Result<QueryResult> size = snapshot_->conn().ExecParams(
      "SELECT pg_catalog.pg_relation_size($1::regclass, 'main') / "
      "pg_catalog.current_setting('block_size')::bigint",
      {table.QualifiedName()});
  if (!size.ok()) return size.status();
  const int64_t blocks = size->GetInt(0, 0);
  count = std::min(count, blocks);
  if (count < 2) return Status::Ok();
  const int64_t step = blocks / count;
  for (int64_t i = 0; i < count; ++i) {
    // The last slice is open-ended: it reads to the end of the table.
    slices.push_back({Slice::Kind::kBlocks, i * step, i + 1 == count ? -1 : (i + 1) * step});
  }
  return Status::Ok();
}

Status DatabaseMigration::PlanKeySlices(const TableToCopy& table, int64_t count,
                                        std::vector<Slice>& slices) {
  std::string column = QuoteIdent(table.split_column);
  Result<QueryResult> bounds = snapshot_->conn().Exec("SELECT min(" + column + "), max(" + column +
                                                      ") FROM ONLY " + table.QualifiedName());
  if (!bounds.ok()) return bounds.status();
  if (bounds->IsNull(0, 0)) return Status::Ok();
  int64_t lo = bounds->GetInt(0, 0);
  int64_t hi = bounds->GetInt(0, 1);
  // Unsigned arithmetic: hi - lo can exceed INT64_MAX.
  const uint64_t span = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
  if (span < static_cast<uint64_t>(count)) count = static_cast<int64_t>(span) + 1;
  const uint64_t step = span / static_cast<uint64_t>(count);
  uint64_t offset = 0;
  for (int64_t i = 0; i < count; ++i) {
    uint64_t next = i + 1 == count ? span + 1 : offset + step;
    slices.push_back({Slice::Kind::kKeys, static_cast<int64_t>(static_cast<uint64_t>(lo) + offset),
                      static_cast<int64_t>(static_cast<uint64_t>(lo) + next - 1)});
    offset = next;
  }
  return Status::Ok();
}

// A resumed database: what the target's progress marks say is already
// there. A table whose every copy step is marked is done (its rows come
// from the earlier snapshot); a table with only some of its slices marked is
// emptied and copied again whole at this run's snapshot (slices of two
// snapshots could hold a row twice, or miss one that moved). Index builds
// that are marked are done.
Status DatabaseMigration::ReconcileWithMarks(Connection& target) {
  Result<std::map<std::string, ProgressMark>> marks = ReadProgressMarks(target);
  if (!marks.ok()) return marks.status();
  marks_ = std::move(*marks);
  if (marks_.empty()) return Status::Ok();
  std::map<std::string, std::vector<const ProgressMark*>> copies_by_table;
  for (const auto& [step, mark] : marks_) {
    if (step.rfind("copy ", 0) == 0) copies_by_table[mark.object].push_back(&mark);
  }
  bool any_earlier = false;
  for (size_t t = 0; t < catalog_.tables.size(); ++t) {
    const TableToCopy& table = catalog_.tables[t];
    TablePlan& plan = plans_[t];
    for (size_t i = 0; i < table.indexes.size(); ++i) {
      if (marks_.count(IndexStepName(table.indexes[i])) != 0) plan.indexes_done.insert(i);
    }
    auto found = copies_by_table.find(table.QualifiedName());
    if (found == copies_by_table.end()) continue;
    const auto& copies = found->second;
    if (copies.size() == static_cast<size_t>(copies.front()->parts)) {
      plan.earlier = true;
      any_earlier = true;
      plan.slices.clear();
      plan.done.assign(1, true);
      plan.pending = 0;
      continue;
    }
    PGC_RETURN_IF_ERROR(ResetTableCopy(target, table.QualifiedName()));
    Progress("data", table.Display() + ": partly copied by the interrupted run; copied again");
  }
  if (any_earlier) {
    outcome_.consistent = false;
    record_.Update([](StoredDatabase& db) { db.consistent = false; });
  }
  return Status::Ok();
}

Status DatabaseMigration::CopyData() {
  PGC_RETURN_IF_ERROR(PlanSlices());
  {
    Result<std::unique_ptr<Connection>> target = ConnectTarget();
    if (!target.ok()) return target.status();
    PGC_RETURN_IF_ERROR(ReconcileWithMarks(**target));
  }
  const auto& tables = catalog_.tables;

  // Sessions of this database, reused by whichever worker runs its next task.
  struct Sessions {
    std::unique_ptr<Connection> source;  // at the snapshot
    std::unique_ptr<Connection> target;  // bulk-load settings
    std::unique_ptr<TableChecksums> checksums;
  };
  std::mutex mu;
  std::vector<std::unique_ptr<Sessions>> idle;
  auto take_sessions = [&] {
    std::lock_guard<std::mutex> lock(mu);
    if (idle.empty()) return std::make_unique<Sessions>();
    std::unique_ptr<Sessions> s = std::move(idle.back());
    idle.pop_back();
    return s;
  };
  auto give_back = [&](std::unique_ptr<Sessions> s) {
    std::lock_guard<std::mutex> lock(mu);
    idle.push_back(std::move(s));
  };

  std::optional<Status> failure;
  int64_t bytes_done = 0;
  int64_t rows_done = 0;
  size_t tables_done = 0;
  size_t indexes_done = 0;
  size_t indexes_total = 0;
  for (const auto& t : tables) indexes_total += t.indexes.size();
  std::vector<TableOutcome> results(tables.size());
  for (size_t t = 0; t < tables.size(); ++t) results[t].table = tables[t].Display();
  TaskGroup group;
  // Copies and index builds not yet done; post-data waits for them.
  size_t structure_pending = 0;
  std::function<void()> after_structure;  // set below

  enum class Kind { kCopy, kIndex, kCompare };
  struct Task {
    Kind kind = Kind::kCopy;
    size_t table = 0;
    int part = -1;  // kCopy: the slice (-1: whole); kIndex: the index
  };
  std::function<void(const Task&)> submit;

  auto record_step = [&](const Task& task, const std::string& state, const TableCopyStats& stats,
                         int attempts, const std::string& error) {
    StoredStep step;
    const TableToCopy& table = tables[task.table];
    switch (task.kind) {
      case Kind::kCopy:
        step.kind = "copy";
        step.object = table.Display();
        if (task.part >= 0) {
          step.part = plans_[task.table].slices[static_cast<size_t>(task.part)].Display();
        }
        break;
      case Kind::kIndex:
        step.kind = "index";
        step.object = table.indexes[static_cast<size_t>(task.part)].schema + "." +
                      table.indexes[static_cast<size_t>(task.part)].name;
        break;
      case Kind::kCompare:
        step.kind = "compare";
        step.object = table.Display();
        break;
    }
    step.state = state;
    step.rows = stats.rows;
    step.bytes = stats.bytes;
    step.seconds = stats.seconds;
    step.attempts = attempts;
    step.error = error;
    record_.Step(step);
  };

  // Lock waits of tasks, in rounds (see kLockRound).
  const std::chrono::milliseconds lock_round =
      options_.lock_timeout.count() > 0 ? std::min(kLockRound, options_.lock_timeout) : kLockRound;
  // After a round of `task` that ended waiting for a lock: who holds it. Adds
  // the round to `waited` when it was another session than pgcourier's own,
  // and says so; an error once `waited` reaches the limit.
  auto lock_wait = [&](const Task& task, Sessions& s, Clock::duration round,
                       Clock::duration& waited) -> Status {
    const TableToCopy& table = tables[task.table];
    std::string what = "analyzing " + table.Display();
    // The lock the task takes on each side (empty: none there).
    std::string source_mode;
    std::string target_mode = "ShareUpdateExclusiveLock";  // ANALYZE after a comparison
    if (task.kind == Kind::kCopy) {
      what = "copying " + table.Display();
      source_mode = "AccessShareLock";
      // A whole table is truncated first; a slice only adds rows.
      target_mode = task.part < 0 ? "AccessExclusiveLock" : "RowExclusiveLock";
    } else if (task.kind == Kind::kIndex) {
      const IndexToBuild& index = table.indexes[static_cast<size_t>(task.part)];
      what = "building index " + index.schema + "." + index.name;
      const bool alters =
          !index.constraint_type.empty() || index.clustered || index.replica_identity;
      target_mode = alters ? "AccessExclusiveLock" : "ShareLock";
    }
    std::vector<LockHolder> holders;
    std::string named;
    for (const bool source : {true, false}) {
      Connection* conn = source ? s.source.get() : s.target.get();
      const std::string& mode = source ? source_mode : target_mode;
      if (conn == nullptr || conn->IsBad() || mode.empty()) continue;
      (void)conn->Run("ROLLBACK", Deadline::After(std::chrono::seconds(10)));
      Result<std::vector<LockHolder>> found = LockHolders(*conn, table.QualifiedName(), mode);
      if (!found.ok()) continue;
      const std::string these = DescribeLockHolders(*found);
      if (!these.empty()) {
        named += fmt::format("{}on the {} by {}", named.empty() ? "" : "; ",
                             source ? "source" : "target", these);
      }
      holders.insert(holders.end(), found->begin(), found->end());
    }
    if (named.empty()) return Status::Ok();  // pgcourier's own sessions, or over already
    waited += round;
    const auto waited_s = std::chrono::duration_cast<std::chrono::seconds>(waited).count();
    const auto limit_s =
        std::chrono::duration_cast<std::chrono::seconds>(options_.lock_timeout).count();
    if (options_.lock_timeout.count() > 0 && waited >= options_.lock_timeout) {
      return Status(
          StatusCode::kFailedPrecondition,
          fmt::format("{}: no lock after waiting {} s: it is held {}", what, waited_s, named),
          LockHint(holders, options_.work_dir));
    }
    Progress("data", fmt::format("{}: waiting for a lock held {} ({} s, up to {} s)", what, named,
                                 waited_s, limit_s));
    return Status::Ok();
  };

  // One attempt of a task on `s`; a copy's rows and bytes in `stats`.
  auto attempt = [&](const Task& task, Sessions& s, int number, TableCopyStats& stats) -> Status {
    const TableToCopy& table = tables[task.table];
    // A session that cannot be opened fails the task: its error names it.
    const std::string doing = task.kind == Kind::kCopy ? "copying " + table.Display()
                              : task.kind == Kind::kIndex
                                  ? "building the indexes of " + table.Display()
                                  : "verifying " + table.Display();
    if (task.kind == Kind::kCopy && !s.source) {
      Result<std::unique_ptr<Connection>> c = ConnectSource();
      if (!c.ok()) return c.status().WithContext(doing);
      s.source = std::move(*c);
      PGC_RETURN_IF_ERROR(s.source->Run(LockTimeoutSql(lock_round)).WithContext(doing));
      PGC_RETURN_IF_ERROR(ExportedSnapshot::BeginAt(*s.source, snapshot_->id(), Deadline::Never())
                              .WithContext(doing));
    }
    if (!s.target) {
      Result<std::unique_ptr<Connection>> c = ConnectTarget();
      if (!c.ok()) return c.status().WithContext(doing);
      s.target = std::move(*c);
      PGC_RETURN_IF_ERROR(s.target->Run(LockTimeoutSql(lock_round)).WithContext(doing));
    }
    if (task.kind == Kind::kIndex) {
      const IndexToBuild& index = table.indexes[static_cast<size_t>(task.part)];
      if (number > 1) {
        Result<bool> done = HasProgressMark(*s.target, IndexStepName(index), nullptr);
        if (!done.ok()) return done.status();
        if (*done) return Status::Ok();
      }
      return BuildIndex(*s.target, table, index);
    }
    if (task.kind == Kind::kCompare) {
      if (!s.checksums) {
        Result<std::unique_ptr<TableChecksums>> opened =
            TableChecksums::Open(source_db_, snapshot_->id(), target_db_,
                                 options_.check.connect_timeout, options_.check.cancel);
        if (!opened.ok()) return opened.status();
        s.checksums = std::move(*opened);
      }
      Result<TableVerification> compared = s.checksums->Compare(table.schema, table.name);
      if (!compared.ok()) return compared.status().WithContext("verifying " + table.Display());
      {
        std::lock_guard<std::mutex> lock(compared_mu_);
        compared_.push_back(*compared);
      }
      // Statistics for the planner, while other work goes on.
      return s.target->Run("ANALYZE " + table.QualifiedName())
          .WithContext("analyzing " + table.Display());
    }
    const TablePlan& plan = plans_[task.table];
    std::optional<Slice> slice;
    if (task.part >= 0) slice = plan.slices[static_cast<size_t>(task.part)];
    const std::string step = CopyStepName(table, slice);
    if (number > 1) {
      // The last attempt's COMMIT may have happened before its connection
      // was lost: its mark says so.
      ProgressMark mark;
      Result<bool> done = HasProgressMark(*s.target, step, &mark);
      if (!done.ok()) return done.status();
      if (*done) {
        stats.rows = mark.rows;
        stats.bytes = mark.bytes;
        return Status::Ok();
      }
    }
    const int parts = plan.slices.empty() ? 1 : static_cast<int>(plan.slices.size());
    Result<TableCopyStats> copied = CopyTable(*s.source, *s.target, table, slice, parts, step);
    if (!copied.ok()) return copied.status();
    stats = *copied;
    return Status::Ok();
  };

  // What follows a finished task (with mu held).
  auto finished = [&](const Task& task, const TableCopyStats& stats, int attempts) {
    const TableToCopy& table = tables[task.table];
    if (task.kind == Kind::kCompare) return;
    if (task.kind == Kind::kIndex) {
      ++indexes_done;
      const IndexToBuild& index = table.indexes[static_cast<size_t>(task.part)];
      Progress("data", fmt::format("index {}.{} built ({}/{} indexes)", index.schema, index.name,
                                   indexes_done, indexes_total));
      record_.Update(
          [&](StoredDatabase& db) { db.indexes_done = static_cast<int64_t>(indexes_done); });
    } else {
      TableOutcome& result = results[task.table];
      result.rows += stats.rows;
      result.bytes += stats.bytes;
      result.seconds += stats.seconds;
      result.attempts = std::max(result.attempts, attempts);
      rows_done += stats.rows;
      if (--plans_[task.table].pending == 0) {
        bytes_done += table.bytes;
        ++tables_done;
        Progress("data",
                 fmt::format("{}: {} rows, {} ({}/{} tables)", table.Display(), result.rows,
                             FormatBytes(result.bytes), tables_done, tables.size()),
                 bytes_done, catalog_.total_bytes);
        for (size_t i = 0; i < table.indexes.size(); ++i) {
          if (plans_[task.table].indexes_done.count(i) == 0) {
            submit({Kind::kIndex, task.table, static_cast<int>(i)});
          }
        }
        submit({Kind::kCompare, task.table, -1});
      }
      record_.Update([&](StoredDatabase& db) {
        db.tables_done = static_cast<int64_t>(tables_done);
        db.bytes_done = bytes_done;
        db.rows_done = rows_done;
      });
    }
    if (--structure_pending == 0) after_structure();
  };

  submit = [&](const Task& task) {
    group.Add();
    WorkPool::Priority priority = task.kind == Kind::kIndex     ? WorkPool::kUrgent
                                  : task.kind == Kind::kCompare ? WorkPool::kCompare
                                                                : WorkPool::kCopy;
    const TableToCopy& table = tables[task.table];
    int64_t weight = table.bytes;
    if (task.kind == Kind::kCopy && !plans_[task.table].slices.empty()) {
      weight /= static_cast<int64_t>(plans_[task.table].slices.size());
    }
    pool_.Submit(priority, weight, [&, task] {
      bool skip = false;
      {
        std::lock_guard<std::mutex> lock(mu);
        skip = failure.has_value();
      }
      Status status = Status::Ok();
      TableCopyStats stats;
      int attempts = 0;
      if (!skip) {
        std::unique_ptr<Sessions> s = take_sessions();
        record_step(task, "running", stats, 1, "");
        Clock::duration lock_waited{0};
        for (attempts = 1;; ++attempts) {
          stats = TableCopyStats();
          const auto tried = Clock::now();
          status = attempt(task, *s, attempts, stats);
          if (status.ok()) break;
          if (Cancelled(options_.check.cancel)) {
            status =
                Status(StatusCode::kCancelled, "cancelled during " + tables[task.table].Display());
            break;
          }
          if (IsLockTimeout(status)) {
            // A round of waiting for a lock, not a failed attempt.
            status = lock_wait(task, *s, Clock::now() - tried, lock_waited);
            if (!status.ok()) break;
            --attempts;
            *s = Sessions();
            continue;
          }
          if (!status.retryable() || attempts >= options_.table_attempts) break;
          Progress("data", fmt::format("{}; trying again (attempt {} of {})", status.message(),
                                       attempts + 1, options_.table_attempts));
          *s = Sessions();
        }
        record_step(task, status.ok() ? "done" : "failed", stats, attempts,
                    status.ok() ? "" : status.ToString());
        if (status.ok()) {
          give_back(std::move(s));
        }
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        if (!status.ok() && !failure) failure = status;
        if (status.ok() && !skip) finished(task, stats, attempts);
      }
      group.Done();
    });
  };

  // Post-data runs on a worker of its own once every table and index is in,
  // while the last comparisons go on.
  std::optional<Status> post_data_status;
  after_structure = [&] {
    group.Add();
    pool_.Submit(WorkPool::kUrgent, 0, [&] {
      bool skip = false;
      {
        std::lock_guard<std::mutex> lock(mu);
        skip = failure.has_value();
      }
      if (!skip) {
        Status status = Phase("post-data", [&] { return PostData(); });
        std::lock_guard<std::mutex> lock(mu);
        post_data_status = status;
        if (!status.ok() && !failure) failure = status;
      }
      group.Done();
    });
  };

  {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<Task> first;
    for (size_t t = 0; t < tables.size(); ++t) {
      const TablePlan& plan = plans_[t];
      if (plan.earlier) {
        results[t].earlier_run = true;
        ++tables_done;
        bytes_done += tables[t].bytes;
        for (size_t i = 0; i < tables[t].indexes.size(); ++i) {
          if (plan.indexes_done.count(i) == 0)
            first.push_back({Kind::kIndex, t, static_cast<int>(i)});
        }
        first.push_back({Kind::kCompare, t, -1});
        continue;
      }
      if (plan.slices.empty()) {
        first.push_back({Kind::kCopy, t, -1});
      } else {
        for (size_t r = 0; r < plan.slices.size(); ++r) {
          first.push_back({Kind::kCopy, t, static_cast<int>(r)});
        }
      }
    }
    for (const auto& task : first) {
      if (task.kind != Kind::kCompare) ++structure_pending;
    }
    // Indexes still to build of tables not yet copied are counted when the
    // copy finishes and submits them.
    for (size_t t = 0; t < tables.size(); ++t) {
      if (!plans_[t].earlier) {
        structure_pending += tables[t].indexes.size() - plans_[t].indexes_done.size();
      }
    }
    if (structure_pending == 0) after_structure();
    for (const auto& task : first) submit(task);
  }
  group.Wait();
  if (failure) return *failure;
  if (!post_data_status) return Status(StatusCode::kFailedPrecondition, "post-data did not run");
  outcome_.tables = std::move(results);
  return Status::Ok();
}

Status DatabaseMigration::PostData() {
  PGC_RETURN_IF_ERROR(CopyLargeObjects());
  // A resumed run restores only what the interrupted one did not.
  if (resumed_schema_) {
    Result<std::string> listed = ListArchive(tools_, archive_);
    if (!listed.ok()) return listed.status();
    Result<std::unique_ptr<Connection>> target = ConnectTarget();
    if (!target.ok()) return target.status();
    Result<std::set<std::pair<uint32_t, uint32_t>>> present =
        FindPresentObjects(snapshot_->conn(), **target, ParseArchiveList(*listed));
    if (!present.ok()) return present.status();
    if (!present->empty()) {
      RestoreListFilter filter = RestoreFilter();
      filter.present = std::move(*present);
      Result<int> kept = WriteRestoreList(*listed, filter, list_);
      if (!kept.ok()) return kept.status();
    }
  }
  PGC_RETURN_IF_ERROR(RestoreSection(tools_, target_db_, archive_, list_, "post-data",
                                     options_.check.jobs, options_.policy));
  Progress("post-data", "indexes, constraints, triggers and the rest restored (post-data)");
  return Status::Ok();
}

Status DatabaseMigration::CopyLargeObjects() {
  if (catalog_.large_objects.empty()) return Status::Ok();
  const std::string step = "large objects";
  if (marks_.count(step) != 0) return Status::Ok();
  Result<std::unique_ptr<Connection>> target = ConnectTarget();
  if (!target.ok()) return target.status();
  PGC_RETURN_IF_ERROR((*target)->Run("BEGIN"));
  int64_t bytes = 0;
  for (uint32_t oid : catalog_.large_objects) {
    // Read at the snapshot through its holder, written in one transaction.
    Result<QueryResult> data =
        snapshot_->conn().ExecParams("SELECT lo_get($1::oid)", {std::to_string(oid)});
    if (!data.ok()) return data.status().WithContext(fmt::format("reading large object {}", oid));
    Status written = (*target)
                         ->ExecParams("SELECT lo_from_bytea($1::oid, $2::bytea)",
                                      {std::to_string(oid), data->GetString(0, 0)})
                         .status();
    if (!written.ok()) return written.WithContext(fmt::format("writing large object {}", oid));
    bytes += static_cast<int64_t>(data->Get(0, 0).size() / 2);
  }
  const auto count = static_cast<int64_t>(catalog_.large_objects.size());
  PGC_RETURN_IF_ERROR((*target)->Run(InsertProgressMarkSql(step, {step, 1, count, bytes})));
  PGC_RETURN_IF_ERROR((*target)->Run("COMMIT"));
  outcome_.large_objects = count;
  Progress("data", fmt::format("{} large object(s) copied", count));
  return Status::Ok();
}

Status DatabaseMigration::SetSequences() {
  if (catalog_.sequences.empty()) return Status::Ok();
  Result<std::unique_ptr<Connection>> target = ConnectTarget();
  if (!target.ok()) return target.status();
  for (const auto& seq : catalog_.sequences) {
    std::string name = QualifiedName(seq.schema, seq.name);
    Result<QueryResult> value = snapshot_->conn().Exec("SELECT last_value, is_called FROM " + name);
    if (!value.ok()) return value.status().WithContext("reading sequence " + name);
    Status set = (*target)
                     ->ExecParams("SELECT pg_catalog.setval($1::regclass, $2::bigint, $3::bool)",
                                  {name, value->GetString(0, 0), value->GetString(0, 1)})
                     .status();
    if (!set.ok()) return set.WithContext("setting sequence " + name);
  }
  outcome_.sequences = static_cast<int64_t>(catalog_.sequences.size());
  Progress("sequences",
           fmt::format("{} sequence(s) set to the source's values", catalog_.sequences.size()));
  return Status::Ok();
}

Status DatabaseMigration::RefreshMaterializedViews() {
  std::vector<const MaterializedView*> pending;
  for (const auto& mv : catalog_.materialized_views) {
    if (mv.populated) pending.push_back(&mv);
  }
  if (pending.empty()) return Status::Ok();
  Result<std::unique_ptr<Connection>> target = ConnectTarget();
  if (!target.ok()) return target.status();
  // One materialized view can read another: refresh in passes until no
  // progress is made, so dependency order needs no catalog walk.
  while (!pending.empty()) {
    std::vector<const MaterializedView*> failed;
    Status last_error;
    for (const auto* mv : pending) {
      Status refreshed =
          (*target)->Run("REFRESH MATERIALIZED VIEW " + QualifiedName(mv->schema, mv->name));
      if (refreshed.ok()) {
        ++outcome_.materialized_views;
      } else if (refreshed.sqlstate() == "55000") {  // reads one not yet populated
        failed.push_back(mv);
        last_error = refreshed;
      } else {
        return refreshed.WithContext("refreshing " + mv->schema + "." + mv->name);
      }
    }
    if (failed.size() == pending.size()) return last_error;
    pending = std::move(failed);
  }
  Progress("post-data",
           fmt::format("{} materialized view(s) populated", outcome_.materialized_views));
  return Status::Ok();
}

Status DatabaseMigration::AnalyzeRest() {
  // Every copied table was analyzed after its comparison; what is left are
  // the partitioned tables (statistics over all their partitions) and the
  // materialized views.
  Result<std::unique_ptr<Connection>> target = ConnectTarget();
  if (!target.ok()) return target.status();
  Result<QueryResult> rest = (*target)->Exec(
      std::string("SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) FROM pg_class c "
                  "JOIN pg_namespace n ON n.oid = c.relnamespace "
                  "WHERE (c.relkind = 'p' OR (c.relkind = 'm' AND c.relispopulated)) AND ") +
      sql::UserRelation());
  if (!rest.ok()) return rest.status().WithContext("listing what is left to analyze");
  for (int r = 0; r < rest->rows(); ++r) {
    PGC_RETURN_IF_ERROR((*target)->Run("ANALYZE " + rest->GetString(r, 0)));
  }
  return Status::Ok();
}

Status DatabaseMigration::Verify() {
  VerifyOptions verify;
  verify.jobs = options_.check.jobs;
  verify.source_snapshot = snapshot_->id();
  verify.filter = options_.filter;
  // pgcourier's own schema on the target, dropped once the run is verified.
  verify.filter.exclude_schemas.emplace_back(kProgressSchema);
  verify.connect_timeout = options_.check.connect_timeout;
  verify.cancel = options_.check.cancel;
  verify.compared_tables = compared_;
  verify.left_out_extensions = ProviderOnlyExtensions();
  // A source that replication keeps following moves its sequences on: they
  // are synced, and compared, at cutover.
  verify.sequences = !replication_;
  Result<DatabaseVerification> verified = VerifyDatabase(source_db_, target_db_, verify);
  if (!verified.ok()) return verified.status();
  outcome_.verification = std::move(*verified);
  int mismatches = outcome_.verification->Mismatches();
  if (mismatches > 0) {
    std::string hint = "see the verification report; the target database is incomplete";
    if (!outcome_.consistent) {
      hint =
          "the data was copied at more than one snapshot (the run was resumed): a source that "
          "took writes in between differs from it; stop writes and run pgcourier verify, or "
          "move the database again";
    }
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("the target differs from the source in {} place(s)", mismatches),
                  hint);
  }
  Progress("verify", fmt::format("{} table(s), {} sequence(s) and the schema match the source",
                                 outcome_.verification->tables.size(),
                                 outcome_.verification->sequences.size()));
  return Status::Ok();
}

Status DatabaseMigration::FinishDurably() {
  Result<std::unique_ptr<Connection>> target = ConnectTarget();
  if (!target.ok()) return target.status();
  // Committed with synchronous_commit on: its WAL flush covers every earlier
  // asynchronous commit of the bulk load, so "done" is durable.
  PGC_RETURN_IF_ERROR((*target)->Run("SET synchronous_commit = on"));
  return DropProgressMarks(**target);
}

Status DatabaseMigration::Run() {
  const std::string dir = options_.work_dir + "/" + outcome_.name;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status(StatusCode::kIoError, "cannot create " + dir + ": " + ec.message());
  archive_ = dir + "/schema.dump";
  list_ = dir + "/schema.list";
  tools_ = {check_.tools.pg_dump, check_.tools.pg_restore, options_.check.cancel,
            options_.lock_timeout};
  record_.Update([](StoredDatabase& db) {
    db.state = "schema";
    db.error.clear();
    db.hint.clear();
  });

  if (options_.resume && replication_) {
    // The slot's changes start at the interrupted run's snapshot, which is
    // gone: tables copied at a new one would get those changes twice. The
    // database starts over, with new replication objects.
    PGC_RETURN_IF_ERROR(RemoveReplication());
    if (!record_.Get().created_target) {
      Result<bool> restored = SchemaRestoredEarlier();
      if (!restored.ok()) return restored.status().WithContext("resuming");
      if (*restored) {
        return Status(StatusCode::kFailedPrecondition,
                      "the interrupted replication of " + outcome_.name +
                          " filled a target database that pgcourier did not create",
                      "drop and recreate " + outcome_.target_name +
                          " on the target (empty), then resume again");
      }
    }
    PGC_RETURN_IF_ERROR(StartOver());
  } else if (options_.resume) {
    Result<bool> restored = SchemaRestoredEarlier();
    if (!restored.ok()) return restored.status().WithContext("resuming");
    resumed_schema_ = *restored;
    // Without its schema, the database starts over.
    if (!resumed_schema_) PGC_RETURN_IF_ERROR(StartOver());
  }

  // The snapshot comes first: the filter is resolved at it, and one that
  // selects nothing ends the run before the target is touched.
  PGC_RETURN_IF_ERROR(Phase("snapshot", [&] { return TakeSnapshot(); }));
  if (!resumed_schema_) {
    PGC_RETURN_IF_ERROR(Phase("create", [&] { return CreateTargetDatabase(); }));
    PGC_RETURN_IF_ERROR(Phase("pre-data", [&] { return RestorePreData(); }));
  } else {
    Progress("pre-data", "schema restored by the interrupted run; resuming its data");
  }
  SetState("copying");
  PGC_RETURN_IF_ERROR(Phase("data", [&] { return CopyData(); }));
  SetState("indexing");
  PGC_RETURN_IF_ERROR(Phase("sequences", [&] { return SetSequences(); }));
  PGC_RETURN_IF_ERROR(Phase("materialized views", [&] { return RefreshMaterializedViews(); }));
  PGC_RETURN_IF_ERROR(Phase("analyze", [&] { return AnalyzeRest(); }));
  SetState("verifying");
  PGC_RETURN_IF_ERROR(Phase("verify", [&] { return Verify(); }));
  PGC_RETURN_IF_ERROR(Phase("finish", [&] { return FinishDurably(); }));
  if (!replication_) return Status::Ok();
  // The bulk copy is verified: the changes made since its snapshot stream
  // in from now on.
  return Phase("subscribe", [&]() -> Status {
    Result<std::unique_ptr<Connection>> target = ConnectTarget();
    if (!target.ok()) return target.status();
    PGC_RETURN_IF_ERROR(CreateSubscription(**target, snapshot_->conn(), source_db_, names_,
                                           record_.ChangeRecorder("target")));
    Progress("syncing", "subscription " + names_.subscription +
                            " streams the source's changes; finish with pgcourier cutover");
    return Status::Ok();
  });
}

// Removes this database's replication objects, when any exist (a failed or
// interrupted setup).
Status DatabaseMigration::RemoveReplication() {
  Result<std::unique_ptr<Connection>> source = Connection::Connect(source_db_, Connect("source"));
  if (!source.ok()) return source.status();
  Result<std::unique_ptr<Connection>> target = Connection::Connect(target_db_, Connect("target"));
  Connection* dst = target.ok() ? target->get() : nullptr;  // no database: no subscription
  Result<std::vector<std::string>> removed = DropReplication(source->get(), dst, names_);
  if (!removed.ok()) return removed.status().WithContext("removing replication objects");
  for (const auto& r : *removed) Progress("cleanup", "removed " + r);
  return Status::Ok();
}

Status DatabaseMigration::Cutover(const CutoverOptions& co, CutoverDatabase& out) {
  Result<std::unique_ptr<Connection>> source = ConnectSource();
  if (!source.ok()) return source.status();
  Result<std::unique_ptr<Connection>> target = ConnectTarget();
  if (!target.ok()) return target.status();
  Result<ReplicationLag> lag = ReadLag(source->get(), target->get(), names_);
  if (!lag.ok()) return lag.status();
  if (!lag->slot_exists || !lag->subscription_exists) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("the replication of {} is incomplete: {} {}", outcome_.name,
                              lag->slot_exists ? "" : "no slot " + names_.slot + " on the source;",
                              lag->subscription_exists
                                  ? ""
                                  : "no subscription " + names_.subscription + " on the target"),
                  "run pgcourier cleanup, then move the database again");
  }
  auto stopped = Clock::now();
  if (co.stop_source_writes) {
    // The session may itself be in a read-only database: it opts out first.
    out.undo = "SET default_transaction_read_only = off; ALTER DATABASE " +
               QuoteIdent(outcome_.name) + " RESET default_transaction_read_only;";
    PGC_RETURN_IF_ERROR(record_.Change("source", kReadOnlyChange, out.undo));
    PGC_RETURN_IF_ERROR((*source)
                            ->Run("ALTER DATABASE " + QuoteIdent(outcome_.name) +
                                  " SET default_transaction_read_only = on")
                            .WithContext("making the source database read-only"));
    // The setting applies to new sessions: the open ones are ended, so that
    // the applications reconnect read-only (their open transactions roll
    // back). Replication's own walsenders are not client backends.
    Result<QueryResult> ended = (*source)->ExecParams(
        "SELECT count(*) FILTER (WHERE pg_catalog.pg_terminate_backend(a.pid)), count(*) "
        "FROM pg_catalog.pg_stat_activity a WHERE a.datname = $1 "
        "AND a.pid <> pg_catalog.pg_backend_pid() AND a.backend_type = 'client backend'",
        {outcome_.name});
    if (!ended.ok()) return ended.status().WithContext("ending the source's open sessions");
    if (ended->GetInt(0, 0) < ended->GetInt(0, 1)) {
      Progress("cutover",
               fmt::format("{} of {} open session(s) on the source could not be ended (no "
                           "right to): they may still write",
                           ended->GetInt(0, 1) - ended->GetInt(0, 0), ended->GetInt(0, 1)));
    }
    Progress("cutover",
             "source database " + outcome_.name +
                 " is read-only for new transactions (to undo, on the source: " + out.undo + ")");
  }
  // Everything written up to now must be on the target.
  Result<QueryResult> now = (*source)->Exec("SELECT pg_catalog.pg_current_wal_lsn()::text");
  if (!now.ok()) return now.status();
  const std::string lsn = now->GetString(0, 0);
  Progress("cutover", "waiting for the target to apply the source's changes up to " + lsn);
  PGC_RETURN_IF_ERROR(WaitApplied(
      **source, names_, lsn,
      Deadline::After(std::chrono::duration_cast<std::chrono::milliseconds>(co.timeout)),
      co.cancel));
  Progress("cutover", "the target has applied every change up to " + lsn);

  // What replication does not carry, read at a snapshot taken now. From
  // here on the database is treated as a plain copy: the snapshot needs no
  // slot, and the verification compares sequences too (the source is quiet).
  replication_ = false;
  PGC_RETURN_IF_ERROR(TakeSnapshot());
  PGC_RETURN_IF_ERROR(SetSequences());
  out.sequences = outcome_.sequences;
  Result<QueryResult> published = snapshot_->conn().ExecParams(
      "SELECT schemaname, tablename FROM pg_catalog.pg_publication_tables WHERE pubname = $1",
      {names_.publication});
  if (!published.ok()) return published.status();
  std::set<std::string> carried;
  for (int r = 0; r < published->rows(); ++r) {
    carried.insert(QualifiedName(published->GetString(r, 0), published->GetString(r, 1)));
  }
  Result<std::unique_ptr<Connection>> copier = ConnectSource();
  if (!copier.ok()) return copier.status();
  PGC_RETURN_IF_ERROR(ExportedSnapshot::BeginAt(**copier, snapshot_->id(), Deadline::Never()));
  // Fresh marks: an interrupted cutover's are of no use (its copies are
  // made again, each one emptying its table first).
  PGC_RETURN_IF_ERROR(DropProgressMarks(**target));
  PGC_RETURN_IF_ERROR(CreateProgressMarks(**target));
  for (const auto& table : catalog_.tables) {
    if (carried.count(table.QualifiedName()) != 0) continue;
    Result<TableCopyStats> copied =
        CopyTable(**copier, **target, table, std::nullopt, 1, "cutover " + table.QualifiedName());
    if (!copied.ok()) return copied.status();
    ++out.tables_recopied;
    Progress("cutover", fmt::format("{} (not replicated) copied again: {} rows", table.Display(),
                                    copied->rows));
  }
  if (!catalog_.large_objects.empty()) {
    PGC_RETURN_IF_ERROR(
        (*target)->Run("SELECT pg_catalog.lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata"));
    PGC_RETURN_IF_ERROR(CopyLargeObjects());
  }
  PGC_RETURN_IF_ERROR(RefreshMaterializedViews());
  PGC_RETURN_IF_ERROR(Verify());
  out.verification = outcome_.verification;
  PGC_RETURN_IF_ERROR(FinishDurably());
  Result<std::vector<std::string>> removed = DropReplication(source->get(), target->get(), names_);
  if (!removed.ok()) return removed.status();
  out.removed = *removed;
  // What replication needed goes with it (an extension installed for it,
  // REPLICA IDENTITY FULL); the read-only source stays so until cleanup or
  // the printed undo.
  Result<std::vector<StoredChange>> changes = record_.Changes();
  if (!changes.ok()) return changes.status();
  for (size_t i = changes->size(); i-- > 0;) {
    const StoredChange& c = (*changes)[i];
    if (c.state != "made" || c.object == kReadOnlyChange) continue;
    Connection& on = c.side == "source" ? **source : **target;
    Status undone = UndoChange(on, record_.store(), c);
    if (!undone.ok()) return undone;
    out.removed.push_back(c.object + " (" + c.side + ", undone)");
  }
  out.writes_stopped_seconds = SecondsSince(stopped);
  return Status::Ok();
}

// A recorded migration opened for a command that continues it (cutover,
// cleanup): its store (locked), run, servers and databases.
struct RecordedMigration {
  std::unique_ptr<StateStore> store;
  StoredRun run;
  std::string source_text;  // as given again, or as recorded
  std::string target_text;
  ConnInfo source;
  ConnInfo target;
  std::vector<StoredDatabase> databases;
};

Result<RecordedMigration> OpenRecorded(const std::string& work_dir, const std::string& source,
                                       const std::string& target) {
  RecordedMigration m;
  Result<std::unique_ptr<StateStore>> opened = StateStore::OpenForRun(work_dir);
  if (!opened.ok()) return opened.status();
  m.store = std::move(*opened);
  Result<std::optional<StoredRun>> run = m.store->Run();
  if (!run.ok()) return run.status();
  if (!*run) {
    return Status(StatusCode::kInvalidArgument, "there is no migration in " + work_dir,
                  "start one with pgcourier migrate --dir " + work_dir);
  }
  m.run = **run;
  m.source_text = source;
  m.target_text = target;
  PGC_RETURN_IF_ERROR(ResolveServers(m.run, work_dir, m.source_text, m.target_text));
  Result<ConnInfo> s = ConnInfo::Parse(m.source_text);
  if (!s.ok()) return s.status();
  Result<ConnInfo> t = ConnInfo::Parse(m.target_text);
  if (!t.ok()) return t.status();
  m.source = std::move(*s);
  m.target = std::move(*t);
  Result<std::vector<StoredDatabase>> dbs = m.store->Databases();
  if (!dbs.ok()) return dbs.status();
  m.databases = std::move(*dbs);
  return m;
}

}  // namespace

bool CutoverOutcome::ok() const {
  for (const auto& db : databases) {
    if (db.state != "done" && db.state != "skipped") return false;
  }
  return !databases.empty();
}

Result<CutoverOutcome> Cutover(const CutoverOptions& co) {
  Result<RecordedMigration> recorded = OpenRecorded(co.work_dir, co.source, co.target);
  if (!recorded.ok()) return recorded.status();
  RecordedMigration& m = *recorded;
  MigrateOptions options;
  PGC_RETURN_IF_ERROR(OptionsFromJson(m.run.options_json, options));
  options.check.source = m.source_text;
  options.check.target = m.target_text;
  options.work_dir = co.work_dir;
  options.check.jobs = co.jobs;
  options.check.connect_timeout = co.connect_timeout;
  options.check.cancel = co.cancel;
  options.on_progress = co.on_progress;

  CutoverOutcome outcome;
  CheckReport no_check;
  WorkPool pool(1);
  bool any = false;
  for (size_t i = 0; i < m.databases.size(); ++i) {
    const StoredDatabase& stored = m.databases[i];
    CutoverDatabase out;
    out.name = stored.name;
    out.target_name = stored.target_name;
    // "cutover": a cutover that was interrupted; it is simply done again.
    if (stored.state != "syncing" && stored.state != "cutover") {
      out.state = "skipped";
      out.hint = "its state is " + stored.state + "; only replicating databases are cut over";
      outcome.databases.push_back(std::move(out));
      continue;
    }
    any = true;
    DatabaseOutcome db;
    db.name = stored.name;
    db.target_name = stored.target_name;
    db.method = "replication";
    DatabaseRecord record(*m.store, stored);
    DatabaseMigration migration(options, m.source, m.target, no_check, pool, record, db,
                                NamesFor(m.run.id, static_cast<int>(i)));
    record.Update([](StoredDatabase& d) { d.state = "cutover"; });
    Status status = migration.Cutover(co, out);
    if (status.ok()) {
      out.state = "done";
    } else {
      const bool cancelled = status.code() == StatusCode::kCancelled ||
                             (co.cancel != nullptr && co.cancel->cancelled());
      out.state = cancelled ? "cancelled" : "failed";
      out.error = status.ToString();
      out.hint = status.hint();
    }
    // A failed cutover leaves the database replicating: it can be run again.
    record.Update([&](StoredDatabase& d) {
      d.state = out.state == "done" ? "done" : "syncing";
      d.error = out.error;
      d.hint = out.hint;
    });
    outcome.databases.push_back(std::move(out));
  }
  if (!any) {
    return Status(StatusCode::kFailedPrecondition,
                  "no database of the migration in " + co.work_dir + " is replicating",
                  "see pgcourier status --dir " + co.work_dir);
  }
  bool all_done = true;
  Result<std::vector<StoredDatabase>> after = m.store->Databases();
  if (after.ok()) {
    for (const auto& d : *after) all_done = all_done && d.state == "done";
  }
  (void)m.store->FinishRun(all_done ? "done" : "syncing", "");
  return outcome;
}

Result<CleanupOutcome> Cleanup(const CleanupOptions& co) {
  Result<RecordedMigration> recorded = OpenRecorded(co.work_dir, co.source, co.target);
  if (!recorded.ok()) return recorded.status();
  RecordedMigration& m = *recorded;
  CleanupOutcome outcome;
  ConnectOptions connect;
  connect.total_timeout = co.connect_timeout;
  connect.cancel = co.cancel;
  for (size_t i = 0; i < m.databases.size(); ++i) {
    const StoredDatabase& db = m.databases[i];
    Result<std::vector<StoredChange>> changes = m.store->Changes(db.name);
    if (!changes.ok()) return changes.status();
    const bool changed = std::any_of(changes->begin(), changes->end(),
                                     [](const StoredChange& c) { return c.state == "made"; });
    if (db.method != "replication" && !changed) continue;
    const ReplicationNames names = NamesFor(m.run.id, static_cast<int>(i));
    connect.role = "source";
    Result<std::unique_ptr<Connection>> src =
        Connection::Connect(m.source.WithDatabase(db.name), connect);
    // A database cutover made read-only: this session may still drop the
    // publication and undo the changes.
    if (src.ok()) (void)(*src)->Run("SET default_transaction_read_only = off");
    connect.role = "target";
    Result<std::unique_ptr<Connection>> dst =
        Connection::Connect(m.target.WithDatabase(db.target_name), connect);
    if (!dst.ok() && dst.status().code() != StatusCode::kNotFound &&
        dst.status().sqlstate() != "3D000") {
      outcome.problems.push_back(db.target_name + " on the target: " + dst.status().message() +
                                 "; its subscription " + names.subscription + " may remain");
    }
    if (!src.ok()) {
      outcome.problems.push_back(db.name + " on the source: " + src.status().message() +
                                 "; its slot " + names.slot + " and publication " +
                                 names.publication +
                                 " remain: run pgcourier cleanup again when it is reachable "
                                 "(a slot left behind keeps WAL on the source)");
    }
    Result<std::vector<std::string>> removed =
        DropReplication(src.ok() ? src->get() : nullptr, dst.ok() ? dst->get() : nullptr, names);
    if (!removed.ok()) {
      outcome.problems.push_back(db.name + ": " + removed.status().ToString());
      continue;
    }
    for (const auto& r : *removed) outcome.removed.push_back(db.name + ": " + r);
    // Then what was changed for the migration, latest first.
    for (size_t k = changes->size(); k-- > 0;) {
      const StoredChange& c = (*changes)[k];
      if (c.state != "made") continue;
      Result<std::unique_ptr<Connection>>& on = c.side == "source" ? src : dst;
      if (!on.ok()) {
        if (c.side == "source" || on.status().sqlstate() != "3D000") {
          outcome.problems.push_back(db.name + ": " + c.object + " (" + c.side +
                                     ") not undone: the server is unreachable");
        }
        continue;
      }
      Status undone = UndoChange(**on, *m.store, c);
      if (undone.ok()) {
        outcome.undone.push_back(db.name + ": " + c.object + " (" + c.side + ")");
      } else {
        outcome.problems.push_back(db.name + ": " + undone.ToString());
      }
    }
    if (src.ok() && dst.ok() && (db.state == "syncing" || db.state == "cutover")) {
      StoredDatabase cancelled = db;
      cancelled.state = "cancelled";
      cancelled.error = "replication removed by pgcourier cleanup before cutover";
      Status set = m.store->PutDatabase(cancelled);
      if (!set.ok()) outcome.problems.push_back(set.ToString());
    }
  }
  return outcome;
}

bool MigrationOutcome::ok() const {
  if (!checks_passed || databases.empty()) return false;
  for (const auto& db : databases) {
    if (db.state != "done" && db.state != "syncing") return false;
  }
  return true;
}

Result<MigrationOutcome> Migrate(const MigrateOptions& given) {
  MigrationOutcome outcome;
  outcome.work_dir = given.work_dir;
  auto progress = [&](const std::string& db, const std::string& phase, const std::string& msg) {
    if (given.on_progress) given.on_progress({db, phase, msg, 0, 0});
  };

  // The work directory: one migration each, locked while it runs.
  Result<std::unique_ptr<StateStore>> opened = StateStore::OpenForRun(given.work_dir);
  if (!opened.ok()) return opened.status();
  StateStore& store = **opened;
  Result<std::optional<StoredRun>> earlier = store.Run();
  if (!earlier.ok()) return earlier.status();

  MigrateOptions options = given;
  std::vector<StoredDatabase> stored;
  if (options.resume) {
    if (!*earlier) {
      return Status(
          StatusCode::kInvalidArgument, "there is no migration to resume in " + given.work_dir,
          "start one with pgcourier migrate --source ... --target ... --dir " + given.work_dir);
    }
    const StoredRun& run = **earlier;
    if (run.state == "done") {
      return Status(StatusCode::kFailedPrecondition,
                    "the migration in " + given.work_dir + " (" + run.id + ") is already done",
                    "nothing to resume; see pgcourier status --dir " + given.work_dir);
    }
    PGC_RETURN_IF_ERROR(OptionsFromJson(run.options_json, options));
    PGC_RETURN_IF_ERROR(
        ResolveServers(run, given.work_dir, options.check.source, options.check.target));
    Result<std::vector<StoredDatabase>> dbs = store.Databases();
    if (!dbs.ok()) return dbs.status();
    stored = std::move(*dbs);
    // Databases planned at the start but not recorded one by one yet.
    json recorded = json::parse(run.options_json, nullptr, false);
    if (recorded.is_object() && recorded.contains("databases") &&
        recorded["databases"].is_array()) {
      for (const auto& planned : recorded["databases"]) {
        const std::string name = planned.value("name", "");
        auto known = std::find_if(stored.begin(), stored.end(),
                                  [&](const StoredDatabase& d) { return d.name == name; });
        if (name.empty() || known != stored.end()) continue;
        StoredDatabase db;
        db.name = name;
        db.target_name = planned.value("target_name", name);
        db.method = planned.value("method", "copy");
        db.method_reason = planned.value("reason", "");
        db.bytes_total = planned.value("bytes", int64_t{0});
        PGC_RETURN_IF_ERROR(store.PutDatabase(db));
        stored.push_back(std::move(db));
      }
    }
    for (const auto& db : stored) options.check.owned_target_databases.insert(db.target_name);
    outcome.resumed = true;
    outcome.run_id = run.id;
  } else if (*earlier) {
    const StoredRun& run = **earlier;
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("{} holds the migration {} ({} -> {}, {})", given.work_dir, run.id,
                              run.source, run.target, run.state),
                  run.state == "done" ? "it is finished; use another --dir for a new migration"
                                      : "continue it with pgcourier migrate --resume --dir " +
                                            given.work_dir + ", or use another --dir");
  }

  CheckOptions check = options.check;
  check.filter = options.filter;  // also a resumed run's, as recorded
  progress("", "check", "running pre-flight checks");
  Result<CheckReport> report = RunChecks(check);
  if (!report.ok()) return report.status();
  outcome.check = std::move(*report);
  if (outcome.check.blocked()) return outcome;  // nothing touched
  outcome.checks_passed = true;

  Result<ConnInfo> source = ConnInfo::Parse(check.source);
  Result<ConnInfo> target = ConnInfo::Parse(check.target);
  if (!source.ok()) return source.status();
  if (!target.ok()) return target.status();

  if (options.resume) {
    PGC_RETURN_IF_ERROR(store.ResumeRun(static_cast<int64_t>(getpid())));
  } else {
    std::vector<StoredDatabase> planned;
    json planned_json = json::array();
    for (const auto& plan : outcome.check.databases) {
      StoredDatabase db;
      db.name = plan.name;
      db.target_name = plan.target_name;
      db.method = plan.method == Method::kReplication ? "replication" : "copy";
      db.method_reason = plan.reason;
      db.bytes_total = std::max<int64_t>(plan.size_bytes, 0);
      planned_json.push_back({{"name", db.name},
                              {"target_name", db.target_name},
                              {"reason", db.method_reason},
                              {"method", db.method},
                              {"bytes", db.bytes_total}});
      planned.push_back(std::move(db));
    }
    StoredRun run;
    run.id = NewRunId();
    run.source = source->Redacted();
    run.target = target->Redacted();
    // The databases go in with the run, in one write: a run stopped before
    // it recorded them one by one still knows them all.
    json recorded = OptionsToJson(options);
    recorded["databases"] = planned_json;
    run.options_json = recorded.dump();
    run.state = "running";
    run.pid = static_cast<int64_t>(getpid());
    PGC_RETURN_IF_ERROR(store.BeginRun(run));
    outcome.run_id = run.id;
    for (auto& db : planned) {
      PGC_RETURN_IF_ERROR(store.PutDatabase(db));
      stored.push_back(std::move(db));
    }
  }

  // Roles first: owners and grants of every database need them.
  if (options.roles) {
    progress("", "roles", "creating the source's roles missing on the target");
    auto connect = [&](const ConnInfo& info, const char* role) {
      ConnectOptions o;
      o.role = role;
      o.total_timeout = options.check.connect_timeout;
      o.cancel = options.check.cancel;
      return Connection::Connect(info.WithDatabase("postgres"), o);
    };
    Result<std::unique_ptr<Connection>> src = connect(*source, "source");
    if (!src.ok()) return src.status();
    Result<std::unique_ptr<Connection>> dst = connect(*target, "target");
    if (!dst.ok()) return dst.status();
    Result<RoleCopyReport> roles = CopyRoles(**src, **dst, options.role_options, Deadline::Never());
    if (!roles.ok()) {
      Status failed = roles.status().WithContext("copying roles");
      (void)store.FinishRun("failed", failed.ToString());
      return failed;
    }
    int created = 0;
    for (const auto& r : roles->roles) {
      if (r.action == RoleOutcome::Action::kCreated) ++created;
    }
    progress("", "roles", fmt::format("{} role(s) created", created));
    outcome.roles = std::move(*roles);
  }

  // Databases: the largest first, up to `jobs` at a time, every one's work
  // in the one shared pool.
  for (const auto& db : stored) {
    DatabaseOutcome o;
    o.name = db.name;
    o.target_name = db.target_name;
    o.method = db.method.empty() ? "copy" : db.method;
    o.consistent = db.consistent;
    // Done, or replicating (the cutover finishes it): nothing to redo.
    o.done_earlier = db.state == "done" || db.state == "syncing" || db.state == "cutover";
    o.state = o.done_earlier ? db.state : "pending";
    outcome.databases.push_back(std::move(o));
  }
  std::vector<size_t> order(outcome.databases.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return stored[a].bytes_total > stored[b].bytes_total;
  });
  std::vector<std::unique_ptr<DatabaseRecord>> records;
  records.reserve(stored.size());
  for (const auto& db : stored) records.push_back(std::make_unique<DatabaseRecord>(store, db));

  {
    WorkPool pool(options.check.jobs);
    std::mutex mu;
    size_t next = 0;
    auto pipeline = [&] {
      for (;;) {
        size_t i = 0;
        {
          std::lock_guard<std::mutex> lock(mu);
          if (next >= order.size()) return;
          i = order[next++];
        }
        DatabaseOutcome& db = outcome.databases[i];
        DatabaseRecord& record = *records[i];
        if (db.done_earlier) continue;
        if (Cancelled(options.check.cancel)) {
          db.state = "cancelled";
          record.Update([](StoredDatabase& d) { d.state = "cancelled"; });
          continue;
        }
        DatabaseMigration migration(options, *source, *target, outcome.check, pool, record, db,
                                    NamesFor(outcome.run_id, static_cast<int>(i)));
        auto started = Clock::now();
        Status status = migration.Run();
        if (status.ok()) {
          db.state = db.method == "replication" ? "syncing" : "done";
          progress(db.name, db.state,
                   fmt::format(
                       "{} in {:.1f} s",
                       db.state == "done" ? "moved and verified" : "copied, verified, replicating",
                       SecondsSince(started)));
        } else {
          // A failed setup leaves no replication object behind.
          if (db.method == "replication") {
            Status removed = migration.RemoveReplication();
            if (!removed.ok()) progress(db.name, "cleanup", removed.ToString());
          }
          const bool cancelled =
              status.code() == StatusCode::kCancelled || Cancelled(options.check.cancel);
          db.state = cancelled ? "cancelled" : "failed";
          db.error = status.ToString();
          db.hint = status.hint();
          progress(db.name, db.state, db.error);
        }
        record.Update([&](StoredDatabase& d) {
          d.state = db.state;
          d.error = db.error;
          d.hint = db.hint;
        });
      }
    };
    const int pipelines =
        std::max(1, std::min<int>(options.check.jobs, static_cast<int>(order.size())));
    std::vector<std::thread> threads;
    threads.reserve(static_cast<size_t>(pipelines));
    for (int p = 0; p < pipelines; ++p) threads.emplace_back(pipeline);
    for (auto& t : threads) t.join();
  }

  std::string final_state = "done";
  for (const auto& db : outcome.databases) {
    if (db.state == "syncing" && final_state == "done") final_state = "syncing";
  }
  for (const auto& db : outcome.databases) {
    if (db.state == "failed") final_state = "failed";
    if (db.state == "cancelled" && final_state != "failed") final_state = "cancelled";
  }
  (void)store.FinishRun(final_state, "");
  return outcome;
}

}  // namespace pgcourier

#include "migrate/migration.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>

#include "copy/snapshot.h"
#include "migrate/database_migration.h"
#include "migrate/recorded_run.h"
#include "migrate/session_pool.h"
#include "migrate/sessions.h"
#include "migrate/work_pool.h"
#include "preflight/checker.h"
#include "state/store.h"

namespace pgcourier {
namespace {

using Clock = std::chrono::steady_clock;

bool Cancelled(const CancelToken* cancel) { return cancel != nullptr && cancel->cancelled(); }

// One run of Migrate: the store, the options in force (a resumed run's are
// the recorded ones) and the outcome being built.
// The load sessions' maintenance_work_mem for this target and --jobs
// (sessions.h); none when the target cannot be asked.
std::string LoadMaintenanceWorkMem(const ConnInfo& source, const ConnInfo& target,
                                   const MigrateOptions& options) {
  const SessionFactory bare(source, target, options.check.connect_timeout, options.check.cancel,
                            options.lock_timeout);
  Result<std::unique_ptr<Connection>> conn = bare.TargetServer();
  if (!conn.ok()) return "";
  return LoadMaintenanceWorkMem(**conn, options.check.jobs);
}

class Run {
 public:
  Run(const MigrateOptions& given, StateStore& store)
      : given_(given), options_(given), store_(store) {
    outcome_.work_dir = given.work_dir;
  }

  Result<MigrationOutcome> Execute();

 private:
  void Progress(const std::string& db, const std::string& phase, const std::string& msg) const {
    if (given_.on_progress) given_.on_progress({db, phase, msg, 0, 0});
  }
  // The checks' warnings and failures, one event each, as they are found.
  void ReportFindings(const CheckReport& report) const;
  Status Resume(const StoredRun& run);
  Status Begin(const ConnInfo& source, const ConnInfo& target);
  Status CopyRolesFirst(const SessionFactory& sessions);
  void RunDatabases(const SessionFactory& sessions, SchemaDumpHandover* schema_dumps);
  void RunDatabase(const RunContext& context, size_t i, DatabaseRecord& record);
  RunState FinalState() const;

  const MigrateOptions& given_;
  MigrateOptions options_;
  StateStore& store_;
  std::vector<StoredDatabase> stored_;
  MigrationOutcome outcome_;
};

void Run::ReportFindings(const CheckReport& report) const {
  if (!given_.on_progress) return;
  for (const CheckItem& item : report.items) {
    if (item.status == CheckStatus::kPass) continue;
    ProgressEvent event{"", "check", item.code + ": " + item.detail, 0, 0};
    event.object = item.object;
    event.hint = item.hint;
    event.level = item.status == CheckStatus::kFail ? ProgressEvent::Level::kError
                                                    : ProgressEvent::Level::kWarning;
    given_.on_progress(event);
  }
}

// Continues the run recorded in the store: its options and servers, and its
// databases, also those planned at the start but not recorded one by one.
Status Run::Resume(const StoredRun& run) {
  if (run.state == RunState::kDone) {
    return Status(StatusCode::kFailedPrecondition,
                  "the migration in " + given_.work_dir + " (" + run.id + ") is already done",
                  "nothing to resume; see pgcourier status --dir " + given_.work_dir);
  }
  PGC_RETURN_IF_ERROR(OptionsFromJson(run.options_json, options_));
  PGC_RETURN_IF_ERROR(
      ResolveServers(run, given_.work_dir, options_.check.source, options_.check.target));
  Result<std::vector<StoredDatabase>> dbs = store_.Databases();
  if (!dbs.ok()) return dbs.status();
  stored_ = std::move(*dbs);
  for (auto& planned : PlannedDatabasesFromJson(run.options_json)) {
    auto known = std::find_if(stored_.begin(), stored_.end(),
                              [&](const StoredDatabase& d) { return d.name == planned.name; });
    if (known != stored_.end()) continue;
    PGC_RETURN_IF_ERROR(store_.PutDatabase(planned));
    stored_.push_back(std::move(planned));
  }
  for (const auto& db : stored_) options_.check.owned_target_databases.insert(db.target_name);
  outcome_.resumed = true;
  outcome_.run_id = run.id;
  return Status::Ok();
}

// Records a new run with the databases the checks planned. The databases
// go in with the run, in one write: a run stopped before it recorded them
// one by one still knows them all.
Status Run::Begin(const ConnInfo& source, const ConnInfo& target) {
  std::vector<StoredDatabase> planned;
  for (const auto& plan : outcome_.check.databases) {
    StoredDatabase db;
    db.name = plan.name;
    db.target_name = plan.target_name;
    db.method = plan.method;
    db.method_reason = plan.reason;
    db.bytes_total = std::max<int64_t>(plan.size_bytes, 0);
    planned.push_back(std::move(db));
  }
  StoredRun run;
  run.id = NewRunId();
  run.source = source.Redacted();
  run.target = target.Redacted();
  nlohmann::json recorded = OptionsToJson(options_);
  recorded["databases"] = PlannedDatabasesToJson(planned);
  run.options_json = recorded.dump();
  run.state = RunState::kRunning;
  run.pid = static_cast<int64_t>(getpid());
  PGC_RETURN_IF_ERROR(store_.BeginRun(run));
  outcome_.run_id = run.id;
  for (auto& db : planned) {
    PGC_RETURN_IF_ERROR(store_.PutDatabase(db));
    stored_.push_back(std::move(db));
  }
  return Status::Ok();
}

// Roles first: owners and grants of every database need them.
Status Run::CopyRolesFirst(const SessionFactory& sessions) {
  Progress("", "roles", "creating the source's roles missing on the target");
  Result<std::unique_ptr<Connection>> src = sessions.SourceServer();
  if (!src.ok()) return src.status();
  Result<std::unique_ptr<Connection>> dst = sessions.TargetServer();
  if (!dst.ok()) return dst.status();
  Result<RoleCopyReport> roles = CopyRoles(**src, **dst, options_.role_options, Deadline::Never());
  if (!roles.ok()) return roles.status().WithContext("copying roles");
  int created = 0;
  for (const auto& r : roles->roles) {
    if (r.action == RoleOutcome::Action::kCreated) ++created;
  }
  Progress("", "roles", fmt::format("{} role(s) created", created));
  outcome_.roles = std::move(*roles);
  return Status::Ok();
}

void Run::RunDatabase(const RunContext& context, size_t i, DatabaseRecord& record) {
  DatabaseOutcome& db = outcome_.databases[i];
  if (Cancelled(options_.check.cancel)) {
    db.state = DatabaseState::kCancelled;
    record.Update([](StoredDatabase& d) { d.state = DatabaseState::kCancelled; });
    return;
  }
  DatabaseMigration migration(context, record, db, NamesFor(outcome_.run_id, static_cast<int>(i)));
  const auto started = Clock::now();
  Status status = migration.Run();
  if (status.ok()) {
    const bool done = db.method != Method::kReplication;
    db.state = done ? DatabaseState::kDone : DatabaseState::kSyncing;
    Progress(
        db.name, Name(db.state),
        fmt::format("{} in {:.1f} s", done ? "moved and verified" : "copied, verified, replicating",
                    std::chrono::duration<double>(Clock::now() - started).count()));
  } else {
    // A failed setup leaves no replication object behind.
    if (db.method == Method::kReplication) {
      Status removed = migration.RemoveReplication();
      if (!removed.ok()) Progress(db.name, "cleanup", removed.ToString());
    }
    const bool cancelled =
        status.code() == StatusCode::kCancelled || Cancelled(options_.check.cancel);
    db.state = cancelled ? DatabaseState::kCancelled : DatabaseState::kFailed;
    db.error = status.ToString();
    db.hint = status.hint();
    if (given_.on_progress) {
      ProgressEvent event{db.name, Name(db.state), db.error, 0, 0};
      event.level = ProgressEvent::Level::kError;
      event.hint = db.hint;
      given_.on_progress(event);
    }
  }
  record.Update([&](StoredDatabase& d) {
    d.state = db.state;
    d.error = db.error;
    d.hint = db.hint;
  });
}

// Databases: the largest first, up to `jobs` at a time, every one's work in
// the one shared pool, with at most `jobs` sets of worker sessions open.
void Run::RunDatabases(const SessionFactory& sessions, SchemaDumpHandover* schema_dumps) {
  for (const auto& db : stored_) {
    DatabaseOutcome o;
    o.name = db.name;
    o.target_name = db.target_name;
    o.method = db.method;
    o.consistent = db.consistent;
    // Done, or replicating (the cutover finishes it): nothing to redo.
    o.done_earlier = FinishedForMigrate(db.state);
    o.state = o.done_earlier ? db.state : DatabaseState::kPending;
    outcome_.databases.push_back(std::move(o));
  }
  std::vector<size_t> order;
  for (size_t i = 0; i < stored_.size(); ++i) {
    if (!outcome_.databases[i].done_earlier) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return stored_[a].bytes_total > stored_[b].bytes_total;
  });
  std::vector<std::unique_ptr<DatabaseRecord>> records;
  records.reserve(stored_.size());
  for (const auto& db : stored_) records.push_back(std::make_unique<DatabaseRecord>(store_, db));

  WorkPool pool(options_.check.jobs);
  SessionPool session_pool(options_.check.jobs);
  const RunContext context{&options_, &sessions,     &outcome_.check,
                           &pool,     &session_pool, schema_dumps};
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
      RunDatabase(context, i, *records[i]);
    }
  };
  const int pipelines =
      std::max(1, std::min<int>(options_.check.jobs, static_cast<int>(order.size())));
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(pipelines));
  for (int p = 0; p < pipelines; ++p) threads.emplace_back(pipeline);
  for (auto& t : threads) t.join();
}

RunState Run::FinalState() const {
  std::vector<DatabaseState> states;
  states.reserve(outcome_.databases.size());
  for (const auto& db : outcome_.databases) states.push_back(db.state);
  return EndState(states);
}

Result<MigrationOutcome> Run::Execute() {
  Result<std::optional<StoredRun>> earlier = store_.Run();
  if (!earlier.ok()) return earlier.status();
  if (options_.resume) {
    if (!*earlier) {
      return Status(
          StatusCode::kInvalidArgument, "there is no migration to resume in " + given_.work_dir,
          "start one with pgcourier migrate --source ... --target ... --dir " + given_.work_dir);
    }
    PGC_RETURN_IF_ERROR(Resume(**earlier));
  } else if (*earlier) {
    const StoredRun& run = **earlier;
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("{} holds the migration {} ({} -> {}, {})", given_.work_dir, run.id,
                              run.source, run.target, Name(run.state)),
                  run.state == RunState::kDone
                      ? "it is finished; use another --dir for a new migration"
                      : "continue it with pgcourier migrate --resume --dir " + given_.work_dir +
                            ", or use another --dir");
  }

  CheckOptions check = options_.check;
  check.filter = options_.filter;  // also a resumed run's, as recorded
  check.preserve_owners = options_.policy.preserve_owners;
  check.preserve_acl = options_.policy.preserve_acl;
  check.roles = options_.roles;
  check.lock_timeout = options_.lock_timeout;
  // The check's trial restore dumps the schema of the databases copied
  // first at a snapshot exported for their copy, and hands both over, so
  // pg_dump runs once for the trial and pre-data.
  SchemaDumpHandover schema_dumps;
  {
    Result<ConnInfo> source = ConnInfo::Parse(check.source);
    Result<ConnInfo> target = ConnInfo::Parse(check.target);
    if (source.ok() && target.ok() && !options_.resume && check.method != Method::kReplication) {
      auto factory =
          std::make_shared<SessionFactory>(*source, *target, options_.check.connect_timeout,
                                           options_.check.cancel, options_.lock_timeout);
      schema_dumps.directory = given_.work_dir;
      schema_dumps.max_databases = std::max(1, options_.check.jobs);
      schema_dumps.export_snapshot =
          [factory](const std::string& database) -> Result<SnapshotHolder> {
        Result<std::unique_ptr<Connection>> holder = factory->Source(database);
        if (!holder.ok()) return holder.status();
        Result<std::unique_ptr<ExportedSnapshot>> exported =
            ExportedSnapshot::Export(std::move(*holder), Deadline::Never());
        if (!exported.ok()) return exported.status();
        std::string id = (*exported)->id();
        return SnapshotHolder{(*exported)->Release(), std::move(id)};
      };
      check.schema_dumps = &schema_dumps;
    }
  }
  Progress("", "check", "running pre-flight checks");
  Result<CheckReport> report = RunChecks(check);
  if (!report.ok()) return report.status();
  ReportFindings(*report);
  outcome_.check = std::move(*report);
  if (outcome_.check.blocked()) return std::move(outcome_);  // nothing touched
  outcome_.checks_passed = true;

  Result<ConnInfo> source = ConnInfo::Parse(check.source);
  if (!source.ok()) return source.status();
  Result<ConnInfo> target = ConnInfo::Parse(check.target);
  if (!target.ok()) return target.status();
  if (options_.resume) {
    PGC_RETURN_IF_ERROR(store_.ResumeRun(static_cast<int64_t>(getpid())));
  } else {
    PGC_RETURN_IF_ERROR(Begin(*source, *target));
  }
  const SessionFactory sessions(*source, *target, options_.check.connect_timeout,
                                options_.check.cancel, options_.lock_timeout,
                                LoadMaintenanceWorkMem(*source, *target, options_));
  if (options_.roles) {
    Status roles = CopyRolesFirst(sessions);
    if (!roles.ok()) {
      (void)store_.FinishRun(RunState::kFailed, roles.ToString());
      return roles;
    }
  }
  RunDatabases(sessions, &schema_dumps);
  (void)store_.FinishRun(FinalState(), "");
  return std::move(outcome_);
}

}  // namespace

bool MigrationOutcome::ok() const {
  if (!checks_passed || databases.empty()) return false;
  for (const auto& db : databases) {
    if (db.state != DatabaseState::kDone && db.state != DatabaseState::kSyncing) return false;
  }
  return true;
}

Result<MigrationOutcome> Migrate(const MigrateOptions& given) {
  // The work directory: one migration each, locked while it runs.
  Result<std::unique_ptr<StateStore>> opened = StateStore::OpenForRun(given.work_dir);
  if (!opened.ok()) return opened.status();
  Run run(given, **opened);
  return run.Execute();
}

}  // namespace pgcourier

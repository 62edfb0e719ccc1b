#include "migrate/data_phase.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <optional>
#include <set>

#include "copy/progress_marks.h"
#include "copy/snapshot.h"
#include "copy/table_copy.h"
#include "migrate/lock_waits.h"
#include "util/size.h"

namespace pgcourier {
namespace {

using Clock = std::chrono::steady_clock;

// The largest row (COPY text) a comparison reads back from the target.
constexpr int64_t kLargestRowReadBack = 8 * 1024 * 1024;

// A table up to this size, copied whole, is one task: its rows, its indexes
// and its comparison on one pair of sessions, with three statements to the
// target. Where round trips cost more than the work, that is most of its
// time; a larger table's indexes are built in parallel instead.
constexpr int64_t kSmallTableBytes = 16 * 1024 * 1024;

// Small tables are copied several to a transaction (LoadTables): up to this
// many tables and bytes per batch, and about four batches per job, so the
// jobs still share the work evenly.
constexpr size_t kBatchTables = 50;
constexpr int64_t kBatchBytes = 64 * 1024 * 1024;
constexpr size_t kBatchesPerJob = 4;

class DataPhase {
 public:
  explicit DataPhase(const DataPhaseSetup& setup)
      : setup_(setup),
        options_(*setup.options),
        tables_(setup.catalog->tables),
        lock_round_(options_.lock_timeout.count() > 0 ? std::min(kLockRound, options_.lock_timeout)
                                                      : kLockRound),
        plans_(*setup.plans) {
    for (const auto& t : tables_) indexes_total_ += t.indexes.size();
    results_.resize(tables_.size());
    relayed_.resize(tables_.size());
    small_.resize(tables_.size());
    for (size_t t = 0; t < tables_.size(); ++t) {
      const TablePlan& plan = plans_[t];
      small_[t] = !plan.earlier && plan.slices.empty() && plan.indexes_done.empty() &&
                  !tables_[t].through_root() && tables_[t].bytes <= kSmallTableBytes;
      results_[t].table = tables_[t].Display();
      results_[t].binary = tables_[t].binary;
      results_[t].text_reason = tables_[t].text_reason;
      if (tables_[t].through_root()) {
        results_[t].note = LoadedThroughRootNote(tables_[t]);
      }
    }
  }

  Result<DataPhaseResult> Run();

 private:
  // kBatch: several small tables' copies, index builds and comparisons in
  // one task (batches_[part]; `table` is its first).
  enum class Kind { kCopy, kIndex, kCompare, kBatch };
  struct Task {
    Kind kind = Kind::kCopy;
    size_t table = 0;
    int part = -1;  // kCopy: the slice (-1: whole); kIndex: the index; kBatch: the batch
    // A small table's copy after its batch failed: the batch's COMMIT may
    // have happened.
    bool after_batch = false;
    // What the batch already waited for a lock on this table, counted
    // towards --lock-timeout.
    std::chrono::steady_clock::duration lock_waited{0};
  };
  // Progress to report once mu_ is released.
  struct Report {
    std::string message;
    int64_t done = 0;
    int64_t total = 0;
    std::string object = {};
  };

  std::vector<Task> FirstTasks();
  // Groups the small tables still to copy into batches_.
  void FormBatches(const std::vector<size_t>& small_tables);
  void Submit(const Task& task);
  void RunTask(const Task& task);
  // A kBatch task; after a failure its tables are copied one by one.
  void RunBatch(const Task& task);
  // The end of RunTask and RunBatch, with what Finished gave.
  void Conclude(const std::vector<Task>& next, const std::vector<Report>& reports, bool counted,
                bool start_post_data);
  // On failure, `failed_member` is the table whose copy failed (else the
  // first).
  Status CopyBatch(const std::vector<size_t>& members, WorkerSessions& s,
                   std::vector<TableCopyStats>& stats, size_t& failed_member);
  Status RunAttempts(const Task& task, WorkerSessions& s, TableCopyStats& stats, int& attempts);
  Status Attempt(const Task& task, WorkerSessions& s, int number, TableCopyStats& stats,
                 Clock::duration& lock_waited);
  Status OpenSessions(const Task& task, WorkerSessions& s);
  Status Copy(const Task& task, WorkerSessions& s, int number, TableCopyStats& stats);
  Status CopySmall(const Task& task, WorkerSessions& s, int number, TableCopyStats& stats);
  Status CompareSmall(const TableToCopy& table, Connection& target, const TableCopyStats& stats,
                      std::optional<Transaction> txn, const std::string& before_commit = "");
  // A copy task of a small table that built its indexes too.
  bool IsSmall(const Task& task) const { return task.kind == Kind::kCopy && small_[task.table]; }
  Status Compare(const Task& task, WorkerSessions& s);
  // Keeps `compared`; then ANALYZE of the table, unless `analyzed`.
  Status Compared(const TableToCopy& table, const TableVerification& compared, Connection& target,
                  bool analyzed = false);
  // With `in_transaction`, the task's transaction is still open (an index
  // build's ALTER TABLE rolled back to its savepoint) and stays so.
  Status LockWait(const Task& task, WorkerSessions& s, Clock::duration round,
                  Clock::duration& waited, bool in_transaction = false);
  void RecordStep(const Task& task, StepState state, const TableCopyStats& stats, int attempts,
                  const std::string& error);
  // What follows a finished task; with mu_ held. Tasks it unblocks go to
  // `next`, progress to `reports`. True when the database's counters changed.
  bool Finished(const Task& task, const TableCopyStats& stats, int attempts,
                std::vector<Task>& next, std::vector<Report>& reports, bool& start_post_data);
  void RecordCounters();
  // The index builds and the comparison a small table's copy task did.
  void RecordSmallTableSteps(const Task& task, int attempts);
  void StartPostData();
  std::string Doing(const Task& task) const;
  void Progress(const std::string& message, int64_t done = 0, int64_t total = 0,
                const std::string& object = "") const {
    if (setup_.progress) {
      ProgressEvent event{"", "data", message, done, total};
      event.object = object;
      setup_.progress(std::move(event));
    }
  }
  // A retry or a wait the user may want to act on, about one table.
  void Warn(const std::string& message, const std::string& object) const {
    if (setup_.progress) {
      ProgressEvent event{"", "data", message, 0, 0};
      event.object = object;
      event.level = ProgressEvent::Level::kWarning;
      setup_.progress(std::move(event));
    }
  }

  // Set at construction, read by every worker.
  const DataPhaseSetup& setup_;
  const MigrateOptions& options_;
  const std::vector<TableToCopy>& tables_;
  const std::chrono::milliseconds lock_round_;
  size_t indexes_total_ = 0;
  // Per table: copied, indexed and compared by one task (kSmallTableBytes).
  std::vector<bool> small_;
  // The small tables copied together, by kBatch tasks.
  std::vector<std::vector<size_t>> batches_;
  TaskGroup group_;

  // Guarded by mu_: the plans' pending counts, every counter and result, the
  // first failure and post-data's status. Never held while a task runs, a
  // progress line is reported, or the store is written.
  std::mutex mu_;
  std::vector<TablePlan>& plans_;
  std::vector<TableOutcome> results_;
  std::optional<Status> failure_;
  std::optional<Status> post_data_status_;
  int64_t bytes_done_ = 0;
  int64_t rows_done_ = 0;
  size_t tables_done_ = 0;
  size_t indexes_done_ = 0;
  size_t structure_pending_ = 0;  // copies and index builds post-data waits for

  // Guarded by mu_: per table, its rows as its copies relayed them from the
  // source (every slice's added up), compared with the target's.
  struct Relayed {
    RowSetHash hash;
    std::string encoding;
    bool known = true;
    int64_t largest_row = 0;
  };
  std::vector<Relayed> relayed_;
  // Guarded by mu_: per small table, whether its task compared it too.
  std::set<size_t> compared_by_copy_;

  // Guarded by compared_mu_.
  std::mutex compared_mu_;
  std::vector<TableVerification> compared_;
};

std::string DataPhase::Doing(const Task& task) const {
  const TableToCopy& table = tables_[task.table];
  switch (task.kind) {
    case Kind::kCopy:
      return "copying " + table.Display();
    case Kind::kIndex:
      return "building the indexes of " + table.Display();
    case Kind::kCompare:
      break;
    case Kind::kBatch:
      return fmt::format("copying {} and {} other small tables", table.Display(),
                         batches_[static_cast<size_t>(task.part)].size() - 1);
  }
  return "verifying " + table.Display();
}

void DataPhase::RecordStep(const Task& task, StepState state, const TableCopyStats& stats,
                           int attempts, const std::string& error) {
  StoredStep step;
  const TableToCopy& table = tables_[task.table];
  switch (task.kind) {
    case Kind::kCopy:
      step.kind = StepKind::kCopy;
      step.object = table.Display();
      if (task.part >= 0) {
        step.part = plans_[task.table].slices[static_cast<size_t>(task.part)].Display();
      }
      break;
    case Kind::kIndex:
      step.kind = StepKind::kIndex;
      step.object = table.indexes[static_cast<size_t>(task.part)].schema + "." +
                    table.indexes[static_cast<size_t>(task.part)].name;
      break;
    case Kind::kCompare:
    case Kind::kBatch:  // recorded per table, as kCopy steps
      step.kind = task.kind == Kind::kCompare ? StepKind::kCompare : StepKind::kCopy;
      step.object = table.Display();
      break;
  }
  step.state = state;
  step.rows = stats.rows;
  step.bytes = stats.bytes;
  step.seconds = stats.seconds;
  step.attempts = attempts;
  step.error = error;
  setup_.record->Step(step);
}

// After a round of `task` that ended waiting for a lock: who holds it. Adds
// the round to `waited` when it was another session than pgcourier's own,
// and says so; an error once `waited` reaches the limit.
Status DataPhase::LockWait(const Task& task, WorkerSessions& s, Clock::duration round,
                           Clock::duration& waited, bool in_transaction) {
  const TableToCopy& table = tables_[task.table];
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
    const bool alters = !index.constraint_type.empty() || index.clustered || index.replica_identity;
    target_mode = alters ? "AccessExclusiveLock" : "ShareLock";
  } else if (s.checksums) {
    // The comparison read the table on the source too (TableChecksums),
    // through sessions in a transaction: the source is asked on a new one.
    source_mode = "AccessShareLock";
  }
  std::unique_ptr<Connection> lookup;
  if (!s.source && !source_mode.empty()) {
    Result<std::unique_ptr<Connection>> c = setup_.sessions->Source(setup_.source_database);
    if (c.ok()) lookup = std::move(*c);
  }
  std::vector<LockHolder> holders;
  std::string named;
  for (const bool source : {true, false}) {
    Connection* conn = source ? (s.source ? s.source.get() : lookup.get()) : s.target.get();
    const std::string& mode = source ? source_mode : target_mode;
    if (conn == nullptr || conn->IsBad() || mode.empty()) continue;
    if (!in_transaction) (void)conn->Run("ROLLBACK", Deadline::After(std::chrono::seconds(10)));
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
  Warn(fmt::format("{}: waiting for a lock held {} ({} s, up to {} s)", what, named, waited_s,
                   limit_s),
       tables_[task.table].Display());
  return Status::Ok();
}

// A session that cannot be opened fails the task: its error names it. Its
// lock waits are rounds (kLockRound), set as it connects.
Status DataPhase::OpenSessions(const Task& task, WorkerSessions& s) {
  const std::string doing = Doing(task);
  if (task.kind == Kind::kCopy && !s.source) {
    Result<std::unique_ptr<Connection>> c =
        setup_.sessions->Source(setup_.source_database, lock_round_);
    if (!c.ok()) return c.status().WithContext(doing);
    s.source = std::move(*c);
    PGC_RETURN_IF_ERROR(ExportedSnapshot::BeginAt(*s.source, setup_.snapshot, Deadline::Never())
                            .WithContext(doing));
  }
  if (!s.target) {
    Result<std::unique_ptr<Connection>> c = setup_.sessions->Target(
        setup_.target_database, SessionFactory::TargetUse::kLoad, lock_round_);
    if (!c.ok()) return c.status().WithContext(doing);
    s.target = std::move(*c);
  }
  return Status::Ok();
}

// The target's rows of `table`, read once and hashed, against the rows its
// copies relayed from the source. A table the target refuses to read is a
// difference with its error, as in verify/verifier.h.
// With `counts_only` (migrate --verify counts), only the target's count(*)
// is read.
// `first_statements` go in the same round trip, before the read.
// A comparison's source side: the rows its copies relayed.
TableVerification RelayedSide(const TableToCopy& table, const RowSetHash& relayed,
                              bool counts_only) {
  TableVerification v;
  v.schema = table.schema;
  v.name = table.name;
  v.partition_tree = table.through_root();
  v.source_rows = relayed.rows();
  v.counts_only = counts_only;
  if (!counts_only) v.source_checksum = relayed.Digest();
  return v;
}

Result<TableVerification> CompareWithTarget(Connection& target, const TableToCopy& table,
                                            const RowSetHash& relayed, const std::string& encoding,
                                            bool counts_only,
                                            const std::string& first_statements = "") {
  TableVerification v = RelayedSide(table, relayed, counts_only);
  auto refused = [&v](const Status& status) -> Result<TableVerification> {
    // A lock not had in time (the ANALYZE sent first, the read) is a round
    // of waiting for the caller, not a difference.
    if (status.code() != StatusCode::kServerError || IsLockTimeout(status)) return status;
    v.error = "target: " + status.ToString();
    return v;
  };
  if (counts_only) {
    Result<QueryResult> counted = target.Exec(
        (first_statements.empty() ? "" : first_statements + "; ") + "SELECT count(*) FROM " +
        std::string(table.through_root() ? "" : "ONLY ") + table.QualifiedName());
    if (!counted.ok()) return refused(counted.status());
    v.target_rows = counted->GetInt(0, 0);
    return v;
  }
  Result<RowSetHash> stored =
      HashTargetRows(target, table, encoding, Deadline::Never(), first_statements);
  if (!stored.ok()) return refused(stored.status());
  v.target_rows = stored->rows();
  v.target_checksum = stored->Digest();
  return v;
}

Status DataPhase::Compare(const Task& task, WorkerSessions& s) {
  const TableToCopy& table = tables_[task.table];
  std::optional<Relayed> relayed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Generated columns are not in the copy's rows; the checksums compare
    // them too. Rows of many megabytes are checksummed on the servers too:
    // read back, each would be held whole in memory.
    const Relayed& r = relayed_[task.table];
    if (!plans_[task.table].earlier && r.known && !table.generated_columns &&
        r.largest_row <= kLargestRowReadBack) {
      relayed = relayed_[task.table];
    }
  }
  if (relayed) {
    Result<TableVerification> compared = CompareWithTarget(
        *s.target, table, relayed->hash, relayed->encoding, options_.verify_counts_only);
    if (!compared.ok()) return compared.status().WithContext("verifying " + table.Display());
    return Compared(table, *compared, *s.target);
  }
  // Copied by an earlier run, with generated columns or rows too large to
  // read back: both sides are checksummed on their servers.
  if (!s.checksums) {
    Result<std::unique_ptr<TableChecksums>> opened = TableChecksums::Open(
        setup_.sessions->source().WithDatabase(setup_.source_database), setup_.snapshot,
        setup_.sessions->target().WithDatabase(setup_.target_database),
        setup_.sessions->connect_timeout(), lock_round_, setup_.sessions->cancel());
    if (!opened.ok()) return opened.status();
    s.checksums = std::move(*opened);
  }
  Result<TableVerification> compared =
      s.checksums->Compare(table.schema, table.name, table.through_root());
  if (!compared.ok()) return compared.status().WithContext("verifying " + table.Display());
  return Compared(table, *compared, *s.target);
}

Status DataPhase::Compared(const TableToCopy& table, const TableVerification& compared,
                           Connection& target, bool analyzed) {
  {
    std::lock_guard<std::mutex> lock(compared_mu_);
    compared_.push_back(compared);
  }
  if (analyzed) return Status::Ok();
  // Statistics for the planner, while other work goes on.
  return target.Run("ANALYZE " + table.QualifiedName()).WithContext("analyzing " + table.Display());
}

// Whether an earlier try of `step` committed (its COMMIT may have landed
// before the connection was lost); if so, `stats` as its mark recorded them.
Result<bool> CommittedEarlier(WorkerSessions& s, const std::string& step, TableCopyStats& stats) {
  ProgressMark mark;
  Result<bool> done = HasProgressMark(*s.target, step, &mark);
  if (!done.ok() || !*done) return done;
  stats.rows = mark.rows;
  stats.bytes = mark.bytes;
  stats.encoding = s.source->client_encoding();
  std::optional<RowSetHash> hash = RowSetHash::FromDigest(mark.rows, mark.rows_hash);
  stats.hashed = hash.has_value();
  if (hash) stats.hash = *hash;
  return true;
}

Status DataPhase::Copy(const Task& task, WorkerSessions& s, int number, TableCopyStats& stats) {
  const TableToCopy& table = tables_[task.table];
  const TablePlan& plan = plans_[task.table];  // slices are not changed during the phase
  std::optional<Slice> slice;
  if (task.part >= 0) slice = plan.slices[static_cast<size_t>(task.part)];
  const std::string step = CopyStepName(table, slice);
  if (number > 1) {
    // The last attempt's COMMIT may have happened before its connection was
    // lost: its mark says so.
    Result<bool> done = CommittedEarlier(s, step, stats);
    if (!done.ok()) return done.status();
    if (*done) {
      return Status::Ok();
    }
  }
  // The running step carries the rows and bytes so far, for status and
  // the page's per-table bars.
  auto so_far = [&](int64_t rows, int64_t bytes) {
    TableCopyStats running;
    running.rows = rows;
    running.bytes = bytes;
    RecordStep(task, StepState::kRunning, running, number, "");
  };
  Result<TableCopyStats> copied = CopyTable(*s.source, *s.target, table, slice, plan.parts(), step,
                                            Deadline::Never(), {}, so_far);
  if (!copied.ok()) return copied.status();
  stats = *copied;
  return Status::Ok();
}

// A small table in one task: BEGIN, TRUNCATE and COPY in one round trip;
// the copy's mark, every index build with its constraint and mark in a
// second, in the same transaction; the COMMIT with the ANALYZE and the
// comparison's read-back in a third. The COMMIT is sent only once the builds
// succeeded, so that a killed run's transaction never commits; committed, the
// rows and every index are marked, so a retry or a resume finds it all done
// or nothing.
Status DataPhase::CopySmall(const Task& task, WorkerSessions& s, int number,
                            TableCopyStats& stats) {
  const TableToCopy& table = tables_[task.table];
  const auto started = Clock::now();
  const std::string step = CopyStepName(table, std::nullopt);
  if (number > 1 || task.after_batch) {
    // The last attempt's (or the batch's) COMMIT may have happened; then
    // only the comparison is left.
    Result<bool> done = CommittedEarlier(s, step, stats);
    if (!done.ok()) return done.status();
    if (*done) {
      return CompareSmall(table, *s.target, stats, std::nullopt);
    }
  }
  Result<LoadedCopy> loaded = LoadTable(*s.source, *s.target, table, std::nullopt, 1, step);
  if (!loaded.ok()) return loaded.status();
  stats = loaded->stats;
  // Without an index, the mark goes with the COMMIT.
  std::string before_commit = loaded->last_statements;
  if (!table.indexes.empty()) {
    for (const auto& index : table.indexes) before_commit += "; " + IndexBuildSql(table, index);
    Status built = s.target->Run(before_commit);
    if (!built.ok()) return built.WithContext("building the indexes of " + table.Display());
    before_commit.clear();
  }
  Status compared =
      CompareSmall(table, *s.target, stats, std::move(loaded->transaction), before_commit);
  stats.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  return compared;
}

// The comparison of a small table right after its copy, in the round trip
// of the copy's COMMIT when `txn` is still open; the ANALYZE goes with it.
// A table whose rows cannot be read back (generated columns, rows too
// large) gets its comparison task instead.
Status DataPhase::CompareSmall(const TableToCopy& table, Connection& target,
                               const TableCopyStats& stats, std::optional<Transaction> txn,
                               const std::string& before_commit) {
  std::string first;
  if (txn) first = (before_commit.empty() ? "" : before_commit + "; ") + txn->HandOverCommit();
  // A statement before the COMMIT that fails leaves the transaction open:
  // it is rolled back here, since no Transaction owns it any more.
  auto failed = [&](const Status& status, const std::string& doing) {
    if (!target.IsBad() && !target.IdleOutsideTransaction()) {
      (void)target.RunIgnoringCancel("ROLLBACK", Deadline::After(Transaction::kRollbackGrace));
    }
    return status.WithContext(doing + " " + table.Display());
  };
  if (!stats.hashed || table.generated_columns || stats.largest_row > kLargestRowReadBack) {
    if (first.empty()) return Status::Ok();
    Status committed = target.Run(first);
    return committed.ok() ? committed : failed(committed, "copying");
  }
  first += (first.empty() ? "" : "; ") + std::string("ANALYZE ") + table.QualifiedName();
  Result<TableVerification> compared = CompareWithTarget(target, table, stats.hash, stats.encoding,
                                                         options_.verify_counts_only, first);
  if (!compared.ok()) return failed(compared.status(), "verifying");
  PGC_RETURN_IF_ERROR(Compared(table, *compared, target, /*analyzed=*/true));
  std::lock_guard<std::mutex> lock(mu_);
  compared_by_copy_.insert(static_cast<size_t>(&table - tables_.data()));
  return Status::Ok();
}

// One attempt of a task on `s`; a copy's rows and bytes in `stats`. `number`
// counts the tries, lock-wait rounds included: above 1, an earlier try may
// have committed.
Status DataPhase::Attempt(const Task& task, WorkerSessions& s, int number, TableCopyStats& stats,
                          Clock::duration& lock_waited) {
  PGC_RETURN_IF_ERROR(OpenSessions(task, s));
  switch (task.kind) {
    case Kind::kCopy:
      if (small_[task.table]) return CopySmall(task, s, number, stats);
      return Copy(task, s, number, stats);
    case Kind::kCompare:
      return Compare(task, s);
    case Kind::kBatch:  // RunBatch
    case Kind::kIndex:
      break;
  }
  const TableToCopy& table = tables_[task.table];
  const IndexToBuild& index = table.indexes[static_cast<size_t>(task.part)];
  if (number > 1) {
    Result<bool> done = HasProgressMark(*s.target, IndexStepName(index), nullptr);
    if (!done.ok()) return done.status();
    if (*done) return Status::Ok();
  }
  // The rounds of its ALTER TABLE waiting for the table's other builds (or
  // anyone) to commit, with the index built and kept.
  return BuildIndex(*s.target, table, index, [&](const Status&, Clock::duration round) {
    return LockWait(task, s, round, lock_waited, /*in_transaction=*/true);
  });
}

Status DataPhase::RunAttempts(const Task& task, WorkerSessions& s, TableCopyStats& stats,
                              int& attempts) {
  Clock::duration lock_waited = task.lock_waited;
  // Rounds of lock waits included: a small table's round may end on the
  // ANALYZE after its COMMIT, so any earlier try may have committed.
  int tries = 0;
  for (attempts = 1;; ++attempts) {
    stats = TableCopyStats();
    const auto tried = Clock::now();
    Status status = Attempt(task, s, ++tries, stats, lock_waited);
    if (status.ok()) return status;
    if (options_.check.cancel != nullptr && options_.check.cancel->cancelled()) {
      return Status(StatusCode::kCancelled, "cancelled during " + tables_[task.table].Display());
    }
    if (IsLockTimeout(status)) {
      // A round of waiting for a lock, not a failed attempt.
      PGC_RETURN_IF_ERROR(LockWait(task, s, Clock::now() - tried, lock_waited));
      --attempts;
      s = WorkerSessions();
      continue;
    }
    if (!status.retryable() || attempts >= options_.table_attempts) return status;
    Warn(fmt::format("{}; trying again (attempt {} of {})", status.message(), attempts + 1,
                     options_.table_attempts),
         tables_[task.table].Display());
    s = WorkerSessions();
  }
}

void DataPhase::RunTask(const Task& task) {
  if (task.kind == Kind::kBatch) return RunBatch(task);
  bool skip = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    skip = failure_.has_value();
  }
  Status status = Status::Ok();
  TableCopyStats stats;
  int attempts = 0;
  if (!skip) {
    std::unique_ptr<WorkerSessions> s = setup_.session_pool->Take(setup_.source_database);
    RecordStep(task, StepState::kRunning, stats, 1, "");
    status = RunAttempts(task, *s, stats, attempts);
    RecordStep(task, status.ok() ? StepState::kDone : StepState::kFailed, stats, attempts,
               status.ok() ? "" : status.ToString());
    if (status.ok() && IsSmall(task)) RecordSmallTableSteps(task, attempts);
    if (status.ok()) {
      setup_.session_pool->GiveBack(setup_.source_database, std::move(s));
    } else {
      setup_.session_pool->Discard(std::move(s));
    }
  }
  std::vector<Task> next;
  std::vector<Report> reports;
  bool start_post_data = false;
  bool counted = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!status.ok() && !failure_) failure_ = status;
    if (status.ok() && !skip) {
      counted = Finished(task, stats, attempts, next, reports, start_post_data);
    }
  }
  Conclude(next, reports, counted, start_post_data);
}

// What follows a task, once mu_ is released: its progress lines, the
// counters, the tasks it unblocked, post-data; then the task is done.
void DataPhase::Conclude(const std::vector<Task>& next, const std::vector<Report>& reports,
                         bool counted, bool start_post_data) {
  for (const auto& r : reports) Progress(r.message, r.done, r.total, r.object);
  if (counted) RecordCounters();
  for (const auto& t : next) Submit(t);
  if (start_post_data) StartPostData();
  group_.Done();
}

void DataPhase::FormBatches(const std::vector<size_t>& small_tables) {
  const size_t jobs = static_cast<size_t>(std::max(1, options_.check.jobs));
  const size_t per_batch = std::clamp<size_t>(
      (small_tables.size() + jobs * kBatchesPerJob - 1) / (jobs * kBatchesPerJob), 1, kBatchTables);
  int64_t bytes = 0;
  for (size_t t : small_tables) {
    if (batches_.empty() || batches_.back().size() >= per_batch ||
        bytes + tables_[t].bytes > kBatchBytes) {
      batches_.emplace_back();
      bytes = 0;
    }
    batches_.back().push_back(t);
    bytes += tables_[t].bytes;
  }
}

namespace {

std::string BatchDisplay(const std::vector<const TableToCopy*>& tables) {
  if (tables.size() == 1) return tables.front()->Display();
  return fmt::format("{} and {} other tables", tables.front()->Display(), tables.size() - 1);
}

// CompareWithTarget for several tables in one round trip (after
// `first_statements`). A table the target refuses to read is an error here,
// not a difference: the caller compares the tables one by one instead.
Result<std::vector<TableVerification>> CompareAllWithTarget(
    Connection& target, const std::vector<const TableToCopy*>& tables,
    const std::vector<const TableCopyStats*>& relayed, bool counts_only,
    const std::string& first_statements) {
  std::vector<TableVerification> out;
  out.reserve(tables.size());
  for (size_t i = 0; i < tables.size(); ++i) {
    out.push_back(RelayedSide(*tables[i], relayed[i]->hash, counts_only));
  }
  if (counts_only) {
    std::string sql = first_statements + "; SELECT ";
    for (size_t i = 0; i < tables.size(); ++i) {
      sql += fmt::format("{}(SELECT count(*) FROM ONLY {})", i == 0 ? "" : ", ",
                         tables[i]->QualifiedName());
    }
    Result<QueryResult> counted = target.Exec(sql);
    if (!counted.ok()) return counted.status();
    for (size_t i = 0; i < tables.size(); ++i) {
      out[i].target_rows = counted->GetInt(0, static_cast<int>(i));
    }
    return out;
  }
  Result<std::vector<RowSetHash>> stored = HashTargetRows(target, tables, relayed.front()->encoding,
                                                          Deadline::Never(), first_statements);
  if (!stored.ok()) return stored.status();
  for (size_t i = 0; i < tables.size(); ++i) {
    out[i].target_rows = (*stored)[i].rows();
    out[i].target_checksum = (*stored)[i].Digest();
  }
  return out;
}

}  // namespace

// The small tables of a batch: every copy in one transaction (LoadTables),
// every index build with them in one more round trip, and the COMMIT with
// every mark, one ANALYZE of them all and their read-back in a third. As
// for one small table, the COMMIT is sent only once everything before it
// succeeded.
Status DataPhase::CopyBatch(const std::vector<size_t>& members, WorkerSessions& s,
                            std::vector<TableCopyStats>& stats, size_t& failed_member) {
  std::vector<const TableToCopy*> tables;
  tables.reserve(members.size());
  for (size_t t : members) tables.push_back(&tables_[t]);
  size_t failed_at = 0;
  failed_member = members.front();
  Result<LoadedBatch> loaded =
      LoadTables(*s.source, *s.target, tables, Deadline::Never(), &failed_at);
  if (!loaded.ok()) {
    failed_member = members[failed_at];
    return loaded.status();
  }
  stats = loaded->stats;
  std::string builds;
  for (const TableToCopy* table : tables) {
    for (const auto& index : table->indexes) {
      builds += (builds.empty() ? "" : "; ") + IndexBuildSql(*table, index);
    }
  }
  if (!builds.empty()) {
    Status built = s.target->Run(builds);
    if (!built.ok()) return built.WithContext("building the indexes of " + BatchDisplay(tables));
  }
  Connection& target = *s.target;
  std::string first = loaded->last_statements + "; " + loaded->transaction.HandOverCommit();
  // A statement before the COMMIT that fails leaves the transaction open:
  // it is rolled back here, since no Transaction owns it any more.
  auto failed = [&](const Status& status, const std::string& doing) {
    if (!target.IsBad() && !target.IdleOutsideTransaction()) {
      (void)target.RunIgnoringCancel("ROLLBACK", Deadline::After(Transaction::kRollbackGrace));
    }
    return status.WithContext(doing + " " + BatchDisplay(tables));
  };
  // Those whose rows cannot be read back (generated columns, rows too
  // large) get a comparison task of their own after the batch.
  std::vector<const TableToCopy*> readable;
  std::vector<const TableCopyStats*> relayed;
  std::vector<size_t> readable_members;
  std::string analyze;
  for (size_t i = 0; i < tables.size(); ++i) {
    if (!stats[i].hashed || tables[i]->generated_columns ||
        stats[i].largest_row > kLargestRowReadBack) {
      continue;
    }
    readable.push_back(tables[i]);
    relayed.push_back(&stats[i]);
    readable_members.push_back(members[i]);
    analyze += (analyze.empty() ? "ANALYZE " : ", ") + tables[i]->QualifiedName();
  }
  if (readable.empty()) {
    Status committed = target.Run(first);
    return committed.ok() ? committed : failed(committed, "copying");
  }
  Result<std::vector<TableVerification>> compared = CompareAllWithTarget(
      target, readable, relayed, options_.verify_counts_only, first + "; " + analyze);
  if (!compared.ok()) return failed(compared.status(), "verifying");
  for (size_t i = 0; i < readable.size(); ++i) {
    PGC_RETURN_IF_ERROR(Compared(*readable[i], (*compared)[i], target, /*analyzed=*/true));
    std::lock_guard<std::mutex> lock(mu_);
    compared_by_copy_.insert(readable_members[i]);
  }
  return Status::Ok();
}

void DataPhase::RunBatch(const Task& task) {
  const std::vector<size_t>& members = batches_[static_cast<size_t>(task.part)];
  bool skip = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    skip = failure_.has_value();
  }
  std::vector<Task> next;
  std::vector<Report> reports;
  bool start_post_data = false;
  bool counted = false;
  if (!skip) {
    std::unique_ptr<WorkerSessions> s = setup_.session_pool->Take(setup_.source_database);
    for (size_t t : members) RecordStep({Kind::kCopy, t, -1}, StepState::kRunning, {}, 1, "");
    const auto started = Clock::now();
    std::vector<TableCopyStats> stats;
    size_t failed = members.front();
    Status status = OpenSessions({Kind::kCopy, members.front(), -1}, *s);
    if (status.ok()) status = CopyBatch(members, *s, stats, failed);
    if (status.ok()) {
      setup_.session_pool->GiveBack(setup_.source_database, std::move(s));
      // The batch's time, shared evenly.
      const double seconds = std::chrono::duration<double>(Clock::now() - started).count() /
                             static_cast<double>(members.size());
      for (size_t i = 0; i < members.size(); ++i) {
        stats[i].seconds = seconds;
        RecordStep({Kind::kCopy, members[i], -1}, StepState::kDone, stats[i], 1, "");
        RecordSmallTableSteps({Kind::kCopy, members[i], -1}, 1);
      }
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = 0; i < members.size(); ++i) {
        counted =
            Finished({Kind::kCopy, members[i], -1}, stats[i], 1, next, reports, start_post_data) ||
            counted;
      }
    } else {
      // Whatever failed (a lock not had, a lost connection, a table the
      // target refuses), the tables go one by one, each with its own
      // retries, lock waits and error; the batch's COMMIT may have happened.
      // A round of waiting for a lock: who holds it is said now, as for a
      // table alone (or, past --lock-timeout, the database fails).
      Clock::duration waited{0};
      Status waiting = IsLockTimeout(status)
                           ? LockWait({Kind::kCopy, failed, -1}, *s, Clock::now() - started, waited)
                           : Status::Ok();
      setup_.session_pool->Discard(std::move(s));
      if (options_.check.cancel != nullptr && options_.check.cancel->cancelled()) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!failure_) failure_ = Status(StatusCode::kCancelled, "cancelled during " + Doing(task));
      } else if (!waiting.ok()) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!failure_) failure_ = waiting;
      } else {
        Warn(fmt::format("{}; copying them one by one", status.message()),
             tables_[task.table].Display());
        for (size_t t : members) {
          next.push_back({Kind::kCopy, t, -1, /*after_batch=*/true,
                          t == failed ? waited : Clock::duration{0}});
        }
      }
    }
  }
  Conclude(next, reports, counted, start_post_data);
}

void DataPhase::RecordSmallTableSteps(const Task& task, int attempts) {
  for (size_t i = 0; i < tables_[task.table].indexes.size(); ++i) {
    RecordStep({Kind::kIndex, task.table, static_cast<int>(i)}, StepState::kDone, {}, attempts, "");
  }
  bool compared = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    compared = compared_by_copy_.count(task.table) > 0;
  }
  if (compared) RecordStep({Kind::kCompare, task.table, -1}, StepState::kDone, {}, attempts, "");
}

void DataPhase::RecordCounters() {
  int64_t tables = 0, bytes = 0, rows = 0, indexes = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    tables = static_cast<int64_t>(tables_done_);
    bytes = bytes_done_;
    rows = rows_done_;
    indexes = static_cast<int64_t>(indexes_done_);
  }
  // Written outside mu_ by several workers: counters only grow, so a late
  // write never takes one back.
  setup_.record->Update([&](StoredDatabase& db) {
    db.tables_done = std::max(db.tables_done, tables);
    db.bytes_done = std::max(db.bytes_done, bytes);
    db.rows_done = std::max(db.rows_done, rows);
    db.indexes_done = std::max(db.indexes_done, indexes);
  });
}

bool DataPhase::Finished(const Task& task, const TableCopyStats& stats, int attempts,
                         std::vector<Task>& next, std::vector<Report>& reports,
                         bool& start_post_data) {
  const TableToCopy& table = tables_[task.table];
  if (task.kind == Kind::kCompare) return false;
  if (task.kind == Kind::kIndex) {
    ++indexes_done_;
    const IndexToBuild& index = table.indexes[static_cast<size_t>(task.part)];
    reports.push_back({fmt::format("index {}.{} built ({}/{} indexes)", index.schema, index.name,
                                   indexes_done_, indexes_total_),
                       0, 0, index.schema + "." + index.name});
  } else {
    TableOutcome& result = results_[task.table];
    result.rows += stats.rows;
    result.bytes += stats.bytes;
    result.seconds += stats.seconds;
    result.attempts = std::max(result.attempts, attempts);
    Relayed& relayed = relayed_[task.table];
    relayed.hash.Add(stats.hash);
    relayed.known = relayed.known && stats.hashed;
    relayed.encoding = stats.encoding;
    relayed.largest_row = std::max(relayed.largest_row, stats.largest_row);
    rows_done_ += stats.rows;
    if (--plans_[task.table].pending == 0) {
      bytes_done_ += table.bytes;
      ++tables_done_;
      reports.push_back({fmt::format("{}: {} rows, {} ({}/{} tables)", table.Display(), result.rows,
                                     FormatBytes(result.bytes), tables_done_, tables_.size()),
                         bytes_done_, setup_.catalog->total_bytes, table.Display()});
      if (IsSmall(task)) {
        // Built in the copy's transaction; compared too, unless its rows
        // could not be read back.
        for (const auto& index : table.indexes) {
          ++indexes_done_;
          --structure_pending_;
          reports.push_back({fmt::format("index {}.{} built ({}/{} indexes)", index.schema,
                                         index.name, indexes_done_, indexes_total_),
                             0, 0, index.schema + "." + index.name});
        }
        if (compared_by_copy_.count(task.table) == 0) {
          next.push_back({Kind::kCompare, task.table, -1});
        }
      } else {
        for (size_t i = 0; i < table.indexes.size(); ++i) {
          if (plans_[task.table].indexes_done.count(i) == 0) {
            next.push_back({Kind::kIndex, task.table, static_cast<int>(i)});
          }
        }
        next.push_back({Kind::kCompare, task.table, -1});
      }
    }
  }
  if (--structure_pending_ == 0) start_post_data = true;
  return true;
}

void DataPhase::Submit(const Task& task) {
  group_.Add();
  const WorkPool::Priority priority = task.kind == Kind::kIndex     ? WorkPool::kUrgent
                                      : task.kind == Kind::kCompare ? WorkPool::kCompare
                                                                    : WorkPool::kCopy;
  int64_t weight = tables_[task.table].bytes;
  if (task.kind == Kind::kBatch) {
    weight = 0;
    for (size_t t : batches_[static_cast<size_t>(task.part)]) weight += tables_[t].bytes;
  }
  if (task.kind == Kind::kCopy && !plans_[task.table].slices.empty()) {
    weight /= static_cast<int64_t>(plans_[task.table].slices.size());
  }
  setup_.pool->Submit(priority, weight, [this, task] { RunTask(task); });
}

// Post-data runs on a worker of its own once every table and index is in,
// while the last comparisons go on.
void DataPhase::StartPostData() {
  group_.Add();
  setup_.pool->Submit(WorkPool::kUrgent, 0, [this] {
    bool skip = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      skip = failure_.has_value();
    }
    if (!skip) {
      Status status = setup_.post_data();
      std::lock_guard<std::mutex> lock(mu_);
      post_data_status_ = status;
      if (!status.ok() && !failure_) failure_ = status;
    }
    group_.Done();
  });
}

// The tasks that can start now (with mu_ held): copies of tables not yet
// copied, and the index builds and comparisons of tables an earlier run
// copied. Counts what post-data waits for.
std::vector<DataPhase::Task> DataPhase::FirstTasks() {
  std::vector<Task> first;
  std::vector<size_t> small_tables;
  for (size_t t = 0; t < tables_.size(); ++t) {
    const TablePlan& plan = plans_[t];
    if (small_[t]) small_tables.push_back(t);
    if (plan.earlier) {
      results_[t].earlier_run = true;
      ++tables_done_;
      bytes_done_ += tables_[t].bytes;
      for (size_t i = 0; i < tables_[t].indexes.size(); ++i) {
        if (plan.indexes_done.count(i) == 0)
          first.push_back({Kind::kIndex, t, static_cast<int>(i)});
      }
      first.push_back({Kind::kCompare, t, -1});
      continue;
    }
    // A small table's copy is its batch's (FormBatches).
    const bool batched = small_[t];
    for (int r = 0; r < plan.parts() && !batched; ++r) {
      first.push_back({Kind::kCopy, t, plan.slices.empty() ? -1 : r});
    }
    // Its indexes still to build are submitted when its copy finishes.
    structure_pending_ += tables_[t].indexes.size() - plan.indexes_done.size();
    if (batched) ++structure_pending_;
  }
  for (const auto& task : first) {
    if (task.kind != Kind::kCompare) ++structure_pending_;
  }
  FormBatches(small_tables);
  for (size_t b = 0; b < batches_.size(); ++b) {
    const std::vector<size_t>& members = batches_[b];
    if (members.size() == 1) {
      first.push_back({Kind::kCopy, members.front(), -1});
    } else {
      first.push_back({Kind::kBatch, members.front(), static_cast<int>(b)});
    }
  }
  return first;
}

Result<DataPhaseResult> DataPhase::Run() {
  std::vector<Task> first;
  {
    std::lock_guard<std::mutex> lock(mu_);
    first = FirstTasks();
  }
  if (structure_pending_ == 0) StartPostData();
  for (const auto& task : first) Submit(task);
  group_.Wait();
  setup_.session_pool->Close(setup_.source_database);
  if (failure_) return *failure_;
  if (!post_data_status_) return Status(StatusCode::kFailedPrecondition, "post-data did not run");
  return DataPhaseResult{std::move(results_), std::move(compared_)};
}

}  // namespace

Result<DataPhaseResult> RunDataPhase(const DataPhaseSetup& setup) {
  DataPhase phase(setup);
  return phase.Run();
}

}  // namespace pgcourier

#include "migrate/data_phase.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <optional>

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
    for (size_t t = 0; t < tables_.size(); ++t) {
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
  enum class Kind { kCopy, kIndex, kCompare };
  struct Task {
    Kind kind = Kind::kCopy;
    size_t table = 0;
    int part = -1;  // kCopy: the slice (-1: whole); kIndex: the index
  };
  // Progress to report once mu_ is released.
  struct Report {
    std::string message;
    int64_t done = 0;
    int64_t total = 0;
  };

  std::vector<Task> FirstTasks();
  void Submit(const Task& task);
  void RunTask(const Task& task);
  Status RunAttempts(const Task& task, WorkerSessions& s, TableCopyStats& stats, int& attempts);
  Status Attempt(const Task& task, WorkerSessions& s, int number, TableCopyStats& stats);
  Status OpenSessions(const Task& task, WorkerSessions& s);
  Status Copy(const Task& task, WorkerSessions& s, int number, TableCopyStats& stats);
  Status Compare(const Task& task, WorkerSessions& s);
  Status Compared(const TableToCopy& table, const TableVerification& compared, Connection& target);
  Status LockWait(const Task& task, WorkerSessions& s, Clock::duration round,
                  Clock::duration& waited);
  void RecordStep(const Task& task, StepState state, const TableCopyStats& stats, int attempts,
                  const std::string& error);
  // What follows a finished task; with mu_ held. Tasks it unblocks go to
  // `next`, progress to `reports`. True when the database's counters changed.
  bool Finished(const Task& task, const TableCopyStats& stats, int attempts,
                std::vector<Task>& next, std::vector<Report>& reports, bool& start_post_data);
  void RecordCounters();
  void StartPostData();
  std::string Doing(const Task& task) const;
  void Progress(const std::string& message, int64_t done = 0, int64_t total = 0) const {
    if (setup_.progress) setup_.progress("data", message, done, total);
  }

  // Set at construction, read by every worker.
  const DataPhaseSetup& setup_;
  const MigrateOptions& options_;
  const std::vector<TableToCopy>& tables_;
  const std::chrono::milliseconds lock_round_;
  size_t indexes_total_ = 0;
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
      step.kind = StepKind::kCompare;
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
                           Clock::duration& waited) {
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
  Progress(fmt::format("{}: waiting for a lock held {} ({} s, up to {} s)", what, named, waited_s,
                       limit_s));
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
Result<TableVerification> CompareWithTarget(Connection& target, const TableToCopy& table,
                                            const RowSetHash& relayed, const std::string& encoding,
                                            bool counts_only) {
  TableVerification v;
  v.schema = table.schema;
  v.name = table.name;
  v.partition_tree = table.through_root();
  v.source_rows = relayed.rows();
  v.counts_only = counts_only;
  auto refused = [&v](const Status& status) -> Result<TableVerification> {
    if (status.code() != StatusCode::kServerError) return status;
    v.error = "target: " + status.ToString();
    return v;
  };
  if (counts_only) {
    Result<QueryResult> counted =
        target.Exec("SELECT count(*) FROM " + std::string(table.through_root() ? "" : "ONLY ") +
                    table.QualifiedName());
    if (!counted.ok()) return refused(counted.status());
    v.target_rows = counted->GetInt(0, 0);
    return v;
  }
  v.source_checksum = relayed.Digest();
  Result<RowSetHash> stored = HashTargetRows(target, table, encoding);
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
        setup_.sessions->connect_timeout(), setup_.sessions->cancel());
    if (!opened.ok()) return opened.status();
    s.checksums = std::move(*opened);
  }
  Result<TableVerification> compared =
      s.checksums->Compare(table.schema, table.name, table.through_root());
  if (!compared.ok()) return compared.status().WithContext("verifying " + table.Display());
  return Compared(table, *compared, *s.target);
}

Status DataPhase::Compared(const TableToCopy& table, const TableVerification& compared,
                           Connection& target) {
  {
    std::lock_guard<std::mutex> lock(compared_mu_);
    compared_.push_back(compared);
  }
  // Statistics for the planner, while other work goes on.
  return target.Run("ANALYZE " + table.QualifiedName()).WithContext("analyzing " + table.Display());
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
    ProgressMark mark;
    Result<bool> done = HasProgressMark(*s.target, step, &mark);
    if (!done.ok()) return done.status();
    if (*done) {
      stats.rows = mark.rows;
      stats.bytes = mark.bytes;
      stats.encoding = s.source->client_encoding();
      std::optional<RowSetHash> hash = RowSetHash::FromDigest(mark.rows, mark.rows_hash);
      stats.hashed = hash.has_value();
      if (hash) stats.hash = *hash;
      return Status::Ok();
    }
  }
  Result<TableCopyStats> copied = CopyTable(*s.source, *s.target, table, slice, plan.parts(), step);
  if (!copied.ok()) return copied.status();
  stats = *copied;
  return Status::Ok();
}

// One attempt of a task on `s`; a copy's rows and bytes in `stats`.
Status DataPhase::Attempt(const Task& task, WorkerSessions& s, int number, TableCopyStats& stats) {
  PGC_RETURN_IF_ERROR(OpenSessions(task, s));
  switch (task.kind) {
    case Kind::kCopy:
      return Copy(task, s, number, stats);
    case Kind::kCompare:
      return Compare(task, s);
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
  return BuildIndex(*s.target, table, index);
}

Status DataPhase::RunAttempts(const Task& task, WorkerSessions& s, TableCopyStats& stats,
                              int& attempts) {
  Clock::duration lock_waited{0};
  for (attempts = 1;; ++attempts) {
    stats = TableCopyStats();
    const auto tried = Clock::now();
    Status status = Attempt(task, s, attempts, stats);
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
    Progress(fmt::format("{}; trying again (attempt {} of {})", status.message(), attempts + 1,
                         options_.table_attempts));
    s = WorkerSessions();
  }
}

void DataPhase::RunTask(const Task& task) {
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
  for (const auto& r : reports) Progress(r.message, r.done, r.total);
  if (counted) RecordCounters();
  for (const auto& t : next) Submit(t);
  if (start_post_data) StartPostData();
  group_.Done();
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
                                   indexes_done_, indexes_total_)});
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
                         bytes_done_, setup_.catalog->total_bytes});
      for (size_t i = 0; i < table.indexes.size(); ++i) {
        if (plans_[task.table].indexes_done.count(i) == 0) {
          next.push_back({Kind::kIndex, task.table, static_cast<int>(i)});
        }
      }
      next.push_back({Kind::kCompare, task.table, -1});
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
  for (size_t t = 0; t < tables_.size(); ++t) {
    const TablePlan& plan = plans_[t];
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
    for (int r = 0; r < plan.parts(); ++r) {
      first.push_back({Kind::kCopy, t, plan.slices.empty() ? -1 : r});
    }
    // Its indexes still to build are submitted when its copy finishes.
    structure_pending_ += tables_[t].indexes.size() - plan.indexes_done.size();
  }
  for (const auto& task : first) {
    if (task.kind != Kind::kCompare) ++structure_pending_;
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

#include "migrate/migration.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "catalog/copy_catalog.h"
#include "catalog/user_objects.h"
#include "copy/progress_marks.h"
#include "copy/snapshot.h"
#include "copy/table_copy.h"
#include "pg/quote.h"
#include "preflight/checker.h"
#include "util/size.h"

namespace pgcourier {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Settings of every session that loads the target: bulk loading may lose
// the last commits on a target crash (the run is then redone), never the
// final state, which is committed synchronously.
constexpr const char* kTargetBulkSettings =
    "SET synchronous_commit = off; SET statement_timeout = 0; SET lock_timeout = 0; "
    "SET idle_in_transaction_session_timeout = 0; SET maintenance_work_mem = '512MB'";
// Settings of every session that reads the source: the snapshot's holder
// stays idle in its transaction for the whole move.
constexpr const char* kSourceSettings =
    "SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0";

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The run's state in the work directory, rewritten after every phase, so an
// interrupted run leaves a record of what is incomplete.
class StateFile {
 public:
  explicit StateFile(std::string path) : path_(std::move(path)) {}
  void Write(const std::vector<DatabaseOutcome>& databases, const std::string& current_phase) {
    nlohmann::json dbs = nlohmann::json::array();
    for (const auto& db : databases) {
      dbs.push_back({{"name", db.name},
                     {"target_name", db.target_name},
                     {"method", "copy"},
                     {"state", db.state},
                     {"error", db.error.empty() ? nlohmann::json() : nlohmann::json(db.error)}});
    }
    nlohmann::json state = {
        {"format", "pgcourier.state/1"}, {"phase", current_phase}, {"databases", dbs}};
    std::string tmp = path_ + ".tmp";
    {
      std::ofstream out(tmp);
      out << state.dump(2) << "\n";
    }
    std::error_code ec;
    fs::rename(tmp, path_, ec);
  }

 private:
  std::string path_;
};

class DatabaseMigration {
 public:
  DatabaseMigration(const MigrateOptions& options, const ConnInfo& source, const ConnInfo& target,
                    const CheckReport& check, DatabaseOutcome& outcome)
      : options_(options),
        source_db_(source.WithDatabase(outcome.name)),
        target_server_(target),
        target_db_(target.WithDatabase(outcome.target_name)),
        check_(check),
        outcome_(outcome) {}

  Status Run(StateFile& state, const std::vector<DatabaseOutcome>& all);

 private:
  void Progress(const std::string& phase, const std::string& message, int64_t done = 0,
                int64_t total = 0) const {
    if (options_.on_progress) {
      options_.on_progress({outcome_.name, phase, message, done, total});
    }
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
  Status Timed(const std::string& phase, const std::function<Status()>& body);

  Status CreateTargetDatabase();
  Status PlanSlices();
  Status PlanBlockSlices(const TableToCopy& table, int64_t count, std::vector<Slice>& slices);
  Status PlanKeySlices(const TableToCopy& table, int64_t count, std::vector<Slice>& slices);
  Status CopyData(const std::function<Status()>& after_structure);
  static std::string CopyStep(const TableToCopy& table, const Slice* slice);
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
  DatabaseOutcome& outcome_;
  std::unique_ptr<ExportedSnapshot> snapshot_;
  ResolvedObjectFilter filtered_;  // options_.filter at the snapshot
  CopyCatalog catalog_;
  // Per table of catalog_.tables: its slices (none: copied whole) and how
  // many are still to copy.
  struct TablePlan {
    std::vector<Slice> slices;
    int pending_slices = 1;
  };
  std::vector<TablePlan> plans_;
  // Tables compared with the source right after their copy.
  std::vector<TableVerification> compared_;
};

Result<std::unique_ptr<Connection>> DatabaseMigration::ConnectSource() const {
  Result<std::unique_ptr<Connection>> conn = Connection::Connect(source_db_, Connect("source"));
  if (!conn.ok()) return conn.status();
  PGC_RETURN_IF_ERROR((*conn)->Run(kSourceSettings));
  return conn;
}

Result<std::unique_ptr<Connection>> DatabaseMigration::ConnectTarget() const {
  Result<std::unique_ptr<Connection>> conn = Connection::Connect(target_db_, Connect("target"));
  if (!conn.ok()) return conn.status();
  PGC_RETURN_IF_ERROR((*conn)->Run(kTargetBulkSettings));
  return conn;
}

Status DatabaseMigration::Timed(const std::string& phase, const std::function<Status()>& body) {
  auto started = Clock::now();
  Status status = body();
  outcome_.phases.push_back({phase, SecondsSince(started)});
  if (!status.ok()) return status.WithContext(phase);
  return status;
}

Status DatabaseMigration::CreateTargetDatabase() {
  bool exists = false;
  for (const auto& plan : check_.databases) {
    if (plan.name == outcome_.name) exists = plan.exists_on_target;
  }
  if (exists) {
    Progress("create", "target database " + outcome_.target_name + " exists and is empty");
    return Status::Ok();
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
  Status created = dst.Run(sql);
  if (!created.ok()) {
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
  for (auto& table : catalog_.tables) {
    TablePlan plan;
    const bool splittable = by_blocks || !table.split_column.empty();
    if (splittable && table.bytes > slice * 3 / 2) {
      const int64_t wanted = std::min<int64_t>(64, (table.bytes + slice - 1) / slice);
      Status planned = by_blocks ? PlanBlockSlices(table, wanted, plan.slices)
                                 : PlanKeySlices(table, wanted, plan.slices);
      if (!planned.ok()) return planned.WithContext("planning the slices of " + table.Display());
    }
    plan.pending_slices = plan.slices.empty() ? 1 : static_cast<int>(plan.slices.size());
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

std::string DatabaseMigration::CopyStep(const TableToCopy& table, const Slice* slice) {
  std::string step = "copy " + table.QualifiedName();
  if (slice != nullptr) step += " " + slice->Display();
  return step;
}

Status DatabaseMigration::CopyData(const std::function<Status()>& after_structure) {
  PGC_RETURN_IF_ERROR(PlanSlices());
  const auto& tables = catalog_.tables;
  // The queue: slices of tables (largest table first); as soon as a table's
  // last slice is in, its index builds go to the front (they overlap the
  // copy of other tables) and its comparison with the source (checksums on
  // both sides, then ANALYZE) to the back. Once every table and index is
  // done, `after_structure` (the rest of the schema) goes to the front and
  // runs while the last comparisons do.
  struct Task {
    enum class Kind { kCopy, kIndex, kCompare, kAfterStructure };
    Kind kind = Kind::kCopy;
    size_t table = 0;
    int slice = -1;  // kCopy: -1 for the whole table
    int index = -1;  // kIndex: which index of the table
  };
  std::deque<Task> queue;
  for (size_t t = 0; t < tables.size(); ++t) {
    if (plans_[t].slices.empty()) {
      queue.push_back({Task::Kind::kCopy, t, -1, -1});
    } else {
      for (size_t r = 0; r < plans_[t].slices.size(); ++r) {
        queue.push_back({Task::Kind::kCopy, t, static_cast<int>(r), -1});
      }
    }
  }
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;
  std::optional<Status> failure;
  int64_t bytes_done = 0;
  size_t tables_done = 0;
  size_t indexes_done = 0;
  size_t indexes_total = 0;
  for (const auto& t : tables) indexes_total += t.indexes.size();
  std::vector<TableOutcome> results(tables.size());
  for (size_t t = 0; t < tables.size(); ++t) results[t].table = tables[t].Display();
  const int workers = std::max(1, options_.check.jobs);
  // Copies and index builds not yet done.
  size_t structure_pending = queue.size() + indexes_total;
  auto structure_step_done = [&] {  // with mu held
    if (--structure_pending == 0) {
      queue.push_front({Task::Kind::kAfterStructure, 0, -1, -1});
      cv.notify_all();
    }
  };
  if (structure_pending == 0) queue.push_front({Task::Kind::kAfterStructure, 0, -1, -1});

  struct Sessions {
    std::unique_ptr<Connection> source;  // at the snapshot
    std::unique_ptr<Connection> target;  // bulk-load settings
    std::unique_ptr<TableChecksums> checksums;
  };

  // Runs one task; on success, returns the rows and bytes a copy moved.
  auto attempt_task = [&](const Task& task, Sessions& sessions, int attempt,
                          TableCopyStats& stats) -> Status {
    if (task.kind == Task::Kind::kAfterStructure) return after_structure();
    const TableToCopy& table = tables[task.table];
    if (task.kind == Task::Kind::kCopy && !sessions.source) {
      Result<std::unique_ptr<Connection>> s = ConnectSource();
      if (!s.ok()) return s.status();
      sessions.source = std::move(*s);
      PGC_RETURN_IF_ERROR(
          ExportedSnapshot::BeginAt(*sessions.source, snapshot_->id(), Deadline::Never()));
    }
    if (!sessions.target) {
      Result<std::unique_ptr<Connection>> t = ConnectTarget();
      if (!t.ok()) return t.status();
      sessions.target = std::move(*t);
    }
    switch (task.kind) {
      case Task::Kind::kIndex:
        return BuildIndex(*sessions.target, table, table.indexes[static_cast<size_t>(task.index)]);
      case Task::Kind::kCompare: {
        if (!sessions.checksums) {
          Result<std::unique_ptr<TableChecksums>> opened =
              TableChecksums::Open(source_db_, snapshot_->id(), target_db_,
                                   options_.check.connect_timeout, options_.check.cancel);
          if (!opened.ok()) return opened.status();
          sessions.checksums = std::move(*opened);
        }
        Result<TableVerification> compared = sessions.checksums->Compare(table.schema, table.name);
        if (!compared.ok()) return compared.status().WithContext("verifying " + table.Display());
        {
          std::lock_guard<std::mutex> lock(mu);
          compared_.push_back(*compared);
        }
        // Statistics for the planner, while other work goes on.
        return sessions.target->Run("ANALYZE " + table.QualifiedName())
            .WithContext("analyzing " + table.Display());
      }
      case Task::Kind::kCopy:
      case Task::Kind::kAfterStructure:
        break;
    }
    const Slice* slice =
        task.slice >= 0 ? &plans_[task.table].slices[static_cast<size_t>(task.slice)] : nullptr;
    const std::string step = CopyStep(table, slice);
    if (attempt > 1) {
      // The last attempt's COMMIT may have happened before its connection
      // was lost: its mark says so.
      ProgressMark mark;
      Result<bool> done = HasProgressMark(*sessions.target, step, &mark);
      if (!done.ok()) return done.status();
      if (*done) {
        stats.rows = mark.rows;
        stats.bytes = mark.bytes;
        return Status::Ok();
      }
    }
    std::optional<Slice> range;
    if (slice != nullptr) range = *slice;
    Result<TableCopyStats> copied =
        CopyTable(*sessions.source, *sessions.target, table, range, step);
    if (!copied.ok()) return copied.status();
    stats = *copied;
    return Status::Ok();
  };

  auto run_task = [&](const Task& task, Sessions& sessions) -> Status {
    if (task.kind == Task::Kind::kAfterStructure) {
      TableCopyStats unused;
      return attempt_task(task, sessions, 1, unused);
    }
    const TableToCopy& table = tables[task.table];
    for (int attempt = 1;; ++attempt) {
      TableCopyStats stats;
      Status done = attempt_task(task, sessions, attempt, stats);
      if (done.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (task.kind == Task::Kind::kIndex) {
          ++indexes_done;
          const IndexToBuild& index = table.indexes[static_cast<size_t>(task.index)];
          Progress("data", fmt::format("index {}.{} built ({}/{} indexes)", index.schema,
                                       index.name, indexes_done, indexes_total));
          structure_step_done();
          return Status::Ok();
        }
        if (task.kind == Task::Kind::kCompare) return Status::Ok();
        TableOutcome& result = results[task.table];
        result.rows += stats.rows;
        result.bytes += stats.bytes;
        result.seconds += stats.seconds;
        result.attempts = std::max(result.attempts, attempt);
        structure_step_done();
        if (--plans_[task.table].pending_slices == 0) {
          bytes_done += table.bytes;
          ++tables_done;
          Progress("data",
                   fmt::format("{}: {} rows, {} ({}/{} tables)", table.Display(), result.rows,
                               FormatBytes(result.bytes), tables_done, tables.size()),
                   bytes_done, catalog_.total_bytes);
          for (size_t i = table.indexes.size(); i-- > 0;) {
            queue.push_front({Task::Kind::kIndex, task.table, -1, static_cast<int>(i)});
          }
          queue.push_back({Task::Kind::kCompare, task.table, -1, -1});
          cv.notify_all();
        }
        return Status::Ok();
      }
      bool cancelled = options_.check.cancel != nullptr && options_.check.cancel->cancelled();
      if (cancelled) {
        return Status(StatusCode::kCancelled, "cancelled during " + table.Display());
      }
      if (!done.retryable() || attempt >= options_.table_attempts) return done;
      Progress("data", fmt::format("{}; trying again (attempt {} of {})", done.message(),
                                   attempt + 1, options_.table_attempts));
      sessions = Sessions();
    }
  };

  auto worker = [&] {
    Sessions sessions;
    for (;;) {
      Task task;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return failure || !queue.empty() || in_flight == 0; });
        if (failure || queue.empty()) return;
        task = queue.front();
        queue.pop_front();
        ++in_flight;
      }
      Status status = run_task(task, sessions);
      std::lock_guard<std::mutex> lock(mu);
      --in_flight;
      if (!status.ok() && !failure) failure = status;
      cv.notify_all();
    }
  };

  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(workers));
  for (int i = 0; i < workers; ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  if (failure) return *failure;
  outcome_.tables = std::move(results);
  return Status::Ok();
}

Status DatabaseMigration::CopyLargeObjects() {
  if (catalog_.large_objects.empty()) return Status::Ok();
  Result<std::unique_ptr<Connection>> target = ConnectTarget();
  if (!target.ok()) return target.status();
  PGC_RETURN_IF_ERROR((*target)->Run("BEGIN"));
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
  }
  PGC_RETURN_IF_ERROR((*target)->Run("COMMIT"));
  outcome_.large_objects = static_cast<int64_t>(catalog_.large_objects.size());
  Progress("data", fmt::format("{} large object(s) copied", catalog_.large_objects.size()));
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
  verify.filter.exclude_schemas.push_back(kProgressSchema);
  verify.connect_timeout = options_.check.connect_timeout;
  verify.cancel = options_.check.cancel;
  verify.compared_tables = compared_;
  Result<DatabaseVerification> verified = VerifyDatabase(source_db_, target_db_, verify);
  if (!verified.ok()) return verified.status();
  outcome_.verification = std::move(*verified);
  int mismatches = outcome_.verification->Mismatches();
  if (mismatches > 0) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("the target differs from the source in {} place(s)", mismatches),
                  "see the verification report; the target database is incomplete");
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

Status DatabaseMigration::Run(StateFile& state, const std::vector<DatabaseOutcome>& all) {
  const std::string dir = options_.work_dir + "/" + outcome_.name;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status(StatusCode::kIoError, "cannot create " + dir + ": " + ec.message());
  const std::string archive = dir + "/schema.dump";
  const std::string list = dir + "/schema.list";
  SchemaTools tools{check_.tools.pg_dump, check_.tools.pg_restore, options_.check.cancel};
  auto mark = [&](const std::string& phase) {
    outcome_.state = phase;
    state.Write(all, phase);
  };

  mark("schema");
  // The snapshot comes first: the filter is resolved at it, and one that
  // selects nothing ends the run before the target is touched.
  PGC_RETURN_IF_ERROR(Timed("snapshot", [&]() -> Status {
    Result<std::unique_ptr<Connection>> holder = ConnectSource();
    if (!holder.ok()) return holder.status();
    Result<std::unique_ptr<ExportedSnapshot>> exported =
        ExportedSnapshot::Export(std::move(*holder), Deadline::Never());
    if (!exported.ok()) return exported.status();
    snapshot_ = std::move(*exported);
    Result<ResolvedObjectFilter> filtered =
        ResolveObjectFilter(snapshot_->conn(), options_.filter, Deadline::Never());
    if (!filtered.ok()) return filtered.status();
    filtered_ = std::move(*filtered);
    Result<CopyCatalog> catalog =
        ReadCopyCatalog(snapshot_->conn(), options_.filter, Deadline::Never());
    if (!catalog.ok()) return catalog.status();
    catalog_ = std::move(*catalog);
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
  }));
  PGC_RETURN_IF_ERROR(Timed("create", [&] { return CreateTargetDatabase(); }));
  PGC_RETURN_IF_ERROR(Timed("pre-data", [&]() -> Status {
    PGC_RETURN_IF_ERROR(DumpSchema(tools, source_db_, snapshot_->id(), filtered_, archive));
    RestoreListFilter filter;
    filter.extensions = ProviderOnlyExtensions();
    for (const auto& table : catalog_.tables) {
      for (const auto& index : table.indexes) {
        filter.index_oids.insert(index.index_oid);
        if (index.constraint_oid != 0) filter.constraint_oids.insert(index.constraint_oid);
      }
    }
    Result<int> kept = WriteRestoreList(tools, archive, filter, list);
    if (!kept.ok()) return kept.status();
    PGC_RETURN_IF_ERROR(
        RestoreSection(tools, target_db_, archive, list, "pre-data", 1, options_.policy));
    Result<std::unique_ptr<Connection>> target = ConnectTarget();
    if (!target.ok()) return target.status();
    PGC_RETURN_IF_ERROR(CreateProgressMarks(**target));
    Progress("pre-data", "schema restored (pre-data)");
    return Status::Ok();
  }));
  mark("copying");
  // The rest of the schema (foreign keys, triggers, ...) and the large
  // objects, once every table and index is in; while the last tables are
  // still being compared.
  double post_data_seconds = 0;
  auto post_data = [&]() -> Status {
    auto started = Clock::now();
    PGC_RETURN_IF_ERROR(CopyLargeObjects());
    Status restored = RestoreSection(tools, target_db_, archive, list, "post-data",
                                     options_.check.jobs, options_.policy);
    post_data_seconds = SecondsSince(started);
    if (!restored.ok()) return restored.WithContext("post-data");
    Progress("post-data", "indexes, constraints, triggers and the rest restored (post-data)");
    return Status::Ok();
  };
  PGC_RETURN_IF_ERROR(Timed("data", [&] { return CopyData(post_data); }));
  // Overlapped with the data phase: its time is part of "data" too.
  outcome_.phases.push_back({"post-data", post_data_seconds});
  PGC_RETURN_IF_ERROR(Timed("sequences", [&] { return SetSequences(); }));
  PGC_RETURN_IF_ERROR(Timed("materialized views", [&] { return RefreshMaterializedViews(); }));
  PGC_RETURN_IF_ERROR(Timed("analyze", [&] { return AnalyzeRest(); }));
  mark("verifying");
  PGC_RETURN_IF_ERROR(Timed("verify", [&] { return Verify(); }));
  return Timed("finish", [&] { return FinishDurably(); });
}

}  // namespace

bool MigrationOutcome::ok() const {
  if (!checks_passed || databases.empty()) return false;
  for (const auto& db : databases) {
    if (db.state != "done") return false;
  }
  return true;
}

Result<MigrationOutcome> Migrate(const MigrateOptions& options) {
  MigrationOutcome outcome;
  if (options.check.method == Method::kReplication) {
    return Status(StatusCode::kInvalidArgument,
                  "the replication method is not available in this version of pgcourier",
                  "use --method copy (the source must not take writes during the move)");
  }
  auto progress = [&](const std::string& db, const std::string& phase, const std::string& msg) {
    if (options.on_progress) options.on_progress({db, phase, msg, 0, 0});
  };

  CheckOptions check = options.check;
  check.method = Method::kCopy;
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

  std::error_code ec;
  fs::create_directories(options.work_dir, ec);
  if (ec) {
    return Status(StatusCode::kIoError,
                  "cannot create the work directory " + options.work_dir + ": " + ec.message(),
                  "pass --dir with a writable directory");
  }
  StateFile state(options.work_dir + "/state.json");
  for (const auto& plan : outcome.check.databases) {
    DatabaseOutcome db;
    db.name = plan.name;
    db.target_name = plan.target_name;
    db.state = "pending";
    outcome.databases.push_back(std::move(db));
  }
  state.Write(outcome.databases, "starting");

  for (auto& db : outcome.databases) {
    if (options.check.cancel != nullptr && options.check.cancel->cancelled()) {
      db.state = "cancelled";
      continue;
    }
    DatabaseMigration migration(options, *source, *target, outcome.check, db);
    auto started = Clock::now();
    Status status = migration.Run(state, outcome.databases);
    if (status.ok()) {
      db.state = "done";
      progress(db.name, "done",
               fmt::format("moved and verified in {:.1f} s", SecondsSince(started)));
    } else {
      bool cancelled = status.code() == StatusCode::kCancelled ||
                       (options.check.cancel != nullptr && options.check.cancel->cancelled());
      db.state = cancelled ? "cancelled" : "failed";
      db.error = status.ToString();
      db.hint = status.hint();
      progress(db.name, db.state, db.error);
    }
    state.Write(outcome.databases, db.state);
  }
  return outcome;
}

}  // namespace pgcourier

#include "state/store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <random>
#include <thread>
#include <utility>

#include "state/catalog_schema.h"
#include "state/sqlite_statement.h"
#include "state/sqlite_transaction.h"

namespace pgcourier {
namespace {

constexpr const char* kDbFile = "pgcourier.db";
constexpr const char* kLockFile = "lock";
// How long a writer waits for a reader (or a checkpoint) to let go, and a
// reader for a writer.
constexpr int kBusyTimeoutMs = 5000;
// A `status` takes the lock shared for a moment to see whether a run is
// live; OpenForRun tries again for this long before it calls the directory
// busy.
constexpr int kLockAttempts = 20;
constexpr std::chrono::milliseconds kLockRetryDelay{10};

std::string NowUtc() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string RandomHexId() {
  std::random_device random;
  std::uniform_int_distribution<uint32_t> word;
  return fmt::format("{:08x}{:08x}", word(random), word(random));
}

// Steps a statement that returns no rows; a failure is the store's error
// saying `what` could not be done.
Status StepDone(sqlite3* db, const std::string& path, SqliteStatement& stmt,
                const std::string& what) {
  const int rc = stmt.Step();
  if (rc != SQLITE_DONE) return SqliteError(db, path, rc, what);
  return Status::Ok();
}

// Calls `row` for every row of `stmt` (read from `stmt` by the caller); a
// failure as StepDone's.
template <typename Row>
Status ForEachRow(sqlite3* db, const std::string& path, SqliteStatement& stmt,
                  const std::string& what, Row&& row) {
  int rc = 0;
  while ((rc = stmt.Step()) == SQLITE_ROW) row();
  if (rc != SQLITE_DONE) return SqliteError(db, path, rc, what);
  return Status::Ok();
}

std::string DbPath(const std::string& dir) { return dir + "/" + kDbFile; }
std::string LockPath(const std::string& dir) { return dir + "/" + kLockFile; }

Status ErrnoError(const std::string& what, const std::string& path) {
  return Status(StatusCode::kIoError, fmt::format("{} {}: {}", what, path, std::strerror(errno)));
}

// The pid and start time a holder wrote into the lock file, for the refusal.
std::string DescribeHolder(int fd) {
  char buf[128] = {};
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return "pid unknown";
  std::string text(buf, static_cast<size_t>(n));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  size_t space = text.find(' ');
  if (space == std::string::npos) return "pid " + text;
  return fmt::format("pid {}, started {}", text.substr(0, space), text.substr(space + 1));
}

// Takes <dir>/lock exclusively; returns its descriptor.
Result<int> TakeLock(const std::string& dir) {
  const std::string path = LockPath(dir);
  int fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("cannot open the lock file", path);
  for (int attempt = 1;; ++attempt) {
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) break;
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) {
      Status error = ErrnoError("cannot lock", path);
      ::close(fd);
      return error;
    }
    if (attempt >= kLockAttempts) {
      std::string holder = DescribeHolder(fd);
      ::close(fd);
      return Status(
          StatusCode::kFailedPrecondition,
          fmt::format("the work directory {} is in use by another pgcourier ({})", dir, holder),
          fmt::format("wait for it to end (pgcourier status --dir {} shows how far it "
                      "is), or use another --dir",
                      dir));
    }
    std::this_thread::sleep_for(kLockRetryDelay);
  }
  const std::string holder = fmt::format("{} {}\n", ::getpid(), NowUtc());
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, holder.data(), holder.size(), 0) != static_cast<ssize_t>(holder.size())) {
    Status error = ErrnoError("cannot write", path);
    ::close(fd);
    return error;
  }
  return fd;
}

Status MakeWorkDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::path path(dir);
  if (std::filesystem::is_directory(path, ec)) return Status::Ok();
  if (path.has_parent_path() && !path.parent_path().empty()) {
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) {
      return Status(StatusCode::kIoError,
                    fmt::format("cannot create the work directory {}: {}", dir, ec.message()));
    }
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoError("cannot create the work directory", dir);
  }
  return Status::Ok();
}

constexpr const char* kRunColumns =
    "id, source, target, options_json, state, started_at, updated_at, finished_at, pid, "
    "resumes, error";
constexpr const char* kDatabaseColumns =
    "name, target_name, method, method_reason, state, error, hint, created_target, consistent, "
    "snapshot, tables_total, tables_done, indexes_total, indexes_done, bytes_total, bytes_done, "
    "rows_done, started_at, finished_at";
constexpr const char* kStepColumns =
    "db_name, kind, object, part, state, row_count, byte_count, seconds, attempts, error, "
    "updated_at";

StoredDatabase ReadDatabase(const SqliteStatement& s) {
  StoredDatabase db;
  db.name = s.Text(0);
  db.target_name = s.Text(1);
  db.method = ParseName<Method>(s.Text(2)).value_or(Method::kCopy);
  db.method_reason = s.Text(3);
  db.state = ParseName<DatabaseState>(s.Text(4)).value_or(DatabaseState::kFailed);
  db.error = s.Text(5);
  db.hint = s.Text(6);
  db.created_target = s.Int(7) != 0;
  db.consistent = s.Int(8) != 0;
  db.snapshot = s.Text(9);
  db.tables_total = s.Int(10);
  db.tables_done = s.Int(11);
  db.indexes_total = s.Int(12);
  db.indexes_done = s.Int(13);
  db.bytes_total = s.Int(14);
  db.bytes_done = s.Int(15);
  db.rows_done = s.Int(16);
  db.started_at = s.Text(17);
  db.finished_at = s.Text(18);
  return db;
}

StoredStep ReadStep(const SqliteStatement& s) {
  StoredStep step;
  step.database = s.Text(0);
  step.kind = ParseName<StepKind>(s.Text(1)).value_or(StepKind::kPhase);
  step.object = s.Text(2);
  step.part = s.Text(3);
  step.state = ParseName<StepState>(s.Text(4)).value_or(StepState::kFailed);
  step.rows = s.Int(5);
  step.bytes = s.Int(6);
  step.seconds = s.Real(7);
  step.attempts = static_cast<int>(s.Int(8));
  step.error = s.Text(9);
  step.updated_at = s.Text(10);
  return step;
}

}  // namespace

StateStore::StateStore(sqlite3* db, std::string path, int lock_fd, bool has_schema)
    : db_(db), path_(std::move(path)), lock_fd_(lock_fd), has_schema_(has_schema) {}

StateStore::~StateStore() {
  // The catalog is closed (and its WAL checkpointed) before the lock goes, so
  // the next run never meets a half-closed file.
  sqlite3_close_v2(db_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Result<std::unique_ptr<StateStore>> StateStore::OpenForRun(const std::string& dir) {
  PGC_RETURN_IF_ERROR(MakeWorkDir(dir));
  Result<int> lock = TakeLock(dir);
  if (!lock.ok()) return lock.status();
  const int lock_fd = *lock;
  const std::string path = DbPath(dir);

  // Create the file ourselves so that it (and the -wal and -shm files SQLite
  // gives the same mode) is private: it names servers and users.
  int fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    Status error = ErrnoError("cannot create", path);
    ::close(lock_fd);
    return error;
  }
  ::close(fd);

  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  // From here the store owns db and the lock; its destructor releases both.
  std::unique_ptr<StateStore> store(new StateStore(db, path, lock_fd, true));
  if (rc != SQLITE_OK) return SqliteError(db, path, rc, "cannot open");
  sqlite3_busy_timeout(db, kBusyTimeoutMs);

  int version = 0;
  bool has_tables = false;
  PGC_RETURN_IF_ERROR(ReadVersion(db, path, version, has_tables));
  PGC_RETURN_IF_ERROR(CheckVersion(path, version, has_tables));
  {
    SqliteStatement wal(db, "PRAGMA journal_mode = WAL");
    rc = wal.Step();
    if (rc != SQLITE_ROW) return SqliteError(db, path, rc, "cannot switch to WAL");
    if (wal.Text(0) != "wal") {
      return Status(StatusCode::kIoError,
                    fmt::format("{}: the file system does not allow SQLite's WAL mode (journal "
                                "mode stays {})",
                                path, wal.Text(0)),
                    "put the work directory on a local file system (--dir)");
    }
  }
  std::lock_guard<std::mutex> guard(store->mu_);
  PGC_RETURN_IF_ERROR(store->Exec("PRAGMA synchronous = NORMAL"));
  if (version < kSchemaVersion) {
    PGC_RETURN_IF_ERROR(UpgradeCatalog(store->db_, store->path_, version));
  }
  store->version_ = kSchemaVersion;
  return store;
}

Result<std::unique_ptr<StateStore>> StateStore::OpenReadOnly(const std::string& dir) {
  const std::string hint = fmt::format(
      "run pgcourier migrate --dir {} first, or pass the --dir of an earlier migration", dir);
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return Status(StatusCode::kNotFound, fmt::format("there is no work directory {}", dir), hint);
  }
  const std::string path = DbPath(dir);
  if (!std::filesystem::exists(path, ec)) {
    return Status(
        StatusCode::kNotFound,
        fmt::format("the directory {} holds no pgcourier migration ({} is missing)", dir, kDbFile),
        hint);
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  std::unique_ptr<StateStore> store(new StateStore(db, path, -1, false));
  if (rc != SQLITE_OK) return SqliteError(db, path, rc, "cannot open");
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  int version = 0;
  bool has_tables = false;
  PGC_RETURN_IF_ERROR(ReadVersion(db, path, version, has_tables));
  PGC_RETURN_IF_ERROR(CheckVersion(path, version, has_tables));
  // Version 0 without tables: a run that is just creating the file. It reads
  // as empty.
  store->has_schema_ = version > 0;
  store->version_ = version;
  return store;
}

bool StateStore::RunIsLive(const std::string& dir) {
  int fd = ::open(LockPath(dir).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  int rc = 0;
  do {
    rc = ::flock(fd, LOCK_SH | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  const bool held = rc != 0 && errno == EWOULDBLOCK;
  ::close(fd);  // also releases the shared lock when it was taken
  return held;
}

Status StateStore::Exec(const char* sql) { return SqliteExec(db_, path_, sql); }

Status StateStore::TouchRun() {
  SqliteStatement stmt(db_, "UPDATE run SET updated_at = ?1");
  stmt.Bind(1, NowUtc());
  return StepDone(db_, path_, stmt, "cannot update the run");
}

namespace {

Status ReadOnlyError(const std::string& path) {
  return Status(StatusCode::kFailedPrecondition,
                fmt::format("{} is open read-only; only the running migration writes it", path));
}

}  // namespace

Result<std::optional<StoredRun>> StateStore::Run() {
  std::lock_guard<std::mutex> guard(mu_);
  if (!has_schema_) return std::optional<StoredRun>();
  SqliteStatement stmt(db_, fmt::format("SELECT {} FROM run", kRunColumns).c_str());
  int rc = stmt.Step();
  if (rc == SQLITE_DONE) return std::optional<StoredRun>();
  if (rc != SQLITE_ROW) return SqliteError(db_, path_, rc, "cannot read the run");
  StoredRun run;
  run.id = stmt.Text(0);
  run.source = stmt.Text(1);
  run.target = stmt.Text(2);
  run.options_json = stmt.Text(3);
  run.state = ParseName<RunState>(stmt.Text(4)).value_or(RunState::kFailed);
  run.started_at = stmt.Text(5);
  run.updated_at = stmt.Text(6);
  run.finished_at = stmt.Text(7);
  run.pid = stmt.Int(8);
  run.resumes = static_cast<int>(stmt.Int(9));
  run.error = stmt.Text(10);
  return std::optional<StoredRun>(std::move(run));
}

Status StateStore::BeginRun(const StoredRun& run) {
  if (lock_fd_ < 0) return ReadOnlyError(path_);
  std::lock_guard<std::mutex> guard(mu_);
  Result<SqliteTransaction> txn = SqliteTransaction::Begin(db_, path_);
  if (!txn.ok()) return txn.status();
  {
    SqliteStatement existing(db_, "SELECT id, state, started_at FROM run");
    int rc = existing.Step();
    if (rc == SQLITE_ROW) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("the work directory already holds migration {} ({}, started {})",
                                existing.Text(0), existing.Text(1), existing.Text(2)),
                    "resume it (pgcourier migrate --resume), or use another --dir");
    }
    if (rc != SQLITE_DONE) return SqliteError(db_, path_, rc, "cannot read the run");
  }
  const std::string now = NowUtc();
  SqliteStatement stmt(db_, fmt::format("INSERT INTO run (singleton, {}) VALUES "
                                        "(1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                                        kRunColumns)
                                .c_str());
  stmt.Bind(1, run.id.empty() ? RandomHexId() : run.id);
  stmt.Bind(2, run.source);
  stmt.Bind(3, run.target);
  stmt.Bind(4, run.options_json.empty() ? std::string("{}") : run.options_json);
  stmt.Bind(5, std::string(Name(run.state)));
  stmt.Bind(6, run.started_at.empty() ? now : run.started_at);
  stmt.Bind(7, now);
  stmt.Bind(8, run.finished_at);
  stmt.Bind(9, run.pid != 0 ? run.pid : static_cast<int64_t>(::getpid()));
  stmt.Bind(10, static_cast<int64_t>(run.resumes));
  stmt.Bind(11, run.error);
  PGC_RETURN_IF_ERROR(StepDone(db_, path_, stmt, "cannot record the run"));
  return txn->Commit();
}

Status StateStore::ResumeRun(int64_t pid) {
  if (lock_fd_ < 0) return ReadOnlyError(path_);
  std::lock_guard<std::mutex> guard(mu_);
  SqliteStatement stmt(db_,
                       "UPDATE run SET resumes = resumes + 1, pid = ?1, state = 'running', "
                       "finished_at = '', error = '', updated_at = ?2");
  stmt.Bind(1, pid);
  stmt.Bind(2, NowUtc());
  PGC_RETURN_IF_ERROR(StepDone(db_, path_, stmt, "cannot record the resumption"));
  if (sqlite3_changes(db_) == 0) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("{} holds no migration to resume", path_),
                  "start one without --resume");
  }
  return Status::Ok();
}

Status StateStore::FinishRun(RunState state, const std::string& error) {
  if (lock_fd_ < 0) return ReadOnlyError(path_);
  std::lock_guard<std::mutex> guard(mu_);
  SqliteStatement stmt(db_,
                       "UPDATE run SET state = ?1, error = ?2, finished_at = ?3, updated_at = ?3");
  stmt.Bind(1, std::string(Name(state)));
  stmt.Bind(2, error);
  stmt.Bind(3, NowUtc());
  PGC_RETURN_IF_ERROR(StepDone(db_, path_, stmt, "cannot record the end of the run"));
  if (sqlite3_changes(db_) == 0) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("{} holds no migration to finish", path_));
  }
  return Status::Ok();
}

Status StateStore::PutDatabase(const StoredDatabase& db) {
  if (lock_fd_ < 0) return ReadOnlyError(path_);
  std::lock_guard<std::mutex> guard(mu_);
  Result<SqliteTransaction> txn = SqliteTransaction::Begin(db_, path_);
  if (!txn.ok()) return txn.status();
  // An upsert, not INSERT OR REPLACE: the row keeps its position.
  SqliteStatement stmt(
      db_, fmt::format("INSERT INTO databases ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                       "?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19) "
                       "ON CONFLICT (name) DO UPDATE SET target_name = excluded.target_name, "
                       "method = excluded.method, method_reason = excluded.method_reason, "
                       "state = excluded.state, error = excluded.error, hint = excluded.hint, "
                       "created_target = excluded.created_target, "
                       "consistent = excluded.consistent, snapshot = excluded.snapshot, "
                       "tables_total = excluded.tables_total, "
                       "tables_done = excluded.tables_done, "
                       "indexes_total = excluded.indexes_total, "
                       "indexes_done = excluded.indexes_done, "
                       "bytes_total = excluded.bytes_total, bytes_done = excluded.bytes_done, "
                       "rows_done = excluded.rows_done, started_at = excluded.started_at, "
                       "finished_at = excluded.finished_at",
                       kDatabaseColumns)
               .c_str());
  stmt.Bind(1, db.name);
  stmt.Bind(2, db.target_name);
  stmt.Bind(3, std::string(Name(db.method)));
  stmt.Bind(4, db.method_reason);
  stmt.Bind(5, std::string(Name(db.state)));
  stmt.Bind(6, db.error);
  stmt.Bind(7, db.hint);
  stmt.Bind(8, static_cast<int64_t>(db.created_target ? 1 : 0));
  stmt.Bind(9, static_cast<int64_t>(db.consistent ? 1 : 0));
  stmt.Bind(10, db.snapshot);
  stmt.Bind(11, db.tables_total);
  stmt.Bind(12, db.tables_done);
  stmt.Bind(13, db.indexes_total);
  stmt.Bind(14, db.indexes_done);
  stmt.Bind(15, db.bytes_total);
  stmt.Bind(16, db.bytes_done);
  stmt.Bind(17, db.rows_done);
  stmt.Bind(18, db.started_at);
  stmt.Bind(19, db.finished_at);
  PGC_RETURN_IF_ERROR(
      StepDone(db_, path_, stmt, fmt::format("cannot record database {}", db.name)));
  PGC_RETURN_IF_ERROR(TouchRun());
  return txn->Commit();
}

Result<std::vector<StoredDatabase>> StateStore::Databases() {
  std::lock_guard<std::mutex> guard(mu_);
  std::vector<StoredDatabase> out;
  if (!has_schema_) return out;
  SqliteStatement stmt(
      db_, fmt::format("SELECT {} FROM databases ORDER BY position", kDatabaseColumns).c_str());
  PGC_RETURN_IF_ERROR(ForEachRow(db_, path_, stmt, "cannot read the databases",
                                 [&] { out.push_back(ReadDatabase(stmt)); }));
  return out;
}

Result<std::optional<StoredDatabase>> StateStore::Database(const std::string& name) {
  std::lock_guard<std::mutex> guard(mu_);
  if (!has_schema_) return std::optional<StoredDatabase>();
  SqliteStatement stmt(
      db_, fmt::format("SELECT {} FROM databases WHERE name = ?1", kDatabaseColumns).c_str());
  stmt.Bind(1, name);
  int rc = stmt.Step();
  if (rc == SQLITE_DONE) return std::optional<StoredDatabase>();
  if (rc != SQLITE_ROW) {
    return SqliteError(db_, path_, rc, fmt::format("cannot read database {}", name));
  }
  return std::optional<StoredDatabase>(ReadDatabase(stmt));
}

Status StateStore::InsertStep(const StoredStep& step) {
  SqliteStatement stmt(
      db_, fmt::format("INSERT INTO steps ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
                       "?11) ON CONFLICT (db_name, kind, object, part) DO UPDATE SET "
                       "state = excluded.state, row_count = excluded.row_count, "
                       "byte_count = excluded.byte_count, seconds = excluded.seconds, "
                       "attempts = excluded.attempts, error = excluded.error, "
                       "updated_at = excluded.updated_at",
                       kStepColumns)
               .c_str());
  stmt.Bind(1, step.database);
  stmt.Bind(2, std::string(Name(step.kind)));
  stmt.Bind(3, step.object);
  stmt.Bind(4, step.part);
  stmt.Bind(5, std::string(Name(step.state)));
  stmt.Bind(6, step.rows);
  stmt.Bind(7, step.bytes);
  stmt.Bind(8, step.seconds);
  stmt.Bind(9, static_cast<int64_t>(step.attempts));
  stmt.Bind(10, step.error);
  stmt.Bind(11, step.updated_at.empty() ? NowUtc() : step.updated_at);
  return StepDone(db_, path_, stmt,
                  fmt::format("cannot record step {} {}", step.kind, step.object));
}

Status StateStore::PutStep(const StoredStep& step) {
  if (lock_fd_ < 0) return ReadOnlyError(path_);
  std::lock_guard<std::mutex> guard(mu_);
  Result<SqliteTransaction> txn = SqliteTransaction::Begin(db_, path_);
  if (!txn.ok()) return txn.status();
  PGC_RETURN_IF_ERROR(InsertStep(step));
  PGC_RETURN_IF_ERROR(TouchRun());
  return txn->Commit();
}

Status StateStore::ReplaceSteps(const std::string& database, StepKind kind,
                                const std::string& object_prefix,
                                const std::vector<StoredStep>& steps) {
  if (lock_fd_ < 0) return ReadOnlyError(path_);
  std::lock_guard<std::mutex> guard(mu_);
  Result<SqliteTransaction> txn = SqliteTransaction::Begin(db_, path_);
  if (!txn.ok()) return txn.status();
  SqliteStatement stmt(db_,
                       "DELETE FROM steps WHERE db_name = ?1 AND kind = ?2 "
                       "AND substr(object, 1, length(?3)) = ?3");
  stmt.Bind(1, database);
  stmt.Bind(2, std::string(Name(kind)));
  stmt.Bind(3, object_prefix);
  PGC_RETURN_IF_ERROR(StepDone(
      db_, path_, stmt, fmt::format("cannot replace the steps {} of {}", object_prefix, database)));
  for (const StoredStep& step : steps) PGC_RETURN_IF_ERROR(InsertStep(step));
  PGC_RETURN_IF_ERROR(TouchRun());
  return txn->Commit();
}

Result<std::vector<StoredStep>> StateStore::Steps(const std::string& database) {
  std::lock_guard<std::mutex> guard(mu_);
  std::vector<StoredStep> out;
  if (!has_schema_) return out;
  SqliteStatement stmt(
      db_, fmt::format("SELECT {} FROM steps WHERE db_name = ?1 ORDER BY position", kStepColumns)
               .c_str());
  stmt.Bind(1, database);
  PGC_RETURN_IF_ERROR(ForEachRow(db_, path_, stmt,
                                 fmt::format("cannot read the steps of {}", database),
                                 [&] { out.push_back(ReadStep(stmt)); }));
  return out;
}

Status StateStore::ClearSteps(const std::string& database) {
  if (lock_fd_ < 0) return ReadOnlyError(path_);
  std::lock_guard<std::mutex> guard(mu_);
  SqliteStatement stmt(db_, "DELETE FROM steps WHERE db_name = ?1");
  stmt.Bind(1, database);
  return StepDone(db_, path_, stmt, fmt::format("cannot clear the steps of {}", database));
}

Status StateStore::RecordChange(const StoredChange& change) {
  if (lock_fd_ < 0) return ReadOnlyError(path_);
  std::lock_guard<std::mutex> guard(mu_);
  // A change made again (a resumed run) keeps its first record, made anew.
  SqliteStatement stmt(db_,
                       "INSERT INTO changes (db_name, side, object, undo_sql, state, made_at) "
                       "VALUES (?1, ?2, ?3, ?4, 'made', ?5) ON CONFLICT (db_name, side, object) "
                       "DO UPDATE SET state = 'made'");
  stmt.Bind(1, change.database);
  stmt.Bind(2, std::string(Name(change.side)));
  stmt.Bind(3, change.object);
  stmt.Bind(4, change.undo_sql);
  stmt.Bind(5, NowUtc());
  return StepDone(db_, path_, stmt, fmt::format("cannot record the change {}", change.object));
}

Result<std::vector<StoredChange>> StateStore::Changes(const std::string& database) {
  std::lock_guard<std::mutex> guard(mu_);
  std::vector<StoredChange> out;
  if (!has_schema_ || version_ < 2) return out;
  SqliteStatement stmt(db_,
                       "SELECT db_name, side, object, undo_sql, state, made_at FROM changes "
                       "WHERE db_name = ?1 ORDER BY position");
  stmt.Bind(1, database);
  PGC_RETURN_IF_ERROR(ForEachRow(
      db_, path_, stmt, fmt::format("cannot read the changes made to {}", database), [&] {
        out.push_back({stmt.Text(0), ParseName<Side>(stmt.Text(1)).value_or(Side::kSource),
                       stmt.Text(2), stmt.Text(3),
                       ParseName<ChangeState>(stmt.Text(4)).value_or(ChangeState::kMade),
                       stmt.Text(5)});
      }));
  return out;
}

Status StateStore::MarkChangeUndone(const StoredChange& change) {
  if (lock_fd_ < 0) return ReadOnlyError(path_);
  std::lock_guard<std::mutex> guard(mu_);
  SqliteStatement stmt(db_,
                       "UPDATE changes SET state = 'undone' WHERE db_name = ?1 AND side = ?2 AND "
                       "object = ?3");
  stmt.Bind(1, change.database);
  stmt.Bind(2, std::string(Name(change.side)));
  stmt.Bind(3, change.object);
  return StepDone(db_, path_, stmt, fmt::format("cannot record undoing {}", change.object));
}

Status StateStore::PutErrorBaseline(const StoredErrorBaseline& baseline) {
  if (lock_fd_ < 0) return ReadOnlyError(path_);
  std::lock_guard<std::mutex> guard(mu_);
  SqliteStatement stmt(db_,
                       "INSERT INTO error_baselines (db_name, apply_errors, sync_errors, "
                       "recorded_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (db_name) DO UPDATE SET "
                       "apply_errors = excluded.apply_errors, sync_errors = excluded.sync_errors, "
                       "recorded_at = excluded.recorded_at");
  stmt.Bind(1, baseline.database);
  stmt.Bind(2, baseline.apply_errors);
  stmt.Bind(3, baseline.sync_errors);
  stmt.Bind(4, NowUtc());
  return StepDone(db_, path_, stmt,
                  fmt::format("cannot record the error counters of {}", baseline.database));
}

Result<StoredErrorBaseline> StateStore::ErrorBaseline(const std::string& database) {
  std::lock_guard<std::mutex> guard(mu_);
  StoredErrorBaseline out;
  out.database = database;
  if (!has_schema_ || version_ < 3) return out;
  SqliteStatement stmt(db_,
                       "SELECT apply_errors, sync_errors, recorded_at FROM error_baselines WHERE "
                       "db_name = ?1");
  stmt.Bind(1, database);
  // One row at most (the table's key is the database).
  PGC_RETURN_IF_ERROR(ForEachRow(
      db_, path_, stmt, fmt::format("cannot read the error counters of {}", database), [&] {
        out.apply_errors = stmt.Int(0);
        out.sync_errors = stmt.Int(1);
        out.recorded_at = stmt.Text(2);
      }));
  return out;
}

// A version 4 catalog holds either the rollbacks or the write_counters table
// (two builds numbered their additions 4); a read-only open does not upgrade
// it, so reads of those tables ask first. Version 5 holds both. mu_ held.
bool StateStore::HasTable(const char* name) {
  if (version_ >= 5) return true;
  SqliteStatement stmt(db_, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1");
  stmt.Bind(1, std::string(name));
  return stmt.Step() == SQLITE_ROW;
}

Status StateStore::PutRollback(const StoredRollback& rollback) {
  if (lock_fd_ < 0) return ReadOnlyError(path_);
  std::lock_guard<std::mutex> guard(mu_);
  SqliteStatement stmt(db_,
                       "INSERT INTO rollbacks (db_name, state, publication, slot, subscription, "
                       "recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (db_name) DO "
                       "UPDATE SET state = excluded.state, publication = excluded.publication, "
                       "slot = excluded.slot, subscription = excluded.subscription, "
                       "recorded_at = excluded.recorded_at");
  stmt.Bind(1, rollback.database);
  stmt.Bind(2, std::string(Name(rollback.state)));
  stmt.Bind(3, rollback.publication);
  stmt.Bind(4, rollback.slot);
  stmt.Bind(5, rollback.subscription);
  stmt.Bind(6, NowUtc());
  return StepDone(db_, path_, stmt,
                  fmt::format("cannot record the way back of {}", rollback.database));
}

Result<std::optional<StoredRollback>> StateStore::Rollback(const std::string& database) {
  std::lock_guard<std::mutex> guard(mu_);
  std::optional<StoredRollback> out;
  if (!has_schema_ || version_ < 4 || !HasTable("rollbacks")) return out;
  SqliteStatement stmt(db_,
                       "SELECT state, publication, slot, subscription, recorded_at FROM rollbacks "
                       "WHERE db_name = ?1");
  stmt.Bind(1, database);
  // One row at most (the table's key is the database).
  PGC_RETURN_IF_ERROR(
      ForEachRow(db_, path_, stmt, fmt::format("cannot read the way back of {}", database), [&] {
        out = StoredRollback{
            database,     ParseName<RollbackState>(stmt.Text(0)).value_or(RollbackState::kPrepared),
            stmt.Text(1), stmt.Text(2),
            stmt.Text(3), stmt.Text(4)};
      }));
  return out;
}

Status StateStore::PutWriteCounters(const std::string& database,
                                    const std::vector<StoredWriteCounters>& counters) {
  if (lock_fd_ < 0) return ReadOnlyError(path_);
  std::lock_guard<std::mutex> guard(mu_);
  Result<SqliteTransaction> txn = SqliteTransaction::Begin(db_, path_);
  if (!txn.ok()) return txn.status();
  {
    SqliteStatement clear(db_, "DELETE FROM write_counters WHERE db_name = ?1");
    clear.Bind(1, database);
    PGC_RETURN_IF_ERROR(StepDone(db_, path_, clear,
                                 fmt::format("cannot record the write counters of {}", database)));
  }
  const std::string now = NowUtc();
  for (const auto& c : counters) {
    SqliteStatement stmt(db_,
                         "INSERT INTO write_counters (db_name, table_name, relids, changes, "
                         "stats_reset, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    stmt.Bind(1, database);
    stmt.Bind(2, c.table);
    stmt.Bind(3, c.relids);
    stmt.Bind(4, c.changes);
    stmt.Bind(5, c.stats_reset);
    stmt.Bind(6, now);
    PGC_RETURN_IF_ERROR(
        StepDone(db_, path_, stmt, fmt::format("cannot record the write counters of {}", c.table)));
  }
  return txn->Commit();
}

Result<std::vector<StoredWriteCounters>> StateStore::WriteCounters(const std::string& database) {
  std::lock_guard<std::mutex> guard(mu_);
  std::vector<StoredWriteCounters> out;
  if (!has_schema_ || version_ < 4 || !HasTable("write_counters")) return out;
  SqliteStatement stmt(db_,
                       "SELECT table_name, relids, changes, stats_reset FROM write_counters "
                       "WHERE db_name = ?1 ORDER BY table_name");
  stmt.Bind(1, database);
  PGC_RETURN_IF_ERROR(ForEachRow(
      db_, path_, stmt, fmt::format("cannot read the write counters of {}", database), [&] {
        out.push_back({database, stmt.Text(0), stmt.Text(1), stmt.Int(2), stmt.Text(3)});
      }));
  return out;
}

Status StateStore::PutTableSizes(const std::string& database,
                                 const std::vector<StoredTableSize>& sizes) {
  if (lock_fd_ < 0) return ReadOnlyError(path_);
  std::lock_guard<std::mutex> guard(mu_);
  Result<SqliteTransaction> txn = SqliteTransaction::Begin(db_, path_);
  if (!txn.ok()) return txn.status();
  {
    SqliteStatement clear(db_, "DELETE FROM table_sizes WHERE db_name = ?1");
    clear.Bind(1, database);
    PGC_RETURN_IF_ERROR(
        StepDone(db_, path_, clear, fmt::format("cannot record the table sizes of {}", database)));
  }
  const std::string now = NowUtc();
  SqliteStatement stmt(db_,
                       "INSERT INTO table_sizes (db_name, table_name, expected_rows, "
                       "expected_bytes, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5)");
  for (const auto& size : sizes) {
    stmt.Reset();
    stmt.Bind(1, database);
    stmt.Bind(2, size.table);
    stmt.Bind(3, size.expected_rows);
    stmt.Bind(4, size.expected_bytes);
    stmt.Bind(5, now);
    PGC_RETURN_IF_ERROR(
        StepDone(db_, path_, stmt, fmt::format("cannot record the size of {}", size.table)));
  }
  return txn->Commit();
}

Result<std::vector<StoredTableSize>> StateStore::TableSizes(const std::string& database) {
  std::lock_guard<std::mutex> guard(mu_);
  std::vector<StoredTableSize> out;
  if (!has_schema_ || version_ < 6) return out;
  SqliteStatement stmt(db_,
                       "SELECT table_name, expected_rows, expected_bytes FROM table_sizes "
                       "WHERE db_name = ?1 ORDER BY table_name");
  stmt.Bind(1, database);
  PGC_RETURN_IF_ERROR(
      ForEachRow(db_, path_, stmt, fmt::format("cannot read the table sizes of {}", database), [&] {
        out.push_back({stmt.Text(0), stmt.Int(1), stmt.Int(2)});
      }));
  return out;
}

}  // namespace pgcourier

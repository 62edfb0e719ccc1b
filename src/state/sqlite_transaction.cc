#include "state/sqlite_transaction.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <cassert>
#include <utility>

namespace pgcourier {

Status SqliteError(sqlite3* db, const std::string& path, int rc, const std::string& what) {
  const char* message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  if (rc == SQLITE_NOTADB) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("{} is not a pgcourier catalog (not an SQLite database)", path),
                  "another file has that name; use another --dir");
  }
  return Status(StatusCode::kIoError, fmt::format("{}: {}: {}", path, what, message));
}

Status SqliteExec(sqlite3* db, const std::string& path, const char* sql) {
  char* message = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &message);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string text = message != nullptr ? message : sqlite3_errstr(rc);
  sqlite3_free(message);
  if (rc == SQLITE_NOTADB) return SqliteError(db, path, rc, "");
  return Status(StatusCode::kIoError, fmt::format("{}: {}", path, text));
}

Result<SqliteTransaction> SqliteTransaction::Begin(sqlite3* db, std::string path) {
  PGC_RETURN_IF_ERROR(SqliteExec(db, path, "BEGIN IMMEDIATE"));
  return SqliteTransaction(db, std::move(path));
}

SqliteTransaction::~SqliteTransaction() { RollBackQuietly(); }

SqliteTransaction::SqliteTransaction(SqliteTransaction&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), path_(std::move(other.path_)), ended_(other.ended_) {}

SqliteTransaction& SqliteTransaction::operator=(SqliteTransaction&& other) noexcept {
  if (this != &other) {
    RollBackQuietly();
    db_ = std::exchange(other.db_, nullptr);
    path_ = std::move(other.path_);
    ended_ = other.ended_;
  }
  return *this;
}

void SqliteTransaction::RollBackQuietly() noexcept {
  if (!active()) return;
  ended_ = true;
  // An error (SQLITE_FULL, an I/O error) may have rolled back already.
  if (sqlite3_get_autocommit(db_) != 0) return;
  (void)sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

Status SqliteTransaction::Commit() {
  assert(active() && "Commit() on a transaction that is over");
  Status committed = SqliteExec(db_, path_, "COMMIT");
  if (committed.ok()) {
    ended_ = true;
    return committed;
  }
  // A COMMIT that failed (SQLITE_BUSY) leaves the transaction open.
  RollBackQuietly();
  return committed;
}

}  // namespace pgcourier

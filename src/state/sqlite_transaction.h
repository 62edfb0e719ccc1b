// The SQLite side of the work directory's catalog (state/store.h): a write
// transaction object and the error reporting it shares with the store.
#pragma once

#include <string>
#include <utility>

#include "util/status.h"

struct sqlite3;

namespace pgcourier {

// The Status of SQLite result code `rc` while doing `what` on the catalog
// at `path`: kFailedPrecondition when the file is not an SQLite database,
// kIoError otherwise, with SQLite's message.
Status SqliteError(sqlite3* db, const std::string& path, int rc, const std::string& what);

// Runs statements without values (sqlite3_exec) on the catalog at `path`.
Status SqliteExec(sqlite3* db, const std::string& path, const char* sql);

// A write transaction: Begin() runs BEGIN IMMEDIATE (the write lock is
// taken at once, so a busy catalog fails there rather than at the first
// write), Commit() commits, and a transaction destroyed without a
// successful Commit() is rolled back. Rolling back never waits (SQLite needs
// no lock to give up its own) and never throws; its failure is ignored, as
// SQLite then has rolled back already or the handle is unusable anyway.
//
// Thread safety: none of its own. The caller serializes every use of `db`
// (StateStore holds its mutex around the transaction's whole life). The
// handle must outlive the transaction. Movable, not copyable.
class SqliteTransaction {
 public:
  // `path` names the catalog in error messages.
  static Result<SqliteTransaction> Begin(sqlite3* db, std::string path);

  ~SqliteTransaction();
  SqliteTransaction(SqliteTransaction&& other) noexcept;
  SqliteTransaction& operator=(SqliteTransaction&& other) noexcept;
  SqliteTransaction(const SqliteTransaction&) = delete;
  SqliteTransaction& operator=(const SqliteTransaction&) = delete;

  // Ok means committed. On failure nothing is committed: what SQLite still
  // holds open is rolled back before Commit returns. Either way the
  // transaction is over.
  Status Commit();

  // True until Commit() is called (or the object is moved from).
  bool active() const { return db_ != nullptr && !ended_; }

 private:
  SqliteTransaction(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  void RollBackQuietly() noexcept;

  sqlite3* db_;
  std::string path_;
  bool ended_ = false;
};

}  // namespace pgcourier

// A prepared SQLite statement of the work directory's catalog
// (state/store.h), with its bound values kept alive. Private to src/state/:
// it includes sqlite3.h, which only pgcourier_core links.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <deque>
#include <string>
#include <utility>

namespace pgcourier {

// A prepared statement, finalized when it goes out of scope. Bound strings
// are kept alive here until the statement is done with them.
class SqliteStatement {
 public:
  SqliteStatement(sqlite3* db, const char* sql) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~SqliteStatement() { sqlite3_finalize(stmt_); }
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;

  void Bind(int index, std::string value) {
    if (rc_ != SQLITE_OK) return;
    const std::string& kept = kept_.emplace_back(std::move(value));
    // nullptr is SQLITE_STATIC: the text lives in kept_ as long as the
    // statement does.
    rc_ = sqlite3_bind_text(stmt_, index, kept.data(), static_cast<int>(kept.size()), nullptr);
  }
  void Bind(int index, int64_t value) {
    if (rc_ == SQLITE_OK) rc_ = sqlite3_bind_int64(stmt_, index, value);
  }
  void Bind(int index, double value) {
    if (rc_ == SQLITE_OK) rc_ = sqlite3_bind_double(stmt_, index, value);
  }

  // Ready to be bound and stepped again (one statement for many rows).
  void Reset() {
    if (rc_ != SQLITE_OK) return;
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    kept_.clear();
  }

  // SQLITE_ROW, SQLITE_DONE, or the error of preparing, binding or stepping.
  int Step() {
    if (rc_ != SQLITE_OK) return rc_;
    return sqlite3_step(stmt_);
  }

  std::string Text(int column) const {
    const unsigned char* text = sqlite3_column_text(stmt_, column);
    if (text == nullptr) return {};
    return {reinterpret_cast<const char*>(text),
            static_cast<size_t>(sqlite3_column_bytes(stmt_, column))};
  }
  int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }
  double Real(int column) const { return sqlite3_column_double(stmt_, column); }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
  std::deque<std::string> kept_;
};

}  // namespace pgcourier

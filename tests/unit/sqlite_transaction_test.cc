// The catalog's write transaction: BEGIN IMMEDIATE, COMMIT only by Commit(),
// ROLLBACK when destroyed without it.
#include "state/sqlite_transaction.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

namespace pgcourier {
namespace {

class SqliteTransactionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/pgcourier-sqlite-txn-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/catalog.db";
    db_ = Open();
    ASSERT_NE(db_, nullptr);
    ASSERT_TRUE(SqliteExec(db_, path_, "CREATE TABLE t (id INTEGER)").ok());
  }
  void TearDown() override {
    sqlite3_close(db_);
    std::string command = "rm -rf '" + dir_ + "'";
    (void)std::system(command.c_str());
  }

  sqlite3* Open() const {
    sqlite3* db = nullptr;
    if (sqlite3_open(path_.c_str(), &db) != SQLITE_OK) {
      sqlite3_close(db);
      return nullptr;
    }
    return db;
  }

  int Count() const {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, "SELECT count(*) FROM t", -1, &stmt, nullptr), SQLITE_OK);
    EXPECT_EQ(sqlite3_step(stmt), SQLITE_ROW);
    int count = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    return count;
  }

  bool InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }

  std::string dir_;
  std::string path_;
  sqlite3* db_ = nullptr;
};

TEST_F(SqliteTransactionTest, CommitCommits) {
  Result<SqliteTransaction> txn = SqliteTransaction::Begin(db_, path_);
  ASSERT_TRUE(txn.ok()) << txn.status().ToString();
  EXPECT_TRUE(InTransaction());
  ASSERT_TRUE(SqliteExec(db_, path_, "INSERT INTO t VALUES (1)").ok());
  EXPECT_TRUE(txn->Commit().ok());
  EXPECT_FALSE(txn->active());
  EXPECT_FALSE(InTransaction());
  EXPECT_EQ(Count(), 1);
}

TEST_F(SqliteTransactionTest, DestroyedWithoutCommitRollsBack) {
  {
    Result<SqliteTransaction> txn = SqliteTransaction::Begin(db_, path_);
    ASSERT_TRUE(txn.ok()) << txn.status().ToString();
    ASSERT_TRUE(SqliteExec(db_, path_, "INSERT INTO t VALUES (1)").ok());
  }
  EXPECT_FALSE(InTransaction());
  EXPECT_EQ(Count(), 0);
}

TEST_F(SqliteTransactionTest, MovedFromEndsNothingAndTheLockGoesWithTheRollback) {
  std::optional<SqliteTransaction> kept;
  {
    Result<SqliteTransaction> txn = SqliteTransaction::Begin(db_, path_);
    ASSERT_TRUE(txn.ok()) << txn.status().ToString();
    kept.emplace(std::move(*txn));
    EXPECT_FALSE(txn->active());
  }
  EXPECT_TRUE(InTransaction()) << "the moved-from object ended nothing";
  ASSERT_TRUE(SqliteExec(db_, path_, "INSERT INTO t VALUES (1)").ok());
  EXPECT_FALSE(SqliteTransaction::Begin(db_, path_).ok()) << "SQLite has no nested transactions";
  sqlite3* other = Open();
  ASSERT_NE(other, nullptr);
  EXPECT_FALSE(SqliteTransaction::Begin(other, path_).ok())
      << "BEGIN IMMEDIATE takes the write lock at once";
  kept.reset();
  EXPECT_FALSE(InTransaction());
  EXPECT_EQ(Count(), 0);
  EXPECT_TRUE(SqliteTransaction::Begin(other, path_).ok())
      << "the lock was given up with the rollback";
  sqlite3_close(other);
}

TEST_F(SqliteTransactionTest, ErrorsNameTheCatalog) {
  Status failed = SqliteExec(db_, path_, "INSERT INTO missing VALUES (1)");
  EXPECT_EQ(failed.code(), StatusCode::kIoError);
  EXPECT_NE(failed.message().find(path_), std::string::npos) << failed.message();
  EXPECT_NE(failed.message().find("missing"), std::string::npos) << failed.message();
}

}  // namespace
}  // namespace pgcourier

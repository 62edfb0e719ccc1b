// The statements that begin a transaction (no server needed).
#include "pg/transaction.h"

#include <gtest/gtest.h>

namespace pgcourier {
namespace {

TEST(BeginStatementTest, DefaultsToAPlainBegin) { EXPECT_EQ(BeginStatement({}), "BEGIN"); }

TEST(BeginStatementTest, NamesIsolationAndReadOnly) {
  TransactionOptions options;
  options.isolation = IsolationLevel::kReadCommitted;
  EXPECT_EQ(BeginStatement(options), "BEGIN ISOLATION LEVEL READ COMMITTED");
  options.isolation = IsolationLevel::kSerializable;
  options.read_only = true;
  EXPECT_EQ(BeginStatement(options), "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY");
  options.isolation = IsolationLevel::kDefault;
  EXPECT_EQ(BeginStatement(options), "BEGIN READ ONLY");
}

TEST(BeginStatementTest, ImportsTheSnapshotAsAQuotedLiteral) {
  TransactionOptions options;
  options.isolation = IsolationLevel::kRepeatableRead;
  options.read_only = true;
  options.snapshot = "00000003-0000001B-1";
  EXPECT_EQ(BeginStatement(options),
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "
            "SET TRANSACTION SNAPSHOT E'00000003-0000001B-1'");
  options.snapshot = "x'; DROP TABLE t; --";
  EXPECT_EQ(BeginStatement(options),
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "
            "SET TRANSACTION SNAPSHOT E'x''; DROP TABLE t; --'");
}

}  // namespace
}  // namespace pgcourier

// A Transaction commits only by Commit(): destroyed without it, or after a
// statement in it failed, nothing it did is kept, and its connection is left
// idle for the next statement.
#include "pg/transaction.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "pg_cluster.h"

namespace pgcourier {
namespace {

class TransactionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = testing::StartClusterOrFail({}).release();
    if (cluster_ != nullptr) {
      Result<std::string> made = cluster_->Sql("CREATE TABLE public.t (id int PRIMARY KEY)");
      if (!made.ok()) ADD_FAILURE() << made.status().ToString();
    }
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(cluster_, nullptr);
    ASSERT_TRUE(cluster_->Sql("TRUNCATE public.t").ok());
    conn_ = Connect();
    ASSERT_NE(conn_, nullptr);
  }

  std::unique_ptr<Connection> Connect(const CancelToken* cancel = nullptr) {
    ConnectOptions options;
    options.cancel = cancel;
    Result<std::unique_ptr<Connection>> conn =
        Connection::Connect(*ConnInfo::Parse(cluster_->ConnString()), options);
    EXPECT_TRUE(conn.ok()) << conn.status().ToString();
    return conn.ok() ? std::move(*conn) : nullptr;
  }

  // The rows of public.t as another session sees them ("1,2"; "" for none).
  static std::string Committed() {
    Result<std::string> rows =
        cluster_->Sql("SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM public.t");
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    return rows.ok() ? *rows : "?";
  }

  static testing::PgCluster* cluster_;
  std::unique_ptr<Connection> conn_;
};

testing::PgCluster* TransactionTest::cluster_ = nullptr;

TEST_F(TransactionTest, CommitCommits) {
  Result<Transaction> txn = Transaction::Begin(*conn_);
  ASSERT_TRUE(txn.ok()) << txn.status().ToString();
  EXPECT_TRUE(txn->active());
  ASSERT_TRUE(conn_->Run("INSERT INTO public.t VALUES (1), (2)").ok());
  EXPECT_EQ(Committed(), "") << "nothing is visible before the commit";
  Status committed = txn->Commit();
  EXPECT_TRUE(committed.ok()) << committed.ToString();
  EXPECT_FALSE(txn->active());
  EXPECT_EQ(Committed(), "1,2");
  EXPECT_TRUE(conn_->IdleOutsideTransaction());
}

TEST_F(TransactionTest, DestroyedWithoutCommitRollsBack) {
  {
    Result<Transaction> txn = Transaction::Begin(*conn_);
    ASSERT_TRUE(txn.ok()) << txn.status().ToString();
    ASSERT_TRUE(conn_->Run("INSERT INTO public.t VALUES (1)").ok());
    EXPECT_FALSE(conn_->IdleOutsideTransaction());
  }
  EXPECT_TRUE(conn_->IdleOutsideTransaction()) << "the destructor ended the transaction";
  EXPECT_EQ(Committed(), "");
  // The connection is usable, outside any transaction.
  ASSERT_TRUE(conn_->Run("INSERT INTO public.t VALUES (3)").ok());
  EXPECT_EQ(Committed(), "3");
}

TEST_F(TransactionTest, ExplicitRollback) {
  Result<Transaction> txn = Transaction::Begin(*conn_);
  ASSERT_TRUE(txn.ok()) << txn.status().ToString();
  ASSERT_TRUE(conn_->Run("INSERT INTO public.t VALUES (1)").ok());
  EXPECT_TRUE(txn->Rollback().ok());
  EXPECT_FALSE(txn->active());
  EXPECT_TRUE(conn_->IdleOutsideTransaction());
  EXPECT_EQ(Committed(), "");
}

TEST_F(TransactionTest, MovedTransactionEndsOnce) {
  std::optional<Transaction> kept;
  {
    Result<Transaction> txn = Transaction::Begin(*conn_);
    ASSERT_TRUE(txn.ok()) << txn.status().ToString();
    kept.emplace(std::move(*txn));
    EXPECT_FALSE(txn->active()) << "moved from";
  }
  EXPECT_FALSE(conn_->IdleOutsideTransaction()) << "the moved-from object ended nothing";
  ASSERT_TRUE(conn_->Run("INSERT INTO public.t VALUES (1)").ok());
  EXPECT_TRUE(kept->Commit().ok());
  EXPECT_EQ(Committed(), "1");
}

TEST_F(TransactionTest, CommitAfterAFailedStatementFailsAndKeepsNothing) {
  Result<Transaction> txn = Transaction::Begin(*conn_);
  ASSERT_TRUE(txn.ok()) << txn.status().ToString();
  ASSERT_TRUE(conn_->Run("INSERT INTO public.t VALUES (1)").ok());
  Status failed = conn_->Run("INSERT INTO public.t VALUES (1)");
  EXPECT_EQ(failed.sqlstate(), "23505");
  Status committed = txn->Commit();
  EXPECT_EQ(committed.code(), StatusCode::kFailedPrecondition) << committed.ToString();
  EXPECT_TRUE(conn_->IdleOutsideTransaction());
  EXPECT_EQ(Committed(), "");
}

TEST_F(TransactionTest, FirstStatementRunsInsideTheTransaction) {
  ASSERT_TRUE(cluster_->Sql("INSERT INTO public.t VALUES (7)").ok());
  {
    Result<Transaction> txn = Transaction::Begin(*conn_, {}, "TRUNCATE ONLY public.t");
    ASSERT_TRUE(txn.ok()) << txn.status().ToString();
  }
  EXPECT_EQ(Committed(), "7") << "the TRUNCATE was rolled back with its transaction";
  // A first statement that fails fails Begin and leaves no transaction.
  Result<Transaction> bad = Transaction::Begin(*conn_, {}, "SELECT * FROM public.missing");
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().sqlstate(), "42P01") << bad.status().ToString();
  EXPECT_TRUE(conn_->IdleOutsideTransaction());
}

TEST_F(TransactionTest, OptionsSetIsolationReadOnlyAndSnapshot) {
  // A snapshot exported before a row was committed does not see it.
  std::unique_ptr<Connection> exporter = Connect();
  ASSERT_NE(exporter, nullptr);
  TransactionOptions repeatable;
  repeatable.isolation = IsolationLevel::kRepeatableRead;
  Result<Transaction> exporting = Transaction::Begin(*exporter, repeatable);
  ASSERT_TRUE(exporting.ok()) << exporting.status().ToString();
  Result<QueryResult> id = exporter->Exec("SELECT pg_catalog.pg_export_snapshot()");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  ASSERT_TRUE(cluster_->Sql("INSERT INTO public.t VALUES (1)").ok());

  TransactionOptions options;
  options.isolation = IsolationLevel::kRepeatableRead;
  options.read_only = true;
  options.snapshot = id->GetString(0, 0);
  Result<Transaction> txn = Transaction::Begin(*conn_, options);
  ASSERT_TRUE(txn.ok()) << txn.status().ToString();
  Result<QueryResult> seen = conn_->Exec(
      "SELECT current_setting('transaction_isolation'), "
      "current_setting('transaction_read_only'), (SELECT count(*) FROM public.t)");
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  EXPECT_EQ(seen->GetString(0, 0), "repeatable read");
  EXPECT_EQ(seen->GetString(0, 1), "on");
  EXPECT_EQ(seen->GetInt(0, 2), 0) << "reads at the exported snapshot";
  EXPECT_EQ(conn_->Run("INSERT INTO public.t VALUES (2)").sqlstate(), "25006");
  EXPECT_FALSE(txn->Commit().ok()) << "a failed statement makes the commit fail";

  // A snapshot that does not exist (any more) fails Begin and leaves no
  // transaction open.
  options.snapshot = "00000003-00000002-1";
  Result<Transaction> stale = Transaction::Begin(*conn_, options);
  EXPECT_FALSE(stale.ok());
  EXPECT_TRUE(conn_->IdleOutsideTransaction());
}

TEST_F(TransactionTest, DestructorRollsBackAfterCancellation) {
  CancelToken cancel;
  std::unique_ptr<Connection> conn = Connect(&cancel);
  ASSERT_NE(conn, nullptr);
  {
    Result<Transaction> txn = Transaction::Begin(*conn);
    ASSERT_TRUE(txn.ok()) << txn.status().ToString();
    ASSERT_TRUE(conn->Run("INSERT INTO public.t VALUES (1)").ok());
    cancel.Cancel();
    EXPECT_EQ(conn->Run("SELECT pg_catalog.pg_sleep(30)").code(), StatusCode::kCancelled);
  }
  EXPECT_TRUE(conn->IdleOutsideTransaction())
      << "the rollback reached the server despite the raised token";
  EXPECT_EQ(Committed(), "");
}

TEST_F(TransactionTest, DestructorSendsNothingOnABadConnection) {
  {
    Result<Transaction> txn = Transaction::Begin(*conn_);
    ASSERT_TRUE(txn.ok()) << txn.status().ToString();
    ASSERT_TRUE(conn_->Run("INSERT INTO public.t VALUES (1)").ok());
    conn_->GiveUp();
    ASSERT_TRUE(conn_->IsBad());
  }  // no wait, no error: the server ends the transaction with the session
  conn_.reset();
  EXPECT_EQ(Committed(), "");
}

TEST_F(TransactionTest, RunInTransactionIsAllOrNothing) {
  Status ran = RunInTransaction(*conn_,
                                "INSERT INTO public.t VALUES (1); INSERT INTO public.t "
                                "VALUES (2)");
  EXPECT_TRUE(ran.ok()) << ran.ToString();
  EXPECT_EQ(Committed(), "1,2");
  Status failed = RunInTransaction(*conn_,
                                   "INSERT INTO public.t VALUES (3); INSERT INTO public.t "
                                   "VALUES (1)");
  EXPECT_EQ(failed.sqlstate(), "23505") << failed.ToString();
  EXPECT_TRUE(conn_->IdleOutsideTransaction()) << "the failed transaction was rolled back";
  EXPECT_EQ(Committed(), "1,2");
}

}  // namespace
}  // namespace pgcourier

#include "pg/transaction.h"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <cassert>
#include <cstring>
#include <utility>

#include "pg/quote.h"

namespace pgcourier {
namespace {

const char* IsolationClause(IsolationLevel level) {
  switch (level) {
    case IsolationLevel::kDefault:
      return "";
    case IsolationLevel::kReadCommitted:
      return " ISOLATION LEVEL READ COMMITTED";
    case IsolationLevel::kRepeatableRead:
      return " ISOLATION LEVEL REPEATABLE READ";
    case IsolationLevel::kSerializable:
      return " ISOLATION LEVEL SERIALIZABLE";
  }
  return "";
}

// Ends whatever transaction block `conn` is in, waiting at most
// kRollbackGrace, whatever its cancel token says. Nothing is sent on a bad
// connection (the server ends the transaction with the session) or one that
// is idle outside a transaction (nothing to end).
void RollBackOpenTransaction(Connection& conn) noexcept {
  if (conn.IsBad() || conn.IdleOutsideTransaction()) return;
  Status rolled_back =
      conn.RunIgnoringCancel("ROLLBACK", Deadline::After(Transaction::kRollbackGrace));
  if (!rolled_back.ok()) {
    spdlog::debug("rolling back on {} failed: {}", conn.display(), rolled_back.ToString());
  }
}

}  // namespace

std::string BeginStatement(const TransactionOptions& options) {
  assert((options.snapshot.empty() || options.isolation == IsolationLevel::kRepeatableRead ||
          options.isolation == IsolationLevel::kSerializable) &&
         "SET TRANSACTION SNAPSHOT needs REPEATABLE READ or SERIALIZABLE");
  std::string sql = std::string("BEGIN") + IsolationClause(options.isolation);
  if (options.read_only) sql += " READ ONLY";
  if (!options.snapshot.empty())
    sql += "; SET TRANSACTION SNAPSHOT " + QuoteLiteral(options.snapshot);
  return sql;
}

Result<Transaction> Transaction::Begin(Connection& conn, const TransactionOptions& options,
                                       Deadline deadline) {
  return Begin(conn, options, std::string_view(), deadline);
}

Result<Transaction> Transaction::Begin(Connection& conn, const TransactionOptions& options,
                                       std::string_view first_statement, Deadline deadline) {
  std::string sql = BeginStatement(options);
  if (!first_statement.empty()) {
    sql += "; ";
    sql += first_statement;
  }
  // Owned from here on, so that a failure after BEGIN (the snapshot refused,
  // the first statement failing) leaves no transaction open.
  Transaction txn(&conn);
  Status begun = conn.Run(sql, deadline);
  if (!begun.ok()) return begun;
  return txn;
}

Transaction::~Transaction() { RollBackQuietly(); }

Transaction::Transaction(Transaction&& other) noexcept
    : conn_(std::exchange(other.conn_, nullptr)), ended_(other.ended_) {}

Transaction& Transaction::operator=(Transaction&& other) noexcept {
  if (this != &other) {
    RollBackQuietly();
    conn_ = std::exchange(other.conn_, nullptr);
    ended_ = other.ended_;
  }
  return *this;
}

void Transaction::RollBackQuietly() noexcept {
  if (!active()) return;
  ended_ = true;
  RollBackOpenTransaction(*conn_);
}

Status Transaction::Commit(Deadline deadline) { return Commit(std::string_view(), deadline); }

Status Transaction::Commit(std::string_view last_statements, Deadline deadline) {
  assert(active() && "Commit() on a transaction that is over");
  ended_ = true;
  std::string sql(last_statements);
  if (!sql.empty()) sql += "; ";
  sql += "COMMIT";
  // The last result is the COMMIT's, or the error that skipped it.
  Result<QueryResult> committed = conn_->Exec(sql, deadline);
  if (!committed.ok()) {
    RollBackOpenTransaction(*conn_);
    return committed.status();
  }
  // COMMIT of a transaction in which a statement failed is no error: the
  // server rolls back and answers with the tag ROLLBACK.
  if (std::strcmp(PQcmdStatus(committed->raw()), "COMMIT") != 0) {
    return Status(StatusCode::kFailedPrecondition,
                  "the transaction was rolled back instead of committed: a statement in it failed");
  }
  return Status::Ok();
}

std::string Transaction::HandOverCommit() {
  assert(active() && "HandOverCommit() on a transaction that is over");
  ended_ = true;
  return "COMMIT";
}

Status Transaction::Rollback(Deadline deadline) {
  assert(active() && "Rollback() on a transaction that is over");
  ended_ = true;
  if (conn_->IsBad()) return Status::Ok();
  return conn_->Run("ROLLBACK", deadline);
}

Status RunInTransaction(Connection& conn, std::string_view statements, Deadline deadline) {
  std::string sql = "BEGIN; ";
  sql += statements;
  sql += "; COMMIT";
  Status run = conn.Run(sql, deadline);
  if (!run.ok()) RollBackOpenTransaction(conn);
  return run;
}

}  // namespace pgcourier

// A transaction on a Connection that commits only when told to.
//
//   Result<Transaction> txn = Transaction::Begin(conn, {}, deadline);
//   if (!txn.ok()) return txn.status();
//   PGC_RETURN_IF_ERROR(conn.Run("INSERT ...", deadline));
//   return txn->Commit(deadline);
//
// The transaction ends in exactly one of these ways:
//   - Commit() returned ok: it is committed;
//   - Commit() failed: it is not committed, unless the connection was lost
//     or the deadline passed while the COMMIT itself ran, which leaves the
//     outcome unknown (see Commit());
//   - Rollback() was called, or the Transaction was destroyed without
//     Commit(): nothing it did is committed (on a lost connection the server
//     ends the transaction itself).
// The destructor rolls back quietly: it sends ROLLBACK and waits a bounded
// time (kRollbackGrace) for the answer, regardless of the connection's
// cancel token (a cancellation is usually why the transaction is being
// abandoned), never throws and reports nothing but a debug log line. It
// sends nothing when the connection is bad (lost, or given up after a
// stall): the server ends the transaction when the session does.
//
// Thread safety: like its Connection, a Transaction is used by one thread at
// a time, the thread that uses the connection. The Connection must outlive
// the Transaction. While the transaction is open the connection is still used
// directly (conn.Run, the COPY streams); the Transaction only begins and
// ends it. Movable (the moved-from object then ends nothing), not copyable.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "pg/connection.h"
#include "util/cancel.h"
#include "util/status.h"

namespace pgcourier {

enum class IsolationLevel { kDefault, kReadCommitted, kRepeatableRead, kSerializable };

struct TransactionOptions {
  // kDefault leaves the server's default_transaction_isolation.
  IsolationLevel isolation = IsolationLevel::kDefault;
  bool read_only = false;
  // A snapshot exported by another transaction (pg_export_snapshot()) to read
  // at, with SET TRANSACTION SNAPSHOT; empty for none. Needs kRepeatableRead
  // or kSerializable, and the exporting transaction still open.
  std::string snapshot;
};

// The statements that begin a transaction with `options`, in one string:
// "BEGIN [ISOLATION LEVEL ...] [READ ONLY]" and, with a snapshot,
// "; SET TRANSACTION SNAPSHOT '...'". Transaction::Begin sends it. It is
// public for a transaction that no scope owns, which lasts as long as its
// connection (the session that holds an exported snapshot) and ends when the
// connection closes.
std::string BeginStatement(const TransactionOptions& options);

class Transaction {
 public:
  // How long the destructor waits for the server to answer its ROLLBACK.
  static constexpr std::chrono::seconds kRollbackGrace{10};

  // Begins a transaction on `conn`, which must be idle outside any
  // transaction block. One round trip. A failure (the server's refusal, a
  // lost connection, the deadline, the cancel token) is returned as the
  // Status, and no transaction is left open by it.
  static Result<Transaction> Begin(Connection& conn, const TransactionOptions& options = {},
                                   Deadline deadline = Deadline::Never());
  // The same, with `first_statement` (one or more statements) sent in the
  // same round trip as BEGIN, e.g. the TRUNCATE that a COPY ... FREEZE
  // needs in its transaction. Its result is not kept.
  static Result<Transaction> Begin(Connection& conn, const TransactionOptions& options,
                                   std::string_view first_statement,
                                   Deadline deadline = Deadline::Never());

  // Takes charge of the transaction block that the caller begins on `conn`
  // right after, with a BEGIN in a statement string of its own (one that
  // ends in a COPY ... FROM STDIN, say, so that the whole start is one
  // round trip). Made before the string is sent, so that a failure of any
  // of its statements leaves no transaction open.
  static Transaction BegunBy(Connection& conn) { return Transaction(&conn); }
  // Rolls back quietly when neither Commit() nor Rollback() was called.
  ~Transaction();
  Transaction(Transaction&& other) noexcept;
  // Rolls back this transaction quietly (as the destructor does) when it is
  // still open, then takes over `other`'s.
  Transaction& operator=(Transaction&& other) noexcept;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // Commits. Ok means committed. An error means not committed: the server
  // refused the COMMIT (a deferred constraint, a serialization failure), or
  // a statement of the transaction had failed, so the server rolled it back
  // instead (kFailedPrecondition); or, when the connection was lost or the
  // deadline passed while COMMIT ran, that the outcome is unknown. Either
  // way the transaction is over for this object: what the server still
  // holds open after a failure is rolled back quietly before Commit returns.
  Status Commit(Deadline deadline = Deadline::Never());
  // The same, with `last_statements` (one or more) sent in the same round
  // trip before the COMMIT, e.g. the progress mark of what the transaction
  // wrote. When one of them fails, nothing is committed and its error is
  // returned.
  Status Commit(std::string_view last_statements, Deadline deadline = Deadline::Never());
  // Rolls back now and returns the server's answer (Ok when the connection
  // is bad: the server ends the transaction with the session).
  Status Rollback(Deadline deadline = Deadline::Never());
  // Leaves the COMMIT to the caller, who sends the returned statement first
  // in a string of its own that goes on after it (COMMIT; ANALYZE ...;
  // COPY ... TO STDOUT), so that what follows the commit costs no round trip
  // of its own. The transaction is over for this object, which sends nothing
  // more. The string's error may be the COMMIT's (not committed, or unknown
  // on a lost connection) or a later statement's (committed): a caller tells
  // them apart by what the transaction wrote (a progress mark).
  std::string HandOverCommit();

  // True until Commit() or Rollback() is called (or the object is moved from).
  bool active() const { return conn_ != nullptr && !ended_; }
  Connection& connection() const { return *conn_; }

 private:
  explicit Transaction(Connection* conn) : conn_(conn) {}
  // The destructor's rollback: bounded, ignores the cancel token, skipped
  // when there is nothing to end.
  void RollBackQuietly() noexcept;

  Connection* conn_;
  bool ended_ = false;
};

// Runs `statements` between BEGIN and COMMIT sent as one string, so the
// whole transaction costs one round trip. When it fails the transaction is
// rolled back quietly, as ~Transaction does. For short transactions whose
// statements are all known up front.
Status RunInTransaction(Connection& conn, std::string_view statements,
                        Deadline deadline = Deadline::Never());

}  // namespace pgcourier

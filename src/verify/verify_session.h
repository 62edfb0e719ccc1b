// The sessions of one VerifyDatabase or TableChecksums call
// (verify/verifier.h): how they connect, the transaction and snapshot each
// reads in, the reads whose refusal by the server is a finding, a read that
// waited too long for a lock said as the failure it is, and the stop token
// that all of one call's threads share.
// Private to src/verify/: nothing else includes it.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "pg/connection.h"
#include "pg/conninfo.h"
#include "pg/result.h"
#include "pg/transaction.h"
#include "util/cancel.h"
#include "util/status.h"

namespace pgcourier::verify_internal {

// What every thread of one VerifyDatabase call shares: a token that all of
// its connections wait on, raised on the first failure (so the other sides'
// long scans end at once), when the caller cancels, and at the end.
class VerifyRun {
 public:
  explicit VerifyRun(const CancelToken* caller) : caller_(caller) {
    if (caller_ == nullptr) return;
    // Relays the caller's cancellation to `stop_`, waiting on both without
    // spinning.
    relay_ = std::thread([this] {
      while (!stop_.cancelled()) {
        Deadline deadline =
            stop_.fd() >= 0 ? Deadline::Never() : Deadline::After(std::chrono::milliseconds(200));
        WaitResult waited = WaitForSocket(stop_.fd(), true, false, deadline, caller_);
        if (waited == WaitResult::kCancelled) {
          stop_.Cancel();
          return;
        }
        if (waited == WaitResult::kError) return;
      }
    });
  }
  ~VerifyRun() {
    stop_.Cancel();
    if (relay_.joinable()) relay_.join();
  }
  VerifyRun(const VerifyRun&) = delete;
  VerifyRun& operator=(const VerifyRun&) = delete;

  const CancelToken* token() const { return &stop_; }
  bool stopped() const { return stop_.cancelled(); }

  // Records the first failure and stops everything.
  void Fail(const Status& status) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!first_error_) first_error_ = status;
    }
    stop_.Cancel();
  }

  // The error to return for `status`: the caller's cancellation, else the
  // first failure (a later one may only be the stop it caused).
  Status Explain(const Status& status) {
    if (caller_ != nullptr && caller_->cancelled()) {
      return Status(StatusCode::kCancelled, "verification cancelled");
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (first_error_) return *first_error_;
    return status;
  }

  // After all workers ended: the failure, if any.
  std::optional<Status> Failure() {
    if (caller_ != nullptr && caller_->cancelled()) {
      return Status(StatusCode::kCancelled, "verification cancelled");
    }
    std::lock_guard<std::mutex> lock(mu_);
    return first_error_;
  }

 private:
  const CancelToken* caller_;
  CancelToken stop_;
  std::thread relay_;
  std::mutex mu_;
  std::optional<Status> first_error_;
};

struct SessionSpec {
  const ConnInfo* info = nullptr;
  std::string role;  // "source" or "target"
  std::chrono::milliseconds connect_timeout{0};
  const CancelToken* cancel = nullptr;
  // The session's lock_timeout (VerifyOptions::lock_timeout); 0: no limit.
  std::chrono::milliseconds lock_timeout{0};
};

// Every read is in a read-only repeatable read transaction, at `snapshot`
// when given.
TransactionOptions ReadOptions(const std::optional<std::string>& snapshot);

// A connection in the transaction it reads in for its whole life. The
// transaction is declared last, so it ends before the connection closes.
struct Session {
  std::unique_ptr<Connection> conn;
  std::optional<Transaction> txn;
};

// Connects and applies the output settings and the lock_timeout.
Result<std::unique_ptr<Connection>> ConnectSession(const SessionSpec& spec);

// ConnectSession, then begins the session's transaction, at `snapshot` when
// given.
Result<Session> OpenSession(const SessionSpec& spec, const std::optional<std::string>& snapshot);

// Exports the session's snapshot for the other sessions of the same side.
// Where the server refuses, the transaction is begun again and nullopt
// returned: every session then takes its own.
Result<std::optional<std::string>> ShareSnapshot(Session& session);

// A read whose rejection by the server (no privilege, a relation dropped
// meanwhile, an unlogged table on a standby) is a finding, not a failure.
struct Read {
  std::optional<QueryResult> result;
  std::string error;  // the server's error when result is empty
};

// Runs `sql` inside a savepoint, so that a rejected statement leaves the
// transaction, and its snapshot, usable. Other failures (connection,
// cancellation) are returned as the Status, and so is a lock not had within
// the session's lock_timeout (55P03, IsLockTimeout): another session held
// the table, which says nothing about its rows.
Result<Read> GuardedRead(Connection& conn, const std::string& sql);

// A read that ended on its session's lock_timeout (`status`, IsLockTimeout)
// as the verification's failure (kFailedPrecondition): `what` was read
// ("verifying public.orders"), on which side, and the sessions holding a
// lock that conflicts with the read's (AccessShareLock) on `table` (quoted
// and qualified; empty: any table), looked up on a new session of each of
// `sides`, with the hint to end them, `then` ("run pgcourier verify
// again"). Any other status is returned as it is.
Status ExplainLockTimeout(const Status& status, const std::vector<const SessionSpec*>& sides,
                          const std::string& what, const std::string& table,
                          const std::string& then);

}  // namespace pgcourier::verify_internal

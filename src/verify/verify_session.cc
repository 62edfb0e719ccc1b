#include "verify/verify_session.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <utility>

#include "catalog/lock_holders.h"

namespace pgcourier::verify_internal {

TransactionOptions ReadOptions(const std::optional<std::string>& snapshot) {
  TransactionOptions options;
  options.isolation = IsolationLevel::kRepeatableRead;
  options.read_only = true;
  options.snapshot = snapshot.value_or("");
  return options;
}

Result<std::unique_ptr<Connection>> ConnectSession(const SessionSpec& spec) {
  ConnectOptions connect;
  connect.role = spec.role;
  connect.total_timeout = spec.connect_timeout;
  connect.cancel = spec.cancel;
  // Value formats are pinned by every session (pg/session_settings.h,
  // PinnedFormatSettings), so that a row's text (and so its hash) depends only on
  // its values. Row level security off: a table whose policies would hide rows
  // from the user is an error, never a silently smaller count. The role's
  // timeouts are off in every session (ConnectOptions::timeouts_off): long
  // scans are not cut short, and the session holding the shared snapshot may
  // stay idle in its transaction while the workers read. A lock another
  // session holds is waited for at most spec.lock_timeout (0: no limit),
  // whatever the role's or database's lock_timeout says.
  connect.settings = {{"row_security", "off"}, LockTimeoutSetting(spec.lock_timeout)};
  return Connection::Connect(*spec.info, connect);
}

Result<Session> OpenSession(const SessionSpec& spec, const std::optional<std::string>& snapshot) {
  Result<std::unique_ptr<Connection>> conn = ConnectSession(spec);
  if (!conn.ok()) return conn.status();
  Result<Transaction> begun = Transaction::Begin(**conn, ReadOptions(snapshot));
  if (!begun.ok()) {
    return begun.status().WithContext(snapshot
                                          ? "reading the " + spec.role + " at snapshot " + *snapshot
                                          : "starting a transaction on the " + spec.role);
  }
  Session session;
  session.conn = std::move(*conn);
  session.txn.emplace(std::move(*begun));
  return session;
}

Result<std::optional<std::string>> ShareSnapshot(Session& session) {
  Connection& conn = *session.conn;
  Result<QueryResult> exported = conn.Exec("SELECT pg_export_snapshot()");
  if (exported.ok()) return std::optional<std::string>(exported->GetString(0, 0));
  if (exported.status().code() != StatusCode::kServerError) return exported.status();
  spdlog::debug("cannot export a snapshot on {}: {}", conn.display(), exported.status().ToString());
  PGC_RETURN_IF_ERROR(session.txn->Rollback());
  Result<Transaction> again = Transaction::Begin(conn, ReadOptions(std::nullopt));
  if (!again.ok()) return again.status();
  session.txn = std::move(*again);
  return std::optional<std::string>();
}

Result<Read> GuardedRead(Connection& conn, const std::string& sql) {
  Result<QueryResult> result = conn.Exec("SAVEPOINT pgc_verify; " + sql);
  if (result.ok()) {
    PGC_RETURN_IF_ERROR(conn.Run("RELEASE SAVEPOINT pgc_verify"));
    return Read{std::move(*result), ""};
  }
  if (result.status().code() != StatusCode::kServerError) return result.status();
  PGC_RETURN_IF_ERROR(conn.Run("ROLLBACK TO SAVEPOINT pgc_verify; RELEASE SAVEPOINT pgc_verify"));
  if (IsLockTimeout(result.status())) return result.status();
  return Read{std::nullopt, result.status().ToString()};
}

Status ExplainLockTimeout(const Status& status, const std::vector<const SessionSpec*>& sides,
                          const std::string& what, const std::string& table,
                          const std::string& then) {
  if (!IsLockTimeout(status) || sides.empty()) return status;
  std::string named;
  std::vector<LockHolder> all;
  for (const SessionSpec* side : sides) {
    // A new session: the reading ones are in a transaction, where
    // pg_stat_activity stays as it was when first read.
    Result<std::unique_ptr<Connection>> conn = ConnectSession(*side);
    if (!conn.ok()) continue;
    Result<std::vector<LockHolder>> found = LockHolders(**conn, table, "AccessShareLock");
    if (!found.ok()) continue;
    const std::string these = DescribeLockHolders(*found);
    if (these.empty()) continue;
    named += fmt::format("{}on the {} by {}", named.empty() ? "" : "; ", side->role, these);
    all.insert(all.end(), found->begin(), found->end());
  }
  // The limit is the same on both sides.
  const double waited = std::chrono::duration<double>(sides.front()->lock_timeout).count();
  // What was read, where the caller does not know the table.
  const std::string reading = table.empty() ? " (" + status.message() + ")" : "";
  if (named.empty()) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("{}: no lock after waiting {:g} s{}; no other session holds a "
                              "conflicting lock now",
                              what, waited, reading),
                  fmt::format("{}; --lock-timeout sets how long pgcourier waits", then));
  }
  return Status(StatusCode::kFailedPrecondition,
                fmt::format("{}: no lock after waiting {:g} s{}: it is held {}", what, waited,
                            reading, named),
                EndLockHoldersHint(all, then));
}

}  // namespace pgcourier::verify_internal

// One libpq connection, owned. Every wait is non-blocking: poll() on the
// socket against a deadline and a cancel token. Not thread-safe: one thread
// uses a connection at a time; a CancelToken may be raised from anywhere.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pg/conninfo.h"
#include "pg/result.h"
#include "pg/session_settings.h"
#include "util/cancel.h"
#include "util/status.h"

namespace pgcourier {

struct ConnectOptions {
  // How long to keep trying, across attempts with backoff, when a connection
  // fails in a way that can pass (refused, timed out, too many clients,
  // starting up): a serverless server that sleeps can take seconds to wake.
  std::chrono::milliseconds total_timeout{std::chrono::seconds(30)};
  // Bound on one attempt.
  std::chrono::milliseconds attempt_timeout{std::chrono::seconds(15)};
  // Names the server in error messages, e.g. "source".
  std::string role = "server";
  std::string application_name = "pgcourier";
  // An empty search_path, so that no object of the server's schemas can
  // capture an unqualified name (a source is untrusted input).
  bool secure_search_path = true;
  // Pin the settings that change how values are written and read as text
  // (PinnedFormatSettings), whatever the server's, the database's or the
  // role's defaults say, and a client_encoding equal to the encoding of the
  // database connected to, so that the server converts nothing. Off only for
  // a session that moves no value (a replication connection that creates a
  // slot).
  bool pin_formats = true;
  // Turn off the role's and the database's statement_timeout,
  // idle_in_transaction_session_timeout and (17+) transaction_timeout for
  // this session: every wait of pgcourier has its own deadline, kept by the
  // client (Deadline), and a role made for applications may cut statements
  // after a fraction of a second, which the copy of a big table, an index
  // build or a catalog read on a loaded server outlasts.
  bool timeouts_off = true;
  // Further settings of the session (lock_timeout, synchronous_commit, ...).
  std::vector<SessionSetting> settings;
  const CancelToken* cancel = nullptr;
};

using QueryParams = std::vector<std::optional<std::string>>;

class Connection {
 public:
  // Connects, retrying retryable failures with backoff until
  // options.total_timeout. Errors are translated (see pg/errors.h).
  // The session's settings (search_path, pinned formats, timeouts,
  // options.settings) travel in the startup packet's `options`, so they end
  // with the session even behind a connection pooler, and cost no round
  // trip. transaction_timeout is sent only to a server not known to be
  // older than 17 (a server that refuses it is remembered and reconnected
  // to without it). A pooler that refuses `options` (PgBouncer: "unsupported
  // startup parameter") or drops it (the reported DateStyle is not the
  // pinned one) is remembered too: the session then sets them with
  // set_config() once connected and runs RESET ALL before it closes, so a
  // session-mode pooler hands the server connection on as it found it.
  static Result<std::unique_ptr<Connection>> Connect(const ConnInfo& info,
                                                     const ConnectOptions& options);

  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one statement (or several, separated by ';': the last result is
  // returned) and waits for its result. On deadline or cancellation the
  // statement is cancelled on the server and kTimeout / kCancelled returned.
  Result<QueryResult> Exec(std::string_view sql, Deadline deadline = Deadline::Never());
  // Runs one statement with $1.. parameters sent separately (text format;
  // std::nullopt is NULL).
  Result<QueryResult> ExecParams(std::string_view sql, const QueryParams& params,
                                 Deadline deadline = Deadline::Never());
  // Exec for statements whose rows are not needed.
  Status Run(std::string_view sql, Deadline deadline = Deadline::Never());
  // Run, deaf to the connection's cancel token: for the clean-up after a
  // cancellation (a ROLLBACK), which must still reach the server. Only
  // `deadline` bounds it.
  Status RunIgnoringCancel(std::string_view sql, Deadline deadline);

  // Sends COPY ... TO STDOUT / FROM STDIN and waits for the server to enter
  // copy mode. Used by CopyOutStream and CopyInStream (pg/copy.h). `sql` may
  // begin with other statements (BEGIN; TRUNCATE ...; COPY ...): one round
  // trip for all; the first of them that fails is the error.
  Status StartCopy(std::string_view sql, ExecStatusType expected, Deadline deadline);
  // StartCopy in two halves, so that the round trips of two connections'
  // COPYs overlap: SendCopy sends `sql`, AwaitCopy waits for the server to
  // enter copy mode. Nothing else may be sent on the connection in between.
  Status SendCopy(std::string_view sql, Deadline deadline);
  Status AwaitCopy(ExecStatusType expected, Deadline deadline);

  // Waits until the socket is ready for reading or writing.
  Status Wait(bool for_read, bool for_write, Deadline deadline);
  // Sends what libpq has queued, waiting while the socket is full.
  Status Flush(Deadline deadline);
  // Sends a cancel request for the running statement (best effort). Waits
  // at most 5 s for the server to take it; past that the connection is given
  // up (GiveUp), since PQcancel itself could wait forever on a silent network.
  void CancelRunning();
  // Reads results until none is left; returns the first error, if any.
  Result<QueryResult> DrainResults(Deadline deadline);
  // Reads the next result of a query string with more statements after it
  // (several COPYs in one string): that statement's result, leaving the
  // later ones to be read. An error ends the string on the server: what is
  // left is drained and the error returned.
  Result<QueryResult> NextResult(Deadline deadline);

  // Server facts libpq knows after connecting.
  int server_version() const { return PQserverVersion(conn_); }
  bool ssl_in_use() const { return PQsslInUse(conn_) != 0; }
  std::string host() const;
  std::string port() const;
  std::string user() const;
  std::string database() const;
  // The session's client_encoding and the database's encoding, as the
  // server last reported them ("UTF8", "LATIN1", "SQL_ASCII").
  std::string client_encoding() const;
  std::string server_encoding() const;
  // The IP address the connection reached (PQhostaddr); empty over a unix
  // socket or when unknown.
  std::string host_address() const;
  // The TLS protocol in use ("TLSv1.3"); empty when unencrypted or unknown.
  std::string tls_protocol() const;
  // The connection parameters libpq used, defaults included, as (keyword,
  // value) pairs in libpq's order; those without a value are left out.
  Result<std::vector<std::pair<std::string, std::string>>> Parameters() const;
  // True when the session is idle and outside any transaction block
  // (PQTRANS_IDLE): not in a transaction, an aborted one, or a statement.
  bool IdleOutsideTransaction() const { return PQtransactionStatus(conn_) == PQTRANS_IDLE; }
  bool IsBad() const { return given_up_ || PQstatus(conn_) == CONNECTION_BAD; }
  // Gives the connection up without another word to the server: after it
  // stalled, nothing sent would arrive, and a cancel request (PQcancel waits
  // for the server's answer without a time limit) could hang. IsBad() is
  // then true and CancelRunning() does nothing; only destruction is left.
  void GiveUp() { given_up_ = true; }
  // False when the session's settings could not travel in the startup
  // packet and were set once connected (a pooler in between).
  bool settings_in_startup() const { return !reset_on_close_; }
  // Redacted display of the connection string this connection was made from.
  const std::string& display() const { return display_; }
  const CancelToken* cancel_token() const { return cancel_; }

  PGconn* raw() { return conn_; }

 private:
  Status CopyStarted(PGresult* raw, ExecStatusType expected, Deadline deadline);
  Connection(PGconn* conn, std::string display, const CancelToken* cancel)
      : conn_(conn), display_(std::move(display)), cancel_(cancel) {}

  Status LostConnection(const std::string& what) const;

  PGconn* conn_;
  std::string display_;
  const CancelToken* cancel_;
  bool given_up_ = false;
  // The settings were made with set_config() (not in the startup packet):
  // RESET ALL before closing.
  bool reset_on_close_ = false;
};

}  // namespace pgcourier

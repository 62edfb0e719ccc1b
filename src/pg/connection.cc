#include "pg/connection.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "pg/errors.h"

namespace pgcourier {
namespace {

constexpr std::chrono::milliseconds kFirstBackoff{250};
constexpr std::chrono::milliseconds kMaxBackoff{4000};
// How long a cancelled statement may take to wind down before the connection
// is given up as unusable.
constexpr std::chrono::seconds kCancelGrace{5};

std::string Who(const ConnectOptions& options, const std::string& display) {
  return options.role + " (" + display + ")";
}

// One attempt: PQconnectStartParams + PQconnectPoll, every wait a poll().
Result<PGconn*> ConnectOnce(const ConnInfo& info, const ConnectOptions& options,
                            const std::string& who, Deadline deadline) {
  std::vector<const char*> keywords;
  std::vector<const char*> values;
  bool has_app_name = false;
  for (const auto& [k, v] : info.params()) {
    keywords.push_back(k.c_str());
    values.push_back(v.c_str());
    has_app_name = has_app_name || k == "application_name";
  }
  if (!has_app_name) {
    keywords.push_back("fallback_application_name");
    values.push_back(options.application_name.c_str());
  }
  keywords.push_back(nullptr);
  values.push_back(nullptr);

  PGconn* conn = PQconnectStartParams(keywords.data(), values.data(), 0);
  if (conn == nullptr) return Status(StatusCode::kIoError, "out of memory starting a connection");
  auto fail = [&](Status status) -> Result<PGconn*> {
    PQfinish(conn);
    return status;
  };
  if (PQstatus(conn) == CONNECTION_BAD) {
    return fail(TranslateConnectFailure(PQerrorMessage(conn), who));
  }
  PostgresPollingStatusType poll_status = PGRES_POLLING_WRITING;
  while (poll_status != PGRES_POLLING_OK) {
    if (poll_status == PGRES_POLLING_FAILED) {
      return fail(TranslateConnectFailure(PQerrorMessage(conn), who));
    }
    WaitResult waited =
        WaitForSocket(PQsocket(conn), poll_status == PGRES_POLLING_READING,
                      poll_status == PGRES_POLLING_WRITING, deadline, options.cancel);
    if (waited == WaitResult::kTimedOut) {
      return fail(TranslateConnectFailure("timeout expired", who));
    }
    if (waited == WaitResult::kCancelled) {
      return fail(Status(StatusCode::kCancelled, "cancelled while connecting to " + who));
    }
    if (waited == WaitResult::kError) {
      return fail(Status(StatusCode::kIoError, "poll failed while connecting to " + who));
    }
    poll_status = PQconnectPoll(conn);
  }
  if (PQsetnonblocking(conn, 1) != 0) {
    return fail(Status(StatusCode::kIoError, "cannot make the connection non-blocking"));
  }
  return conn;
}

// The statements run once connected, in one round trip: the search_path
// first, then the pinned formats, the timeouts, then the caller's settings.
std::string SetupSql(PGconn* conn, const ConnectOptions& options) {
  std::vector<std::string> parts;
  if (options.secure_search_path) {
    parts.emplace_back("SELECT pg_catalog.set_config('search_path', '', false)");
  }
  if (options.pin_formats) {
    const char* own = PQparameterStatus(conn, "server_encoding");
    parts.push_back(PinnedFormatsSql(own != nullptr ? own : ""));
  }
  if (options.timeouts_off) {
    parts.emplace_back("SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0");
    // transaction_timeout exists from 17 on.
    if (PQserverVersion(conn) >= 170000) parts.emplace_back("SET transaction_timeout = 0");
  }
  if (!options.settings.empty()) parts.push_back(options.settings);
  std::string sql;
  for (const auto& part : parts) sql += (sql.empty() ? "" : "; ") + part;
  return sql;
}

}  // namespace

std::string PinnedFormatsSql(std::string_view client_encoding) {
  std::string sql =
      "SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 3; "
      "SET bytea_output = 'hex'; SET TimeZone = 'UTC'; SET standard_conforming_strings = on; "
      "SET xmloption = content; SET lc_monetary = 'C'";
  if (!client_encoding.empty()) {
    // An encoding name is letters, digits and '_' (pg_encoding_to_char).
    std::string name;
    for (char c : client_encoding) {
      if (std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_') name.push_back(c);
    }
    sql += "; SET client_encoding = '" + name + "'";
  }
  return sql;
}

Result<std::unique_ptr<Connection>> Connection::Connect(const ConnInfo& info,
                                                        const ConnectOptions& options) {
  const std::string display = info.Redacted();
  const std::string who = Who(options, display);
  const Deadline overall = Deadline::After(options.total_timeout);
  auto backoff = kFirstBackoff;
  auto started = Deadline::Clock::now();
  // The most telling failure: a later attempt cut short by the overall
  // deadline says less than the refusal before it.
  std::optional<Status> telling;
  for (int attempt = 1;; ++attempt) {
    Deadline attempt_deadline = Deadline::After(options.attempt_timeout).Min(overall);
    Result<PGconn*> conn = ConnectOnce(info, options, who, attempt_deadline);
    if (conn.ok()) {
      std::unique_ptr<Connection> connection(new Connection(*conn, display, options.cancel));
      // Server notices (NOTICE, WARNING) go to the debug log, never to the
      // terminal of whoever runs pgcourier.
      PQsetNoticeProcessor(
          *conn,
          [](void*, const char* message) {
            std::string_view text(message);
            while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
            spdlog::debug("server notice: {}", text);
          },
          nullptr);
      const std::string setup = SetupSql(*conn, options);
      if (!setup.empty()) {
        Status set = connection->Run(setup, Deadline::After(options.attempt_timeout));
        if (!set.ok()) return set.WithContext("preparing the session on " + who);
      }
      if (attempt > 1) spdlog::debug("connected to {} after {} attempts", who, attempt);
      return connection;
    }
    Status failure = conn.status();
    if (!telling || failure.code() != StatusCode::kTimeout) telling = failure;
    if (!failure.retryable() || overall.passed()) {
      if (attempt > 1) {
        auto waited =
            std::chrono::duration_cast<std::chrono::seconds>(Deadline::Clock::now() - started);
        return Status(telling->code(),
                      telling->message() + "; gave up after " + std::to_string(attempt) +
                          " attempts in " + std::to_string(waited.count()) + " s",
                      telling->hint(), telling->sqlstate());
      }
      return failure;
    }
    spdlog::debug("connecting to {} failed ({}), retrying in {} ms", who, failure.message(),
                  backoff.count());
    auto pause = std::min<std::chrono::milliseconds>(
        backoff, std::chrono::milliseconds(std::max(overall.PollTimeoutMs(), 0)));
    if (!SleepFor(pause, options.cancel)) {
      return Status(StatusCode::kCancelled, "cancelled while connecting to " + who);
    }
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

Connection::~Connection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

std::string Connection::host() const {
  const char* h = PQhost(conn_);
  return h != nullptr ? h : "";
}
std::string Connection::port() const {
  const char* p = PQport(conn_);
  return p != nullptr ? p : "";
}
std::string Connection::user() const {
  const char* u = PQuser(conn_);
  return u != nullptr ? u : "";
}
std::string Connection::database() const {
  const char* d = PQdb(conn_);
  return d != nullptr ? d : "";
}

std::string Connection::client_encoding() const {
  const char* e = PQparameterStatus(conn_, "client_encoding");
  return e != nullptr ? e : "";
}
std::string Connection::server_encoding() const {
  const char* e = PQparameterStatus(conn_, "server_encoding");
  return e != nullptr ? e : "";
}

std::string Connection::host_address() const {
  const char* a = PQhostaddr(conn_);
  return a != nullptr ? a : "";
}
std::string Connection::tls_protocol() const {
  const char* p = PQsslAttribute(conn_, "protocol");
  return p != nullptr ? p : "";
}

Result<std::vector<std::pair<std::string, std::string>>> Connection::Parameters() const {
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(PQconninfo(conn_),
                                                                       &PQconninfoFree);
  if (options == nullptr) return Status(StatusCode::kIoError, "out of memory");
  std::vector<std::pair<std::string, std::string>> out;
  for (const PQconninfoOption* o = options.get(); o->keyword != nullptr; ++o) {
    if (o->val == nullptr || *o->val == '\0') continue;
    out.emplace_back(o->keyword, o->val);
  }
  return out;
}

Status Connection::LostConnection(const std::string& what) const {
  // The first line says why; libpq's next ones are boilerplate ("This
  // probably means the server terminated abnormally...").
  std::string message = PQerrorMessage(conn_);
  message = message.substr(0, message.find('\n'));
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.pop_back();
  }
  return Status(StatusCode::kConnectionFailed,
                what + " failed on " + display_ + (message.empty() ? "" : ": " + message), "",
                "08006");
}

Status Connection::Wait(bool for_read, bool for_write, Deadline deadline) {
  switch (WaitForSocket(PQsocket(conn_), for_read, for_write, deadline, cancel_)) {
    case WaitResult::kReady:
      return Status::Ok();
    case WaitResult::kTimedOut:
      return Status(StatusCode::kTimeout, "timed out waiting for " + display_);
    case WaitResult::kCancelled:
      return Status(StatusCode::kCancelled, "cancelled");
    case WaitResult::kError:
      break;
  }
  return LostConnection("waiting for the server");
}

Status Connection::Flush(Deadline deadline) {
  for (;;) {
    int flushed = PQflush(conn_);
    if (flushed == 0) return Status::Ok();
    if (flushed < 0) return LostConnection("sending to the server");
    // Reading while the send buffer is full keeps a server that is itself
    // blocked on sending (notices) from deadlocking with us.
    PGC_RETURN_IF_ERROR(Wait(true, true, deadline));
    if (PQconsumeInput(conn_) == 0) return LostConnection("reading from the server");
  }
}

void Connection::CancelRunning() {
  if (given_up_) return;
  PGcancel* cancel = PQgetCancel(conn_);
  if (cancel == nullptr) return;
  // PQcancel waits for the server to close the cancel connection without a
  // time limit, so on a network that went silent (a black hole that still
  // accepts connections) it would never return. It runs on a thread of its
  // own: one that has not returned within kCancelGrace is left behind,
  // blocked and holding nothing but its PGcancel, and the connection is given
  // up, since the server is not answering anyway.
  struct Outcome {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::string error;  // empty when the request was delivered
  };
  auto outcome = std::make_shared<Outcome>();
  std::thread([cancel, outcome] {
    char err[256];
    const bool sent = PQcancel(cancel, err, sizeof(err)) != 0;
    PQfreeCancel(cancel);
    std::lock_guard<std::mutex> lock(outcome->mu);
    outcome->done = true;
    if (!sent) outcome->error = err;
    outcome->cv.notify_all();
  }).detach();
  std::unique_lock<std::mutex> lock(outcome->mu);
  if (!outcome->cv.wait_for(lock, kCancelGrace, [&] { return outcome->done; })) {
    spdlog::debug("cancel request to {} unanswered after {} s; the connection is given up",
                  display_, kCancelGrace.count());
    given_up_ = true;
    return;
  }
  if (!outcome->error.empty()) {
    spdlog::debug("cancel request to {} failed: {}", display_, outcome->error);
  }
}

Result<QueryResult> Connection::DrainResults(Deadline deadline) {
  std::optional<QueryResult> last;
  std::optional<Status> first_error;
  for (;;) {
    while (PQisBusy(conn_) != 0) {
      Status waited = Wait(true, false, deadline);
      if (!waited.ok()) {
        if (waited.code() == StatusCode::kTimeout || waited.code() == StatusCode::kCancelled) {
          // Stop the statement on the server, then read what is left, so the
          // connection stays usable.
          CancelRunning();
          if (given_up_) return waited;
          const CancelToken* saved = cancel_;
          cancel_ = nullptr;
          Result<QueryResult> rest = DrainResults(Deadline::After(kCancelGrace));
          cancel_ = saved;
          (void)rest;
        }
        return waited;
      }
      if (PQconsumeInput(conn_) == 0) return LostConnection("reading a result");
    }
    PGresult* raw = PQgetResult(conn_);
    if (raw == nullptr) break;
    QueryResult result(raw);
    ExecStatusType status = PQresultStatus(raw);
    if (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE ||
        status == PGRES_NONFATAL_ERROR) {
      if (!first_error) first_error = StatusFromResult(raw);
    } else if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH) {
      // A COPY sent through Exec: end it so the connection stays usable.
      if (status == PGRES_COPY_IN) PQputCopyEnd(conn_, "COPY is not allowed here");
      if (!first_error) {
        first_error = Status(StatusCode::kInvalidArgument, "COPY must use the COPY streams");
      }
      if (status != PGRES_COPY_IN) {
        if (IsBad()) break;
        return *first_error;  // the connection is left in COPY mode; caller must drop it
      }
    } else {
      last.emplace(std::move(result));
    }
    if (IsBad()) break;
  }
  // libpq reports a connection lost under a result as an error result of
  // its own, without an SQLSTATE: the connection class, not the server's.
  if (first_error && IsBad() && first_error->sqlstate().empty()) {
    return LostConnection("running a statement");
  }
  if (first_error) return *first_error;
  if (IsBad()) return LostConnection("running a statement");
  if (!last) return Status(StatusCode::kServerError, "the server returned no result");
  return std::move(*last);
}

Result<QueryResult> Connection::Exec(std::string_view sql, Deadline deadline) {
  std::string text(sql);
  if (PQsendQuery(conn_, text.c_str()) == 0) return LostConnection("sending a statement");
  PGC_RETURN_IF_ERROR(Flush(deadline));
  return DrainResults(deadline);
}

Result<QueryResult> Connection::ExecParams(std::string_view sql, const QueryParams& params,
                                           Deadline deadline) {
  std::string text(sql);
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  if (PQsendQueryParams(conn_, text.c_str(), static_cast<int>(values.size()), nullptr,
                        values.data(), nullptr, nullptr, 0) == 0) {
    return LostConnection("sending a statement");
  }
  PGC_RETURN_IF_ERROR(Flush(deadline));
  return DrainResults(deadline);
}

Status Connection::Run(std::string_view sql, Deadline deadline) {
  return Exec(sql, deadline).status();
}

Status Connection::RunIgnoringCancel(std::string_view sql, Deadline deadline) {
  const CancelToken* saved = std::exchange(cancel_, nullptr);
  Status run = Run(sql, deadline);
  cancel_ = saved;
  return run;
}

Status Connection::StartCopy(std::string_view sql, ExecStatusType expected, Deadline deadline) {
  std::string text(sql);
  if (PQsendQuery(conn_, text.c_str()) == 0) return LostConnection("sending COPY");
  PGC_RETURN_IF_ERROR(Flush(deadline));
  while (PQisBusy(conn_) != 0) {
    PGC_RETURN_IF_ERROR(Wait(true, false, deadline));
    if (PQconsumeInput(conn_) == 0) return LostConnection("starting COPY");
  }
  PGresult* raw = PQgetResult(conn_);
  if (raw == nullptr) return LostConnection("starting COPY");
  QueryResult result(raw);
  if (PQresultStatus(raw) == expected) return Status::Ok();
  Status error = PQresultStatus(raw) == PGRES_FATAL_ERROR
                     ? StatusFromResult(raw)
                     : Status(StatusCode::kInvalidArgument, "statement did not start a COPY");
  (void)DrainResults(deadline);
  return error;
}

}  // namespace pgcourier

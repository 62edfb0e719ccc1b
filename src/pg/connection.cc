#include "pg/connection.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <map>
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

// What a server (or a pooler in front of it) was found to refuse in the
// startup packet, by host and port, for the whole process: each later
// connection goes there without it at once.
struct StartupMemory {
  bool refuses_options = false;
  bool no_transaction_timeout = false;
};

std::mutex memory_mu;
std::map<std::string, StartupMemory>& Memory() {
  static auto* memory = new std::map<std::string, StartupMemory>();
  return *memory;
}

std::string ServerKey(const ConnInfo& info) {
  return info.EffectiveHost() + ":" + info.EffectivePort();
}

StartupMemory Remembered(const std::string& key) {
  std::lock_guard<std::mutex> lock(memory_mu);
  auto found = Memory().find(key);
  return found == Memory().end() ? StartupMemory{} : found->second;
}

void Remember(const std::string& key, const StartupMemory& memory) {
  std::lock_guard<std::mutex> lock(memory_mu);
  Memory()[key] = memory;
}

// The session's settings in the order they are made: the search_path first,
// then the pinned formats, the timeouts, then the caller's settings.
std::vector<SessionSetting> SessionSettings(const ConnectOptions& options,
                                            bool transaction_timeout) {
  std::vector<SessionSetting> settings;
  if (options.secure_search_path) settings.push_back({"search_path", ""});
  if (options.pin_formats) {
    for (SessionSetting& s : PinnedFormatSettings()) settings.push_back(std::move(s));
  }
  if (options.timeouts_off) {
    settings.push_back({"statement_timeout", "0"});
    settings.push_back({"idle_in_transaction_session_timeout", "0"});
    if (transaction_timeout) settings.push_back({"transaction_timeout", "0"});
  }
  for (const SessionSetting& s : options.settings) settings.push_back(s);
  return settings;
}

// One attempt: PQconnectStartParams + PQconnectPoll, every wait a poll().
// `startup_options`, when not empty, replaces the `options` keyword. The
// server's own words of a failure go to `raw_error`.
Result<PGconn*> ConnectOnce(const ConnInfo& info, const ConnectOptions& options,
                            const std::string& who, const std::string& startup_options,
                            Deadline deadline, std::string* raw_error) {
  std::vector<const char*> keywords;
  std::vector<const char*> values;
  bool has_app_name = false;
  for (const auto& [k, v] : info.params()) {
    if (k == "options" && !startup_options.empty()) continue;
    keywords.push_back(k.c_str());
    values.push_back(v.c_str());
    has_app_name = has_app_name || k == "application_name";
  }
  if (!startup_options.empty()) {
    keywords.push_back("options");
    values.push_back(startup_options.c_str());
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
  auto failed = [&]() -> Result<PGconn*> {
    *raw_error = PQerrorMessage(conn);
    return fail(TranslateConnectFailure(*raw_error, who));
  };
  if (PQstatus(conn) == CONNECTION_BAD) return failed();
  PostgresPollingStatusType poll_status = PGRES_POLLING_WRITING;
  while (poll_status != PGRES_POLLING_OK) {
    if (poll_status == PGRES_POLLING_FAILED) return failed();
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

// True when the session did not take the startup packet's settings: a
// pooler that drops `options` answers with the server's own DateStyle.
bool StartupSettingsDropped(PGconn* conn, const std::vector<SessionSetting>& settings) {
  for (const SessionSetting& s : settings) {
    if (s.name != "DateStyle" && s.name != "IntervalStyle") continue;
    const char* reported = PQparameterStatus(conn, s.name.c_str());
    if (reported != nullptr && s.value != reported) return true;
  }
  return false;
}

// An encoding name is letters, digits and '_' (pg_encoding_to_char).
std::string EncodingName(std::string_view encoding) {
  std::string name;
  for (char c : encoding) {
    if (std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_') name.push_back(c);
  }
  return name;
}

}  // namespace

Result<std::unique_ptr<Connection>> Connection::Connect(const ConnInfo& info,
                                                        const ConnectOptions& options) {
  const std::string display = info.Redacted();
  const std::string who = Who(options, display);
  const std::string key = ServerKey(info);
  const std::string user_options = info.Get("options");
  const Deadline overall = Deadline::After(options.total_timeout);
  auto backoff = kFirstBackoff;
  auto started = Deadline::Clock::now();
  // The most telling failure: a later attempt cut short by the overall
  // deadline says less than the refusal before it.
  std::optional<Status> telling;
  for (int attempt = 1;; ++attempt) {
    StartupMemory memory = Remembered(key);
    const std::vector<SessionSetting> settings =
        SessionSettings(options, !memory.no_transaction_timeout);
    const std::string startup =
        memory.refuses_options || settings.empty() ? "" : StartupOptions(settings, user_options);
    Deadline attempt_deadline = Deadline::After(options.attempt_timeout).Min(overall);
    std::string raw_error;
    Result<PGconn*> conn = ConnectOnce(info, options, who, startup, attempt_deadline, &raw_error);
    if (!conn.ok() && !startup.empty()) {
      // What the startup packet carried and was refused: reconnect at once
      // without it.
      if (raw_error.find("unsupported startup parameter: options") != std::string::npos) {
        spdlog::debug("{} refuses startup options (a pooler); settings are made once connected",
                      who);
        memory.refuses_options = true;
        Remember(key, memory);
        continue;
      }
      if (!memory.no_transaction_timeout &&
          raw_error.find("\"transaction_timeout\"") != std::string::npos) {
        memory.no_transaction_timeout = true;
        Remember(key, memory);
        continue;
      }
    }
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
      const bool before_17 = PQserverVersion(*conn) < 170000;
      std::vector<SessionSetting> late;
      const bool dropped = !startup.empty() && StartupSettingsDropped(*conn, settings);
      if (dropped) {
        spdlog::debug("{} dropped the startup options (a pooler); settings are made once connected",
                      who);
      }
      if (dropped || (before_17 && !memory.no_transaction_timeout)) {
        // Later sessions there: settings made once connected, and no
        // transaction_timeout before 17 (which would refuse the session).
        memory.refuses_options = memory.refuses_options || dropped;
        memory.no_transaction_timeout = memory.no_transaction_timeout || before_17;
        Remember(key, memory);
      }
      if (startup.empty() || dropped) {
        for (const SessionSetting& s : settings) {
          if (s.name == "transaction_timeout" && before_17) continue;
          late.push_back(s);
        }
        if (!late.empty()) connection->reset_on_close_ = true;
      }
      if (options.pin_formats && connection->client_encoding() != connection->server_encoding()) {
        // A role's or database's client_encoding: back to the database's
        // own, so that the server converts nothing.
        late.push_back({"client_encoding", EncodingName(connection->server_encoding())});
      }
      if (!late.empty()) {
        Status set = connection->Run(SetConfigSql(late), Deadline::After(options.attempt_timeout));
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
  if (conn_ == nullptr) return;
  if (reset_on_close_ && !IsBad() && IdleOutsideTransaction()) {
    // The settings were made on a server session a pooler may hand to its
    // next client: undo them. (A session left in a transaction is closed by
    // the pooler, not reused.)
    Status reset = RunIgnoringCancel("RESET ALL", Deadline::After(kCancelGrace));
    if (!reset.ok()) spdlog::debug("RESET ALL on {} failed: {}", display_, reset.message());
  }
  PQfinish(conn_);
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

Result<QueryResult> Connection::NextResult(Deadline deadline) {
  while (PQisBusy(conn_) != 0) {
    Status waited = Wait(true, false, deadline);
    if (!waited.ok()) {
      // Out of time or cancelled: DrainResults stops the statement and reads
      // what is left, so the connection stays usable.
      if (waited.code() == StatusCode::kTimeout || waited.code() == StatusCode::kCancelled) {
        (void)DrainResults(deadline);
      }
      return waited;
    }
    if (PQconsumeInput(conn_) == 0) return LostConnection("reading a result");
  }
  PGresult* raw = PQgetResult(conn_);
  if (raw == nullptr) return Status(StatusCode::kServerError, "the server returned no result");
  ExecStatusType status = PQresultStatus(raw);
  if (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE ||
      status == PGRES_NONFATAL_ERROR) {
    Status error = StatusFromResult(raw);
    PQclear(raw);
    const bool lost = IsBad() && error.sqlstate().empty();
    (void)DrainResults(deadline);
    if (lost) return LostConnection("reading a result");
    return error;
  }
  return QueryResult(raw);
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
  PGC_RETURN_IF_ERROR(SendCopy(sql, deadline));
  return AwaitCopy(expected, deadline);
}

Status Connection::SendCopy(std::string_view sql, Deadline deadline) {
  std::string text(sql);
  if (PQsendQuery(conn_, text.c_str()) == 0) return LostConnection("sending COPY");
  return Flush(deadline);
}

Status Connection::AwaitCopy(ExecStatusType expected, Deadline deadline) {
  // Statements before the COPY in `sql` (a BEGIN, a TRUNCATE) each answer
  // first; their results are passed over.
  for (;;) {
    while (PQisBusy(conn_) != 0) {
      PGC_RETURN_IF_ERROR(Wait(true, false, deadline));
      if (PQconsumeInput(conn_) == 0) return LostConnection("starting COPY");
    }
    PGresult* raw = PQgetResult(conn_);
    if (raw == nullptr) return LostConnection("starting COPY");
    if (PQresultStatus(raw) != PGRES_COMMAND_OK) return CopyStarted(raw, expected, deadline);
    PQclear(raw);
  }
}

// The first result of a COPY's start that is not a statement before it.
Status Connection::CopyStarted(PGresult* raw, ExecStatusType expected, Deadline deadline) {
  QueryResult result(raw);
  if (PQresultStatus(raw) == expected) return Status::Ok();
  Status error = PQresultStatus(raw) == PGRES_FATAL_ERROR
                     ? StatusFromResult(raw)
                     : Status(StatusCode::kInvalidArgument, "statement did not start a COPY");
  (void)DrainResults(deadline);
  return error;
}

}  // namespace pgcourier

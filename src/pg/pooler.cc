#include "pg/pooler.h"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <optional>
#include <utility>

namespace pgcourier {
namespace {

constexpr const char* kPidSql = "SELECT pg_catalog.pg_backend_pid()";

// Sends `sql` and waits at most `wait` for its answer: std::nullopt when
// none came in time (a client the pooler keeps waiting for a server
// session). The connection is then busy and only good for closing.
std::optional<Result<QueryResult>> AskWithin(Connection& conn, const char* sql,
                                             std::chrono::milliseconds wait) {
  if (PQsendQuery(conn.raw(), sql) == 0) {
    return Result<QueryResult>(
        Status(StatusCode::kConnectionFailed, "sending a statement failed on " + conn.display()));
  }
  const Deadline deadline = Deadline::After(wait);
  Status flushed = conn.Flush(deadline);
  if (!flushed.ok()) return Result<QueryResult>(flushed);
  while (PQisBusy(conn.raw()) != 0) {
    Status waited = conn.Wait(true, false, deadline);
    if (waited.code() == StatusCode::kTimeout) return std::nullopt;
    if (!waited.ok()) return Result<QueryResult>(waited);
    if (PQconsumeInput(conn.raw()) == 0) {
      return Result<QueryResult>(
          Status(StatusCode::kConnectionFailed, "reading a result failed on " + conn.display()));
    }
  }
  return conn.DrainResults(Deadline::After(wait));
}

Result<int> PidOf(const Result<QueryResult>& answer) {
  if (!answer.ok()) return answer.status();
  if (answer->rows() != 1) return Status(StatusCode::kServerError, "pg_backend_pid() gave no row");
  return static_cast<int>(answer->GetInt(0, 0));
}

bool EndsWith(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

Result<PoolerProbe> ProbePooler(const ConnInfo& info, ConnectOptions options,
                                std::chrono::milliseconds wait) {
  options.secure_search_path = false;
  options.pin_formats = false;
  options.timeouts_off = false;
  options.settings.clear();
  Result<std::unique_ptr<Connection>> first = Connection::Connect(info, options);
  if (!first.ok()) return first.status();
  Connection& a = **first;
  const int announced = PQbackendPID(a.raw());
  Result<QueryResult> asked = a.Exec(kPidSql, Deadline::After(options.attempt_timeout));
  Result<int> real = PidOf(asked);
  if (!real.ok()) return real.status().WithContext("reading the backend pid");

  PoolerProbe probe;
  if (announced == *real) {
    // The key is the server's: no pooler, unless one passes keys on. Then a
    // few transactions in a row still show a server session that changes.
    for (int i = 0; i < 3; ++i) {
      Result<QueryResult> again = a.Exec(kPidSql, Deadline::After(options.attempt_timeout));
      Result<int> pid = PidOf(again);
      if (!pid.ok()) return pid.status().WithContext("reading the backend pid");
      if (*pid != *real) {
        probe.mode = PoolerMode::kTransaction;
        probe.evidence =
            fmt::format("backend pid {}, then {} in the next transaction", *real, *pid);
        return probe;
      }
    }
    return probe;
  }

  // A pooler's own backend key. Does the first client keep its server
  // session while a second one holds a transaction?
  Result<std::unique_ptr<Connection>> second = Connection::Connect(info, options);
  if (!second.ok()) return second.status();
  Connection& b = **second;
  std::optional<Result<QueryResult>> held =
      AskWithin(b, "BEGIN; SELECT pg_catalog.pg_backend_pid()", wait);
  if (!held) {
    // The idle first client kept the only server session: session mode.
    probe.mode = PoolerMode::kSession;
    probe.pool_exhausted = true;
    probe.evidence = fmt::format(
        "a pooler's backend key ({}, server session {}); a second client got no server "
        "session within {} s while the first held one",
        announced, *real, std::chrono::duration_cast<std::chrono::seconds>(wait).count());
    return probe;
  }
  if (!held->ok()) {
    // Statement mode refuses transaction blocks.
    probe.mode = PoolerMode::kTransaction;
    probe.evidence = "a pooler refused a transaction block: " + held->status().message();
    return probe;
  }
  std::optional<Result<QueryResult>> after = AskWithin(a, kPidSql, wait);
  (void)b.Run("ROLLBACK", Deadline::After(options.attempt_timeout));
  if (!after) {
    probe.mode = PoolerMode::kTransaction;
    probe.evidence = fmt::format(
        "a pooler's backend key ({}); the first client's server session {} went to another "
        "client's transaction, and its next statement waited for one",
        announced, *real);
    return probe;
  }
  Result<int> now = PidOf(*after);
  if (!now.ok()) return now.status().WithContext("reading the backend pid");
  if (*now != *real) {
    probe.mode = PoolerMode::kTransaction;
    probe.evidence = fmt::format(
        "a pooler's backend key ({}); server session {}, then {} in the next transaction",
        announced, *real, *now);
    return probe;
  }
  probe.mode = PoolerMode::kSession;
  probe.evidence = fmt::format(
      "a pooler's backend key ({}); the client kept server session {} across transactions",
      announced, *real);
  return probe;
}

std::string TransactionPoolerMessage(const std::string& role, const std::string& evidence) {
  return fmt::format(
      "the {} is reached through a connection pooler in transaction or statement mode ({}): "
      "pgcourier's sessions keep settings, a snapshot and locks across transactions, which "
      "such a pooler hands to other clients; nothing was changed",
      role, evidence);
}

Status RefuseTransactionPooler(const ConnInfo& info, const std::string& role,
                               const ConnectOptions& options, Status* unreached) {
  Result<PoolerProbe> probe = ProbePooler(info, options);
  if (!probe.ok()) {
    if (probe.status().code() == StatusCode::kCancelled) return probe.status();
    *unreached = probe.status();
    return Status::Ok();
  }
  *unreached = Status::Ok();
  if (probe->mode != PoolerMode::kTransaction) return Status::Ok();
  return Status(StatusCode::kFailedPrecondition, TransactionPoolerMessage(role, probe->evidence),
                DirectConnectionHint(info));
}

std::string DirectConnectionHint(const ConnInfo& info) {
  const std::string host = info.EffectiveHost();
  const std::string port = info.EffectivePort();
  const std::string generic = "connect to the server directly, not through the pooler";
  // Neon: ep-name-pooler.region.aws.neon.tech -> ep-name.region.aws.neon.tech
  const size_t neon = host.find("-pooler.");
  if (neon != std::string::npos) {
    std::string direct = host;
    direct.erase(neon, std::string("-pooler").size());
    return generic + ": use host " + direct + " (the endpoint's host without -pooler)";
  }
  // Supabase's pooler: aws-0-<region>.pooler.supabase.com, user postgres.<project>.
  if (EndsWith(host, ".pooler.supabase.com")) {
    const std::string user = info.EffectiveUser();
    const size_t dot = user.find('.');
    if (dot != std::string::npos && dot + 1 < user.size()) {
      return generic + ": use host db." + user.substr(dot + 1) + ".supabase.co, port 5432, user " +
             user.substr(0, dot) + " (the project's direct connection)";
    }
    return generic + ": use the project's direct connection, db.<project>.supabase.co port 5432";
  }
  // Supabase's PgBouncer on the database host: port 6543; the server is 5432.
  if (EndsWith(host, ".supabase.co") && port == "6543") {
    return generic + ": use port 5432 on " + host + " (6543 is the pooler's)";
  }
  return generic +
         " (the server's own host and port; PgBouncer's usual port is 6432, "
         "PostgreSQL's 5432)";
}

}  // namespace pgcourier

#include "pg/result.h"

#include <charconv>
#include <cstdlib>

namespace pgcourier {

int64_t QueryResult::GetInt(int row, int col, int64_t fallback) const {
  if (IsNull(row, col)) return fallback;
  std::string_view text = Get(row, col);
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) return fallback;
  return value;
}

int64_t QueryResult::AffectedRows() const {
  const char* tuples = PQcmdTuples(result_.get());
  if (tuples == nullptr || *tuples == '\0') return 0;
  return std::strtoll(tuples, nullptr, 10);
}

Status StatusFromResult(const PGresult* result) {
  if (result == nullptr) return Status(StatusCode::kConnectionFailed, "no result from server");
  auto field = [result](int code) {
    const char* value = PQresultErrorField(result, code);
    return std::string(value != nullptr ? value : "");
  };
  std::string sqlstate = field(PG_DIAG_SQLSTATE);
  std::string message = field(PG_DIAG_MESSAGE_PRIMARY);
  if (message.empty()) {
    message = PQresultErrorMessage(result);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
      message.pop_back();
    }
  }
  std::string detail = field(PG_DIAG_MESSAGE_DETAIL);
  if (!detail.empty()) message += " (" + detail + ")";
  StatusCode code =
      sqlstate.rfind("08", 0) == 0 ? StatusCode::kConnectionFailed : StatusCode::kServerError;
  // A query_canceled (57014) that arrives as a result was not asked for by
  // this process (its own cancels end in Wait): a statement_timeout or
  // another session's pg_cancel_backend. It is the server's error, with the
  // server's reason, never mistaken for the user's Ctrl-C.
  return Status(code, message, field(PG_DIAG_MESSAGE_HINT), sqlstate);
}

}  // namespace pgcourier

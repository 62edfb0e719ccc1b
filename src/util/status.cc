#include "util/status.h"

namespace pgcourier {

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "ok";
    case StatusCode::kInvalidArgument:
      return "invalid_argument";
    case StatusCode::kConnectionFailed:
      return "connection_failed";
    case StatusCode::kServerError:
      return "server_error";
    case StatusCode::kTimeout:
      return "timeout";
    case StatusCode::kCancelled:
      return "cancelled";
    case StatusCode::kNotFound:
      return "not_found";
    case StatusCode::kIoError:
      return "io_error";
    case StatusCode::kFailedPrecondition:
      return "failed_precondition";
  }
  return "unknown";
}

bool Status::retryable() const {
  switch (code_) {
    case StatusCode::kConnectionFailed:
    case StatusCode::kTimeout:
      return true;
    case StatusCode::kServerError:
      // Class 08: connection exception. 57P01..57P03: admin shutdown, crash
      // shutdown, cannot connect now (starting up). 53300: too many
      // connections. 40001/40P01: serialization failure / deadlock.
      return sqlstate_.rfind("08", 0) == 0 || sqlstate_ == "57P01" || sqlstate_ == "57P02" ||
             sqlstate_ == "57P03" || sqlstate_ == "53300" || sqlstate_ == "40001" ||
             sqlstate_ == "40P01";
    default:
      return false;
  }
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  if (sqlstate_.empty()) return message_;
  return message_ + " (SQLSTATE " + sqlstate_ + ")";
}

Status Status::WithContext(const std::string& context) const {
  if (ok()) return *this;
  return Status(code_, context + ": " + message_, hint_, sqlstate_);
}

Status Status::WithHint(std::string hint) const {
  if (ok()) return *this;
  return Status(code_, message_, std::move(hint), sqlstate_);
}

}  // namespace pgcourier

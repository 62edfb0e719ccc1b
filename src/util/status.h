// Errors as values: every failure a server, the network or the user's input
// can cause is returned as a Status (or a Result<T> that holds one), never
// thrown. Programmer mistakes are assertions.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace pgcourier {

enum class StatusCode {
  kOk,
  kInvalidArgument,     // the user's input is wrong; fix the input
  kConnectionFailed,    // could not connect, or the connection was lost
  kServerError,         // the server rejected a statement (see sqlstate)
  kTimeout,             // a deadline passed
  kCancelled,           // the caller cancelled (Ctrl-C)
  kNotFound,            // a file, binary or object is missing
  kIoError,             // local I/O or process failure
  kFailedPrecondition,  // the servers are not in a state that allows this
};

// Stable lower-case name of a code, used in JSON output.
const char* StatusCodeName(StatusCode code);

// The outcome of an operation. A non-ok Status carries a one-line message
// saying what went wrong, and where it can, a hint saying what to do about it,
// and the server's SQLSTATE when the server reported the error.
class Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message, std::string hint = {}, std::string sqlstate = {})
      : code_(code),
        message_(std::move(message)),
        hint_(std::move(hint)),
        sqlstate_(std::move(sqlstate)) {}

  static Status Ok() { return {}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::string& hint() const { return hint_; }
  const std::string& sqlstate() const { return sqlstate_; }

  // True when the same operation may succeed if tried again: the connection
  // class of failures (SQLSTATE 08*, a lost or refused connection, a server
  // starting up or out of connection slots, a timeout). Never true for a
  // cancellation, bad input, or a server that rejected the statement itself.
  bool retryable() const;

  // "message (SQLSTATE xxxxx)"; the hint is not included.
  std::string ToString() const;

  // Returns a copy whose message is prefixed with "context: ".
  Status WithContext(const std::string& context) const;
  Status WithHint(std::string hint) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::string hint_;
  std::string sqlstate_;
};

// Either a value or a non-ok Status.
template <typename T>
class Result {
 public:
  Result(T value) : data_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : data_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(data_).ok() && "Result built from an ok Status holds no value");
  }

  bool ok() const { return std::holds_alternative<T>(data_); }
  explicit operator bool() const { return ok(); }

  // The error; Status::Ok() when a value is held.
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(data_); }

  T& value() & {
    assert(ok());
    return std::get<T>(data_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<T>(data_);
  }
  T&& value() && {
    assert(ok());
    return std::get<T>(std::move(data_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> data_;
};

}  // namespace pgcourier

// Returns the Status of an expression from the enclosing function when it is
// not ok. (The variable's name carries the line, so the macro nests inside
// lambdas passed to another use of it.)
#define PGC_STATUS_CONCAT_INNER(a, b) a##b
#define PGC_STATUS_CONCAT(a, b) PGC_STATUS_CONCAT_INNER(a, b)
#define PGC_RETURN_IF_ERROR(expr) \
  PGC_RETURN_IF_ERROR_IMPL(PGC_STATUS_CONCAT(pgc_status_, __LINE__), expr)
// NOLINTBEGIN(bugprone-macro-parentheses): `var` is a declared name.
#define PGC_RETURN_IF_ERROR_IMPL(var, expr) \
  do {                                      \
    ::pgcourier::Status var = (expr);       \
    if (!var.ok()) return var;              \
  } while (false)
// NOLINTEND(bugprone-macro-parentheses)

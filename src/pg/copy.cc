#include "pg/copy.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>

namespace pgcourier {
namespace {

constexpr std::chrono::minutes kDefaultStallTimeout{10};

int64_t StallTimeoutFromEnvironment() {
  const char* text = std::getenv("PGCOURIER_STALL_TIMEOUT");
  if (text != nullptr) {
    char* end = nullptr;
    double seconds = std::strtod(text, &end);
    if (end != text && *end == '\0' && seconds > 0 && seconds < 1e9) {
      return std::max<int64_t>(1, std::llround(seconds * 1000));
    }
  }
  return std::chrono::milliseconds(kDefaultStallTimeout).count();
}

Status LostDuringCopy(Connection& conn, const char* what) {
  std::string message = PQerrorMessage(conn.raw());
  message = message.substr(0, message.find('\n'));  // the rest is libpq's boilerplate
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  return Status(StatusCode::kConnectionFailed, std::string(what) + ": " + message, "", "08006");
}

// Connection::Wait, bounded by the stall timeout as well: the wait ends when
// the socket is ready (a byte moved), the deadline passes (kTimeout) or
// nothing moved for CopyStallTimeout() (a stall: the connection is given up).
Status WaitForCopy(Connection& conn, bool for_read, bool for_write, Deadline deadline) {
  const std::chrono::milliseconds stall = CopyStallTimeout();
  Status waited = conn.Wait(for_read, for_write, deadline.Min(Deadline::After(stall)));
  if (waited.code() != StatusCode::kTimeout || deadline.passed()) return waited;
  conn.GiveUp();
  return Status(StatusCode::kConnectionFailed,
                fmt::format("the connection to {} stalled: nothing {} for {:g} s during COPY",
                            conn.display(), for_write ? "sent or received" : "received",
                            std::chrono::duration<double>(stall).count()),
                "check the network between pgcourier and the server (a proxy, NAT or firewall "
                "that keeps the connection open but forwards nothing); the limit is "
                "PGCOURIER_STALL_TIMEOUT seconds",
                "08006");
}

// Connection::Flush with the stall bound of WaitForCopy.
Status FlushCopy(Connection& conn, Deadline deadline) {
  for (;;) {
    int flushed = PQflush(conn.raw());
    if (flushed == 0) return Status::Ok();
    if (flushed < 0) return LostDuringCopy(conn, "connection lost during COPY");
    PGC_RETURN_IF_ERROR(WaitForCopy(conn, true, true, deadline));
    if (PQconsumeInput(conn.raw()) == 0) return LostDuringCopy(conn, "connection lost during COPY");
  }
}

}  // namespace

std::chrono::milliseconds CopyStallTimeout() {
  // Read once: the environment does not change under a running migration.
  static const std::chrono::milliseconds kTimeout(StallTimeoutFromEnvironment());
  return kTimeout;
}

Result<CopyOutStream> CopyOutStream::Start(Connection& conn, std::string_view sql,
                                           Deadline deadline, bool more_follow) {
  PGC_RETURN_IF_ERROR(conn.StartCopy(sql, PGRES_COPY_OUT, deadline));
  return CopyOutStream(&conn, more_follow);
}

Result<CopyOutStream> CopyOutStream::Await(Connection& conn, Deadline deadline, bool more_follow) {
  PGC_RETURN_IF_ERROR(conn.AwaitCopy(PGRES_COPY_OUT, deadline));
  return CopyOutStream(&conn, more_follow);
}

CopyOutStream::CopyOutStream(CopyOutStream&& other) noexcept
    : conn_(other.conn_),
      more_follow_(other.more_follow_),
      buffer_(other.buffer_),
      done_(other.done_),
      rows_(other.rows_) {
  other.buffer_ = nullptr;
  other.done_ = true;
}

CopyOutStream::~CopyOutStream() {
  FreeBuffer();
  if (!done_ && conn_ != nullptr && !conn_->IsBad()) {
    // Stop the server from sending the rest, then read what was already sent.
    conn_->CancelRunning();
    std::string_view ignored;
    auto grace = Deadline::After(std::chrono::seconds(5));
    bool ended_well = false;
    while (!done_ && !conn_->IsBad()) {
      Result<bool> more = Next(&ignored, grace);
      ended_well = more.ok() && !*more;
      if (!more.ok() || !*more) break;
    }
    // Ended before the cancel arrived, it left the string's next statements
    // running.
    if (more_follow_ && (ended_well || !done_)) conn_->GiveUp();
  }
}

void CopyOutStream::FreeBuffer() {
  if (buffer_ != nullptr) PQfreemem(buffer_);
  buffer_ = nullptr;
}

Result<bool> CopyOutStream::Next(std::string_view* chunk, Deadline deadline) {
  FreeBuffer();
  if (done_) return false;
  for (;;) {
    int got = PQgetCopyData(conn_->raw(), &buffer_, 1);
    if (got > 0) {
      ++rows_;
      *chunk = std::string_view(buffer_, static_cast<size_t>(got));
      return true;
    }
    if (got == 0) {
      Status waited = WaitForCopy(*conn_, true, false, deadline);
      if (!waited.ok()) return waited;
      if (PQconsumeInput(conn_->raw()) == 0) {
        done_ = true;
        return LostDuringCopy(*conn_, "connection lost during COPY");
      }
      continue;
    }
    done_ = true;
    // -1: the COPY ended; its result says whether it succeeded. -2: error.
    Result<QueryResult> result =
        more_follow_ ? conn_->NextResult(deadline) : conn_->DrainResults(deadline);
    if (!result.ok()) return result.status();
    return false;
  }
}

Result<CopyInStream> CopyInStream::Start(Connection& conn, std::string_view sql, Deadline deadline,
                                         bool more_follow) {
  PGC_RETURN_IF_ERROR(conn.StartCopy(sql, PGRES_COPY_IN, deadline));
  return CopyInStream(&conn, more_follow);
}

Result<CopyInStream> CopyInStream::Await(Connection& conn, Deadline deadline, bool more_follow) {
  PGC_RETURN_IF_ERROR(conn.AwaitCopy(PGRES_COPY_IN, deadline));
  return CopyInStream(&conn, more_follow);
}

CopyInStream::CopyInStream(CopyInStream&& other) noexcept
    : conn_(other.conn_), more_follow_(other.more_follow_), finished_(other.finished_) {
  other.finished_ = true;
}

CopyInStream::~CopyInStream() {
  if (!finished_) Abort("aborted");
}

Status CopyInStream::Write(std::string_view data, Deadline deadline) {
  for (;;) {
    int put = PQputCopyData(conn_->raw(), data.data(), static_cast<int>(data.size()));
    // In non-blocking mode libpq grows its send buffer instead of refusing
    // data, so a source faster than the target would make it grow without
    // bound: send what is queued before taking more. Memory stays at about
    // one write, whatever the table's size.
    if (put == 1) return FlushCopy(*conn_, deadline);
    if (put < 0) return LostDuringCopy(*conn_, "connection lost during COPY");
    // Buffer full: wait until the socket drains, reading any notices.
    PGC_RETURN_IF_ERROR(WaitForCopy(*conn_, true, true, deadline));
    if (PQconsumeInput(conn_->raw()) == 0 || PQflush(conn_->raw()) < 0) {
      return LostDuringCopy(*conn_, "connection lost during COPY");
    }
  }
}

Result<int64_t> CopyInStream::Finish(Deadline deadline) {
  finished_ = true;
  for (;;) {
    int ended = PQputCopyEnd(conn_->raw(), nullptr);
    if (ended == 1) break;
    if (ended < 0) return LostDuringCopy(*conn_, "connection lost ending COPY");
    PGC_RETURN_IF_ERROR(WaitForCopy(*conn_, false, true, deadline));
  }
  PGC_RETURN_IF_ERROR(FlushCopy(*conn_, deadline));
  // The COPY's result follows its end at once; waiting for it is bounded
  // like the stream.
  while (PQisBusy(conn_->raw()) != 0) {
    PGC_RETURN_IF_ERROR(WaitForCopy(*conn_, true, false, deadline));
    if (PQconsumeInput(conn_->raw()) == 0) {
      return LostDuringCopy(*conn_, "connection lost ending COPY");
    }
  }
  Result<QueryResult> result =
      more_follow_ ? conn_->NextResult(deadline) : conn_->DrainResults(deadline);
  if (!result.ok()) return result.status();
  return result->AffectedRows();
}

void CopyInStream::Abort(const char* reason) {
  finished_ = true;
  if (conn_ == nullptr || conn_->IsBad()) return;
  // Not DrainResults: on a timeout it sends a cancel request, which hangs
  // on a silent network. A server that does not take the end of the COPY
  // and answer within the grace is given up instead.
  auto grace = Deadline::After(std::chrono::seconds(5));
  PGconn* raw = conn_->raw();
  int ended = 0;
  while ((ended = PQputCopyEnd(raw, reason)) == 0) {
    if (!conn_->Wait(false, true, grace).ok()) return conn_->GiveUp();
  }
  if (ended < 0 || !conn_->Flush(grace).ok()) return conn_->GiveUp();
  for (;;) {
    while (PQisBusy(raw) != 0) {
      if (!conn_->Wait(true, false, grace).ok() || PQconsumeInput(raw) == 0) {
        return conn_->GiveUp();
      }
    }
    PGresult* result = PQgetResult(raw);
    if (result == nullptr) return;
    PQclear(result);
  }
}

}  // namespace pgcourier

#include "pg/copy.h"

#include <chrono>

namespace pgcourier {

Result<CopyOutStream> CopyOutStream::Start(Connection& conn, std::string_view sql,
                                           Deadline deadline) {
  PGC_RETURN_IF_ERROR(conn.StartCopy(sql, PGRES_COPY_OUT, deadline));
  return CopyOutStream(&conn);
}

CopyOutStream::CopyOutStream(CopyOutStream&& other) noexcept
    : conn_(other.conn_), buffer_(other.buffer_), done_(other.done_), rows_(other.rows_) {
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
    while (!done_) {
      Result<bool> more = Next(&ignored, grace);
      if (!more.ok() || !*more) break;
    }
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
      Status waited = conn_->Wait(true, false, deadline);
      if (!waited.ok()) return waited;
      if (PQconsumeInput(conn_->raw()) == 0) {
        done_ = true;
        return Status(StatusCode::kConnectionFailed,
                      std::string("connection lost during COPY: ") + PQerrorMessage(conn_->raw()),
                      "", "08006");
      }
      continue;
    }
    done_ = true;
    // -1: the COPY ended; its result says whether it succeeded. -2: error.
    Result<QueryResult> result = conn_->DrainResults(deadline);
    if (!result.ok()) return result.status();
    return false;
  }
}

Result<CopyInStream> CopyInStream::Start(Connection& conn, std::string_view sql,
                                         Deadline deadline) {
  PGC_RETURN_IF_ERROR(conn.StartCopy(sql, PGRES_COPY_IN, deadline));
  return CopyInStream(&conn);
}

CopyInStream::CopyInStream(CopyInStream&& other) noexcept
    : conn_(other.conn_), finished_(other.finished_) {
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
    if (put == 1) return conn_->Flush(deadline);
    if (put < 0) {
      return Status(StatusCode::kConnectionFailed,
                    std::string("connection lost during COPY: ") + PQerrorMessage(conn_->raw()), "",
                    "08006");
    }
    // Buffer full: wait until the socket drains, reading any notices.
    PGC_RETURN_IF_ERROR(conn_->Wait(true, true, deadline));
    if (PQconsumeInput(conn_->raw()) == 0 || PQflush(conn_->raw()) < 0) {
      return Status(StatusCode::kConnectionFailed,
                    std::string("connection lost during COPY: ") + PQerrorMessage(conn_->raw()), "",
                    "08006");
    }
  }
}

Result<int64_t> CopyInStream::Finish(Deadline deadline) {
  finished_ = true;
  for (;;) {
    int ended = PQputCopyEnd(conn_->raw(), nullptr);
    if (ended == 1) break;
    if (ended < 0) {
      return Status(StatusCode::kConnectionFailed,
                    std::string("connection lost ending COPY: ") + PQerrorMessage(conn_->raw()), "",
                    "08006");
    }
    PGC_RETURN_IF_ERROR(conn_->Wait(false, true, deadline));
  }
  PGC_RETURN_IF_ERROR(conn_->Flush(deadline));
  Result<QueryResult> result = conn_->DrainResults(deadline);
  if (!result.ok()) return result.status();
  return result->AffectedRows();
}

void CopyInStream::Abort(const char* reason) {
  finished_ = true;
  if (conn_ == nullptr || conn_->IsBad()) return;
  auto grace = Deadline::After(std::chrono::seconds(5));
  int ended = 0;
  while ((ended = PQputCopyEnd(conn_->raw(), reason)) == 0) {
    if (!conn_->Wait(false, true, grace).ok()) return;
  }
  if (ended < 0 || !conn_->Flush(grace).ok()) return;
  (void)conn_->DrainResults(grace);
}

}  // namespace pgcourier

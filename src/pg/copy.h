// COPY streams over a Connection. A CopyOutStream reads the chunks of
// `COPY ... TO STDOUT`; a CopyInStream writes those of `COPY ... FROM STDIN`
// and must be ended with Finish(): destroyed without it, it aborts the COPY
// quietly (PQputCopyEnd with an error), so an interrupted load never commits.
#pragma once

#include <chrono>
#include <memory>
#include <string_view>

#include "pg/connection.h"

namespace pgcourier {

// How long a COPY stream waits without a byte moving (received by a
// CopyOutStream, taken by the socket of a CopyInStream) before it gives up
// with a retryable kConnectionFailed (SQLSTATE 08006) and gives the
// connection up (Connection::GiveUp). Streams usually wait without a
// deadline, and a black-holed network (a proxy or NAT that keeps TCP alive
// but forwards nothing) would otherwise be waited on forever: TCP keepalives
// are answered by whatever is in between. Defaults to env
// PGCOURIER_STALL_TIMEOUT (seconds, > 0) when set, else 10 minutes:
// generous, because a source may rightly send nothing for a while (a COPY
// scanning pages of dead rows). The environment is read once.
std::chrono::milliseconds CopyStallTimeout();

// Several COPYs may go in one query string (one round trip for all): the
// stream of each but the last is opened with `more_follow`, so that its end
// reads its own result only and leaves the next statements to the next
// stream (Await). A stream abandoned before its end gives its connection up
// when more may follow: only dropping it is left.
class CopyOutStream {
 public:
  // Sends `sql` (a COPY ... TO STDOUT) and waits for the server to start it.
  static Result<CopyOutStream> Start(Connection& conn, std::string_view sql,
                                     Deadline deadline = Deadline::Never(),
                                     bool more_follow = false);
  // Waits for the start of a COPY ... TO STDOUT the caller sent with
  // Connection::SendCopy, or the next one of a string of COPYs.
  static Result<CopyOutStream> Await(Connection& conn, Deadline deadline = Deadline::Never(),
                                     bool more_follow = false);

  CopyOutStream(CopyOutStream&& other) noexcept;
  CopyOutStream& operator=(CopyOutStream&&) = delete;
  ~CopyOutStream();

  // Reads the next chunk (one row for text/CSV, arbitrary for binary). The
  // view is valid until the next call. Returns false at the end of the data,
  // after the COPY's final result was read and found ok.
  Result<bool> Next(std::string_view* chunk, Deadline deadline = Deadline::Never());

  int64_t rows() const { return rows_; }

 private:
  CopyOutStream(Connection* conn, bool more_follow) : conn_(conn), more_follow_(more_follow) {}
  void FreeBuffer();

  Connection* conn_;
  bool more_follow_ = false;
  char* buffer_ = nullptr;
  bool done_ = false;
  int64_t rows_ = 0;
};

class CopyInStream {
 public:
  // Sends `sql` (a COPY ... FROM STDIN) and waits for the server to start it.
  static Result<CopyInStream> Start(Connection& conn, std::string_view sql,
                                    Deadline deadline = Deadline::Never(),
                                    bool more_follow = false);
  // Waits for the start of the next COPY ... FROM STDIN of the string the
  // last stream's was in (the statements between are passed over; the
  // first that fails is the error).
  static Result<CopyInStream> Await(Connection& conn, Deadline deadline = Deadline::Never(),
                                    bool more_follow = false);

  CopyInStream(CopyInStream&& other) noexcept;
  CopyInStream& operator=(CopyInStream&&) = delete;
  // Aborts the COPY when Finish() was not called.
  ~CopyInStream();

  // Sends data, waiting (poll) until libpq's buffer is on the wire, so at
  // most one write is held in memory.
  Status Write(std::string_view data, Deadline deadline = Deadline::Never());
  // Ends the COPY and returns the number of rows the server stored.
  Result<int64_t> Finish(Deadline deadline = Deadline::Never());
  // Ends the COPY with an error so that nothing of it is stored.
  void Abort(const char* reason);

 private:
  CopyInStream(Connection* conn, bool more_follow) : conn_(conn), more_follow_(more_follow) {}

  Connection* conn_;
  bool more_follow_ = false;
  bool finished_ = false;
};

}  // namespace pgcourier

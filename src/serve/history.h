// A bounded ring of what the page server read at each poll, for the page's
// charts (throughput, replication lag, WAL retained on the source). It lives
// in the serving process only: the history starts when the server starts.
// Not thread-safe; the server guards it.
#pragma once

#include <cstddef>
#include <deque>
#include <nlohmann/json.hpp>

#include "migrate/run_status.h"

namespace pgcourier {

class StatusHistory {
 public:
  explicit StatusHistory(size_t capacity) : capacity_(capacity) {}

  // Keeps the reading of `view` at `at_unix` (seconds since the epoch),
  // dropping the oldest past the capacity.
  void Add(const StatusView& view, double at_unix);

  // [{at, databases: {name: {bytes_done, rows_done, lag_bytes,
  //   retained_wal_bytes}}}], oldest first; the replication values are null
  // where not read (a copy, a server not reached).
  nlohmann::json Json() const;

  size_t size() const { return samples_.size(); }

 private:
  size_t capacity_;
  std::deque<nlohmann::json> samples_;
};

}  // namespace pgcourier

// The sessions the workers of a migration keep between tasks, across every
// database: at most `capacity` sets are open at once (one per worker), so
// that a run with several databases in flight opens no more connections than
// one with a single database. A set belongs to one database (its source
// session reads at that database's snapshot); a worker that needs a set of
// another database while all places are taken closes an idle set first.
//
// Thread-safe.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pg/connection.h"
#include "verify/verifier.h"

namespace pgcourier {

// One worker's sessions for one database, opened on first use.
struct WorkerSessions {
  std::unique_ptr<Connection> source;  // in a transaction at the snapshot
  std::unique_ptr<Connection> target;  // bulk-load settings
  std::unique_ptr<TableChecksums> checksums;
};

class SessionPool {
 public:
  explicit SessionPool(int capacity)
      : capacity_(static_cast<size_t>(capacity < 1 ? 1 : capacity)) {}

  // An idle set of `database`, or a new empty one (after closing an idle set
  // of another database when every place is taken).
  std::unique_ptr<WorkerSessions> Take(const std::string& database);
  // Keeps `sessions` for the next task of `database`.
  void GiveBack(const std::string& database, std::unique_ptr<WorkerSessions> sessions);
  // Closes `sessions` (broken, or of a failed task) and frees its place.
  void Discard(std::unique_ptr<WorkerSessions> sessions);
  // Closes the idle sets of `database` (its data phase is over).
  void Close(const std::string& database);

  // Sets open now, and the most ever open at once.
  size_t open() const;
  size_t peak() const;

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::map<std::string, std::vector<std::unique_ptr<WorkerSessions>>> idle_;
  size_t open_ = 0;
  size_t peak_ = 0;
};

}  // namespace pgcourier

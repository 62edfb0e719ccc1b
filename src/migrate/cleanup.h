// `pgcourier cleanup`: no trace of a migration left on either server.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "util/cancel.h"
#include "util/status.h"

namespace pgcourier {

// `pgcourier cleanup`: removes every replication object the run in
// `work_dir` made (subscriptions, slots, publications), on both sides, as
// far as each server can be reached, the way back of cutover
// --keep-rollback too (the subscription on the source, the slot and
// publication on the target), then undoes every change it recorded
// (REPLICA IDENTITY FULL, an extension it installed, a read-only source or,
// after a rollback, target database). Idempotent. First each side of each
// database is probed for a connection pooler (pg/pooler.h): one in
// transaction mode refuses the whole cleanup (kFailedPrecondition) before
// anything is dropped.
struct CleanupOptions {
  std::string work_dir;
  std::string source;
  std::string target;
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(30)};
  const CancelToken* cancel = nullptr;
};
struct CleanupOutcome {
  std::vector<std::string> removed;  // "subscription ... (target)", ...
  // Changes made for the migration and undone now (REPLICA IDENTITY FULL,
  // an extension pgcourier installed, the read-only source of cutover).
  std::vector<std::string> undone;
  std::vector<std::string> problems;  // what could not be reached or removed, with the fix
  bool ok() const { return problems.empty(); }
};
Result<CleanupOutcome> Cleanup(const CleanupOptions& options);

}  // namespace pgcourier

// `pgcourier cutover`: finishes the databases that replicate (state
// "syncing") of the run in a work directory: optionally stops the source's
// writes, waits until the target applied every change, copies what logical
// replication does not carry (sequences, tables without replica identity,
// large objects, materialized views), verifies, and removes the replication
// objects and what was changed for them.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "migrate/options.h"
#include "verify/verifier.h"

namespace pgcourier {

// `pgcourier cutover`: finishes the databases that replicate (state
// "syncing") of the run in `work_dir`.
struct CutoverOptions {
  std::string work_dir;
  std::string source;  // optional: the recorded servers, with passwords
  std::string target;
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};  // to catch up
  // First make the source databases read-only for new transactions
  // (ALTER DATABASE ... SET default_transaction_read_only = on).
  bool stop_source_writes = false;
  int jobs = 2;  // for the verification
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(30)};
  const CancelToken* cancel = nullptr;
  std::function<void(const ProgressEvent&)> on_progress;
};

// How the cutover of one database ended: kSkipped when it was not
// replicating. Name() gives "done", "failed", "cancelled", "skipped".
enum class CutoverState { kDone, kFailed, kCancelled, kSkipped };
const char* Name(CutoverState state);

struct CutoverDatabase {
  std::string name;
  std::string target_name;
  CutoverState state = CutoverState::kSkipped;
  std::string error;
  std::string hint;
  // From the moment writes were stopped (or the cutover began, when the
  // user stopped them) to the end.
  double writes_stopped_seconds = 0;
  std::string undo;             // how to make the source writable again, when stopped
  int64_t tables_recopied = 0;  // left out of replication, copied again
  int64_t sequences = 0;
  std::vector<std::string> removed;  // replication objects dropped
  std::optional<DatabaseVerification> verification;
};

struct CutoverOutcome {
  std::vector<CutoverDatabase> databases;
  bool ok() const;
};

Result<CutoverOutcome> Cutover(const CutoverOptions& options);

}  // namespace pgcourier

// The data phase of one database: every table's rows (whole or in slices),
// its indexes as soon as its rows are in, and its comparison with the source
// (then ANALYZE) right after, as tasks in the migration's shared WorkPool.
// The comparison reads the source no second time: each copy hashes the rows
// it relays (copy/row_hash.h), and the target's rows are read back once and
// hashed alike. A table an earlier run copied, whose marks hold no hash, or
// with generated columns (not in the copy's rows) or rows over 8 MB (each
// read back would be held whole in memory) is checksummed on both sides
// instead (verify/verifier.h, TableChecksums).
// A small table (whole, up to 16 MB) is one task instead: its indexes built
// in its copy's transaction, the COMMIT sent with its ANALYZE and read-back,
// three statement strings to the target in all.
// Once every copy and index build is done, `post_data` runs on a worker of
// its own while the last comparisons go on.
//
// A task that loses its connection is tried again (MigrateOptions::
// table_attempts); one that waits for a lock another session holds waits in
// rounds (migrate/lock_waits.h). The first failure stops the tasks not yet
// begun and is the phase's result.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "catalog/copy_catalog.h"
#include "migrate/options.h"
#include "migrate/outcome.h"
#include "migrate/recorded_run.h"
#include "migrate/resume_plan.h"
#include "migrate/session_pool.h"
#include "migrate/sessions.h"
#include "migrate/work_pool.h"
#include "verify/verifier.h"

namespace pgcourier {

// Receives the phase's events without their database, which the caller adds.
using ProgressFn = std::function<void(ProgressEvent event)>;

struct DataPhaseSetup {
  const MigrateOptions* options = nullptr;
  const SessionFactory* sessions = nullptr;
  SessionPool* session_pool = nullptr;
  WorkPool* pool = nullptr;
  DatabaseRecord* record = nullptr;
  std::string source_database;
  std::string target_database;
  std::string snapshot;  // exported, held open for the whole phase
  const CopyCatalog* catalog = nullptr;
  std::vector<TablePlan>* plans = nullptr;  // pending counts are used up
  ProgressFn progress;
  std::function<Status()> post_data;
};

struct DataPhaseResult {
  std::vector<TableOutcome> tables;         // per table of the catalog
  std::vector<TableVerification> compared;  // compared right after their copy
};

Result<DataPhaseResult> RunDataPhase(const DataPhaseSetup& setup);

}  // namespace pgcourier

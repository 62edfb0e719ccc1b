// `pgcourier migrate` with the copy method: pre-flight checks, roles (when
// asked), then per database: one exported snapshot of the source (the object
// filter resolved at it), target database created, schema pre-data, parallel
// COPY streaming of every table with index builds and per-table verification
// as each table lands, large objects, schema post-data, sequences,
// materialized views, ANALYZE, and the verification of the rest. A database
// ends "done" only when its verification found no difference.
//
// Every database shares one pool of jobs. The run's plan and progress are
// kept in the work directory (state/store.h), and the target holds progress
// marks committed with the data (copy/progress_marks.h), so an interrupted
// run resumes (MigrateOptions::resume) without losing or duplicating a row.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "catalog/object_filter.h"
#include "preflight/check.h"
#include "roles/role_copy.h"
#include "schema/schema_dump.h"
#include "verify/verifier.h"

namespace pgcourier {

// A line of progress: which database, which phase, what happened.
struct ProgressEvent {
  std::string database;
  std::string phase;  // "check", "create", "snapshot", "pre-data", "data", ...
  std::string message;
  int64_t done = 0;   // units done in the phase (tables, bytes) when known
  int64_t total = 0;  // units in the phase when known
};

struct MigrateOptions {
  CheckOptions check;    // source, target, jobs, database filters, pg_bindirs
  std::string work_dir;  // schema archives and the run's state (state/store.h)
  RestorePolicy policy;
  // Schemas and tables moved, and tables moved without their rows. Resolved
  // per database against the source at the snapshot, so that pg_dump, the
  // copy and the verification leave out exactly the same objects.
  ObjectFilter filter;
  // Replication method: set REPLICA IDENTITY FULL on the source's tables
  // that have no primary key or replica identity, so that they are
  // replicated too (instead of copied again at cutover). Changes the source:
  // only when asked.
  bool replica_identity_full = false;
  // Create the source's roles missing on the target first (roles/role_copy.h).
  bool roles = false;
  RoleCopyOptions role_options;
  // Continue the run recorded in work_dir. The source, target, filters,
  // policy and database selection are the recorded ones; check.source and
  // check.target may be given again (with their passwords) and must then
  // name the same servers and databases.
  bool resume = false;
  int table_attempts = 3;  // a table whose connection is lost is copied again
  // How long a step may wait for a table lock that another session holds
  // (zero: no limit). While it waits, a progress line names the table and the
  // holding sessions every few seconds; past it, the database fails with the
  // same names, and a resumed run takes the step up again.
  std::chrono::milliseconds lock_timeout{std::chrono::minutes(10)};
  // Tables over 1.5x this size (or 1.5x a quarter of a job's share of the
  // data, if larger) are copied in slices.
  int64_t split_bytes = int64_t{256} << 20;
  std::function<void(const ProgressEvent&)> on_progress;  // may be empty; any thread
};

struct PhaseTiming {
  std::string phase;
  double seconds = 0;
};

struct TableOutcome {
  std::string table;  // schema.name
  int64_t rows = 0;
  int64_t bytes = 0;
  double seconds = 0;
  int attempts = 0;
  bool earlier_run = false;  // copied by the run that was resumed
};

struct DatabaseOutcome {
  std::string name;         // on the source
  std::string target_name;  // on the target
  Method method = Method::kCopy;
  // kDone, kSyncing, kFailed, kCancelled, kPending (not started: the run
  // stopped)
  DatabaseState state = DatabaseState::kPending;
  std::string error;
  std::string hint;
  // False when the data was copied at more than one snapshot (resumed after
  // the first one was gone).
  bool consistent = true;
  bool done_earlier = false;  // finished by the run that was resumed
  std::vector<PhaseTiming> phases;
  std::vector<TableOutcome> tables;
  int64_t sequences = 0;
  int64_t large_objects = 0;
  int64_t materialized_views = 0;
  std::optional<DatabaseVerification> verification;
};

struct MigrationOutcome {
  std::string run_id;
  std::string work_dir;
  bool resumed = false;
  CheckReport check;
  std::optional<RoleCopyReport> roles;
  std::vector<DatabaseOutcome> databases;
  bool checks_passed = false;
  bool ok() const;
};

// Runs the move. Errors (bad input, a work directory in use or holding
// another run, cancellation before anything started) are returned as
// Status; everything that happens once checks ran is in the outcome, per
// database.
Result<MigrationOutcome> Migrate(const MigrateOptions& options);

}  // namespace pgcourier

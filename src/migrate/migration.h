// `pgcourier migrate` with the copy method: pre-flight checks, then per
// database: one exported snapshot of the source (the object filter resolved
// at it), target database created, schema pre-data, parallel COPY streaming
// of every table, large objects, schema post-data, sequences, materialized
// views, ANALYZE, and built-in verification at the same snapshot. A
// database ends "done" only when its verification found no difference.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "catalog/object_filter.h"
#include "preflight/check.h"
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
  std::string work_dir;  // where schema archives and the state file go
  RestorePolicy policy;
  // Schemas and tables moved, and tables moved without their rows. Resolved
  // per database against the source at the snapshot, so that pg_dump, the
  // copy and the verification leave out exactly the same objects.
  ObjectFilter filter;
  int table_attempts = 3;  // a table whose connection is lost is copied again
  // Tables over 1.5x this size (or 1.5x a quarter of a job's share of the
  // data, if larger) are copied in slices of their integer key.
  int64_t split_bytes = int64_t{256} << 20;
  std::function<void(const ProgressEvent&)> on_progress;  // may be empty
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
};

struct DatabaseOutcome {
  std::string name;         // on the source
  std::string target_name;  // on the target
  std::string state;        // "done", "failed", "cancelled", "pending"
  std::string error;
  std::string hint;
  std::vector<PhaseTiming> phases;
  std::vector<TableOutcome> tables;
  int64_t sequences = 0;
  int64_t large_objects = 0;
  int64_t materialized_views = 0;
  std::optional<DatabaseVerification> verification;
};

struct MigrationOutcome {
  CheckReport check;
  std::vector<DatabaseOutcome> databases;
  bool checks_passed = false;
  bool ok() const;
};

// Runs the move. Errors (bad input, cancellation before anything started)
// are returned as Status; everything that happens once checks ran is in the
// outcome, per database.
Result<MigrationOutcome> Migrate(const MigrateOptions& options);

}  // namespace pgcourier

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

#include "migrate/options.h"
#include "migrate/outcome.h"
#include "util/status.h"

namespace pgcourier {

// Runs the move. Errors (bad input, a work directory in use or holding
// another run, cancellation before anything started) are returned as
// Status; everything that happens once checks ran is in the outcome, per
// database.
Result<MigrationOutcome> Migrate(const MigrateOptions& options);

}  // namespace pgcourier

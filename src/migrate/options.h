// What `pgcourier migrate` is asked to do (MigrateOptions), and the progress
// it reports while it does it (ProgressEvent).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "catalog/object_filter.h"
#include "preflight/check.h"
#include "roles/role_copy.h"
#include "schema/schema_dump.h"

namespace pgcourier {

// A line of progress: which database, which phase, what happened.
struct ProgressEvent {
  enum class Level { kInfo, kWarning, kError };
  std::string database;
  std::string phase;  // "check", "create", "snapshot", "pre-data", "data", ...
  std::string message;
  int64_t done = 0;   // units done in the phase (tables, bytes) when known
  int64_t total = 0;  // units in the phase when known
  // What it is about when it is one object: "public.orders" (a table),
  // "public.orders_pkey" (an index), a check's object; else empty.
  std::string object = {};
  Level level = Level::kInfo;
  std::string hint = {};  // what to do, for a warning or an error
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
  // What the comparison right after each table's copy covers: its rows'
  // contents and count (full), or only the count (counts: a user who
  // accepts less; the report says that contents were not compared).
  bool verify_counts_only = false;
  // Every table's rows as COPY text (migrate --copy-format text), instead of
  // COPY's binary form for the tables whose column types allow it
  // (TableToCopy::binary).
  bool copy_as_text = false;
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
  // data, if larger) are copied in slices. A slice costs both servers more
  // per row than a whole table's copy (copy/slice_plan.h), so only tables
  // of gigabytes are cut.
  int64_t split_bytes = int64_t{1} << 30;
  std::function<void(const ProgressEvent&)> on_progress;  // may be empty; any thread
};

}  // namespace pgcourier

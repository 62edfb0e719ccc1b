// What `pgcourier migrate` did: per database its state, phases, tables and
// verification (MigrationOutcome), as the report renders it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "preflight/check.h"
#include "roles/role_copy.h"
#include "state/run_states.h"
#include "verify/verifier.h"

namespace pgcourier {

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
  // Its rows moved in COPY's binary form, or as text for `text_reason`
  // (TableToCopy::binary).
  bool binary = false;
  std::string text_reason;
  // How it was loaded when not as itself: "loaded through the root
  // public.t (4 partitions): public.t is hash partitioned on type public.mood"
  std::string note;
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

}  // namespace pgcourier

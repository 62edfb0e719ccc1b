// The plan of a database's data phase: per table its slices, and, when a
// run resumes, which of its copy steps and index builds the target's
// progress marks (copy/progress_marks.h) say are already there.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "catalog/copy_catalog.h"
#include "copy/progress_marks.h"
#include "copy/table_copy.h"
#include "pg/connection.h"

namespace pgcourier {

struct TablePlan {
  std::vector<Slice> slices;  // none: copied whole
  std::set<size_t> indexes_done;
  int pending = 1;       // copy steps not yet done
  bool earlier = false;  // every copy step was done by an earlier run
  int parts() const { return slices.empty() ? 1 : static_cast<int>(slices.size()); }
};

// Plans every table of `catalog`: slices per copy/slice_plan.h, read at the
// snapshot through `at_snapshot`; a tree loaded through its root gets one
// slice per source partition (Slice::Kind::kPartition).
Result<std::vector<TablePlan>> PlanTables(Connection& at_snapshot, const CopyCatalog& catalog,
                                          int64_t split_bytes, int jobs);

struct ResumePlan {
  std::map<std::string, ProgressMark> marks;  // on the target at the start
  bool any_earlier = false;                   // some table's rows come from an earlier snapshot
  std::vector<std::string> recopied;          // tables partly copied before, emptied
};

// A resumed database: what the target's progress marks say is already
// there. A table whose every copy step is marked is done (its rows come
// from the earlier snapshot); a table with only some of its slices marked is
// emptied and copied again whole at this run's snapshot (slices of two
// snapshots could hold a row twice, or miss one that moved). Index builds
// that are marked are done. Updates `plans` accordingly. A tree loaded
// through its root is one table here: with some of its partitions marked, the
// root is emptied with every partition, and the whole tree copied again.
Result<ResumePlan> ReconcileWithMarks(Connection& target, const CopyCatalog& catalog,
                                      std::vector<TablePlan>& plans);

}  // namespace pgcourier

// What a database holds besides table rows and indexes, moved after them:
// large objects, sequence values, materialized views' contents, and the
// planner's statistics of what the table copies did not analyze. Each reads
// the source through `at_snapshot`, a session in a transaction at the
// migration's snapshot, and writes through `target`, an idle session.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "catalog/copy_catalog.h"
#include "pg/connection.h"

namespace pgcourier {

// The progress mark of the large objects' copy.
inline constexpr const char* kLargeObjectsStep = "large objects";

struct LargeObjectsCopied {
  int64_t count = 0;
  int64_t bytes = 0;
  // What was left out: owners and grantees missing on the target.
  std::vector<std::string> notes;
};

// What of a large object besides its data and comment is copied.
struct LargeObjectPolicy {
  bool owners = false;  // --preserve-owners: ALTER LARGE OBJECT ... OWNER TO
  bool grants = false;  // --preserve-acl: its GRANTs
};

// Copies the large objects `oids`, keeping their OIDs, with their comments
// and, as `policy` says, owners (those present on the target) and grants (to
// roles present on the target), in one target transaction with the
// progress mark kLargeObjectsStep: all of them or none. Each object's data
// is read whole (lo_get): memory holds one object at a time.
Result<LargeObjectsCopied> CopyLargeObjects(Connection& at_snapshot, Connection& target,
                                            const std::vector<uint32_t>& oids,
                                            const LargeObjectPolicy& policy = {});

// Sets every sequence of `sequences` on the target to the source's
// last_value and is_called: read in one query and set in one statement per
// 500 sequences, so the round trips do not grow with their number. A
// statement the target refuses is tried again one sequence at a time, to
// name the one refused. Returns how many were set.
Result<int64_t> SetSequences(Connection& at_snapshot, Connection& target,
                             const std::vector<SequenceToSet>& sequences);

// Refreshes the materialized views populated on the source. One can read
// another: they are refreshed in passes until no progress is made, so that
// dependency order needs no catalog walk. Returns how many were populated.
Result<int64_t> RefreshMaterializedViews(Connection& target,
                                         const std::vector<MaterializedView>& views);

// ANALYZE of what the table copies leave without statistics: partitioned
// tables (statistics over all their partitions) and populated materialized
// views; up to 500 named in one ANALYZE.
Status AnalyzeRemaining(Connection& target);

}  // namespace pgcourier

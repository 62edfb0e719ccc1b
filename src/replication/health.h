// Whether a database's replication works, read from both servers: the
// subscription's apply worker and error counters, the slot's WAL on the
// source, the tables not yet ready, and the schema drift between the tables
// the move covers on the source and the target (catalogs of both sides
// compared). Reading only; what to run to repair drift is spelled out as
// DDL (sync-schema runs the additive part).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "catalog/object_filter.h"
#include "pg/connection.h"
#include "replication/replication.h"
#include "util/status.h"

namespace pgcourier {

// pg_stat_subscription_stats (15+): errors of the apply worker and of the
// table synchronization workers since the subscription was made.
struct ErrorCounts {
  int64_t apply = 0;
  int64_t sync = 0;
};

// One difference between the source's tables (those the move covers) and
// the target's, with the statements that repair it.
struct SchemaDrift {
  enum class Kind {
    kColumnAdded,       // a source column the target table lacks
    kColumnDropped,     // a target column the source table no longer has
    kColumnType,        // a column of another type on each side
    kTableMissing,      // a source table the target lacks
    kPartitionMissing,  // a source partition the target lacks
    kNotPublished,      // a replicable source table outside the publication
  };
  Kind kind = Kind::kColumnAdded;
  std::string table;  // schema.name as the source spells it
  std::string detail;
  std::string target_ddl;  // to run on the target, when any
  std::string source_ddl;  // on the source: only ALTER PUBLICATION of pgcourier's own
  // Adds to the target (or to the publication) without removing anything:
  // sync-schema --apply runs it.
  bool additive = false;
};

const char* Name(SchemaDrift::Kind kind);

struct ReplicationHealth {
  // The subscription's counters now (15+), and those errors count from.
  std::optional<ErrorCounts> errors;
  ErrorCounts baseline;
  bool subscription_enabled = true;
  bool apply_worker = false;           // an apply worker was seen running
  std::string wal_status;              // the slot's: reserved, extended, unreserved, lost
  int64_t safe_wal_size = -1;          // bytes the slot may still fall behind; -1 unlimited
  std::vector<std::string> not_ready;  // "public.t (d)"
  std::vector<SchemaDrift> drift;
  // Causes that waiting cannot fix (each one line), and what to do.
  std::vector<std::string> problems;
  std::vector<std::string> hints;
  std::vector<std::string> warnings;
  bool broken() const { return !problems.empty(); }
  std::string Error() const;  // the problems joined
  std::string Hint() const;   // the hints joined
};

// Reads the subscription's error counters; nullopt before 15 (no such view)
// or when the subscription does not exist.
Result<std::optional<ErrorCounts>> ReadErrorCounts(Connection& target,
                                                   const std::string& subscription);

// The schema drift of the tables that `filter` selects on the source
// (source: a session in the source database, target: in the target one).
Result<std::vector<SchemaDrift>> ReadSchemaDrift(Connection& source, Connection& target,
                                                 const ReplicationNames& names,
                                                 const ObjectFilter& filter);

// Reads everything above. `work_dir` names the directory in hints.
// `sample_worker`: looks for the apply worker a few times over about a
// second (a worker that keeps failing lives only moments of each retry).
Result<ReplicationHealth> ReadHealth(Connection& source, Connection& target,
                                     const ReplicationNames& names, const ObjectFilter& filter,
                                     const ErrorCounts& baseline, const std::string& work_dir,
                                     bool sample_worker = true);

}  // namespace pgcourier

// Moving one table's rows from source to target as a direct COPY stream:
// bytes pass through pgcourier without being parsed or stored.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/copy_catalog.h"
#include "copy/quiet_triggers.h"
#include "copy/row_hash.h"
#include "pg/connection.h"
#include "pg/transaction.h"

namespace pgcourier {

struct TableCopyStats {
  int64_t rows = 0;
  int64_t bytes = 0;
  double seconds = 0;
  // The rows as they came from the source, for the verification, in the
  // table's COPY form (text or binary: TableToCopy::binary) and the source
  // session's client_encoding.
  RowSetHash hash;
  std::string encoding;
  // False when the hash is not known: a copy an earlier run marked without
  // one.
  bool hashed = true;
  // The largest row relayed, in bytes of its COPY form: reading such rows
  // back from the target would hold each one whole in memory.
  int64_t largest_row = 0;
};

// A part of a large table, copied on its own so that one table can use
// every job: a range of heap blocks (read with a TID range scan, 14+), or,
// on older sources, a range of an integer key. For a partition tree loaded
// through its root (TableToCopy::through_root), one source partition.
struct Slice {
  enum class Kind { kBlocks, kKeys, kPartition };
  Kind kind = Kind::kBlocks;
  // Blocks: [first, last), last < 0 meaning "to the end" (the table may have
  // grown since the snapshot; the rows the snapshot sees are all in blocks
  // that existed then, but the last slice reads to the end regardless).
  // Keys: first..last of the split column, both included.
  int64_t first = 0;
  int64_t last = 0;
  // kPartition: the source leaf table, quoted and qualified.
  std::string partition = {};
  // The SQL condition selecting the slice's rows of `table`.
  std::string Condition(const TableToCopy& table) const;
  // "[blocks 0..1024)", "[keys 1..5000]", "[partition "public"."t_0"]"
  std::string Display() const;
};

// Called about once a second while a copy streams, with the rows and bytes
// (of COPY text) this attempt has relayed so far, on the copying thread.
using CopyProgress = std::function<void(int64_t rows, int64_t bytes)>;

// Copies `table` (or the slice `slice` of it) as a COPY ... TO STDOUT on the
// source feeding a COPY ... FROM STDIN on the target, in one target
// transaction that also records `mark` in the target's progress marks
// (copy/progress_marks.h). A whole table is TRUNCATEd first and loaded with
// FREEZE; a slice is loaded into the shared table. Either every row and the
// mark are committed or nothing is, so after any failure the mark says
// whether to copy again (HasProgressMark). `source` must already be in a
// transaction at the migration's snapshot; `target` must be idle.
//
// A tree loaded through its root goes into the root (`COPY root (columns)
// FROM STDIN`, no FREEZE, which a partitioned table refuses): whole, the root
// is TRUNCATEd (with every partition) and each source partition's rows
// follow one another into one COPY; a kPartition slice adds one source
// partition's rows. Since those rows may land in any target partition, a
// slice never empties anything: its transaction and mark make it exact.
// `parts` is the number of slices the table was cut into (1: whole).
// The rows travel in COPY's binary form when `table.binary`, else as text,
// unparsed either way but for cutting binary rows apart to hash them
// (copy/binary_copy.h). Text, and text values within binary rows, pass in
// the source session's client_encoding: a target session in another one is
// set to the source's. `quiet`
// keeps the target's user triggers from firing, inside the transaction
// (copy/quiet_triggers.h). `progress`, when given, hears how far it is.
Result<TableCopyStats> CopyTable(Connection& source, Connection& target, const TableToCopy& table,
                                 const std::optional<Slice>& slice, int parts,
                                 const std::string& mark, Deadline deadline = Deadline::Never(),
                                 const QuietTriggers& quiet = {},
                                 const CopyProgress& progress = {});

// A copy whose rows are in the target transaction, not yet committed.
struct LoadedCopy {
  Transaction transaction;
  TableCopyStats stats;  // rows: as the target stored them; seconds: not set
  // What ends the copy inside its transaction (its progress mark, the
  // triggers put back), to be sent with the COMMIT.
  std::string last_statements;
};

// CopyTable without its COMMIT: the caller sends more in the transaction
// (the small table's index builds) and commits with `last_statements`.
// Destroyed uncommitted, the transaction rolls back and nothing is kept.
Result<LoadedCopy> LoadTable(Connection& source, Connection& target, const TableToCopy& table,
                             const std::optional<Slice>& slice, int parts, const std::string& mark,
                             Deadline deadline = Deadline::Never(), const QuietTriggers& quiet = {},
                             const CopyProgress& progress = {});

// Several small tables (whole, none loaded through its root) in one target
// transaction: every source COPY goes in one query string and every
// target TRUNCATE and COPY (FREEZE) in another, so the target costs one
// round trip per table (the end of one COPY and the start of the next)
// instead of a transaction each. `stats` per table, in order; the
// transaction is left open with every table's progress mark in
// `last_statements`, to be sent with the COMMIT. On failure nothing is
// kept, and both sessions are to be dropped: the source may still be in
// the middle of its string; `failed_at`, when given, is set to the index of
// the table whose copy failed.
struct LoadedBatch {
  Transaction transaction;
  std::vector<TableCopyStats> stats;
  std::string last_statements;
};
Result<LoadedBatch> LoadTables(Connection& source, Connection& target,
                               const std::vector<const TableToCopy*>& tables,
                               Deadline deadline = Deadline::Never(), size_t* failed_at = nullptr);

// The rows `table` holds on the target, read once with COPY ... TO STDOUT
// in the form CopyTable relays them in (binary when `table.binary`) and
// hashed alike, in `encoding` (the source session's; a target session in
// another one is set to it). A partition tree loaded through its root is
// read at the root. The text form pins DateStyle, extra_float_digits and
// the rest on both sides (pg/session_settings.h), so equal rows print
// alike; the binary form of the types it is used for depends on no setting
// (numeric keeps its scale, float8 its bits: -0 and 0 differ).
// `first_statements` (a COMMIT, an ANALYZE) are sent before the COPY in the
// same round trip; the first of them that fails is the error.
Result<RowSetHash> HashTargetRows(Connection& target, const TableToCopy& table,
                                  const std::string& encoding,
                                  Deadline deadline = Deadline::Never(),
                                  std::string_view first_statements = {});
// The same for several tables, their COPYs in one query string: one round
// trip for all. Hashes in the order of `tables`.
Result<std::vector<RowSetHash>> HashTargetRows(Connection& target,
                                               const std::vector<const TableToCopy*>& tables,
                                               const std::string& encoding,
                                               Deadline deadline = Deadline::Never(),
                                               std::string_view first_statements = {});

// The progress mark of a table's copy, or of one slice of it.
std::string CopyStepName(const TableToCopy& table, const std::optional<Slice>& slice);

// Called when BuildIndex's ALTER TABLE, after the index is built, was
// refused with `refused` after waiting `waited` for a lock (lock_timeout),
// with the build's transaction still open and usable: Ok tries the ALTER
// again, keeping the index built; an error ends the build with it.
using IndexLockRoundFn =
    std::function<Status(const Status& refused, std::chrono::steady_clock::duration waited)>;

// Builds one index on the target and, when it backs a primary key or unique
// constraint, adds the constraint with ADD CONSTRAINT ... USING INDEX; an
// exclusion constraint is added with its own definition. All in one
// transaction with the progress mark IndexStepName(index), so that a build
// is either complete and marked or not there at all; its COMMIT is sent
// apart, only once the rest succeeded.
// The builds of one table run side by side: CREATE INDEX takes a SHARE
// lock. A build that goes on to alter the table (a constraint, CLUSTER ON,
// REPLICA IDENTITY: ACCESS EXCLUSIVE) is the one exception when the table
// has two or more such builds (each would hold its SHARE lock waiting for
// the other's to go): those take SHARE ROW EXCLUSIVE first and so run one at
// a time, apart from the plain builds too. The table's only altering build
// builds its index beside the others, then waits for them to commit in its
// ALTER TABLE; a round of that wait ended by lock_timeout is rolled back to
// a savepoint and given to `lock_round` (none: the build fails).
Status BuildIndex(Connection& target, const TableToCopy& table, const IndexToBuild& index,
                  const IndexLockRoundFn& lock_round = {}, Deadline deadline = Deadline::Never());
// The indexes of `table` whose build alters the table, and so serializes
// with the others when there is more than one (BuildIndex).
int AlteringIndexBuilds(const TableToCopy& table);
// BuildIndex's statements with its progress mark, for a transaction that
// already holds the table's ACCESS EXCLUSIVE lock (the TRUNCATE of a small
// table's copy): the index is built in the copy's transaction.
std::string IndexBuildSql(const TableToCopy& table, const IndexToBuild& index);
std::string IndexStepName(const IndexToBuild& index);

}  // namespace pgcourier

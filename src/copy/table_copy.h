// Moving one table's rows from source to target as a direct COPY stream:
// bytes pass through pgcourier without being parsed or stored.
#pragma once

#include <cstdint>
#include <optional>

#include "catalog/copy_catalog.h"
#include "pg/connection.h"

namespace pgcourier {

struct TableCopyStats {
  int64_t rows = 0;
  int64_t bytes = 0;
  double seconds = 0;
};

// A slice of a table by its split column, bounds included.
struct KeyRange {
  int64_t first = 0;
  int64_t last = 0;
};

// Copies `table` (or the slice `range` of it) as a COPY ... TO STDOUT on the
// source feeding a COPY ... FROM STDIN on the target, in one target
// transaction. A whole table is TRUNCATEd first and loaded with FREEZE; a
// slice is loaded into the shared table, and when `redo` is set the slice's
// rows are deleted first (a previous attempt may have committed before its
// connection was lost). Either every row is committed or none is, so a failed
// copy can simply be done again. `source` must already be in a transaction
// at the migration's snapshot; `target` must be idle.
Result<TableCopyStats> CopyTable(Connection& source, Connection& target, const TableToCopy& table,
                                 const std::optional<KeyRange>& range = std::nullopt,
                                 bool redo = false, Deadline deadline = Deadline::Never());

// Builds one index on the target and, when it backs a primary key or unique
// constraint, adds the constraint with ADD CONSTRAINT ... USING INDEX; an
// exclusion constraint is added with its own definition.
Status BuildIndex(Connection& target, const TableToCopy& table, const IndexToBuild& index,
                  Deadline deadline = Deadline::Never());

}  // namespace pgcourier

// Moving one table's rows from source to target as a direct COPY stream:
// bytes pass through pgcourier without being parsed or stored.
#pragma once

#include <cstdint>

#include "catalog/copy_catalog.h"
#include "pg/connection.h"

namespace pgcourier {

struct TableCopyStats {
  int64_t rows = 0;
  int64_t bytes = 0;
  double seconds = 0;
};

// Copies `table`: on the target, in one transaction, TRUNCATE then
// COPY ... FROM STDIN (FREEZE), fed by COPY ... TO STDOUT on the source.
// `source` must already be in a transaction at the migration's snapshot;
// `target` must be idle. Either every row is committed on the target or
// none is (a failure rolls back, so the table can simply be copied again).
Result<TableCopyStats> CopyTable(Connection& source, Connection& target, const TableToCopy& table,
                                 Deadline deadline = Deadline::Never());

}  // namespace pgcourier

// Which objects of a database a move and its verification cover: schemas and
// tables chosen by glob patterns (util/pattern.h: fnmatch, case-sensitive,
// matched against the real names, never case-folded), and tables whose
// definition moves without their rows.
//
// "Tables" here are ordinary and partitioned tables; a partition is matched
// by its own name. Views, materialized views, sequences, functions, types and
// the rest follow the schema filters only, except what belongs to a table
// (indexes, constraints, triggers, policies, an identity column's sequence),
// which goes with its table.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "catalog/database_facts.h"
#include "pg/connection.h"
#include "util/status.h"

namespace pgcourier {

struct ObjectFilter {
  // Schema name patterns. An empty include list includes every schema.
  std::vector<std::string> include_schemas;
  std::vector<std::string> exclude_schemas;
  // Patterns matched against "schema.table" ("public.*", "*.audit_log"). An
  // empty include list includes every table of the included schemas.
  std::vector<std::string> include_tables;
  std::vector<std::string> exclude_tables;
  // Tables whose definition (with indexes, constraints, triggers) moves and
  // whose rows do not ("schema.table" patterns).
  std::vector<std::string> exclude_table_data;

  // No pattern at all: everything is included.
  bool empty() const;
  // The schema and everything in it are left out.
  bool ExcludesSchema(const std::string& schema) const;
  // The table is left out entirely, definition and rows: its schema is
  // excluded, or the table filters leave it out.
  bool ExcludesTable(const std::string& schema, const std::string& name) const;
  // The table's rows are left out: the table is excluded, or its data is.
  bool ExcludesTableData(const std::string& schema, const std::string& name) const;
};

// An ObjectFilter applied to one database's catalog: the exact names it
// leaves out, as they are on the source (for pg_dump, whose own pattern
// rules differ from ours, and for reporting).
struct ResolvedObjectFilter {
  std::vector<std::string> excluded_schemas;    // user schemas
  std::vector<TableName> excluded_tables;       // only those in included schemas
  std::vector<TableName> data_excluded_tables;  // included tables whose rows stay behind
  int64_t included_tables = 0;                  // tables whose definition moves
};

// Reads the user schemas and tables of the connected database (outside
// system schemas and extensions, at whatever snapshot its transaction has)
// and applies `filter` to them. An empty filter is resolved without reading.
// kInvalidArgument when include patterns select nothing: no schema for
// --include-schema, no table for --include-table (a filter that matches
// nothing must never mean everything).
Result<ResolvedObjectFilter> ResolveObjectFilter(Connection& conn, const ObjectFilter& filter,
                                                 Deadline deadline);

}  // namespace pgcourier

// What the data phase of a move copies from one database: the tables with
// storage, their columns, and the objects whose contents pg_dump's schema
// leaves out (sequence values, large objects, materialized view contents).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pg/connection.h"
#include "util/status.h"

namespace pgcourier {

struct TableToCopy {
  std::string schema;
  std::string name;
  int64_t bytes = 0;  // pg_table_size: heap and TOAST, the work to move
  // Stored columns in attribute order, quoted; generated columns are left
  // out (the target computes them).
  std::string column_list;
  bool unlogged = false;
  std::string QualifiedName() const;
  std::string Display() const { return schema + "." + name; }
};

struct SequenceToSet {
  std::string schema;
  std::string name;
};

struct MaterializedView {
  std::string schema;
  std::string name;
  bool populated = false;
};

struct CopyCatalog {
  std::vector<TableToCopy> tables;  // largest first
  std::vector<SequenceToSet> sequences;
  std::vector<MaterializedView> materialized_views;
  std::vector<uint32_t> large_objects;  // OIDs
  int64_t total_bytes = 0;
};

// Reads the catalog of the connected database (at whatever snapshot its
// transaction has). Leaves out system schemas, objects of extensions, and
// schemas matching `exclude_schemas` (globs).
Result<CopyCatalog> ReadCopyCatalog(Connection& conn,
                                    const std::vector<std::string>& exclude_schemas,
                                    Deadline deadline);

}  // namespace pgcourier

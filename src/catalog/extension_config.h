// Extensions' configuration tables: the tables and sequences an extension
// marks with pg_extension_config_dump (pg_extension.extconfig, with the
// filter condition of each in extcondition). They are the extension's own
// members, so the schema restore (CREATE EXTENSION) makes them, with the rows
// the extension inserts itself; the rows the user added, those the condition
// selects, are data that moves like a table's (pg_dump dumps them the same
// way).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "catalog/object_filter.h"
#include "pg/connection.h"
#include "util/status.h"

namespace pgcourier {

struct ExtensionConfigTable {
  std::string extension;
  std::string schema;
  std::string name;
  uint32_t oid = 0;
  bool sequence = false;  // a sequence: its value moves, not rows
  // The extension's filter as it declared it ("WHERE ..."), empty for every
  // row. Appended to a query of the table, as pg_dump does.
  std::string condition;
  // The stored columns (not generated, not dropped), quoted, in order.
  std::string column_list;
  // OIDs of the other configuration tables it references by foreign key.
  std::vector<uint32_t> references;
  // A table that is not one of the configuration tables read with it
  // references it by foreign key (deleting its rows could cascade there).
  bool referenced_from_outside = false;

  std::string QualifiedName() const;
  // "SELECT <columns> FROM ONLY <table> <condition>": the rows that move.
  std::string SelectSql() const;
};

// The configuration tables and sequences of the connected database's
// extensions whose rows move, read at the session's snapshot, in an order
// where a referenced table comes before the tables referencing it. As
// pg_dump: not those of `left_out_extensions` (extensions the move leaves
// out), of an excluded schema, or excluded (or their data excluded) by
// `filter`; ordinary tables and sequences only (pg_dump dumps no data of
// views, foreign or partitioned tables).
Result<std::vector<ExtensionConfigTable>> ReadExtensionConfig(
    Connection& conn, const ObjectFilter& filter,
    const std::vector<std::string>& left_out_extensions);

}  // namespace pgcourier

#include "catalog/copy_catalog.h"

#include <algorithm>
#include <map>
#include <utility>

#include "catalog/user_objects.h"
#include "pg/quote.h"

namespace pgcourier {
namespace {

// The catalog's tables by (schema, name), to attach what is read about them.
using TablesByName = std::map<std::pair<std::string, std::string>, TableToCopy*>;

// The first column of table c whose type has no version-stable binary form
// (TableToCopy::binary), said as "column x is of type y"; NULL when there is
// none. Followed by the condition that leaves out generated columns.
constexpr const char* kTextColumn = R"sql(
(SELECT pg_catalog.format('column %I is of type %s', a.attname,
                          pg_catalog.format_type(a.atttypid, a.atttypmod))
   FROM pg_catalog.pg_attribute a
  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    AND NOT coalesce((
      WITH RECURSIVE d(oid) AS (
        SELECT a.atttypid
         UNION ALL
        SELECT t.typbasetype FROM pg_catalog.pg_type t JOIN d ON t.oid = d.oid
         WHERE t.typtype = 'd')
      SELECT pg_catalog.bool_and(t.oid < 10000 AND t.typtype IN ('b', 'r', 'm')
                                 AND t.typcategory <> 'Z' AND t.typsend <> 0
                                 AND t.typreceive <> 0 AND t.typname NOT LIKE 'reg%'
                                 AND t.typname NOT IN ('xml', 'tsquery', 'tsvector'))
        FROM d JOIN pg_catalog.pg_type b ON b.oid = d.oid AND b.typtype <> 'd'
        JOIN pg_catalog.pg_type t ON t.oid IN (b.oid, b.typelem)), false) )sql";

// The tables to copy, largest first, with their sizes and column lists.
Status ReadTables(Connection& conn, const ObjectFilter& filter, Deadline deadline,
                  CopyCatalog& catalog) {
  const bool has_generated_columns = conn.server_version() >= 120000;
  std::string generated = has_generated_columns ? "AND a.attgenerated = ''" : "";
  std::string any_generated =
      has_generated_columns
          ? ", EXISTS (SELECT 1 FROM pg_attribute g WHERE g.attrelid = c.oid AND g.attnum > 0 "
            "AND NOT g.attisdropped AND g.attgenerated <> '')"
          : ", false";
  Result<QueryResult> tables = conn.Exec(
      std::string("SELECT n.nspname, c.relname, pg_table_size(c.oid), c.relpersistence = 'u', "
                  "(SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) "
                  "   FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 "
                  "    AND NOT a.attisdropped ") +
          generated +
          "), c.relpersistence = 'p' AND (c.relreplident = 'f' OR EXISTS (SELECT 1 FROM "
          "pg_index ri WHERE ri.indrelid = c.oid AND ri.indisvalid AND "
          "((c.relreplident = 'd' AND ri.indisprimary) OR (c.relreplident = 'i' AND "
          "ri.indisreplident)))) " +
          any_generated +
          ", CASE WHEN c.reltuples < 0 OR (c.relpages = 0 AND pg_relation_size(c.oid) > 0) "
          "THEN -1 WHEN c.relpages = 0 THEN 0 ELSE round(c.reltuples::numeric / c.relpages * "
          "(pg_relation_size(c.oid) / current_setting('block_size')::numeric))::bigint END, " +
          kTextColumn + generated +
          " ORDER BY a.attnum LIMIT 1)"
          " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
          "WHERE c.relkind = 'r' AND " +
          sql::UserRelation() + " ORDER BY pg_table_size(c.oid) DESC, 1, 2",
      deadline);
  if (!tables.ok()) return tables.status().WithContext("listing tables to copy");
  for (int r = 0; r < tables->rows(); ++r) {
    TableToCopy t;
    t.schema = tables->GetString(r, 0);
    t.name = tables->GetString(r, 1);
    if (filter.ExcludesTableData(t.schema, t.name)) continue;
    t.bytes = tables->GetInt(r, 2);
    t.unlogged = tables->GetBool(r, 3);
    t.column_list = tables->GetString(r, 4);  // empty for a table without columns
    t.replicable = tables->GetBool(r, 5);
    t.generated_columns = tables->GetBool(r, 6);
    t.estimated_rows = tables->GetInt(r, 7);
    t.binary = tables->IsNull(r, 8);
    t.text_reason = tables->GetString(r, 8);
    catalog.total_bytes += t.bytes;
    catalog.tables.push_back(std::move(t));
  }
  return Status::Ok();
}

// The leaves of each partition tree loaded through its root become one
// entry, the root's; the list stays largest first.
Status GroupRootLoadedTrees(Connection& conn, const ObjectFilter& filter, Deadline deadline,
                            CopyCatalog& catalog) {
  Result<std::vector<RootLoadedTree>> trees = ReadRootLoadedTrees(conn, deadline);
  if (!trees.ok()) return trees.status();
  if (trees->empty()) return Status::Ok();
  std::map<std::pair<std::string, std::string>, size_t> at;
  for (size_t i = 0; i < catalog.tables.size(); ++i) {
    at[{catalog.tables[i].schema, catalog.tables[i].name}] = i;
  }
  std::vector<bool> grouped(catalog.tables.size(), false);
  std::vector<TableToCopy> roots;
  for (auto& tree : *trees) {
    TableToCopy root;
    root.schema = tree.schema;
    root.name = tree.name;
    root.column_list = tree.column_list;
    root.through_root_reason = tree.reason;
    root.replicable = true;
    root.estimated_rows = 0;
    for (auto& leaf : tree.leaves) {
      auto found = at.find({leaf.schema, leaf.name});
      if (found == at.end()) continue;  // its data is excluded
      grouped[found->second] = true;
      const TableToCopy& t = catalog.tables[found->second];
      root.bytes += t.bytes;
      root.estimated_rows = root.estimated_rows < 0 || t.estimated_rows < 0
                                ? -1
                                : root.estimated_rows + t.estimated_rows;
      root.unlogged = root.unlogged || t.unlogged;
      root.replicable = root.replicable && t.replicable;
      root.generated_columns = root.generated_columns || t.generated_columns;
      if (root.partitions.empty()) root.binary = true;
      if (root.binary && !t.binary) {
        root.binary = false;
        root.text_reason = "partition " + t.Display() + ": " + t.text_reason;
      }
      leaf.replicable = t.replicable;
      root.partitions.push_back(std::move(leaf));
    }
    if (!root.partitions.empty() && !filter.ExcludesTableData(root.schema, root.name)) {
      roots.push_back(std::move(root));
    }
  }
  std::vector<TableToCopy> tables;
  for (size_t i = 0; i < catalog.tables.size(); ++i) {
    if (!grouped[i]) tables.push_back(std::move(catalog.tables[i]));
  }
  catalog.total_bytes = 0;
  for (auto& root : roots) tables.push_back(std::move(root));
  std::stable_sort(tables.begin(), tables.end(),
                   [](const TableToCopy& a, const TableToCopy& b) { return a.bytes > b.bytes; });
  for (const auto& t : tables) catalog.total_bytes += t.bytes;
  catalog.tables = std::move(tables);
  return Status::Ok();
}

Status ReadIndexes(Connection& conn, Deadline deadline, const TablesByName& by_name) {
  // Indexes of the tables above, with the constraints they back. Indexes of
  // partitioned tables (relkind 'p') and those a partitioned parent's
  // constraint owns are left to pg_restore, which attaches them.
  Result<QueryResult> indexes = conn.Exec(std::string(R"sql(
SELECT n.nspname, c.relname, i.indexrelid, ic.relname, pg_get_indexdef(i.indexrelid),
       coalesce(con.oid, 0), coalesce(con.contype::text, ''), coalesce(con.conname::text, ''),
       coalesce(pg_get_constraintdef(con.oid), ''), coalesce(con.condeferrable, false),
       coalesce(con.condeferred, false), i.indisclustered, i.indisreplident
  FROM pg_index i
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_class c ON c.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = c.oid
                             AND con.contype IN ('p', 'u', 'x')
 WHERE c.relkind = 'r' AND i.indislive AND i.indisvalid
   AND (con.oid IS NULL OR con.conparentid = 0)
   AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid)
   AND )sql") + sql::UserRelation() + " ORDER BY 1, 2, 4",
                                          deadline);
  if (!indexes.ok()) return indexes.status().WithContext("listing indexes");
  for (int r = 0; r < indexes->rows(); ++r) {
    auto table = by_name.find({indexes->GetString(r, 0), indexes->GetString(r, 1)});
    if (table == by_name.end()) continue;
    IndexToBuild index;
    index.schema = indexes->GetString(r, 0);
    index.index_oid = static_cast<uint32_t>(indexes->GetInt(r, 2));
    index.name = indexes->GetString(r, 3);
    index.definition = indexes->GetString(r, 4);
    index.constraint_oid = static_cast<uint32_t>(indexes->GetInt(r, 5));
    index.constraint_type = indexes->GetString(r, 6);
    index.constraint_name = indexes->GetString(r, 7);
    index.constraint_definition = indexes->GetString(r, 8);
    index.deferrable = indexes->GetBool(r, 9);
    index.initially_deferred = indexes->GetBool(r, 10);
    index.clustered = indexes->GetBool(r, 11);
    index.replica_identity = indexes->GetBool(r, 12);
    table->second->indexes.push_back(std::move(index));
  }
  return Status::Ok();
}

Status ReadSplitKeys(Connection& conn, Deadline deadline, const TablesByName& by_name) {
  // Split keys: a NOT NULL integer column alone in a unique, non-partial
  // index (the primary key first).
  Result<QueryResult> keys = conn.Exec(std::string(R"sql(
SELECT DISTINCT ON (c.oid) n.nspname, c.relname, a.attname
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
 WHERE c.relkind = 'r' AND i.indisunique AND i.indnatts = 1 AND i.indkey[0] > 0
   AND i.indpred IS NULL AND i.indexprs IS NULL AND a.attnotnull
   AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)
   AND )sql") + sql::UserRelation() + " ORDER BY c.oid, i.indisprimary DESC",
                                       deadline);
  if (!keys.ok()) return keys.status().WithContext("finding split keys");
  for (int r = 0; r < keys->rows(); ++r) {
    auto table = by_name.find({keys->GetString(r, 0), keys->GetString(r, 1)});
    if (table != by_name.end()) table->second->split_column = keys->GetString(r, 2);
  }
  return Status::Ok();
}

Status ReadSequences(Connection& conn, const ObjectFilter& filter, Deadline deadline,
                     CopyCatalog& catalog) {
  // With the table of an identity column's sequence (NULL for others).
  Result<QueryResult> sequences = conn.Exec(
      std::string("SELECT n.nspname, c.relname, (SELECT t.relname FROM pg_depend d "
                  "JOIN pg_class t ON t.oid = d.refobjid WHERE d.classid = 'pg_class'::regclass "
                  "AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass "
                  "AND d.deptype = 'i' LIMIT 1) FROM pg_class c "
                  "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'S' AND ") +
          sql::UserRelation() + " ORDER BY 1, 2",
      deadline);
  if (!sequences.ok()) return sequences.status().WithContext("listing sequences");
  for (int r = 0; r < sequences->rows(); ++r) {
    std::string schema = sequences->GetString(r, 0);
    if (filter.ExcludesSchema(schema)) continue;
    if (!sequences->IsNull(r, 2) && filter.ExcludesTable(schema, sequences->GetString(r, 2))) {
      continue;
    }
    catalog.sequences.push_back({std::move(schema), sequences->GetString(r, 1)});
  }
  return Status::Ok();
}

Status ReadMaterializedViews(Connection& conn, const ObjectFilter& filter, Deadline deadline,
                             CopyCatalog& catalog) {
  Result<QueryResult> matviews = conn.Exec(
      std::string("SELECT n.nspname, c.relname, c.relispopulated FROM pg_class c "
                  "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'm' AND ") +
          sql::UserRelation() + " ORDER BY c.oid",
      deadline);
  if (!matviews.ok()) return matviews.status().WithContext("listing materialized views");
  for (int r = 0; r < matviews->rows(); ++r) {
    if (filter.ExcludesSchema(matviews->GetString(r, 0))) continue;
    catalog.materialized_views.push_back(
        {matviews->GetString(r, 0), matviews->GetString(r, 1), matviews->GetBool(r, 2)});
  }
  return Status::Ok();
}

Status ReadLargeObjects(Connection& conn, Deadline deadline, CopyCatalog& catalog) {
  Result<QueryResult> blobs =
      conn.Exec("SELECT oid FROM pg_largeobject_metadata ORDER BY oid", deadline);
  if (!blobs.ok()) return blobs.status().WithContext("listing large objects");
  for (int r = 0; r < blobs->rows(); ++r) {
    catalog.large_objects.push_back(static_cast<uint32_t>(blobs->GetInt(r, 0)));
  }
  return Status::Ok();
}

}  // namespace

std::string TableToCopy::QualifiedName() const { return pgcourier::QualifiedName(schema, name); }

std::string LoadedThroughRootNote(const TableToCopy& table) {
  return "loaded through the root " + table.Display() + " (" +
         std::to_string(table.partitions.size()) +
         (table.partitions.size() == 1 ? " partition): " : " partitions): ") +
         table.through_root_reason + ", whose hash can differ on the target";
}

void CopyAllAsText(CopyCatalog& catalog, const std::string& reason) {
  for (auto& table : catalog.tables) {
    if (!table.binary) continue;
    table.binary = false;
    table.text_reason = reason;
  }
}

Result<CopyCatalog> ReadCopyCatalog(Connection& conn, const ObjectFilter& filter,
                                    Deadline deadline) {
  CopyCatalog catalog;
  PGC_RETURN_IF_ERROR(ReadTables(conn, filter, deadline, catalog));
  PGC_RETURN_IF_ERROR(GroupRootLoadedTrees(conn, filter, deadline, catalog));
  TablesByName by_name;
  for (auto& t : catalog.tables) by_name[{t.schema, t.name}] = &t;
  PGC_RETURN_IF_ERROR(ReadIndexes(conn, deadline, by_name));
  PGC_RETURN_IF_ERROR(ReadSplitKeys(conn, deadline, by_name));
  PGC_RETURN_IF_ERROR(ReadSequences(conn, filter, deadline, catalog));
  PGC_RETURN_IF_ERROR(ReadMaterializedViews(conn, filter, deadline, catalog));
  PGC_RETURN_IF_ERROR(ReadLargeObjects(conn, deadline, catalog));
  return catalog;
}

}  // namespace pgcourier

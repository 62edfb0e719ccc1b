#include "catalog/partition_trees.h"

#include "catalog/user_objects.h"
#include "pg/quote.h"

namespace pgcourier {
namespace {

// Per hash partitioning key column of every partitioned table, why its hash
// may differ between servers (NULL: it cannot); then per topmost root the
// first such reason; then the root's leaves, one row each (none: NULLs).
constexpr const char* kTreesSql = R"sql(
WITH keys AS (
  SELECT p.partrelid, k, p.partclass[k] AS opclass, p.partattrs[k] AS attnum,
         p.partcollation[k] AS collation
    FROM pg_catalog.pg_partitioned_table p
   CROSS JOIN LATERAL pg_catalog.generate_series(0, p.partnatts - 1) AS k
   WHERE p.partstrat = 'h'
), unsafe AS (
  SELECT keys.partrelid, keys.k,
         CASE WHEN a.atttypid >= 16384 THEN 'type ' || pg_catalog.format_type(a.atttypid, NULL)
              WHEN oc.oid >= 16384 THEN 'operator class ' || pg_catalog.quote_ident(ocn.nspname)
                                        || '.' || pg_catalog.quote_ident(oc.opcname)
              WHEN a.atttypid IS NULL AND t.typtype = 'p'
                THEN 'an expression of operator class ' || oc.opcname
              WHEN NOT co.collisdeterministic
                THEN 'nondeterministic collation ' || pg_catalog.quote_ident(con.nspname) || '.'
                     || pg_catalog.quote_ident(co.collname)
         END AS why
    FROM keys
    JOIN pg_catalog.pg_opclass oc ON oc.oid = keys.opclass
    JOIN pg_catalog.pg_namespace ocn ON ocn.oid = oc.opcnamespace
    JOIN pg_catalog.pg_type t ON t.oid = oc.opcintype
    LEFT JOIN pg_catalog.pg_attribute a
           ON keys.attnum <> 0 AND a.attrelid = keys.partrelid AND a.attnum = keys.attnum
    LEFT JOIN pg_catalog.pg_collation co ON co.oid = keys.collation
    LEFT JOIN pg_catalog.pg_namespace con ON con.oid = co.collnamespace
), roots AS (
  SELECT DISTINCT ON (1) pg_catalog.pg_partition_root(u.partrelid) AS root,
         u.partrelid::pg_catalog.regclass::text || ' is hash partitioned on ' || u.why AS reason
    FROM unsafe u
   WHERE u.why IS NOT NULL
   ORDER BY 1, u.partrelid, u.k
)
SELECT n.nspname, c.relname, r.reason,
       (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum)
          FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
           AND a.attgenerated = ''),
       leaf.nspname, leaf.relname
  FROM roots r
  JOIN pg_catalog.pg_class c ON c.oid = r.root
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN LATERAL (
    SELECT ln.nspname, l.relname
      FROM pg_catalog.pg_partition_tree(r.root) pt
      JOIN pg_catalog.pg_class l ON l.oid = pt.relid
      JOIN pg_catalog.pg_namespace ln ON ln.oid = l.relnamespace
     WHERE pt.isleaf AND l.relkind = 'r') leaf ON true
 WHERE )sql";

}  // namespace

std::string PartitionLeaf::QualifiedName() const { return pgcourier::QualifiedName(schema, name); }
std::string RootLoadedTree::QualifiedName() const { return pgcourier::QualifiedName(schema, name); }

Result<std::vector<RootLoadedTree>> ReadRootLoadedTrees(Connection& conn, Deadline deadline) {
  Result<QueryResult> rows =
      conn.Exec(std::string(kTreesSql) + sql::UserRelation() + " ORDER BY 1, 2, 5, 6", deadline);
  if (!rows.ok()) {
    return rows.status().WithContext("finding partition trees to load through their root");
  }
  std::vector<RootLoadedTree> trees;
  for (int r = 0; r < rows->rows(); ++r) {
    const std::string schema = rows->GetString(r, 0);
    const std::string name = rows->GetString(r, 1);
    if (trees.empty() || trees.back().schema != schema || trees.back().name != name) {
      RootLoadedTree tree;
      tree.schema = schema;
      tree.name = name;
      tree.reason = rows->GetString(r, 2);
      tree.column_list = rows->GetString(r, 3);
      trees.push_back(std::move(tree));
    }
    if (!rows->IsNull(r, 4))
      trees.back().leaves.push_back({rows->GetString(r, 4), rows->GetString(r, 5)});
  }
  return trees;
}

}  // namespace pgcourier

#include "catalog/copy_catalog.h"

#include "pg/quote.h"
#include "util/pattern.h"

namespace pgcourier {
namespace {

constexpr const char* kUserRelation = R"sql(
      n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                   WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
)sql";

}  // namespace

std::string TableToCopy::QualifiedName() const { return pgcourier::QualifiedName(schema, name); }

Result<CopyCatalog> ReadCopyCatalog(Connection& conn,
                                    const std::vector<std::string>& exclude_schemas,
                                    Deadline deadline) {
  CopyCatalog catalog;
  auto excluded = [&](const std::string& schema) {
    return MatchesAnyPattern(exclude_schemas, schema);
  };
  std::string generated = conn.server_version() >= 120000 ? "AND a.attgenerated = ''" : "";
  Result<QueryResult> tables = conn.Exec(
      std::string("SELECT n.nspname, c.relname, pg_table_size(c.oid), c.relpersistence = 'u', "
                  "(SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) "
                  "   FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 "
                  "    AND NOT a.attisdropped ") +
          generated +
          ") FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
          "WHERE c.relkind = 'r' AND " +
          kUserRelation + " ORDER BY pg_table_size(c.oid) DESC, 1, 2",
      deadline);
  if (!tables.ok()) return tables.status().WithContext("listing tables to copy");
  for (int r = 0; r < tables->rows(); ++r) {
    TableToCopy t;
    t.schema = tables->GetString(r, 0);
    if (excluded(t.schema)) continue;
    t.name = tables->GetString(r, 1);
    t.bytes = tables->GetInt(r, 2);
    t.unlogged = tables->GetBool(r, 3);
    t.column_list = tables->GetString(r, 4);  // empty for a table without columns
    catalog.total_bytes += t.bytes;
    catalog.tables.push_back(std::move(t));
  }

  Result<QueryResult> sequences = conn.Exec(
      std::string("SELECT n.nspname, c.relname FROM pg_class c "
                  "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'S' AND ") +
          kUserRelation + " ORDER BY 1, 2",
      deadline);
  if (!sequences.ok()) return sequences.status().WithContext("listing sequences");
  for (int r = 0; r < sequences->rows(); ++r) {
    if (excluded(sequences->GetString(r, 0))) continue;
    catalog.sequences.push_back({sequences->GetString(r, 0), sequences->GetString(r, 1)});
  }

  Result<QueryResult> matviews = conn.Exec(
      std::string("SELECT n.nspname, c.relname, c.relispopulated FROM pg_class c "
                  "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'm' AND ") +
          kUserRelation + " ORDER BY c.oid",
      deadline);
  if (!matviews.ok()) return matviews.status().WithContext("listing materialized views");
  for (int r = 0; r < matviews->rows(); ++r) {
    if (excluded(matviews->GetString(r, 0))) continue;
    catalog.materialized_views.push_back(
        {matviews->GetString(r, 0), matviews->GetString(r, 1), matviews->GetBool(r, 2)});
  }

  Result<QueryResult> blobs =
      conn.Exec("SELECT oid FROM pg_largeobject_metadata ORDER BY oid", deadline);
  if (!blobs.ok()) return blobs.status().WithContext("listing large objects");
  for (int r = 0; r < blobs->rows(); ++r) {
    catalog.large_objects.push_back(static_cast<uint32_t>(blobs->GetInt(r, 0)));
  }
  return catalog;
}

}  // namespace pgcourier

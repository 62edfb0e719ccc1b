#include "catalog/object_filter.h"

#include <utility>

#include "catalog/user_objects.h"
#include "util/pattern.h"

namespace pgcourier {
namespace {

std::string JoinPatterns(const std::vector<std::string>& patterns) {
  std::string out;
  for (const auto& p : patterns) {
    if (!out.empty()) out += ", ";
    out += "'" + p + "'";
  }
  return out;
}

}  // namespace

bool ObjectFilter::empty() const {
  return include_schemas.empty() && exclude_schemas.empty() && include_tables.empty() &&
         exclude_tables.empty() && exclude_table_data.empty();
}

bool ObjectFilter::ExcludesSchema(const std::string& schema) const {
  if (!include_schemas.empty() && !MatchesAnyPattern(include_schemas, schema)) return true;
  return MatchesAnyPattern(exclude_schemas, schema);
}

bool ObjectFilter::ExcludesTable(const std::string& schema, const std::string& name) const {
  if (ExcludesSchema(schema)) return true;
  if (include_tables.empty() && exclude_tables.empty()) return false;
  const std::string qualified = schema + "." + name;
  if (!include_tables.empty() && !MatchesAnyPattern(include_tables, qualified)) return true;
  return MatchesAnyPattern(exclude_tables, qualified);
}

bool ObjectFilter::ExcludesTableData(const std::string& schema, const std::string& name) const {
  if (ExcludesTable(schema, name)) return true;
  return !exclude_table_data.empty() && MatchesAnyPattern(exclude_table_data, schema + "." + name);
}

Result<ResolvedObjectFilter> ResolveObjectFilter(Connection& conn, const ObjectFilter& filter,
                                                 Deadline deadline) {
  ResolvedObjectFilter resolved;
  if (filter.empty()) return resolved;

  Result<QueryResult> schemas = conn.Exec(
      std::string("SELECT n.nspname FROM pg_namespace n WHERE") + sql::kUserSchema + " ORDER BY 1",
      deadline);
  if (!schemas.ok()) return schemas.status().WithContext("listing schemas");
  int included_schemas = 0;
  for (int r = 0; r < schemas->rows(); ++r) {
    std::string schema = schemas->GetString(r, 0);
    if (filter.ExcludesSchema(schema)) {
      resolved.excluded_schemas.push_back(std::move(schema));
    } else {
      ++included_schemas;
    }
  }
  if (!filter.include_schemas.empty() && included_schemas == 0) {
    return Status(StatusCode::kInvalidArgument,
                  "no schema of database " + conn.database() + " matches --include-schema " +
                      JoinPatterns(filter.include_schemas) +
                      (filter.exclude_schemas.empty() ? "" : " (after --exclude-schema)"),
                  "the patterns are globs matched case-sensitively against the schema names "
                  "(\\dn in psql lists them)");
  }

  Result<QueryResult> tables = conn.Exec(
      std::string("SELECT n.nspname, c.relname FROM pg_class c "
                  "JOIN pg_namespace n ON n.oid = c.relnamespace "
                  "WHERE c.relkind IN ('r', 'p') AND") +
          sql::kUserSchema +
          " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass "
          "AND d.objid = c.oid AND d.deptype = 'e') ORDER BY 1, 2",
      deadline);
  if (!tables.ok()) return tables.status().WithContext("listing tables");
  for (int r = 0; r < tables->rows(); ++r) {
    TableName table{tables->GetString(r, 0), tables->GetString(r, 1)};
    if (filter.ExcludesSchema(table.schema)) continue;  // left out with its schema
    if (filter.ExcludesTable(table.schema, table.name)) {
      resolved.excluded_tables.push_back(std::move(table));
      continue;
    }
    ++resolved.included_tables;
    if (filter.ExcludesTableData(table.schema, table.name)) {
      resolved.data_excluded_tables.push_back(std::move(table));
    }
  }
  if (!filter.include_tables.empty() && resolved.included_tables == 0) {
    return Status(StatusCode::kInvalidArgument,
                  "no table of database " + conn.database() + " matches --include-table " +
                      JoinPatterns(filter.include_tables) + " in the included schemas" +
                      (filter.exclude_tables.empty() ? "" : " (after --exclude-table)"),
                  "the patterns are globs matched case-sensitively against schema.table "
                  "(public.orders, sales.*, *.audit_log)");
  }
  return resolved;
}

}  // namespace pgcourier

#include "catalog/extension_config.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "pg/quote.h"

namespace pgcourier {
namespace {

// One row per configuration relation; the two arrays unnested side by side keep
// each table with its condition.
constexpr const char* kConfigSql = R"sql(
SELECT e.extname, n.nspname, c.relname, c.oid, c.relkind = 'S', coalesce(cfg.cond, ''),
       coalesce((SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', '
                                              ORDER BY a.attnum)
                 FROM pg_catalog.pg_attribute a
                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                   AND a.attgenerated = ''), ''),
       coalesce((SELECT pg_catalog.string_agg(con.confrelid::text, ',')
                 FROM pg_catalog.pg_constraint con
                 WHERE con.conrelid = c.oid AND con.contype = 'f'
                   AND con.confrelid <> c.oid), ''),
       coalesce((SELECT pg_catalog.string_agg(con.conrelid::text, ',')
                 FROM pg_catalog.pg_constraint con
                 WHERE con.confrelid = c.oid AND con.contype = 'f'
                   AND con.conrelid <> c.oid), '')
FROM pg_catalog.pg_extension e
CROSS JOIN LATERAL ROWS FROM (pg_catalog.unnest(e.extconfig), pg_catalog.unnest(e.extcondition))
  AS cfg(reloid, cond)
JOIN pg_catalog.pg_class c ON c.oid = cfg.reloid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'S')
ORDER BY e.extname, n.nspname, c.relname)sql";

std::vector<uint32_t> ParseOids(const std::string& text) {
  std::vector<uint32_t> oids;
  std::istringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) oids.push_back(static_cast<uint32_t>(std::stoul(item)));
  }
  return oids;
}

// Referenced tables first; references outside the list (or in a cycle) do
// not hold a table back.
std::vector<ExtensionConfigTable> InReferenceOrder(std::vector<ExtensionConfigTable> tables) {
  std::set<uint32_t> pending;
  for (const auto& t : tables) pending.insert(t.oid);
  std::vector<ExtensionConfigTable> ordered;
  while (!tables.empty()) {
    auto ready = std::stable_partition(tables.begin(), tables.end(), [&](const auto& t) {
      return std::none_of(t.references.begin(), t.references.end(),
                          [&](uint32_t ref) { return pending.count(ref) != 0; });
    });
    if (ready == tables.begin()) ready = tables.begin() + 1;  // a cycle
    for (auto it = tables.begin(); it != ready; ++it) {
      pending.erase(it->oid);
      ordered.push_back(std::move(*it));
    }
    tables.erase(tables.begin(), ready);
  }
  return ordered;
}

}  // namespace

std::string ExtensionConfigTable::QualifiedName() const {
  return pgcourier::QualifiedName(schema, name);
}

std::string ExtensionConfigTable::SelectSql() const {
  std::string sql = "SELECT " + column_list + " FROM ONLY " + QualifiedName();
  if (!condition.empty()) sql += " " + condition;
  return sql;
}

Result<std::vector<ExtensionConfigTable>> ReadExtensionConfig(
    Connection& conn, const ObjectFilter& filter,
    const std::vector<std::string>& left_out_extensions) {
  Result<QueryResult> rows = conn.Exec(kConfigSql);
  if (!rows.ok()) {
    return rows.status().WithContext("reading the extensions' configuration tables");
  }
  std::vector<ExtensionConfigTable> tables;
  std::vector<std::vector<uint32_t>> referenced_by;
  for (int r = 0; r < rows->rows(); ++r) {
    ExtensionConfigTable t;
    t.extension = rows->GetString(r, 0);
    t.schema = rows->GetString(r, 1);
    t.name = rows->GetString(r, 2);
    if (std::find(left_out_extensions.begin(), left_out_extensions.end(), t.extension) !=
        left_out_extensions.end()) {
      continue;
    }
    if (filter.ExcludesTableData(t.schema, t.name)) continue;
    t.oid = static_cast<uint32_t>(rows->GetInt(r, 3));
    t.sequence = rows->GetBool(r, 4);
    t.condition = rows->GetString(r, 5);
    t.column_list = rows->GetString(r, 6);
    t.references = ParseOids(rows->GetString(r, 7));
    if (!t.sequence && t.column_list.empty()) continue;  // no columns: nothing to move
    tables.push_back(std::move(t));
    referenced_by.push_back(ParseOids(rows->GetString(r, 8)));
  }
  std::set<uint32_t> listed;
  for (const auto& t : tables) listed.insert(t.oid);
  for (size_t i = 0; i < tables.size(); ++i) {
    tables[i].referenced_from_outside =
        std::any_of(referenced_by[i].begin(), referenced_by[i].end(),
                    [&](uint32_t oid) { return listed.count(oid) == 0; });
  }
  return InReferenceOrder(std::move(tables));
}

}  // namespace pgcourier

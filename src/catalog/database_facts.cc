#include "catalog/database_facts.h"

#include "catalog/user_objects.h"

namespace pgcourier {
namespace {

// Relations of the user: not in a system schema, not members of an extension.
// The session's search_path is empty; pg_catalog is still searched first.
std::vector<TableName> ReadTableNames(const QueryResult& result) {
  std::vector<TableName> out;
  out.reserve(static_cast<size_t>(result.rows()));
  for (int r = 0; r < result.rows(); ++r) {
    out.push_back({result.GetString(r, 0), result.GetString(r, 1)});
  }
  return out;
}

}  // namespace

Result<DatabaseFacts> ReadDatabaseFacts(Connection& conn, Deadline deadline) {
  DatabaseFacts facts;
  facts.name = conn.database();
  const std::string where = "reading database " + facts.name;
  const std::string user_relations = sql::UserRelation();

  auto query = [&](const std::string& sql) -> Result<QueryResult> {
    Result<QueryResult> result = conn.Exec(sql, deadline);
    if (!result.ok()) return result.status().WithContext(where);
    return result;
  };

  Result<QueryResult> extensions = query(
      "SELECT e.extname, e.extversion, n.nspname FROM pg_extension e "
      "JOIN pg_namespace n ON n.oid = e.extnamespace ORDER BY 1");
  if (!extensions.ok()) return extensions.status();
  for (int r = 0; r < extensions->rows(); ++r) {
    facts.extensions.push_back(
        {extensions->GetString(r, 0), extensions->GetString(r, 1), extensions->GetString(r, 2)});
  }

  Result<QueryResult> languages = query(
      "SELECT l.lanname, EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = "
      "'pg_language'::regclass AND d.objid = l.oid AND d.deptype = 'e') "
      "FROM pg_language l WHERE l.lanispl ORDER BY 1");
  if (!languages.ok()) return languages.status();
  for (int r = 0; r < languages->rows(); ++r) {
    facts.languages.push_back({languages->GetString(r, 0), languages->GetBool(r, 1)});
  }

  Result<QueryResult> roles = query(std::string(R"sql(
SELECT DISTINCT r.rolname FROM (
      SELECT c.relowner AS oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE )sql") + user_relations +
                                    R"sql(
UNION SELECT n.nspowner FROM pg_namespace n WHERE )sql" +
                                    sql::kUserSchema + R"sql(
UNION SELECT p.proowner FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       WHERE )sql" + sql::kUserSchema +
                                    R"sql(
UNION SELECT t.typowner FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
       WHERE )sql" + sql::kUserSchema +
                                    R"sql(
UNION SELECT s.refobjid FROM pg_shdepend s
       WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
         AND s.refclassid = 'pg_authid'::regclass AND s.deptype IN ('o', 'a', 'r')
) x JOIN pg_roles r ON r.oid = x.oid
WHERE r.rolname NOT LIKE 'pg\_%'
ORDER BY 1)sql");
  if (!roles.ok()) return roles.status();
  for (int r = 0; r < roles->rows(); ++r) facts.referenced_roles.push_back(roles->GetString(r, 0));

  Result<QueryResult> relations = query(
      "SELECT count(*), count(*) FILTER (WHERE c.relkind IN ('r', 'p')) "
      "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE c.relkind IN ('r', 'p', 'm', 'v', 'S', 'f') AND " +
      user_relations);
  if (!relations.ok()) return relations.status();
  facts.user_relations = relations->GetInt(0, 0);
  facts.user_tables = relations->GetInt(0, 1);

  Result<QueryResult> sample = query(
      "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE c.relkind IN ('r', 'p', 'm', 'v', 'S', 'f') AND " +
      user_relations + " ORDER BY c.relkind IN ('r', 'p') DESC, 1, 2 LIMIT 5");
  if (!sample.ok()) return sample.status();
  facts.sample_user_relations = ReadTableNames(*sample);

  Result<QueryResult> no_identity = query(
      "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND " +
      user_relations + R"sql(
  AND (c.relreplident = 'n'
       OR (c.relreplident = 'd' AND NOT EXISTS (
             SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))
       OR (c.relreplident = 'i' AND NOT EXISTS (
             SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)))
ORDER BY 1, 2)sql");
  if (!no_identity.ok()) return no_identity.status();
  facts.tables_without_identity = ReadTableNames(*no_identity);

  Result<QueryResult> unlogged = query(
      "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'u' AND " +
      user_relations + " ORDER BY 1, 2");
  if (!unlogged.ok()) return unlogged.status();
  facts.unlogged_tables = ReadTableNames(*unlogged);

  Result<QueryResult> not_owned = query(
      "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE c.relkind IN ('r', 'p') AND NOT pg_has_role(c.relowner, 'USAGE') AND " +
      user_relations + " ORDER BY 1, 2");
  if (!not_owned.ok()) return not_owned.status();
  facts.tables_not_owned = ReadTableNames(*not_owned);

  Result<QueryResult> misc = query(
      "SELECT (SELECT count(*) FROM pg_largeobject_metadata), "
      "has_database_privilege(current_database(), 'CREATE')");
  if (!misc.ok()) return misc.status();
  facts.large_objects = misc->GetInt(0, 0);
  facts.can_create_in_database = misc->GetBool(0, 1);
  return facts;
}

}  // namespace pgcourier

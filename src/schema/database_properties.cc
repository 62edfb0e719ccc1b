#include "schema/database_properties.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <set>
#include <vector>

#include "catalog/acl.h"
#include "pg/quote.h"
#include "pg/setting_entry.h"
#include "roles/provider_roles.h"
#include "roles/role_copy.h"

namespace pgcourier {
namespace {

using Note = std::function<void(const std::string&)>;

void Say(const Note& note, const std::string& line) {
  if (note) note(line);
}

Result<std::set<std::string>> RoleNames(Connection& conn) {
  Result<QueryResult> names = conn.Exec("SELECT rolname FROM pg_catalog.pg_roles");
  if (!names.ok()) return names.status();
  std::set<std::string> out;
  for (int r = 0; r < names->rows(); ++r) out.insert(names->GetString(r, 0));
  return out;
}

// ALTER DATABASE ... SET, one statement per setting.
Status ApplySettings(Connection& source, Connection& target, const DatabasePropertiesSpec& spec,
                     const Note& note) {
  Result<QueryResult> settings = source.ExecParams(
      "SELECT c.entry FROM pg_catalog.pg_db_role_setting s JOIN pg_catalog.pg_database d "
      "ON d.oid = s.setdatabase CROSS JOIN LATERAL pg_catalog.unnest(s.setconfig) "
      "WITH ORDINALITY AS c(entry, n) WHERE d.datname = $1 AND s.setrole = 0 ORDER BY c.n",
      {spec.source_name});
  if (!settings.ok()) return settings.status().WithContext("reading the database's settings");
  for (int r = 0; r < settings->rows(); ++r) {
    const std::string entry = settings->GetString(r, 0);
    if (SettingName(entry) == kReadOnlySetting) {
      Say(note, "database setting " + entry +
                    " not copied: the target database is left writable (set it there yourself "
                    "if it should be read-only)");
      continue;
    }
    std::optional<std::string> assignment = SettingAssignment(entry);
    if (!assignment) continue;
    Status set =
        target.Run("ALTER DATABASE " + QuoteIdent(spec.target_name) + " SET " + *assignment);
    if (!set.ok()) Say(note, "database setting " + entry + " not applied: " + set.message());
  }
  return Status::Ok();
}

// ALTER ROLE ... IN DATABASE ... SET for the roles the target has; the
// others are named.
Status ApplyRoleSettings(Connection& source, Connection& target, const DatabasePropertiesSpec& spec,
                         const std::set<std::string>& present, const Note& note) {
  Result<QueryResult> roles = source.ExecParams(
      "SELECT DISTINCT r.rolname FROM pg_catalog.pg_db_role_setting s "
      "JOIN pg_catalog.pg_roles r ON r.oid = s.setrole "
      "JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase WHERE d.datname = $1",
      {spec.source_name});
  if (!roles.ok()) return roles.status().WithContext("reading the settings of roles");
  if (roles->rows() == 0) return Status::Ok();
  std::vector<std::string> missing;
  for (int r = 0; r < roles->rows(); ++r) {
    const std::string role = roles->GetString(r, 0);
    if (present.count(role) == 0 && !IsProviderRole(role)) missing.push_back(role);
  }
  if (!missing.empty()) {
    Say(note, fmt::format("settings of role(s) {} in the database not copied: no such role on "
                          "the target (--roles creates them)",
                          fmt::join(missing, ", ")));
  }
  Status copied = CopyRoleDatabaseSettings(source, target, spec.source_name, spec.target_name,
                                           Deadline::Never());
  if (!copied.ok()) Say(note, "settings of roles in the database: " + copied.message());
  return Status::Ok();
}

// COMMENT ON DATABASE and CONNECTION LIMIT.
Status ApplyCommentAndLimit(Connection& source, Connection& target,
                            const DatabasePropertiesSpec& spec, const Note& note) {
  Result<QueryResult> row = source.ExecParams(
      "SELECT pg_catalog.shobj_description(d.oid, 'pg_database'), d.datconnlimit "
      "FROM pg_catalog.pg_database d WHERE d.datname = $1",
      {spec.source_name});
  if (!row.ok()) return row.status().WithContext("reading the database's comment");
  if (row->rows() != 1) return Status::Ok();
  const std::string name = QuoteIdent(spec.target_name);
  if (!row->IsNull(0, 0)) {
    Status commented =
        target.Run("COMMENT ON DATABASE " + name + " IS " + QuoteLiteral(row->GetString(0, 0)));
    if (!commented.ok()) Say(note, "database comment not applied: " + commented.message());
  }
  Status limited = target.Run("ALTER DATABASE " + name + " CONNECTION LIMIT " +
                              std::to_string(row->GetInt(0, 1)));
  if (!limited.ok()) Say(note, "connection limit not applied: " + limited.message());
  return Status::Ok();
}

// The database's grants (datacl), when the source has any of its own.
Status ApplyGrants(Connection& source, Connection& target, const DatabasePropertiesSpec& spec,
                   const std::set<std::string>& present, const Note& note) {
  Result<QueryResult> rows = source.ExecParams(
      GrantRowsSql("d.datname", "d.datacl", "d.datdba", "pg_catalog.pg_database d") +
          " AND d.datname = $1",
      {spec.source_name});
  if (!rows.ok()) return rows.status().WithContext("reading the database's grants");
  if (rows->rows() == 0) return Status::Ok();  // the default privileges
  std::vector<AclGrant> grants;
  grants.reserve(static_cast<size_t>(rows->rows()));
  for (int r = 0; r < rows->rows(); ++r) grants.push_back(ReadGrant(*rows, r, 1));
  Result<QueryResult> owner = target.ExecParams(
      "SELECT pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(datdba)) "
      "FROM pg_catalog.pg_database WHERE datname = $1",
      {spec.target_name});
  if (!owner.ok()) return owner.status().WithContext("reading the target database's owner");
  if (owner->rows() != 1) return Status::Ok();
  std::set<std::string> missing;
  for (const std::string& statement :
       GrantStatements("DATABASE " + QuoteIdent(spec.target_name), owner->GetString(0, 0), grants,
                       present, &missing)) {
    Status granted = target.Run(statement);
    if (!granted.ok()) {
      Say(note, "database grants not applied: " + granted.message());
      break;
    }
  }
  if (!missing.empty()) {
    Say(note, fmt::format("database grants to {} not copied: no such role on the target",
                          fmt::join(missing, ", ")));
  }
  return Status::Ok();
}

}  // namespace

Status ApplyDatabaseProperties(Connection& source, Connection& target,
                               const DatabasePropertiesSpec& spec, const Note& note) {
  Result<std::set<std::string>> present = RoleNames(target);
  if (!present.ok()) return present.status().WithContext("reading the target's roles");
  PGC_RETURN_IF_ERROR(ApplySettings(source, target, spec, note));
  PGC_RETURN_IF_ERROR(ApplyRoleSettings(source, target, spec, *present, note));
  PGC_RETURN_IF_ERROR(ApplyCommentAndLimit(source, target, spec, note));
  if (spec.grants) PGC_RETURN_IF_ERROR(ApplyGrants(source, target, spec, *present, note));
  return Status::Ok();
}

}  // namespace pgcourier

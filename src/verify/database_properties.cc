#include "verify/database_properties.h"

#include <cctype>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "catalog/acl.h"
#include "pg/quote.h"
#include "pg/setting_entry.h"
#include "roles/provider_roles.h"

namespace pgcourier {
namespace {

struct Property {
  std::string value;
  std::string role;  // the role whose setting it is, else ""
};

// Property name -> value, for one side.
using Properties = std::map<std::string, Property>;

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

Status ReadSettings(Connection& conn, Properties& out) {
  Result<QueryResult> rows = conn.Exec(
      "SELECT r.rolname, c.entry FROM pg_catalog.pg_db_role_setting s "
      "JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase "
      "LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.setrole "
      "CROSS JOIN LATERAL pg_catalog.unnest(s.setconfig) AS c(entry) "
      "WHERE d.datname = pg_catalog.current_database()");
  if (!rows.ok()) return rows.status().WithContext("reading the database's settings");
  for (int r = 0; r < rows->rows(); ++r) {
    const std::string entry = rows->GetString(r, 1);
    const std::string name = Lower(SettingName(entry));
    std::string property = "setting " + name;
    std::string role;
    if (!rows->IsNull(r, 0)) {
      role = rows->GetString(r, 0);
      if (IsProviderRole(role)) continue;
      property = "role " + DisplayIdent(role) + ": " + property;
    } else if (name == kReadOnlySetting) {
      continue;
    }
    out[property] = {SettingValueForComparison(entry), role};
  }
  return Status::Ok();
}

Status ReadDatabaseRow(Connection& conn, bool grants, Properties& out) {
  Result<QueryResult> row = conn.Exec(
      "SELECT pg_catalog.shobj_description(d.oid, 'pg_database'), d.datconnlimit::text, " +
      AclTextSql("d.datacl", "d.datdba", 'd') +
      " FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()");
  if (!row.ok()) return row.status().WithContext("reading the database's properties");
  if (row->rows() != 1) return Status::Ok();
  if (!row->IsNull(0, 0)) out["comment"] = {row->GetString(0, 0), ""};
  out["connection limit"] = {row->GetString(0, 1), ""};
  if (grants) out["grants"] = {row->GetString(0, 2), ""};
  return Status::Ok();
}

Result<std::set<std::string>> RoleNames(Connection& conn) {
  Result<QueryResult> rows = conn.Exec("SELECT rolname FROM pg_catalog.pg_roles");
  if (!rows.ok()) return rows.status().WithContext("reading the roles");
  std::set<std::string> out;
  for (int r = 0; r < rows->rows(); ++r) out.insert(rows->GetString(r, 0));
  return out;
}

Result<Properties> ReadProperties(Connection& conn, const VerifyOptions& options) {
  Properties out;
  PGC_RETURN_IF_ERROR(ReadSettings(conn, out));
  PGC_RETURN_IF_ERROR(ReadDatabaseRow(conn, options.grants, out));
  return out;
}

}  // namespace

Result<std::vector<PropertyVerification>> CompareDatabaseProperties(Connection& source,
                                                                    Connection& target,
                                                                    const VerifyOptions& options) {
  Result<Properties> source_properties = ReadProperties(source, options);
  if (!source_properties.ok()) return source_properties.status().WithContext("on the source");
  Result<Properties> target_properties = ReadProperties(target, options);
  if (!target_properties.ok()) return target_properties.status().WithContext("on the target");
  Result<std::set<std::string>> target_roles = RoleNames(target);
  if (!target_roles.ok()) return target_roles.status().WithContext("on the target");
  std::set<std::string> names;
  for (const auto& [name, value] : *source_properties) names.insert(name);
  for (const auto& [name, value] : *target_properties) names.insert(name);
  std::vector<PropertyVerification> out;
  for (const std::string& name : names) {
    PropertyVerification v;
    v.property = name;
    if (auto found = source_properties->find(name); found != source_properties->end()) {
      v.source_value = found->second.value;
      const std::string& role = found->second.role;
      if (!role.empty() && target_roles->count(role) == 0)
        v.left_out = "no such role on the target";
    }
    if (auto found = target_properties->find(name); found != target_properties->end()) {
      v.target_value = found->second.value;
    }
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace pgcourier

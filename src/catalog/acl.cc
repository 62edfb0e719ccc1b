#include "catalog/acl.h"

#include <fmt/format.h>

#include "pg/quote.h"

namespace pgcourier {

std::string AclTextSql(const std::string& acl, const std::string& owner, char kind) {
  return fmt::format(
      "(SELECT pg_catalog.string_agg(x.e, ', ' ORDER BY x.e COLLATE \"C\") FROM "
      "(SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' WHEN a.grantee = {1} "
      "THEN '(owner)' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END "
      "|| ':' || a.privilege_type || CASE WHEN a.is_grantable THEN '*' ELSE '' END AS e "
      "FROM pg_catalog.aclexplode(coalesce({0}, pg_catalog.acldefault('{2}', {1}))) a) x)",
      acl, owner, kind);
}

std::string GrantRowsSql(const std::string& columns, const std::string& acl,
                         const std::string& owner, const std::string& from) {
  return fmt::format(
      "SELECT DISTINCT {0}, CASE WHEN a.grantee = 0 THEN NULL "
      "ELSE pg_catalog.pg_get_userbyid(a.grantee) END, a.grantee = {2}, a.privilege_type, "
      "a.is_grantable FROM {3} CROSS JOIN LATERAL pg_catalog.aclexplode({1}) a "
      "WHERE {1} IS NOT NULL",
      columns, acl, owner, from);
}

AclGrant ReadGrant(const QueryResult& result, int row, int first) {
  AclGrant grant;
  if (!result.IsNull(row, first)) grant.grantee = result.GetString(row, first);
  grant.owner = result.GetBool(row, first + 1);
  grant.privilege = result.GetString(row, first + 2);
  grant.grantable = result.GetBool(row, first + 3);
  return grant;
}

std::vector<std::string> GrantStatements(const std::string& object, const std::string& owner,
                                         const std::vector<AclGrant>& grants,
                                         const std::set<std::string>& present,
                                         std::set<std::string>* missing) {
  std::vector<std::string> out = {"REVOKE ALL ON " + object + " FROM PUBLIC",
                                  "REVOKE ALL ON " + object + " FROM " + owner};
  for (const AclGrant& grant : grants) {
    std::string grantee = "PUBLIC";
    if (grant.owner) {
      grantee = owner;
    } else if (!grant.grantee.empty()) {
      if (present.count(grant.grantee) == 0) {
        if (missing != nullptr) missing->insert(grant.grantee);
        continue;
      }
      grantee = QuoteIdent(grant.grantee);
    }
    out.push_back(fmt::format("GRANT {} ON {} TO {}{}", grant.privilege, object, grantee,
                              grant.grantable ? " WITH GRANT OPTION" : ""));
  }
  return out;
}

}  // namespace pgcourier

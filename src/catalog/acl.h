// Access privileges (aclitem[] columns such as datacl and lomacl) read from a
// server in a form that compares across servers, and written back as GRANTs.
// The object's owner differs between servers whenever owners are not
// preserved, so it is named "(owner)" wherever it appears.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "pg/result.h"

namespace pgcourier {

// A scalar SQL expression: the privileges of `acl` (an aclitem[] expression;
// NULL means the built-in default of object kind `kind`, e.g. 'd' for a
// database, 'L' for a large object, for the owner `owner`, an oid
// expression) as sorted text, one "grantee:PRIVILEGE" per grant ("*" after a
// grantable one), separated by ", ". The grantee is PUBLIC, "(owner)", or the
// role's quoted name; the grantor is left out (GRANTs made again on another
// server come from the owner).
std::string AclTextSql(const std::string& acl, const std::string& owner, char kind);

// One grant of an object, as GrantRowsSql returns them.
struct AclGrant {
  std::string grantee;  // empty for PUBLIC
  bool owner = false;   // the grantee is the object's owner
  std::string privilege;
  bool grantable = false;
};

// A query with one row per grant of `acl` (columns: grantee name or NULL for
// PUBLIC, grantee is `owner`, privilege, grantable), from FROM-clause
// `from`. Nothing when `acl` is NULL (the default privileges).
std::string GrantRowsSql(const std::string& columns, const std::string& acl,
                         const std::string& owner, const std::string& from);

// Reads AclGrants from `result` starting at column `first`, for one row.
AclGrant ReadGrant(const QueryResult& result, int row, int first);

// The statements that give `object` ("DATABASE x", "LARGE OBJECT 123")
// exactly `grants`: everything revoked from PUBLIC and from `owner` (the
// object's owner on this server, quoted name), then granted. Grants to roles
// not in `present` are left out and their names added to `missing`.
std::vector<std::string> GrantStatements(const std::string& object, const std::string& owner,
                                         const std::vector<AclGrant>& grants,
                                         const std::set<std::string>& present,
                                         std::set<std::string>* missing);

}  // namespace pgcourier

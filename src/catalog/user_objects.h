// SQL conditions that select the user's own objects in catalog queries: not
// in a system schema, not created by an extension. One definition, so every
// part of pgcourier (checks, copy, verify) sees the same set of objects.
#pragma once

#include <string>

namespace pgcourier::sql {

// `n` is the object's pg_namespace row.
inline constexpr const char* kUserSchema = R"sql(
      n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%')sql";

// " AND the object is not a member of an extension"; `catalog` is its system
// catalog ("pg_class", "pg_proc", ...), `oid` the SQL expression of its OID.
inline std::string NotExtensionMember(const char* catalog, const char* oid) {
  return std::string(" AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '") + catalog +
         "'::regclass AND d.objid = " + oid + " AND d.deptype = 'e')";
}

// A relation of the user: `c` is its pg_class row, `n` its pg_namespace row.
inline std::string UserRelation() {
  return std::string(kUserSchema) + NotExtensionMember("pg_class", "c.oid") + " ";
}

}  // namespace pgcourier::sql

// roles.required: roles that the restore of the schema names (a policy's
// TO list, a user mapping; with --preserve-owners the owners, with
// --preserve-acl the grants and default privileges) must exist on the
// target, or pg_restore fails with `role "..." does not exist` after every
// row was copied.
#include <fmt/format.h>

#include <map>
#include <string>
#include <vector>

#include "catalog/server_facts.h"
#include "catalog/user_objects.h"
#include "pg/connection.h"
#include "pg/quote.h"
#include "preflight/checker_internal.h"
#include "roles/provider_roles.h"

namespace pgcourier::checker_internal {
namespace {

// Per object that names a role: the role, how (pg_shdepend's deptype: o
// owner, a grant, r policy), the object's catalog and description, and the
// table it is on (for the object filter). Owners are read from the catalogs
// too, since ownership by the bootstrap superuser is never recorded in
// pg_shdepend.
std::string RoleReferencesSql() {
  const std::string user_schema = sql::kUserSchema;
  return R"sql(
WITH refs AS (
  SELECT s.refobjid AS role, s.deptype::text AS kind, s.classid, s.objid, s.objsubid
    FROM pg_catalog.pg_shdepend s
   WHERE s.dbid = (SELECT oid FROM pg_catalog.pg_database
                    WHERE datname = pg_catalog.current_database())
     AND s.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass
     AND s.deptype IN ('o', 'a', 'r')
  UNION
  SELECT c.relowner, 'o', 'pg_catalog.pg_class'::pg_catalog.regclass::oid, c.oid, 0
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND )sql" +
         user_schema + R"sql(
  UNION
  SELECT n.nspowner, 'o', 'pg_catalog.pg_namespace'::pg_catalog.regclass::oid, n.oid, 0
    FROM pg_catalog.pg_namespace n
   WHERE )sql" +
         user_schema + R"sql(
  UNION
  SELECT p.proowner, 'o', 'pg_catalog.pg_proc'::pg_catalog.regclass::oid, p.oid, 0
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
   WHERE )sql" +
         user_schema + R"sql(
)
SELECT r.rolname, refs.kind, refs.classid::pg_catalog.regclass::text,
       pg_catalog.pg_describe_object(refs.classid, refs.objid, refs.objsubid),
       tn.nspname, tc.relname
  FROM refs
  JOIN pg_catalog.pg_roles r ON r.oid = refs.role
  LEFT JOIN pg_catalog.pg_policy pol
    ON refs.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass AND pol.oid = refs.objid
  LEFT JOIN pg_catalog.pg_class tc
    ON tc.oid = CASE WHEN refs.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                     THEN refs.objid ELSE pol.polrelid END
  LEFT JOIN pg_catalog.pg_namespace tn ON tn.oid = tc.relnamespace
 WHERE r.rolname !~ '^pg_'
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.classid = refs.classid AND d.objid = refs.objid AND d.deptype = 'e')
 ORDER BY 1, 4)sql";
}

}  // namespace

Status Checker::CollectRoleReferences(Connection& source_db, const DatabasePlan& plan) {
  Result<QueryResult> rows = source_db.Exec(RoleReferencesSql(), QueryDeadline());
  if (!rows.ok()) {
    if (rows.status().code() == StatusCode::kCancelled) return rows.status();
    Add(check_code::kRolesRequired, CheckStatus::kWarn, plan.name,
        "could not list the objects that name roles: " + rows.status().message());
    return Status::Ok();
  }
  for (int r = 0; r < rows->rows(); ++r) {
    const std::string kind = rows->GetString(r, 1);
    const std::string catalog = rows->GetString(r, 2);
    // What pg_restore names whatever the policy: policies' roles and user
    // mappings. Owners only with --preserve-owners (else --no-owner), grants
    // and default privileges only with --preserve-acl (else
    // --no-privileges, which leaves out DEFAULT ACL entries too).
    bool named = false;
    if (kind == "r" || catalog == "pg_user_mapping") {
      named = true;
    } else if (kind == "a" || catalog == "pg_default_acl") {
      named = options_.preserve_acl;
    } else {
      named = options_.preserve_owners;
    }
    if (!named) continue;
    if (!rows->IsNull(r, 4) &&
        options_.filter.ExcludesTable(rows->GetString(r, 4), rows->GetString(r, 5))) {
      continue;
    }
    std::string how = kind == "o" && catalog != "pg_user_mapping" && catalog != "pg_default_acl"
                          ? " (owner)"
                      : kind == "a" ? " (grant)"
                                    : "";
    role_references_.push_back({rows->GetString(r, 0), plan.name, rows->GetString(r, 3) + how});
  }
  return Status::Ok();
}

void Checker::CheckRequiredRoles() {
  // Per missing role, the objects naming it.
  std::map<std::string, std::vector<std::string>> missing;
  for (const auto& ref : role_references_) {
    if (target_.facts->role_names.count(ref.role) != 0) continue;
    missing[ref.role].push_back(ref.database + ": " + ref.object);
  }
  if (missing.empty()) {
    Add(check_code::kRolesRequired, CheckStatus::kPass, "roles",
        "every role the schema's restore names exists on the target");
    return;
  }
  for (const auto& [role, objects] : missing) {
    trial_roles_.insert(role);
    const std::string detail =
        fmt::format("role {} is missing on the target and named by {} object(s): {}", role,
                    objects.size(), JoinNames(objects, 5));
    if (options_.roles && !IsProviderRole(role)) {
      Add(check_code::kRolesRequired, CheckStatus::kPass, "role " + role,
          detail + "; --roles creates it first");
    } else if (IsProviderRole(role)) {
      Add(check_code::kRolesRequired, CheckStatus::kFail, "role " + role,
          detail + " (a provider role, which --roles does not create)",
          fmt::format("create the role on the target (CREATE ROLE {}), or change these objects on "
                      "the source so they no longer name it",
                      QuoteIdent(role)));
    } else {
      Add(check_code::kRolesRequired, CheckStatus::kFail, "role " + role, detail,
          fmt::format("add --roles (it creates the source's missing roles on the target before "
                      "the schema), or create the role on the target first (CREATE ROLE {})",
                      QuoteIdent(role)));
    }
  }
}

}  // namespace pgcourier::checker_internal

#include "roles/role_copy.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cctype>
#include <map>
#include <set>
#include <utility>

#include "pg/quote.h"
#include "pg/setting_entry.h"
#include "roles/provider_roles.h"

namespace pgcourier {
namespace {

using role_copy_internal::Attribute;
using role_copy_internal::CreateRolePlan;
using role_copy_internal::CreateRoleResult;

constexpr int kPg16 = 160000;

// Settings whose value the server stores as a list of quoted names
// (GUC_LIST_QUOTE); pg_dumpall's list.
// The roles: pg_authid when the password hashes are to be read (and can be),
// else pg_roles (readable by anyone; its rolpassword is a mask).
constexpr const char* kRolesSql = R"sql(
SELECT a.rolname, a.rolsuper, a.rolinherit, a.rolcreaterole, a.rolcreatedb, a.rolcanlogin,
       a.rolreplication, a.rolbypassrls, a.rolconnlimit,
       pg_catalog.to_json(a.rolvaliduntil) #>> '{{}}',
       {}
  FROM pg_catalog.{} a
 ORDER BY a.rolname COLLATE "C"
)sql";

constexpr const char* kRoleSettingsSql = R"sql(
SELECT r.rolname, c.entry
  FROM pg_catalog.pg_db_role_setting s
  JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
 CROSS JOIN LATERAL pg_catalog.unnest(s.setconfig) WITH ORDINALITY AS c(entry, n)
 WHERE s.setdatabase = 0
 ORDER BY r.rolname COLLATE "C", c.n
)sql";

constexpr const char* kDatabaseRoleSettingsSql = R"sql(
SELECT r.rolname, c.entry
  FROM pg_catalog.pg_db_role_setting s
  JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
  JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase
 CROSS JOIN LATERAL pg_catalog.unnest(s.setconfig) WITH ORDINALITY AS c(entry, n)
 WHERE d.datname = $1
 ORDER BY r.rolname COLLATE "C", c.n
)sql";

// Memberships; the INHERIT and SET options exist from 16 on.
constexpr const char* kMembershipsSql = R"sql(
SELECT g.rolname, m.rolname, am.admin_option, {}
  FROM pg_catalog.pg_auth_members am
  JOIN pg_catalog.pg_roles g ON g.oid = am.roleid
  JOIN pg_catalog.pg_roles m ON m.oid = am.member
 ORDER BY g.rolname COLLATE "C", m.rolname COLLATE "C"
)sql";

struct SourceRole {
  std::string name;
  bool superuser = false;
  bool inherit = true;
  bool createrole = false;
  bool createdb = false;
  bool login = false;
  bool replication = false;
  bool bypassrls = false;
  int64_t connection_limit = -1;
  std::optional<std::string> valid_until;
  std::optional<std::string> password;
  std::vector<std::string> settings;  // "name=value"
};

struct MembershipOptions {
  bool admin = false;
  std::optional<bool> inherit;  // from a 16+ source only
  std::optional<bool> set;
};

using RolePair = std::pair<std::string, std::string>;  // group, member

// The target user's own rights, which decide what it may grant.
struct TargetRights {
  std::string user;
  int version = 0;
  bool superuser = false;
  bool createrole = false;
  bool createdb = false;
  bool replication = false;
  bool bypassrls = false;
};

bool IsRefusal(const Status& status) {
  return status.code() == StatusCode::kServerError && !status.retryable();
}

// Masks password hashes in server text: the given hash wherever it appears,
// and anything shaped like a SCRAM secret or an md5 hash.
std::string MaskHashes(std::string text, const std::optional<std::string>& password) {
  constexpr std::string_view kMask = "[password hash hidden]";
  if (password && !password->empty()) {
    for (size_t at = text.find(*password); at != std::string::npos;
         at = text.find(*password, at + kMask.size())) {
      text.replace(at, password->size(), kMask);
    }
  }
  for (size_t at = text.find("SCRAM-SHA-256$"); at != std::string::npos;
       at = text.find("SCRAM-SHA-256$", at + kMask.size())) {
    size_t end = at;
    while (end < text.size() && std::isspace(static_cast<unsigned char>(text[end])) == 0 &&
           text[end] != '"' && text[end] != '\'') {
      ++end;
    }
    text.replace(at, end - at, kMask);
  }
  for (size_t at = text.find("md5"); at != std::string::npos; at = text.find("md5", at + 1)) {
    size_t hex = 0;
    while (at + 3 + hex < text.size() && hex < 32 &&
           std::isxdigit(static_cast<unsigned char>(text[at + 3 + hex])) != 0) {
      ++hex;
    }
    if (hex == 32) text.replace(at, 35, kMask);
  }
  return text;
}

Status MaskStatus(const Status& status, const std::optional<std::string>& password) {
  return Status(status.code(), MaskHashes(status.message(), password),
                MaskHashes(status.hint(), password), status.sqlstate());
}

// Why the target user may not grant `attribute` by the server's rules, or
// std::nullopt when it may. (A user that may create roles at all has
// CREATEROLE or is a superuser.)
std::optional<std::string> WhyNotGrantable(Attribute attribute, const TargetRights& t) {
  if (t.superuser) return std::nullopt;
  const bool v16 = t.version >= kPg16;
  switch (attribute) {
    case Attribute::kSuperuser:
      return "only a superuser may grant it";
    case Attribute::kReplication:
      if (v16 && t.replication) return std::nullopt;
      return v16 ? "only a role with REPLICATION may grant it"
                 : "only a superuser may grant it before PostgreSQL 16";
    case Attribute::kBypassRls:
      if (v16 && t.bypassrls) return std::nullopt;
      return v16 ? "only a role with BYPASSRLS may grant it"
                 : "only a superuser may grant it before PostgreSQL 16";
    case Attribute::kCreateDb:
      if (!v16 || t.createdb) return std::nullopt;
      return "only a role with CREATEDB may grant it on PostgreSQL 16 and later";
    case Attribute::kCreateRole:
      return std::nullopt;
  }
  return std::nullopt;
}

std::vector<Attribute> WantedAttributes(const SourceRole& role) {
  std::vector<Attribute> out;
  if (role.superuser) out.push_back(Attribute::kSuperuser);
  if (role.replication) out.push_back(Attribute::kReplication);
  if (role.bypassrls) out.push_back(Attribute::kBypassRls);
  if (role.createrole) out.push_back(Attribute::kCreateRole);
  if (role.createdb) out.push_back(Attribute::kCreateDb);
  return out;
}

std::string MembershipText(const RolePair& pair) {
  return fmt::format("{} -> {}", pair.first, pair.second);
}

std::set<std::string> ReadNames(const QueryResult& result) {
  std::set<std::string> names;
  for (int r = 0; r < result.rows(); ++r) names.insert(result.GetString(r, 0));
  return names;
}

Result<TargetRights> ReadTargetRights(Connection& target, Deadline deadline) {
  Result<QueryResult> rights = target.Exec(
      "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls "
      "FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER",
      deadline);
  if (!rights.ok()) return rights.status();
  if (rights->rows() != 1) {
    return Status(StatusCode::kServerError, "the current user is not in pg_roles");
  }
  TargetRights t;
  t.user = rights->GetString(0, 0);
  t.version = target.server_version();
  t.superuser = rights->GetBool(0, 1);
  t.createrole = rights->GetBool(0, 2);
  t.createdb = rights->GetBool(0, 3);
  t.replication = rights->GetBool(0, 4);
  t.bypassrls = rights->GetBool(0, 5);
  return t;
}

Status RequireNoTransaction(Connection& target) {
  if (target.IdleOutsideTransaction()) return Status::Ok();
  return Status(StatusCode::kFailedPrecondition,
                "the target connection is inside a transaction block",
                "roles and role settings are written one autocommitted statement at a time; "
                "pass a connection outside any transaction");
}

Result<std::vector<SourceRole>> ReadSourceRoles(Connection& source, bool with_passwords,
                                                Deadline deadline) {
  Result<QueryResult> roles =
      source.Exec(fmt::format(kRolesSql, with_passwords ? "a.rolpassword" : "NULL::text",
                              with_passwords ? "pg_authid" : "pg_roles"),
                  deadline);
  if (!roles.ok()) return roles.status();
  std::vector<SourceRole> out;
  out.reserve(static_cast<size_t>(roles->rows()));
  for (int r = 0; r < roles->rows(); ++r) {
    SourceRole role;
    role.name = roles->GetString(r, 0);
    role.superuser = roles->GetBool(r, 1);
    role.inherit = roles->GetBool(r, 2);
    role.createrole = roles->GetBool(r, 3);
    role.createdb = roles->GetBool(r, 4);
    role.login = roles->GetBool(r, 5);
    role.replication = roles->GetBool(r, 6);
    role.bypassrls = roles->GetBool(r, 7);
    role.connection_limit = roles->GetInt(r, 8, -1);
    role.valid_until = roles->GetOptional(r, 9);
    role.password = roles->GetOptional(r, 10);
    if (role.password && role.password->empty()) role.password.reset();
    out.push_back(std::move(role));
  }

  Result<QueryResult> settings = source.Exec(kRoleSettingsSql, deadline);
  if (!settings.ok()) return settings.status();
  std::map<std::string, SourceRole*> by_name;
  for (auto& role : out) by_name[role.name] = &role;
  for (int r = 0; r < settings->rows(); ++r) {
    auto it = by_name.find(settings->GetString(r, 0));
    if (it != by_name.end()) it->second->settings.push_back(settings->GetString(r, 1));
  }
  return out;
}

Result<std::map<RolePair, MembershipOptions>> ReadMemberships(Connection& conn, Deadline deadline) {
  const bool v16 = conn.server_version() >= kPg16;
  Result<QueryResult> rows =
      conn.Exec(fmt::format(kMembershipsSql, v16 ? "am.inherit_option, am.set_option"
                                                 : "NULL::boolean, NULL::boolean"),
                deadline);
  if (!rows.ok()) return rows.status();
  // From 16 on a role can be granted to a member more than once (by different
  // grantors); the grantor is not kept, so the grants are merged.
  std::map<RolePair, MembershipOptions> out;
  for (int r = 0; r < rows->rows(); ++r) {
    MembershipOptions& m = out[{rows->GetString(r, 0), rows->GetString(r, 1)}];
    m.admin = m.admin || rows->GetBool(r, 2);
    if (v16) {
      m.inherit = m.inherit.value_or(false) || rows->GetBool(r, 3);
      m.set = m.set.value_or(false) || rows->GetBool(r, 4);
    }
  }
  return out;
}

class RoleCopier {
 public:
  RoleCopier(Connection& source, Connection& target, const RoleCopyOptions& options,
             Deadline deadline)
      : source_(source), target_(target), options_(options), deadline_(deadline) {}

  Result<RoleCopyReport> Run();

 private:
  Status Read();
  // Each returns an error only for failures that end the whole copy.
  Status CreateRole(const SourceRole& role, RoleOutcome& outcome);
  Status GrantMemberships();
  Status ApplySettings(const SourceRole& role, RoleOutcome& outcome);

  // The outcome of a source role (every one has one once creation is done).
  RoleOutcome& Outcome(const std::string& name) {
    auto it = outcome_index_.find(name);
    assert(it != outcome_index_.end());
    return report_.roles[it->second];
  }
  bool OnTarget(const std::string& name) const {
    return target_roles_.count(name) != 0 || created_.count(name) != 0;
  }

  Connection& source_;
  Connection& target_;
  const RoleCopyOptions& options_;
  Deadline deadline_;

  bool passwords_readable_ = false;
  std::vector<SourceRole> roles_;
  std::map<RolePair, MembershipOptions> source_memberships_;
  TargetRights rights_;
  std::set<std::string> target_roles_;
  std::map<RolePair, MembershipOptions> target_memberships_;

  std::set<std::string> created_;
  std::map<std::string, size_t> outcome_index_;
  RoleCopyReport report_;
};

Status RoleCopier::Read() {
  if (options_.copy_passwords) {
    Result<QueryResult> readable = source_.Exec(
        "SELECT pg_catalog.has_table_privilege('pg_catalog.pg_authid', 'SELECT')", deadline_);
    if (!readable.ok()) return readable.status().WithContext("reading the source's roles");
    passwords_readable_ = readable->rows() == 1 && readable->GetBool(0, 0);
  }
  Result<std::vector<SourceRole>> roles =
      ReadSourceRoles(source_, options_.copy_passwords && passwords_readable_, deadline_);
  if (!roles.ok()) return roles.status().WithContext("reading the source's roles");
  roles_ = std::move(roles).value();

  Result<std::map<RolePair, MembershipOptions>> memberships = ReadMemberships(source_, deadline_);
  if (!memberships.ok()) {
    return memberships.status().WithContext("reading the source's role memberships");
  }
  source_memberships_ = std::move(memberships).value();

  Result<TargetRights> rights = ReadTargetRights(target_, deadline_);
  if (!rights.ok()) return rights.status().WithContext("reading the target user's rights");
  rights_ = std::move(rights).value();

  Result<QueryResult> names = target_.Exec("SELECT rolname FROM pg_catalog.pg_roles", deadline_);
  if (!names.ok()) return names.status().WithContext("reading the target's roles");
  target_roles_ = ReadNames(*names);

  Result<std::map<RolePair, MembershipOptions>> target_memberships =
      ReadMemberships(target_, deadline_);
  if (!target_memberships.ok()) {
    return target_memberships.status().WithContext("reading the target's role memberships");
  }
  target_memberships_ = std::move(target_memberships).value();
  return Status::Ok();
}

Result<RoleCopyReport> RoleCopier::Run() {
  PGC_RETURN_IF_ERROR(RequireNoTransaction(target_));
  PGC_RETURN_IF_ERROR(Read());

  const bool can_create = rights_.superuser || rights_.createrole;
  bool refused_for_rights = false;
  for (const SourceRole& role : roles_) {
    outcome_index_[role.name] = report_.roles.size();
    RoleOutcome& outcome = report_.roles.emplace_back();
    outcome.name = role.name;
    if (IsProviderRole(role.name)) {
      outcome.action = RoleOutcome::Action::kProviderSkipped;
    } else if (target_roles_.count(role.name) != 0) {
      outcome.action = RoleOutcome::Action::kExisting;
    } else if (!can_create) {
      outcome.action = RoleOutcome::Action::kFailed;
      outcome.notes.push_back(fmt::format(
          "not created: the target user {} has neither SUPERUSER nor CREATEROLE", rights_.user));
      refused_for_rights = true;
    } else {
      PGC_RETURN_IF_ERROR(CreateRole(role, outcome));
    }
  }
  if (refused_for_rights) {
    report_.warnings.push_back(
        fmt::format("the target user {} may not create roles (it needs SUPERUSER or "
                    "CREATEROLE): the missing roles were not created",
                    rights_.user));
  }

  PGC_RETURN_IF_ERROR(GrantMemberships());
  for (const SourceRole& role : roles_) {
    if (created_.count(role.name) == 0) continue;
    PGC_RETURN_IF_ERROR(ApplySettings(role, Outcome(role.name)));
  }
  return std::move(report_);
}

Status RoleCopier::CreateRole(const SourceRole& role, RoleOutcome& outcome) {
  CreateRolePlan plan;
  plan.name = role.name;
  plan.inherit = role.inherit;
  plan.login = role.login;
  plan.connection_limit = role.connection_limit;
  plan.valid_until = role.valid_until;
  std::vector<std::string> notes;
  for (Attribute attribute : WantedAttributes(role)) {
    std::optional<std::string> why = WhyNotGrantable(attribute, rights_);
    if (why) {
      notes.push_back(fmt::format("{} left out: the target user {} may not grant it ({})",
                                  role_copy_internal::AttributeKeyword(attribute), rights_.user,
                                  *why));
    } else {
      plan.attributes.push_back(attribute);
    }
  }
  if (!options_.copy_passwords) {
    notes.emplace_back("created without a password: copying passwords was turned off");
  } else if (!passwords_readable_) {
    notes.push_back(fmt::format(
        "created without a password: the source user {} may not read pg_authid (a superuser "
        "can); set it with ALTER ROLE ... PASSWORD",
        source_.user()));
  } else if (!role.password) {
    notes.emplace_back("created without a password: the source role has none");
  } else {
    plan.password = role.password;
  }

  CreateRoleResult created = role_copy_internal::CreateRoleWithFallback(
      std::move(plan), [&](const std::string& sql) { return target_.Run(sql, deadline_); });
  if (created.abort_all) {
    return created.status.WithContext(fmt::format("creating role {} on the target", role.name));
  }
  if (created.already_exists) {
    outcome.action = RoleOutcome::Action::kExisting;
    outcome.notes.emplace_back("created on the target by someone else meanwhile; left as it is");
    target_roles_.insert(role.name);
    return Status::Ok();
  }
  if (!created.status.ok()) {
    outcome.action = RoleOutcome::Action::kFailed;
    outcome.notes.push_back("not created: " + created.status.ToString());
    return Status::Ok();
  }
  outcome.action = RoleOutcome::Action::kCreated;
  outcome.password_copied = created.password_set;
  outcome.notes = std::move(notes);
  outcome.notes.insert(outcome.notes.end(), created.notes.begin(), created.notes.end());
  created_.insert(role.name);
  return Status::Ok();
}

Status RoleCopier::GrantMemberships() {
  const bool keep_options = rights_.version >= kPg16 && source_.server_version() >= kPg16;
  std::map<std::string, bool> source_inherit;
  for (const SourceRole& role : roles_) source_inherit[role.name] = role.inherit;

  for (const auto& [pair, options] : source_memberships_) {
    const auto& [group, member] = pair;
    const bool member_created = created_.count(member) != 0;
    if (!member_created && created_.count(group) == 0) continue;  // nothing of ours
    RoleOutcome& owner = Outcome(member_created ? member : group);
    const std::string what = MembershipText(pair);
    if (IsProviderRole(member)) {
      owner.notes.push_back(
          fmt::format("membership {} not granted: {} is a provider role", what, member));
      continue;
    }
    if (!OnTarget(group) || !OnTarget(member)) {
      owner.notes.push_back(fmt::format("membership {} not granted: the target has no role {}",
                                        what, OnTarget(group) ? member : group));
      continue;
    }
    if (target_memberships_.count(pair) != 0) continue;

    std::string sql = fmt::format("GRANT {} TO {}", QuoteIdent(group), QuoteIdent(member));
    std::vector<std::string> shown;
    if (options.admin) shown.emplace_back("admin option");
    if (keep_options && options.inherit && options.set) {
      sql += fmt::format(" WITH ADMIN {}, INHERIT {}, SET {}", options.admin ? "TRUE" : "FALSE",
                         *options.inherit ? "TRUE" : "FALSE", *options.set ? "TRUE" : "FALSE");
      if (!*options.inherit) shown.emplace_back("no inherit");
      if (!*options.set) shown.emplace_back("no set");
    } else {
      if (options.admin) sql += " WITH ADMIN OPTION";
      const bool default_inherit = source_inherit.count(member) == 0 || source_inherit[member];
      if ((options.set && !*options.set) ||
          (options.inherit && *options.inherit != default_inherit)) {
        owner.notes.push_back(
            fmt::format("membership {}: its INHERIT/SET options cannot be given on a target before "
                        "PostgreSQL 16; granted with the defaults",
                        what));
      }
    }
    Status granted = target_.Run(sql, deadline_);
    if (!granted.ok()) {
      if (!IsRefusal(granted)) return granted.WithContext("granting " + what + " on the target");
      owner.notes.push_back(fmt::format("membership {} not granted: {}", what, granted.ToString()));
      continue;
    }
    target_memberships_[pair] = options;
    report_.memberships_granted.push_back(
        shown.empty() ? what : fmt::format("{} ({})", what, fmt::join(shown, ", ")));
  }
  return Status::Ok();
}

Status RoleCopier::ApplySettings(const SourceRole& role, RoleOutcome& outcome) {
  for (const std::string& entry : role.settings) {
    std::optional<std::string> assignment = SettingAssignment(entry);
    if (!assignment) {
      outcome.notes.push_back(
          fmt::format("setting {} not applied: not of the form name=value", SettingName(entry)));
      continue;
    }
    Status set = target_.Run(
        fmt::format("ALTER ROLE {} SET {}", QuoteIdent(role.name), *assignment), deadline_);
    if (set.ok()) continue;
    if (!IsRefusal(set)) {
      return set.WithContext(fmt::format("setting {} of role {}", SettingName(entry), role.name));
    }
    outcome.notes.push_back(
        fmt::format("setting {} not applied: {}", SettingName(entry), set.ToString()));
  }
  return Status::Ok();
}

Status ExpectDatabase(Connection& conn, const std::string& name, const char* side,
                      Deadline deadline) {
  Result<QueryResult> found =
      conn.ExecParams("SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1", {name}, deadline);
  if (!found.ok()) return found.status().WithContext(fmt::format("looking up database {}", name));
  if (found->rows() == 0) {
    return Status(StatusCode::kNotFound, fmt::format("the {} has no database {}", side, name));
  }
  return Status::Ok();
}

}  // namespace

Result<RoleCopyReport> CopyRoles(Connection& source, Connection& target,
                                 const RoleCopyOptions& options, Deadline deadline) {
  RoleCopier copier(source, target, options, deadline);
  return copier.Run();
}

Status CopyRoleDatabaseSettings(Connection& source, Connection& target,
                                const std::string& source_db, const std::string& target_db,
                                Deadline deadline) {
  PGC_RETURN_IF_ERROR(RequireNoTransaction(target));
  PGC_RETURN_IF_ERROR(ExpectDatabase(source, source_db, "source", deadline));
  PGC_RETURN_IF_ERROR(ExpectDatabase(target, target_db, "target", deadline));
  const std::string where = fmt::format("copying role settings of database {}", source_db);
  Result<QueryResult> entries = source.ExecParams(kDatabaseRoleSettingsSql, {source_db}, deadline);
  if (!entries.ok()) return entries.status().WithContext(where);
  Result<QueryResult> names = target.Exec("SELECT rolname FROM pg_catalog.pg_roles", deadline);
  if (!names.ok()) return names.status().WithContext(where);
  const std::set<std::string> target_roles = ReadNames(*names);

  int tried = 0;
  int refused = 0;
  Status first;
  for (int r = 0; r < entries->rows(); ++r) {
    const std::string role = entries->GetString(r, 0);
    const std::string entry = entries->GetString(r, 1);
    if (IsProviderRole(role) || target_roles.count(role) == 0) continue;
    ++tried;
    std::optional<std::string> assignment = SettingAssignment(entry);
    Status set = assignment
                     ? target.Run(fmt::format("ALTER ROLE {} IN DATABASE {} SET {}",
                                              QuoteIdent(role), QuoteIdent(target_db), *assignment),
                                  deadline)
                     : Status(StatusCode::kServerError, "not of the form name=value");
    if (set.ok()) continue;
    if (!IsRefusal(set)) return set.WithContext(where);
    if (refused++ == 0) {
      first = set.WithContext(fmt::format("role {}: setting {}", role, SettingName(entry)));
    }
  }
  if (refused == 0) return Status::Ok();
  return Status(StatusCode::kServerError,
                fmt::format("{} of {} settings of roles in database {} could not be set on the "
                            "target; the first: {}",
                            refused, tried, target_db, first.message()),
                "set them on the target with ALTER ROLE ... IN DATABASE ... SET", first.sqlstate());
}

namespace role_copy_internal {

const char* AttributeKeyword(Attribute attribute) {
  switch (attribute) {
    case Attribute::kSuperuser:
      return "SUPERUSER";
    case Attribute::kReplication:
      return "REPLICATION";
    case Attribute::kBypassRls:
      return "BYPASSRLS";
    case Attribute::kCreateRole:
      return "CREATEROLE";
    case Attribute::kCreateDb:
      return "CREATEDB";
  }
  return "";
}

std::string CreateRoleSql(const CreateRolePlan& plan) {
  std::string sql = "CREATE ROLE " + QuoteIdent(plan.name) + " WITH";
  for (Attribute attribute : plan.attributes) {
    sql += ' ';
    sql += AttributeKeyword(attribute);
  }
  sql += plan.inherit ? " INHERIT" : " NOINHERIT";
  sql += plan.login ? " LOGIN" : " NOLOGIN";
  if (plan.connection_limit != -1)
    sql += fmt::format(" CONNECTION LIMIT {}", plan.connection_limit);
  if (plan.valid_until) sql += " VALID UNTIL " + QuoteLiteral(*plan.valid_until);
  if (plan.password) sql += " PASSWORD " + QuoteLiteral(*plan.password);
  return sql;
}

CreateRoleResult CreateRoleWithFallback(CreateRolePlan plan,
                                        const std::function<Status(const std::string&)>& run) {
  const std::optional<std::string> password = plan.password;
  CreateRoleResult result;
  // Attributes are dropped most powerful first, whatever order they came in.
  std::sort(plan.attributes.begin(), plan.attributes.end());
  while (true) {
    Status status = run(CreateRoleSql(plan));
    if (status.ok()) {
      result.status = Status::Ok();
      result.password_set = plan.password.has_value();
      return result;
    }
    status = MaskStatus(status, password);
    if (!IsRefusal(status)) {
      result.status = status;
      result.abort_all = true;
      result.notes.clear();
      return result;
    }
    if (status.sqlstate() == "42710") {  // duplicate_object
      result.status = Status::Ok();
      result.already_exists = true;
      result.notes.clear();
      return result;
    }
    if (result.status.ok()) result.status = status;  // the first refusal
    if (status.sqlstate() == "42501" && !plan.attributes.empty()) {
      result.notes.push_back(fmt::format("{} left out: the target refused it ({})",
                                         AttributeKeyword(plan.attributes.front()),
                                         status.message()));
      plan.attributes.erase(plan.attributes.begin());
      continue;
    }
    if (plan.password) {
      result.notes.push_back(fmt::format(
          "created without a password: the target did not accept the source's password hash "
          "({}); set it with ALTER ROLE ... PASSWORD",
          status.message()));
      plan.password.reset();
      continue;
    }
    // Nothing left to give up: the first refusal is the reason.
    result.notes.clear();
    return result;
  }
}

}  // namespace role_copy_internal

}  // namespace pgcourier

// The cluster-wide role copy of `pgcourier migrate --roles`: the source's
// roles that are missing on the target are created there with their
// attributes, passwords, memberships and settings. What the target user may
// not grant is left out with a note, never a failure; roles the target
// already has are left exactly as they are.
//
// Nothing here prints or logs, and no password or password hash is ever put
// in a Status, a note or a warning.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pg/connection.h"
#include "util/cancel.h"
#include "util/status.h"

namespace pgcourier {

struct RoleCopyOptions {
  // Copy the password hashes (SCRAM or md5) from pg_authid. When false, or
  // when the source user cannot read pg_authid (not a superuser, as on most
  // managed services), roles are created without a password.
  bool copy_passwords = true;
};

struct RoleOutcome {
  std::string name;
  enum class Action {
    kCreated,          // created on the target (see notes for what was left out)
    kExisting,         // the target already has it; left as it is
    kProviderSkipped,  // PostgreSQL's (pg_*) or a provider's role: never created
    kFailed,           // the target refused it; the reason is in notes
  } action = Action::kFailed;
  // False: created without a password; notes say why (the source role has
  // none, pg_authid unreadable, copying turned off, the target refused it).
  bool password_copied = false;
  // Warnings about this role: an attribute dropped, the password not read or
  // not accepted, a membership or setting not applied, the error that kept it
  // from being created.
  std::vector<std::string> notes;
};

struct RoleCopyReport {
  // One entry per source role, in name order.
  std::vector<RoleOutcome> roles;
  // Memberships granted on the target, as "group -> member" with the options
  // given, e.g. "readers -> alice (admin option)".
  std::vector<std::string> memberships_granted;
  // Warnings that concern no single role.
  std::vector<std::string> warnings;
};

// Creates on the target the source's roles that are missing there, each in
// its own statement (autocommitted: `target` must not be in a transaction
// block), so that one refused role does not stop the others:
//   - attributes: LOGIN, CREATEDB, CREATEROLE, INHERIT, REPLICATION,
//     BYPASSRLS, SUPERUSER, CONNECTION LIMIT, VALID UNTIL. One the target user
//     may not grant (judged from its own rights first: SUPERUSER needs a
//     superuser; REPLICATION, BYPASSRLS and, on 16+, CREATEDB need a superuser
//     before 16 and the same attribute from 16 on) is dropped with a note; a
//     refusal the rules did not predict (SQLSTATE 42501) is retried without
//     the most powerful attribute left, one at a time.
//   - the password hash, read from pg_authid when the source user can read it
//     and set as `PASSWORD '<hash>'`; when the target refuses it (a password
//     policy, passwordcheck) the role is created without one, with a note.
//   - memberships between roles that exist on the target afterwards, at least
//     one of the two created by this call (so existing roles' memberships among
//     themselves are left alone), never with a provider role as the member;
//     WITH ADMIN OPTION, and on a 16+ target from a 16+ source the INHERIT and
//     SET options too (else the target's defaults). The grantor is not kept.
//   - per-role settings that apply in every database (pg_db_role_setting with
//     setdatabase = 0), after the memberships (so `role` can be set).
// Roles that exist on the target are reported kExisting and not touched;
// pg_* and provider roles are reported kProviderSkipped. Returns an error only
// when the catalogs cannot be read or a connection fails, the deadline passes
// or the caller cancels (roles created until then stay; running it again
// reports them kExisting).
Result<RoleCopyReport> CopyRoles(Connection& source, Connection& target,
                                 const RoleCopyOptions& options, Deadline deadline);

// Copies the per-role settings that apply in one database (ALTER ROLE r IN
// DATABASE d SET ...) from `source_db` on the source to `target_db` on the
// target; call it after that database exists on the target (kNotFound when it
// does not, or when `source_db` is missing on the source). Settings of roles
// the target does not have, and of pg_* and provider roles, are left out.
// Every setting is tried; when some are refused, the error names how many and
// the first one (role, setting name and the server's reason).
Status CopyRoleDatabaseSettings(Connection& source, Connection& target,
                                const std::string& source_db, const std::string& target_db,
                                Deadline deadline);

namespace role_copy_internal {

// Role attributes the target user may be unable to give, most powerful first:
// the order in which an unexpected refusal drops them.
enum class Attribute { kSuperuser, kReplication, kBypassRls, kCreateRole, kCreateDb };
const char* AttributeKeyword(Attribute attribute);

// One CREATE ROLE, before and during the fallbacks.
struct CreateRolePlan {
  std::string name;
  std::vector<Attribute> attributes;  // those granted by keyword
  bool inherit = true;
  bool login = false;
  int64_t connection_limit = -1;
  std::optional<std::string> valid_until;  // timestamptz text, or "infinity"
  std::optional<std::string> password;     // a SCRAM or md5 hash
};

// The CREATE ROLE statement of a plan. It holds the password hash: never
// show, log or store it.
std::string CreateRoleSql(const CreateRolePlan& plan);

struct CreateRoleResult {
  // Ok when the role was created; otherwise the first refusal (a server
  // error) or the failure that ended the attempts (connection, deadline,
  // cancellation: abort_all). Never holds the password.
  Status status;
  bool abort_all = false;
  bool already_exists = false;  // SQLSTATE 42710: someone created it meanwhile
  bool password_set = false;
  std::vector<std::string> notes;
};

// Runs CREATE ROLE through `run` until it succeeds: on SQLSTATE 42501 the most
// powerful attribute left is dropped (with a note); on any other refusal while
// a password is given, the password is dropped (with a note). Server messages
// put in notes or the status have the password hash masked.
CreateRoleResult CreateRoleWithFallback(CreateRolePlan plan,
                                        const std::function<Status(const std::string&)>& run);

}  // namespace role_copy_internal

}  // namespace pgcourier

// One migration at a time per target database: a run claims a database it
// writes with a session-level advisory lock on the target server, held by a
// session of its own in the "postgres" database until the database's
// pipeline ends (the server releases it when the session ends, also when
// the process is killed). A second run finds the claim taken and stops
// before writing anything; `check` names it too.
//
// The lock's key is pgcourier's class (kClaimClass) and hashtext(name), so
// it is the same in every run against one server and never collides with
// an application's one-key advisory locks.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "pg/connection.h"

namespace pgcourier {

inline constexpr int kClaimClass = 1885823858;  // "pgcr"

// Who holds the claim on a target database.
struct ClaimHolder {
  int pid = 0;
  std::string application;
  std::string client;  // client address, empty over a unix socket
  std::string since;   // the session's start, as the server prints it
};

// The claim, or the holder when another session has it. Reads pg_locks
// only.
Result<std::optional<ClaimHolder>> FindTargetClaim(Connection& target, const std::string& name);

// The error saying the database is being written by another migration.
Status ClaimedByAnother(const std::string& name, const ClaimHolder& holder);

// Takes the claim on `name` on `session` (a session of its own on the
// target, kept for as long as the claim is needed). Fails with
// ClaimedByAnother when another session holds it.
Status TakeTargetClaim(Connection& session, const std::string& name);

}  // namespace pgcourier

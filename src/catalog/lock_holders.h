// Who holds the table locks another session waits for: the sessions named
// (pid, application, user, state, for how long, the lock) when a wait for a
// lock ends on lock_timeout, by migrate/ (migrate/lock_waits.h) and by the
// verification (verify/verifier.h). Reading only.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "pg/connection.h"
#include "pg/session_settings.h"
#include "util/status.h"

namespace pgcourier {

// lock_timeout = <ms>, a setting of the session (ConnectOptions::settings).
SessionSetting LockTimeoutSetting(std::chrono::milliseconds timeout);

// The server gave up waiting for a lock (55P03).
bool IsLockTimeout(const Status& status);

// The table lock modes that conflict with `mode` (PostgreSQL's conflict
// table), as a text[] literal: "{ShareLock,...}". "{}" for an unknown mode.
std::string ConflictingLockModes(const std::string& mode);

struct LockHolder {
  int64_t pid = 0;
  std::string mode;
  std::string relation;
  std::string description;  // application, user, state
  bool own = false;         // one of pgcourier's sessions, pg_dump or pg_restore
};

// The sessions other than `conn`'s holding a lock on `table` (quoted and
// qualified; empty: any user relation of the database) in a mode that
// conflicts with `wanted` (empty: any mode). `conn` should not be in a
// transaction: pg_stat_activity is read once per transaction.
Result<std::vector<LockHolder>> LockHolders(Connection& conn, const std::string& table,
                                            const std::string& wanted);

// "pid 4242 (psql, user alice, idle in transaction for 12 s: AccessExclusiveLock
// on public.orders)" per holder that is not pgcourier's own.
std::string DescribeLockHolders(const std::vector<LockHolder>& holders);

// What to do about the holders that are not pgcourier's own: end them or
// wait, "then <then>" (the command that goes on, e.g. "pgcourier verify").
std::string EndLockHoldersHint(const std::vector<LockHolder>& holders, const std::string& then);

}  // namespace pgcourier

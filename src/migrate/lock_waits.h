// Waiting for locks held by other sessions (a user's open transaction, a
// DDL): bounded and visible. Every session waits at most
// MigrateOptions::lock_timeout for one lock. The sessions of copies, index
// builds and comparisons wait in rounds of kLockRound instead: after a round
// the sessions holding the table's lock are looked up and named in a
// progress line, and the task is tried again, until the rounds of waiting
// for sessions that are not pgcourier's own add up to the limit; then the
// database fails naming them. Waits for pgcourier's own sessions (two index
// builds of one table, pg_restore) are not limited.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "catalog/copy_catalog.h"
#include "pg/connection.h"
#include "pg/session_settings.h"
#include "util/status.h"

namespace pgcourier {

inline constexpr std::chrono::milliseconds kLockRound{5000};

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
// conflicts with `wanted` (empty: any mode).
Result<std::vector<LockHolder>> LockHolders(Connection& conn, const std::string& table,
                                            const std::string& wanted);

// "pid 4242 (psql, user alice, idle in transaction for 12 s: AccessExclusiveLock
// on public.orders)" per holder that is not pgcourier's own.
std::string DescribeLockHolders(const std::vector<LockHolder>& holders);

// What to do about the holders that are not pgcourier's own.
std::string LockHint(const std::vector<LockHolder>& holders, const std::string& work_dir);

// pg_dump locks every table it dumps, and the pre-data restore (one
// transaction) every relation it creates, all at once: a server whose lock
// table is smaller fails with "out of shared memory". Adds a hint saying how
// much room to make, on which side; other errors are returned as they are.
Status ExplainLockTableFull(const Status& status, bool source, const CopyCatalog& catalog,
                            const std::string& work_dir);

}  // namespace pgcourier

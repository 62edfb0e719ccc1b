// Waiting for locks held by other sessions (a user's open transaction, a
// DDL): bounded and visible. Every session waits at most
// MigrateOptions::lock_timeout for one lock. The sessions of copies, index
// builds and comparisons wait in rounds of kLockRound instead: after a round
// the sessions holding the table's lock are looked up and named in a
// progress line, and the task is tried again, until the rounds of waiting
// for sessions that are not pgcourier's own add up to the limit; then the
// database fails naming them. Waits for pgcourier's own sessions (two index
// builds of one table, pg_restore) are not limited. The holders are looked
// up with catalog/lock_holders.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "catalog/copy_catalog.h"
#include "catalog/lock_holders.h"
#include "pg/connection.h"
#include "util/status.h"

namespace pgcourier {

inline constexpr std::chrono::milliseconds kLockRound{5000};

// What to do about the holders that are not pgcourier's own, then
// `migrate --resume`.
std::string LockHint(const std::vector<LockHolder>& holders, const std::string& work_dir);

// pg_dump locks every table it dumps, and the pre-data restore (one
// transaction) every relation it creates, all at once: a server whose lock
// table is smaller fails with "out of shared memory". Adds a hint saying how
// much room to make, on which side; other errors are returned as they are.
Status ExplainLockTableFull(const Status& status, bool source, const CopyCatalog& catalog,
                            const std::string& work_dir);

}  // namespace pgcourier

// Tables without replica identity, replicated for inserts and truncates only
// (replication/replication.h, StartReplication): whether such a table saw an
// UPDATE or DELETE on the source since the copy's snapshot, told by the
// source's statistics. Cutover copies again every table for which that is
// not shown to be false.
//
// The rule, and why it holds (PostgreSQL 15+ sources only: 13 and 14 send
// statistics to their collector over a lossy channel, so their counters are
// never taken as proof):
//   - the counters are read before the copy's snapshot is taken, so every
//     update or delete after it is counted after that reading;
//   - n_tup_upd and n_tup_del count every row a statement updated or
//     deleted, committed or not;
//   - a session passes its counts on when it is idle (within about a second)
//     and, always, when it ends: once no session that started before writes
//     were stopped is left in the database, and no prepared transaction is
//     pending there, every count is in;
//   - a reset of the database's statistics (pg_stat_reset, a table's reset)
//     moves pg_stat_database.stats_reset; a crash drops every count and
//     moves pg_stat_archiver.stats_reset: both are part of the reading.
//   - track_counts is on at both readings, and no database or role setting
//     turns it off (a superuser's own SET in a session cannot be seen: the
//     verification after the switch would show what it hid);
//   - a table rewritten (ALTER COLUMN ... TYPE, also VACUUM FULL) or made
//     again has a new relfilenode, which is part of the reading too (so has
//     a truncated one, though its TRUNCATE was replicated: copied again).
// Anything else (another session left, a counter that moved) means: copy it
// again.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "catalog/copy_catalog.h"
#include "pg/connection.h"
#include "state/store.h"
#include "util/status.h"

namespace pgcourier {

// Whether the source's statistics can prove anything (15+).
bool WriteCountersUsable(const Connection& source);

// The counters of `tables` (the append-only ones) in the connected database,
// read now; their `database` is `database`.
Result<std::vector<StoredWriteCounters>> ReadWriteCounters(Connection& source,
                                                           const std::string& database,
                                                           const std::vector<TableToCopy>& tables);

// Once writes were stopped: waits up to `wait` for the sessions of the
// connected database `database` that started before `stopped_at` (the
// source's clock, as text; empty: every session) to end, then says why the
// counters cannot be trusted, or "" when every count is in.
Result<std::string> WriteCountersSettled(Connection& source, const std::string& database,
                                         const std::string& stopped_at,
                                         std::chrono::milliseconds wait);

// Why `now` does not show that `before` (the same table) saw no update or
// delete since; "" when it does.
std::string WhyNotUnchanged(const StoredWriteCounters& before, const StoredWriteCounters& now);

}  // namespace pgcourier

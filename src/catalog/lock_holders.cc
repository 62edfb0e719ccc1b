#include "catalog/lock_holders.h"

#include <fmt/format.h>

#include <optional>

namespace pgcourier {

SessionSetting LockTimeoutSetting(std::chrono::milliseconds timeout) {
  return {"lock_timeout", std::to_string(timeout.count())};
}

bool IsLockTimeout(const Status& status) { return status.sqlstate() == "55P03"; }

// The table lock modes that conflict with `mode` (PostgreSQL's table), as a
// text[] literal.
std::string ConflictingLockModes(const std::string& mode) {
  static const std::vector<std::string> kModes = {
      "AccessShareLock", "RowShareLock",          "RowExclusiveLock", "ShareUpdateExclusiveLock",
      "ShareLock",       "ShareRowExclusiveLock", "ExclusiveLock",    "AccessExclusiveLock"};
  // Per mode, a bit per mode it conflicts with (bit 0: AccessShareLock).
  static const std::vector<unsigned> kConflicts = {0x80, 0xc0, 0xf0, 0xf8, 0xec, 0xfc, 0xfe, 0xff};
  std::string out = "{";
  for (size_t m = 0; m < kModes.size(); ++m) {
    if (kModes[m] != mode) continue;
    for (size_t c = 0; c < kModes.size(); ++c) {
      if ((kConflicts[m] & (1U << c)) == 0) continue;
      if (out.size() > 1) out += ",";
      out += kModes[c];
    }
  }
  return out + "}";
}

// The sessions other than `conn`'s holding a lock on `table` (quoted and
// qualified; empty: any user relation of the database) in a mode that
// conflicts with `wanted` (empty: any mode).
Result<std::vector<LockHolder>> LockHolders(Connection& conn, const std::string& table,
                                            const std::string& wanted) {
  Result<QueryResult> found = conn.ExecParams(
      "SELECT l.pid, l.mode, l.relation::pg_catalog.regclass::text, "
      "pg_catalog.format('%s, user %s, %s for %s s', coalesce(a.application_name, ''), "
      "a.usename, coalesce(a.state, 'prepared'), "
      "coalesce(extract(epoch FROM pg_catalog.now() - a.xact_start)::bigint, 0)), "
      "coalesce(a.application_name IN (pg_catalog.current_setting('application_name'), "
      "'pg_dump', 'pg_restore'), false) "
      "FROM pg_catalog.pg_locks l LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid "
      "WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_catalog.pg_backend_pid() "
      "AND l.database = (SELECT oid FROM pg_catalog.pg_database "
      "WHERE datname = pg_catalog.current_database()) AND l.relation >= 16384 "
      "AND ($1::text IS NULL OR l.relation = $1::text::pg_catalog.regclass) "
      "AND ($2::text[] IS NULL OR l.mode = ANY ($2::text[])) ORDER BY l.pid, 3",
      {table.empty() ? std::nullopt : std::optional<std::string>(table),
       wanted.empty() ? std::nullopt : std::optional<std::string>(ConflictingLockModes(wanted))},
      Deadline::After(std::chrono::seconds(30)));
  if (!found.ok()) return found.status();
  std::vector<LockHolder> holders;
  holders.reserve(static_cast<size_t>(found->rows()));
  for (int r = 0; r < found->rows(); ++r) {
    holders.push_back({found->GetInt(r, 0), found->GetString(r, 1), found->GetString(r, 2),
                       found->GetString(r, 3), found->GetString(r, 4) == "t"});
  }
  return holders;
}

// "pid 4242 (psql, user alice, idle in transaction for 12 s: AccessExclusiveLock
// on public.orders)" per holder that is not pgcourier's own.
std::string DescribeLockHolders(const std::vector<LockHolder>& holders) {
  std::string out;
  for (const auto& h : holders) {
    if (h.own) continue;
    if (!out.empty()) out += "; ";
    out += fmt::format("pid {} ({}: {} on {})", h.pid, h.description, h.mode, h.relation);
  }
  return out;
}

std::string EndLockHoldersHint(const std::vector<LockHolder>& holders, const std::string& then) {
  std::string pids;
  for (const auto& h : holders) {
    if (h.own) continue;
    if (!pids.empty()) pids += ", ";
    pids += std::to_string(h.pid);
  }
  return fmt::format(
      "end the session(s) holding the lock (pid {}; pg_terminate_backend) or wait until they "
      "finish, then {}; --lock-timeout sets how long pgcourier waits",
      pids, then);
}

}  // namespace pgcourier

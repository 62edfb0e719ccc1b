#include "migrate/append_only.h"

#include <fmt/format.h>

#include <chrono>
#include <string>
#include <vector>

#include "pg/quote.h"
#include "util/cancel.h"

namespace pgcourier {
namespace {

// A text[] literal of the relations whose counters are `table`'s: the
// partitions of a tree loaded through its root, else the table itself
// (quoted, qualified names, each an array element in double quotes).
std::string RelationsLiteral(const TableToCopy& table) {
  std::vector<std::string> names;
  if (table.through_root()) {
    for (const auto& leaf : table.partitions)
      names.push_back(QualifiedName(leaf.schema, leaf.name));
  } else {
    names.push_back(table.QualifiedName());
  }
  std::string out = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out.push_back(',');
    out.push_back('"');
    for (char c : names[i]) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

}  // namespace

bool WriteCountersUsable(const Connection& source) { return source.server_version() >= 150000; }

Result<std::vector<StoredWriteCounters>> ReadWriteCounters(Connection& source,
                                                           const std::string& database,
                                                           const std::vector<TableToCopy>& tables) {
  // A fresh statistics snapshot (stats_fetch_consistency may keep one per
  // transaction); each statement below is a transaction of its own.
  PGC_RETURN_IF_ERROR(source.Run("SELECT pg_catalog.pg_stat_clear_snapshot()"));
  Result<QueryResult> resets = source.Exec(
      "SELECT coalesce((SELECT d.stats_reset::text FROM pg_catalog.pg_stat_database d "
      "WHERE d.datname = pg_catalog.current_database()), 'never') || ', archiver ' || "
      "coalesce((SELECT a.stats_reset::text FROM pg_catalog.pg_stat_archiver a), 'never'), "
      "pg_catalog.current_setting('track_counts')::bool");
  if (!resets.ok()) return resets.status().WithContext("reading the statistics' reset times");
  // Counts taken while counting is off prove nothing: such a reading never
  // matches a later one.
  const std::string stats_reset =
      resets->GetString(0, 0) + (resets->GetBool(0, 1) ? "" : ", track_counts off");
  std::vector<StoredWriteCounters> out;
  for (const auto& t : tables) {
    Result<QueryResult> counted = source.ExecParams(
        "SELECT coalesce(pg_catalog.string_agg(r.oid::text || ':' || "
        "pg_catalog.pg_relation_filenode(r.oid)::text, ',' ORDER BY r.oid), ''), "
        "coalesce(pg_catalog.sum(pg_catalog.pg_stat_get_tuples_updated(r.oid) + "
        "pg_catalog.pg_stat_get_tuples_deleted(r.oid)), 0)::bigint "
        "FROM (SELECT pg_catalog.to_regclass(n)::oid AS oid "
        "FROM pg_catalog.unnest($1::pg_catalog.text[]) AS n) r WHERE r.oid IS NOT NULL",
        {RelationsLiteral(t)});
    if (!counted.ok()) {
      return counted.status().WithContext("reading the write counters of " + t.Display());
    }
    out.push_back({database, t.QualifiedName(), counted->GetString(0, 0), counted->GetInt(0, 1),
                   stats_reset});
  }
  return out;
}

Result<std::string> WriteCountersSettled(Connection& source, const std::string& database,
                                         const std::string& stopped_at,
                                         std::chrono::milliseconds wait) {
  if (!WriteCountersUsable(source)) {
    return std::string("the source is older than PostgreSQL 15, whose statistics may lose counts");
  }
  // Ended sessions pass their counts on as they exit: wait for them. Those
  // that started after writes were stopped are read-only.
  const auto until = std::chrono::steady_clock::now() + wait;
  for (;;) {
    Result<QueryResult> left = source.ExecParams(
        "SELECT count(*), coalesce(pg_catalog.min(a.pid), 0) FROM pg_catalog.pg_stat_activity a "
        "WHERE a.datname = $1 AND a.pid <> pg_catalog.pg_backend_pid() "
        "AND a.backend_type NOT IN ('walsender', 'autovacuum worker') "
        "AND ($2 = '' OR a.backend_start < $2::timestamptz)",
        {database, stopped_at});
    if (!left.ok()) return left.status().WithContext("reading the source's sessions");
    if (left->GetInt(0, 0) == 0) break;
    if (std::chrono::steady_clock::now() >= until) {
      return fmt::format(
          "{} session(s) of the source database that may have written are still open (pid {})",
          left->GetInt(0, 0), left->GetInt(0, 1));
    }
    SleepFor(std::chrono::milliseconds(50), nullptr);
  }
  // Counting can be turned off: for the server, a database or a role.
  Result<QueryResult> counting = source.Exec(
      "SELECT pg_catalog.current_setting('track_counts')::bool AND NOT EXISTS (SELECT 1 FROM "
      "pg_catalog.pg_db_role_setting s, pg_catalog.unnest(s.setconfig) c "
      "WHERE c ILIKE 'track\\_counts=%')");
  if (!counting.ok()) return counting.status().WithContext("reading track_counts");
  if (!counting->GetBool(0, 0)) {
    return std::string(
        "track_counts is off on the source (for the server, a database or a role): its "
        "statistics count nothing");
  }
  Result<QueryResult> prepared = source.ExecParams(
      "SELECT count(*) FROM pg_catalog.pg_prepared_xacts WHERE database = $1", {database});
  if (!prepared.ok()) return prepared.status().WithContext("reading the prepared transactions");
  if (prepared->GetInt(0, 0) > 0) {
    return fmt::format("{} prepared transaction(s) are pending in the source database",
                       prepared->GetInt(0, 0));
  }
  return std::string();
}

std::string WhyNotUnchanged(const StoredWriteCounters& before, const StoredWriteCounters& now) {
  if (before.relids.empty() || before.relids != now.relids) {
    return "its storage is not the one copied (the table was made again or rewritten)";
  }
  if (before.stats_reset != now.stats_reset) {
    return "the source's statistics were reset since the copy (" + before.stats_reset + " -> " +
           now.stats_reset + ")";
  }
  if (before.changes != now.changes) {
    return fmt::format("{} row(s) updated or deleted on the source since the copy",
                       now.changes - before.changes);
  }
  return "";
}

}  // namespace pgcourier

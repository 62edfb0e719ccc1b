#include "state/catalog_schema.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include "state/sqlite_statement.h"
#include "state/sqlite_transaction.h"
#include "state/store.h"

namespace pgcourier {
namespace {

// Version 1 of the catalog. Every value is bound as a parameter; nothing is
// ever spliced into SQL text.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE run (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  id TEXT NOT NULL,
  source TEXT NOT NULL,
  target TEXT NOT NULL,
  options_json TEXT NOT NULL,
  state TEXT NOT NULL,
  started_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  pid INTEGER NOT NULL,
  resumes INTEGER NOT NULL,
  error TEXT NOT NULL
) STRICT;
CREATE TABLE databases (
  position INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  target_name TEXT NOT NULL,
  method TEXT NOT NULL,
  method_reason TEXT NOT NULL,
  state TEXT NOT NULL,
  error TEXT NOT NULL,
  hint TEXT NOT NULL,
  created_target INTEGER NOT NULL,
  consistent INTEGER NOT NULL,
  snapshot TEXT NOT NULL,
  tables_total INTEGER NOT NULL,
  tables_done INTEGER NOT NULL,
  indexes_total INTEGER NOT NULL,
  indexes_done INTEGER NOT NULL,
  bytes_total INTEGER NOT NULL,
  bytes_done INTEGER NOT NULL,
  rows_done INTEGER NOT NULL,
  started_at TEXT NOT NULL,
  finished_at TEXT NOT NULL
) STRICT;
CREATE TABLE steps (
  position INTEGER PRIMARY KEY,
  db_name TEXT NOT NULL,
  kind TEXT NOT NULL,
  object TEXT NOT NULL,
  part TEXT NOT NULL,
  state TEXT NOT NULL,
  row_count INTEGER NOT NULL,
  byte_count INTEGER NOT NULL,
  seconds REAL NOT NULL,
  attempts INTEGER NOT NULL,
  error TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  UNIQUE (db_name, kind, object, part)
) STRICT;
PRAGMA user_version = 1;
)sql";

// Version 2 adds the changes pgcourier made to a server besides its own
// replication objects (REPLICA IDENTITY FULL, an extension it installed, a
// read-only database), each with the SQL that undoes it.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE changes (
  position INTEGER PRIMARY KEY,
  db_name TEXT NOT NULL,
  side TEXT NOT NULL,
  object TEXT NOT NULL,
  undo_sql TEXT NOT NULL,
  state TEXT NOT NULL,
  made_at TEXT NOT NULL,
  UNIQUE (db_name, side, object)
) STRICT;
PRAGMA user_version = 2;
)sql";

// Version 3 adds, per replicating database, the subscription's error
// counters (pg_stat_subscription_stats) as they were when the subscription
// was made or the last schema change was applied: errors past them are new.
constexpr const char* kSchemaV3 = R"sql(
CREATE TABLE IF NOT EXISTS error_baselines (
  db_name TEXT PRIMARY KEY,
  apply_errors INTEGER NOT NULL,
  sync_errors INTEGER NOT NULL,
  recorded_at TEXT NOT NULL
) STRICT;
PRAGMA user_version = 3;
)sql";

// Version 4 adds, per database cut over with --keep-rollback, the objects of
// its way back (the old source following the new primary) and where it
// stands, recorded before they are made: cleanup removes them.
constexpr const char* kSchemaV4 = R"sql(
CREATE TABLE IF NOT EXISTS rollbacks (
  db_name TEXT PRIMARY KEY,
  state TEXT NOT NULL,
  publication TEXT NOT NULL,
  slot TEXT NOT NULL,
  subscription TEXT NOT NULL,
  recorded_at TEXT NOT NULL
) STRICT;
PRAGMA user_version = 4;
)sql";

// Version 5 adds, per replicating database and table published for inserts
// and truncates only (no replica identity), the source's update and delete
// counters when the copy's snapshot was taken: cutover copies again a table
// whose counters moved since. Two builds each wrote a version 4 holding only
// one of the rollbacks and write_counters tables; both statements create
// only what is missing, so either kind of version 4 reaches version 5.
constexpr const char* kSchemaV5 = R"sql(
CREATE TABLE IF NOT EXISTS write_counters (
  db_name TEXT NOT NULL,
  table_name TEXT NOT NULL,
  relids TEXT NOT NULL,
  changes INTEGER NOT NULL,
  stats_reset TEXT NOT NULL,
  recorded_at TEXT NOT NULL,
  PRIMARY KEY (db_name, table_name)
) STRICT;
PRAGMA user_version = 5;
)sql";

// Version 6 adds, per database and table to copy, the size the source's
// catalog gave it when the copy was planned (the planner's row estimate, the
// bytes on disk): the totals of the status page's per-table bars.
constexpr const char* kSchemaV6 = R"sql(
CREATE TABLE IF NOT EXISTS table_sizes (
  db_name TEXT NOT NULL,
  table_name TEXT NOT NULL,
  expected_rows INTEGER NOT NULL,
  expected_bytes INTEGER NOT NULL,
  recorded_at TEXT NOT NULL,
  PRIMARY KEY (db_name, table_name)
) STRICT;
PRAGMA user_version = 6;
)sql";

}  // namespace

Status ReadVersion(sqlite3* db, const std::string& path, int& version, bool& has_tables) {
  {
    SqliteStatement stmt(db, "PRAGMA user_version");
    int rc = stmt.Step();
    if (rc != SQLITE_ROW) return SqliteError(db, path, rc, "cannot read the catalog version");
    version = static_cast<int>(stmt.Int(0));
  }
  SqliteStatement stmt(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'");
  int rc = stmt.Step();
  if (rc != SQLITE_ROW) return SqliteError(db, path, rc, "cannot read the catalog");
  has_tables = stmt.Int(0) > 0;
  return Status::Ok();
}

Status CheckVersion(const std::string& path, int version, bool has_tables) {
  if (version > StateStore::kSchemaVersion) {
    return Status(
        StatusCode::kFailedPrecondition,
        fmt::format("{} was written by a newer pgcourier (catalog version {}; this one knows "
                    "version {} and older)",
                    path, version, StateStore::kSchemaVersion),
        "use the pgcourier that started this migration, or another --dir");
  }
  if (version <= 0 && has_tables) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("{} is an SQLite database, but not a pgcourier catalog", path),
                  "another program's file has that name; use another --dir");
  }
  return Status::Ok();
}

Status UpgradeCatalog(sqlite3* db, const std::string& path, int version) {
  Result<SqliteTransaction> txn = SqliteTransaction::Begin(db, path);
  if (!txn.ok()) return txn.status();
  if (version < 1) PGC_RETURN_IF_ERROR(SqliteExec(db, path, kSchemaV1));
  if (version < 2) PGC_RETURN_IF_ERROR(SqliteExec(db, path, kSchemaV2));
  if (version < 3) PGC_RETURN_IF_ERROR(SqliteExec(db, path, kSchemaV3));
  PGC_RETURN_IF_ERROR(SqliteExec(db, path, kSchemaV4));
  PGC_RETURN_IF_ERROR(SqliteExec(db, path, kSchemaV5));
  PGC_RETURN_IF_ERROR(SqliteExec(db, path, kSchemaV6));
  return txn->Commit();
}

}  // namespace pgcourier

// The work directory's catalog: one SQLite database (<dir>/pgcourier.db) per
// migration, holding the plan (databases, tables and their slices, indexes,
// the other steps), each step's state and timings, and errors. `migrate`
// writes it as it goes; `status` reads it from another process at any time,
// during the run or after it; `migrate --resume` continues from it.
//
// Connection strings are stored without passwords (ConnInfo::Redacted); a
// resumed run gets the password again from the environment, .pgpass or the
// URI the user passes.
//
// One migration per work directory: OpenForRun takes an exclusive lock (an
// flock on <dir>/lock, released by the kernel when the process ends, even on
// kill -9) and refuses a directory that another live process holds.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "state/run_states.h"
#include "util/status.h"

struct sqlite3;

namespace pgcourier {

// Whole-run facts.
struct StoredRun {
  std::string id;            // random hex, names the run's objects (slots, ...)
  std::string source;        // redacted connection string
  std::string target;        // redacted connection string
  std::string options_json;  // the options the run was started with (JSON object)
  RunState state = RunState::kRunning;
  std::string started_at;   // ISO 8601 UTC
  std::string updated_at;   // ISO 8601 UTC
  std::string finished_at;  // empty while running
  int64_t pid = 0;          // of the process that runs (ran) it
  int resumes = 0;          // how many times it was resumed
  std::string error;        // a failure of the whole run (not of one database)
};

// One database of the run.
struct StoredDatabase {
  std::string name;         // on the source
  std::string target_name;  // on the target
  Method method = Method::kCopy;
  std::string method_reason;  // why this method (e.g. why not replication)
  DatabaseState state = DatabaseState::kPending;
  std::string error;
  std::string hint;
  bool created_target = false;  // pgcourier created the target database
  // False once the data was copied at more than one snapshot (a copy resumed
  // after its snapshot was gone): the rows of different tables may then come
  // from different moments of a source that kept taking writes.
  bool consistent = true;
  std::string snapshot;  // the exported snapshot of the current attempt
  int64_t tables_total = 0;
  int64_t tables_done = 0;
  int64_t indexes_total = 0;
  int64_t indexes_done = 0;
  int64_t bytes_total = 0;
  int64_t bytes_done = 0;
  int64_t rows_done = 0;
  std::string started_at;
  std::string finished_at;
};

// One step of a database's plan: a table copy (whole or a slice), an index
// build, a table comparison, or a phase ("pre-data", "post-data",
// "sequences", "large objects", "materialized views", "analyze", "verify").
struct StoredStep {
  std::string database;  // source name
  StepKind kind = StepKind::kPhase;
  std::string object;  // phase name, "schema.table", or "schema.index"
  std::string part;    // a slice ("[blocks 0..1024)"), else ""
  StepState state = StepState::kPending;
  int64_t rows = 0;
  int64_t bytes = 0;
  double seconds = 0;
  int attempts = 0;
  std::string error;
  std::string updated_at;
};

// A change pgcourier made to a server besides its own replication objects,
// which cleanup undoes: REPLICA IDENTITY FULL on a source table, an extension
// it installed, a database it made read-only. Recorded before it is made, so
// an interruption never leaves one unrecorded.
struct StoredChange {
  std::string database;  // source name
  Side side = Side::kSource;
  std::string object;    // what changed, e.g. "REPLICA IDENTITY FULL on public.t"
  std::string undo_sql;  // run in that database to undo it
  ChangeState state = ChangeState::kMade;
  std::string made_at;
};

// The subscription's error counters (pg_stat_subscription_stats, 15+) of a
// replicating database when its subscription was made or a schema change
// was last applied (sync-schema): errors past them are new.
struct StoredErrorBaseline {
  std::string database;  // source name
  int64_t apply_errors = 0;
  int64_t sync_errors = 0;
  std::string recorded_at;
};

// The way back of a database cut over with --keep-rollback: the old source
// follows the new primary through a publication and a logical slot on the
// target and a subscription on the old source (copy_data = false, and
// origin = none on 16+). Recorded before any of them is made, so that
// cleanup always looks for them, whatever point a cutover, rollback or
// cleanup was interrupted at.
struct StoredRollback {
  std::string database;  // source name
  RollbackState state = RollbackState::kPrepared;
  std::string publication;   // in the target database
  std::string slot;          // on the target server
  std::string subscription;  // in the old source database
  std::string recorded_at;
};

// A table without replica identity, published for inserts and truncates
// only, as its source statistics stood just before the copy's snapshot
// (PostgreSQL 15+ sources): the updates and deletes counted on it
// (pg_stat_user_tables n_tup_upd + n_tup_del, summed over the partitions of
// a tree loaded through its root), the relations counted with their storage
// (a rewrite, such as ALTER COLUMN ... TYPE ... USING, changes values
// without counting updates), and the statistics' reset times. Cutover compares them to the same
// reading once writes have stopped.
struct StoredWriteCounters {
  std::string database;  // source name
  std::string table;     // quoted, qualified
  std::string relids;    // the relations counted, "oid:filenode" comma-separated
  int64_t changes = 0;
  std::string stats_reset;
};

// A table's expected size, as the source's catalog said when the database's
// copy was planned: the totals of the status page's per-table bars. Both are
// estimates of what the copy moves (the rows the planner expects; the bytes
// the table takes on disk, which its COPY text differs from).
struct StoredTableSize {
  std::string table;           // "schema.table", as its copy steps name it
  int64_t expected_rows = -1;  // pg_class.reltuples scaled; -1: no estimate
  int64_t expected_bytes = 0;  // pg_table_size at the snapshot
};

class StateStore {
 public:
  // Opens <dir>/pgcourier.db for a run (creating the directory and the file
  // when missing) and takes the directory's lock. Refused
  // (kFailedPrecondition, naming the pid and start time of the holder) when
  // another process holds the lock.
  static Result<std::unique_ptr<StateStore>> OpenForRun(const std::string& dir);
  // Opens an existing <dir>/pgcourier.db read-only, without the lock (for
  // `status`, also while a run writes). kNotFound when there is none.
  static Result<std::unique_ptr<StateStore>> OpenReadOnly(const std::string& dir);
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  // Thread-safe: every call below may come from any thread.

  // The run, if one was ever started in this directory.
  Result<std::optional<StoredRun>> Run();
  // Starts a new run (the directory must hold none: kFailedPrecondition
  // otherwise) or, with resume, marks the existing one running again
  // (resumes + 1, pid, state "running").
  Status BeginRun(const StoredRun& run);
  Status ResumeRun(int64_t pid);
  Status FinishRun(RunState state, const std::string& error);

  // Databases, in the order they were added.
  Status PutDatabase(const StoredDatabase& db);  // insert or replace by name
  Result<std::vector<StoredDatabase>> Databases();
  Result<std::optional<StoredDatabase>> Database(const std::string& name);

  // Steps: (database, kind, object, part) is the key.
  Status PutStep(const StoredStep& step);  // insert or replace
  // In one transaction: deletes the database's steps of `kind` whose object
  // starts with `object_prefix`, and puts `steps` in their place (the
  // phases of a cutover run again replace all of the last one's).
  Status ReplaceSteps(const std::string& database, StepKind kind, const std::string& object_prefix,
                      const std::vector<StoredStep>& steps);
  Result<std::vector<StoredStep>> Steps(const std::string& database);
  // Deletes every step of a database (a database started again from scratch).
  Status ClearSteps(const std::string& database);

  // Changes made to the servers (see StoredChange), in the order they were
  // made. Recording one that exists marks it made again.
  Status RecordChange(const StoredChange& change);
  Result<std::vector<StoredChange>> Changes(const std::string& database);
  Status MarkChangeUndone(const StoredChange& change);

  // The replication error counters of a database from which errors count as
  // new (see StoredErrorBaseline); zeros when none was recorded.
  Status PutErrorBaseline(const StoredErrorBaseline& baseline);
  Result<StoredErrorBaseline> ErrorBaseline(const std::string& database);

  // The way back of a database (see StoredRollback); nullopt when its
  // cutover kept none. Recording one that exists replaces it.
  Status PutRollback(const StoredRollback& rollback);
  Result<std::optional<StoredRollback>> Rollback(const std::string& database);

  // The write counters of a database's append-only tables (see
  // StoredWriteCounters): Put replaces all of the database's; none read when
  // none were recorded.
  Status PutWriteCounters(const std::string& database,
                          const std::vector<StoredWriteCounters>& counters);
  Result<std::vector<StoredWriteCounters>> WriteCounters(const std::string& database);

  // The expected sizes of a database's tables (see StoredTableSize): Put
  // replaces all of the database's; none read from a catalog older than
  // version 6 or for a database not planned yet.
  Status PutTableSizes(const std::string& database, const std::vector<StoredTableSize>& sizes);
  Result<std::vector<StoredTableSize>> TableSizes(const std::string& database);

  const std::string& path() const { return path_; }

  // True when a live process holds <dir>/lock (a run is going on there).
  // Tries a non-blocking shared flock on the file and releases it at once.
  static bool RunIsLive(const std::string& dir);

  // The schema version this build reads and writes (PRAGMA user_version).
  static constexpr int kSchemaVersion = 6;

 private:
  StateStore(sqlite3* db, std::string path, int lock_fd, bool has_schema);
  Status Exec(const char* sql);               // statements without values; mu_ held
  Status TouchRun();                          // run.updated_at = now; mu_ held
  Status InsertStep(const StoredStep& step);  // insert or replace; mu_ held
  bool HasTable(const char* name);            // in the catalog; mu_ held

  std::mutex mu_;  // around every use of db_
  sqlite3* db_;
  std::string path_;
  int lock_fd_;      // -1 when read-only
  bool has_schema_;  // false for a read-only open of a file not yet initialised
  int version_ = 0;  // the catalog's version (an older file read-only lacks newer tables)
};

}  // namespace pgcourier

// A migration as the work directory records it (state/store.h): the options
// a resumed run must repeat, the servers, each database's record, and the
// changes made to the servers with their undo. What every command that
// continues a migration (migrate --resume, cutover, cleanup) opens first.
#pragma once

#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "migrate/options.h"
#include "pg/connection.h"
#include "pg/conninfo.h"
#include "replication/replication.h"
#include "state/store.h"

namespace pgcourier {

// The change cutover --stop-source-writes makes (see StoredChange).
inline constexpr const char* kReadOnlyChange = "default_transaction_read_only = on";

// A new run's id: 12 hex digits.
std::string NewRunId();

// What a resumed run must do as the first one did, kept in the store as
// JSON, and read back into `options` (its source, target and jobs are left
// as they are; pg_bindirs only when none are given).
nlohmann::json OptionsToJson(const MigrateOptions& options);
Status OptionsFromJson(const std::string& text, MigrateOptions& options);

// The databases a run planned at its start, recorded with its options in one
// write, so that a run stopped before it recorded them one by one still
// knows them all.
nlohmann::json PlannedDatabasesToJson(const std::vector<StoredDatabase>& planned);
std::vector<StoredDatabase> PlannedDatabasesFromJson(const std::string& options_json);

// The servers of a recorded run: as recorded (without passwords: libpq finds
// them in the environment or .pgpass), or as given again, when they name the
// same ones. `source` and `target` are replaced by what to connect to.
Status ResolveServers(const StoredRun& run, const std::string& work_dir, std::string& source,
                      std::string& target);

// One database's record in the store, updated from any thread.
class DatabaseRecord {
 public:
  DatabaseRecord(StateStore& store, StoredDatabase db) : store_(store), db_(std::move(db)) {}

  // Applies `change` to the record and writes it; a write that fails is
  // logged (the run goes on: the target's progress marks are the truth).
  template <typename F>
  void Update(F&& change) {
    std::lock_guard<std::mutex> lock(mu_);
    change(db_);
    Write();
  }
  void Step(StoredStep step);
  StoredDatabase Get();
  // Records a change about to be made on `side` (see StoredChange).
  Status Change(Side side, const std::string& object, const std::string& undo);
  Result<std::vector<StoredChange>> Changes() { return store_.Changes(db_.name); }
  StateStore& store() { return store_; }
  RecordChangeFn ChangeRecorder(Side side);

 private:
  void Write();  // with mu_ held

  StateStore& store_;
  std::mutex mu_;
  StoredDatabase db_;
};

// Undoes a recorded change over `conn` (a session in its database) and
// records that it was undone.
Status UndoChange(Connection& conn, StateStore& store, const StoredChange& change);

// A recorded migration opened for a command that continues it (cutover,
// cleanup): its store (locked), run, options, servers and databases.
struct RecordedMigration {
  std::unique_ptr<StateStore> store;
  StoredRun run;
  MigrateOptions options;  // as recorded, with the servers to connect to
  ConnInfo source;
  ConnInfo target;
  std::vector<StoredDatabase> databases;
  // The replication objects of the i-th database.
  ReplicationNames Names(size_t i) const { return NamesFor(run.id, static_cast<int>(i)); }
};

// Opens the migration recorded in `work_dir`; `source` and `target` may be
// empty (the recorded servers) or name the same servers again.
Result<RecordedMigration> OpenRecorded(const std::string& work_dir, const std::string& source,
                                       const std::string& target);

}  // namespace pgcourier

// `pgcourier status`: what the work directory's catalog says about a
// migration, read at any time (while it runs, after it ended or died), and
// rendered for people (a table) and for programs ("pgcourier.status/1").
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "replication/replication.h"
#include "state/store.h"
#include "util/status.h"

namespace pgcourier {

// Where replication of one database stands (read from both servers).
struct ReplicationView {
  ReplicationLag lag;
  std::string error;     // a server could not be read
  std::string warning;   // WAL retained past the threshold
  bool in_sync = false;  // every table ready, lag under the threshold
};

struct StatusView {
  std::optional<StoredRun> run;  // none when no run was ever started there
  bool live = false;             // a process holds the work directory
  std::vector<StoredDatabase> databases;
  // Steps per source database name; filled when the tables were asked for.
  std::map<std::string, std::vector<StoredStep>> steps;
  // Per replicating database (state syncing); filled by ReadReplication.
  std::map<std::string, ReplicationView> replication;
};

// In sync: the target is at most this far behind the source.
inline constexpr int64_t kInSyncLagBytes = 16 << 20;
// Warn past this much WAL kept on the source by a slot.
inline constexpr int64_t kRetainedWalWarningBytes = int64_t{1} << 30;

// Connects to both servers (the run's recorded connection strings, the
// passwords from the environment or .pgpass) and reads, per replicating
// database, the slot's lag and retained WAL and the subscription's tables.
// A server that cannot be reached is an error in that database's view.
void ReadReplication(StatusView& view, std::chrono::milliseconds connect_timeout);

// Reads <dir>/pgcourier.db read-only (also while a run writes it) and whether
// a live process holds the directory. kNotFound, with a hint, when there is
// no work directory or no catalog in it.
Result<StatusView> ReadStatus(const std::string& dir, bool with_steps);

// The state of the whole migration: "empty" (no run), "running",
// "interrupted" (recorded as running, but no process holds the directory:
// it was killed or the machine went down), "done", "failed" (also a run
// recorded done with a failed database), "cancelled".
std::string OverallState(const StatusView& view);

// A header line (overall state, run id, source -> target), when and by whom,
// then one aligned row per database (name, target name, method, state, tables
// and indexes done of all, bytes, error) with its hint and a note when its
// rows come from more than one snapshot; with tables, every step of every
// database.
std::string RenderStatusText(const StatusView& view, bool tables);

// {format: "pgcourier.status/1", state: <OverallState>,
//  run: {id, source, target, started_at, updated_at, finished_at, pid,
//        resumes, error} or null,
//  databases: [{dbname, target_dbname, method, method_reason, status, error,
//    hint, consistent, progress: {tables_done, tables_total, indexes_done,
//    indexes_total, bytes_done, bytes_total, rows_done}, started_at,
//    finished_at, and with tables: tables: [{object, part, kind, state, rows,
//    bytes, seconds, attempts, error}]}]}
// Empty optional strings (error, hint, method_reason, part, timestamps not
// reached yet) are null.
nlohmann::json StatusJson(const StatusView& view, bool tables);

}  // namespace pgcourier

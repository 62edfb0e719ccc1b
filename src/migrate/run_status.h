// The truth about a migration recorded in a work directory, read at any time
// (while it runs, after it ended or died): what its catalog says, whether a
// process still holds the directory, and, for the databases that replicate,
// how far the target is behind (read from both servers). Reading only: it
// never writes to the catalog or to a server. Rendering is in
// report/status_report.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "replication/health.h"
#include "replication/replication.h"
#include "state/store.h"
#include "util/status.h"

namespace pgcourier {

// Where replication of one database stands (read from both servers).
struct ReplicationView {
  ReplicationLag lag;
  // Whether it works (replication/health.h); none when a server could not
  // be read.
  std::optional<ReplicationHealth> health;
  std::string error;     // a server could not be read, or the replication is broken
  std::string hint;      // what to do about a broken replication
  std::string warning;   // WAL retained past the threshold, a slot past its WAL limit
  bool broken = false;   // it cannot catch up by waiting (health.broken())
  bool in_sync = false;  // every table ready, lag under the threshold, not broken
  // The apply rate: how fast the slot's confirmed_flush_lsn (what the
  // target confirmed it applied) moved over the sampling interval, in bytes
  // of the source's WAL per second; -1 when not sampled.
  double apply_bytes_per_second = -1;
};

struct StatusView {
  std::optional<StoredRun> run;  // none when no run was ever started there
  bool live = false;             // a process holds the work directory
  std::vector<StoredDatabase> databases;
  // Steps per source database name; filled when the tables were asked for.
  std::map<std::string, std::vector<StoredStep>> steps;
  // Per source database name, with the steps: each table's expected size
  // as recorded when its copy was planned (none from an older pgcourier's
  // run).
  std::map<std::string, std::vector<StoredTableSize>> table_sizes;
  // Per replicating database (state syncing); filled by ReadReplication.
  std::map<std::string, ReplicationView> replication;
  // Per source database name, read from its steps whatever `with_steps`
  // says: the options its subscription was made with, and the phases of its
  // last cutover (steps "cutover: <phase>", part "writes stopped" or "after
  // the switch"), in order.
  std::map<std::string, std::string> subscription_options;
  std::map<std::string, std::vector<StoredStep>> cutover_phases;
  // Per database: the subscription's error counters from which errors are
  // new (state/store.h).
  std::map<std::string, ErrorCounts> error_baselines;
  // Per database cut over with --keep-rollback: its way back as recorded,
  // and, while the old source follows the target (filled by
  // ReadReplication), where that replication stands, read as the move's
  // is with the roles swapped (the target publishes, the old source
  // subscribes; its error counters count from zero).
  std::map<std::string, StoredRollback> rollbacks;
  std::map<std::string, ReplicationView> way_back;
  std::string dir;
};

// In sync: the target is at most this far behind the source.
inline constexpr int64_t kInSyncLagBytes = 16 << 20;
// Warn past this much WAL kept on the source by a slot.
inline constexpr int64_t kRetainedWalWarningBytes = int64_t{1} << 30;

// Reads <dir>/pgcourier.db read-only (also while a run writes it) and whether
// a live process holds the directory. kNotFound, with a hint, when there is
// no work directory or no catalog in it.
Result<StatusView> ReadStatus(const std::string& dir, bool with_steps);

// Connects to both servers (the run's recorded connection strings, the
// passwords from the environment or .pgpass) and reads, per replicating
// database, the slot's lag and retained WAL and the subscription's tables;
// the same for each way back the old source follows.
// A server that cannot be reached is an error in that database's view, and
// so is a connection pooler in transaction mode in front of either side
// (pg/pooler.h; probed first, nothing else connected to then).
// With a `rate_sample` interval, the slot's confirmed position is read again
// that long after the first reading, for the apply rate (each replicating
// database then takes that much longer to read).
void ReadReplication(StatusView& view, std::chrono::milliseconds connect_timeout,
                     std::chrono::milliseconds rate_sample = std::chrono::milliseconds(0));

// True when some database's replication, or a followed way back, is broken
// (status exits 1).
bool AnyReplicationBroken(const StatusView& view);

// The state of the whole migration: "empty" (no run), "running",
// "interrupted" (recorded as running, but no process holds the directory:
// it was killed or the machine went down), "done", "failed" (also a run
// recorded done with a failed database), "cancelled".
std::string OverallState(const StatusView& view);

}  // namespace pgcourier

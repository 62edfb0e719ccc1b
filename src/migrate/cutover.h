// `pgcourier cutover`: finishes the databases that replicate (state
// "syncing") of the run in a work directory. Inside the write-stop window:
// optionally stops the source's writes, waits until the target applied every
// change, copies what logical replication does not carry (sequences, tables
// without replica identity that were not published, or were published for
// inserts and truncates only and may have seen an update or delete, large
// objects, materialized views), compares the
// sequences, and holds a snapshot of each side: the switch moment, where the
// window ends and the target is the primary. After it: removes the
// replication objects and what was changed for them, and verifies everything
// else at the two switch-moment snapshots, while the target already takes
// writes.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "migrate/options.h"
#include "verify/verifier.h"

namespace pgcourier {

// `pgcourier cutover`: finishes the databases that replicate (state
// "syncing") of the run in `work_dir`.
struct CutoverOptions {
  std::string work_dir;
  std::string source;  // optional: the recorded servers, with passwords
  std::string target;
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};  // to catch up
  // First make the source databases read-only for new transactions
  // (ALTER DATABASE ... SET default_transaction_read_only = on).
  bool stop_source_writes = false;
  // Keep a way back (needs stop_source_writes): at the switch moment a
  // publication and a slot on the target, then a subscription on the old
  // source (copy_data = false; origin = none on 16+), so that the old
  // source follows the new primary until `pgcourier rollback` or cleanup.
  // Checked before the source is touched: refused with the reason and the
  // fix when it cannot work.
  bool keep_rollback = false;
  int jobs = 2;  // for the verification
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(30)};
  const CancelToken* cancel = nullptr;
  std::function<void(const ProgressEvent&)> on_progress;
  // Called right after the switch moment, before the verification (tests
  // write to the target there).
  std::function<void(const std::string& database)> on_switched;
};

// One timed phase of a cutover. Inside the write-stop window: "stopping
// writes" (with --stop-source-writes), "catching up", "write counters"
// (whether the tables replicated for inserts and truncates only saw an
// update or delete, migrate/append_only.h), "snapshot",
// "sequences", "unreplicated copy" (tables not replicated, large objects,
// extensions' configuration rows, materialized views), "way back
// publication" (with --keep-rollback: publication and slot on the target),
// "switch" (the sequences compared, the progress marks dropped durably, the
// target's snapshot held). After it: "removing replication", "way back
// subscription" (with --keep-rollback), "verification".
// A rollback has the same phases with the roles swapped (the target's
// writes stopped, the old source catching up and getting what replication
// does not carry), "opening writes" (the old source made writable again)
// after "switch" inside its window, and no way back phases; it has no
// "write counters" either (the way back publishes no table without replica
// identity: those are all copied back in its "unreplicated copy").
// The phases are recorded as steps of kind phase named kCutoverPhasePrefix
// (kRollbackPhasePrefix) + name, their part saying on which side of the
// switch moment; those of a cutover run again replace the earlier attempt's.
inline constexpr const char* kCutoverPhasePrefix = "cutover: ";
inline constexpr const char* kRollbackPhasePrefix = "rollback: ";
inline constexpr const char* kCutoverWindowPart = "writes stopped";
inline constexpr const char* kCutoverAfterPart = "after the switch";

// A table without replica identity that replication carried for inserts
// and truncates only: copied again inside the window, or not, and why.
struct AppendOnlyTable {
  std::string table;  // schema.table
  bool recopied = false;
  std::string why;
};

struct CutoverPhase {
  std::string name;
  double seconds = 0;
};

// How the cutover of one database ended: kSkipped when it was not
// replicating. Name() gives "done", "failed", "cancelled", "skipped".
// A database that switched and whose verification then failed (or could
// not be finished) is kFailed with `switched` set.
enum class CutoverState { kDone, kFailed, kCancelled, kSkipped };
const char* Name(CutoverState state);

struct CutoverDatabase {
  std::string name;
  std::string target_name;
  CutoverState state = CutoverState::kSkipped;
  std::string error;
  std::string hint;
  // The write-stop window: from the moment writes were stopped (or the
  // cutover began, when the user stopped them) to the switch moment.
  double writes_stopped_seconds = 0;
  std::vector<CutoverPhase> window;  // the phases inside it, in order
  std::vector<CutoverPhase> after;   // the phases after it, in order
  // The target is the primary: the switch moment was reached. Whatever
  // happens after it, the database is never cut over again (that would
  // empty tables the applications now write to).
  bool switched = false;
  // How to make the side whose writes were stopped writable again (the
  // source; the target for a rollback).
  std::string undo;
  // Left out of replication, or (forward only) append-only and changed:
  // copied again.
  int64_t tables_recopied = 0;
  std::vector<AppendOnlyTable> append_only;  // each one, recopied or not (forward only)
  int64_t sequences = 0;
  std::vector<std::string> removed;  // replication objects dropped
  // With --keep-rollback: the old source follows the target (the
  // subscription's options, as SubscriptionOptions::Text says them).
  bool rollback_kept = false;
  std::string rollback_options;
  // Verified at the switch moment: both sides read at the snapshots held
  // then (sequences read inside the window).
  std::optional<DatabaseVerification> verification;
};

struct CutoverOutcome {
  std::vector<CutoverDatabase> databases;
  bool ok() const;
};

// Cuts over every replicating database of the run in options.work_dir.
// First each side of each of them is probed for a connection pooler
// (pg/pooler.h): one in transaction mode refuses the whole cutover
// (kFailedPrecondition) before anything is touched.
Result<CutoverOutcome> Cutover(const CutoverOptions& options);

// `pgcourier rollback`: the reverse cutover of every database whose cutover
// kept a way back that is still followed (StoredRollback state following):
// refused when the way back is broken (replication/health.h, read in that
// direction); else the target database made read-only for new transactions
// and its client sessions ended, the old source caught up, the sequences,
// the tables the way back does not carry, large objects, extensions'
// configuration rows and materialized views copied back at a snapshot of
// the target, the switch moment (the old source's snapshot held), the old
// source made writable again; after it the way back removed and
// everything verified at the two snapshots. The same options as cutover
// (stop_source_writes and keep_rollback are ignored); databases without a
// way back are skipped.
Result<CutoverOutcome> Rollback(const CutoverOptions& options);

}  // namespace pgcourier

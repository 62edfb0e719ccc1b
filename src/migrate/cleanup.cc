#include "migrate/cleanup.h"

#include <algorithm>

#include "copy/progress_marks.h"
#include "migrate/recorded_run.h"
#include "migrate/sessions.h"
#include "replication/replication.h"

namespace pgcourier {
namespace {

using Session = Result<std::unique_ptr<Connection>>;

// Undoes the changes recorded for `db`, latest first, over the sessions that
// could be opened.
void UndoChanges(StateStore& store, const StoredDatabase& db,
                 const std::vector<StoredChange>& changes, Session& src, Session& dst,
                 CleanupOutcome& outcome) {
  for (size_t k = changes.size(); k-- > 0;) {
    const StoredChange& c = changes[k];
    if (c.state != ChangeState::kMade) continue;
    Session& on = c.side == Side::kSource ? src : dst;
    if (!on.ok()) {
      if (c.side == Side::kSource || on.status().sqlstate() != "3D000") {
        outcome.problems.push_back(db.name + ": " + c.object + " (" + Name(c.side) +
                                   ") not undone: the server is unreachable");
      }
      continue;
    }
    Status undone = UndoChange(**on, store, c);
    if (undone.ok()) {
      outcome.undone.push_back(db.name + ": " + c.object + " (" + Name(c.side) + ")");
    } else {
      outcome.problems.push_back(db.name + ": " + undone.ToString());
    }
  }
}

// One database to clean up: its recorded changes, and the errors of the
// pooler probes that could not reach a side (Ok when they did).
struct ToClean {
  size_t index = 0;
  std::vector<StoredChange> changes;
  Status source_reached;
  Status target_reached;
};

// The way back of a database cut over with --keep-rollback: the
// subscription on the old source, the slot and publication on the target
// (the publisher now), whatever state it was left in; recorded as removed
// once both sides were reached.
void RemoveWayBack(RecordedMigration& m, size_t i, Session& src, Session& dst,
                   CleanupOutcome& outcome) {
  const StoredDatabase& db = m.databases[i];
  Result<std::optional<StoredRollback>> back = m.store->Rollback(db.name);
  if (!back.ok()) {
    outcome.problems.push_back(db.name + ": " + back.status().ToString());
    return;
  }
  if (!*back || (*back)->state == RollbackState::kRemoved) return;
  const ReplicationNames names = RollbackNamesFor(m.run.id, static_cast<int>(i));
  Result<std::vector<std::string>> removed =
      DropReplication(dst.ok() ? dst->get() : nullptr, src.ok() ? src->get() : nullptr, names);
  if (!removed.ok()) {
    outcome.problems.push_back(db.name + ": way back: " + removed.status().ToString());
    return;
  }
  for (const auto& r : *removed) {
    outcome.removed.push_back(db.name + ": way back " + WayBackSides(r));
  }
  if (!src.ok() || !dst.ok()) {
    outcome.problems.push_back(db.name + ": the way back (subscription " + names.subscription +
                               " on the source, slot " + names.slot + " and publication " +
                               names.publication +
                               " on the target) is not removed where the server was "
                               "unreachable: run pgcourier cleanup again when it is (a slot left "
                               "behind keeps WAL on the target)");
    return;
  }
  StoredRollback gone = **back;
  gone.state = RollbackState::kRemoved;
  Status put = m.store->PutRollback(gone);
  if (!put.ok()) outcome.problems.push_back(put.ToString());
}

// Removes the replication objects of one database and undoes its changes.
void CleanUpDatabase(RecordedMigration& m, const SessionFactory& sessions, const ToClean& clean,
                     CleanupOutcome& outcome) {
  const StoredDatabase& db = m.databases[clean.index];
  const ReplicationNames names = m.Names(clean.index);
  const std::vector<StoredChange>& changes = clean.changes;
  // A database cutover made read-only: the source session opts out, so that
  // it may still drop the publication and undo the changes. A side the
  // pooler probe could not reach is not tried again.
  Session src =
      clean.source_reached.ok() ? sessions.Source(db.name) : Session(clean.source_reached);
  Session dst = clean.target_reached.ok()
                    ? sessions.Target(db.target_name, SessionFactory::TargetUse::kAdmin)
                    : Session(clean.target_reached);
  if (!dst.ok() && dst.status().code() != StatusCode::kNotFound &&
      dst.status().sqlstate() != "3D000") {
    outcome.problems.push_back(db.target_name + " on the target: " + dst.status().message() +
                               "; its subscription " + names.subscription + " may remain");
  }
  if (!src.ok()) {
    outcome.problems.push_back(db.name + " on the source: " + src.status().message() +
                               "; its slot " + names.slot + " and publications " +
                               names.publication + " and " + names.append_publication +
                               " remain: run pgcourier cleanup again when it is reachable "
                               "(a slot left behind keeps WAL on the source)");
  }
  Result<std::vector<std::string>> removed =
      DropReplication(src.ok() ? src->get() : nullptr, dst.ok() ? dst->get() : nullptr, names);
  if (!removed.ok()) {
    outcome.problems.push_back(db.name + ": " + removed.status().ToString());
    return;
  }
  for (const auto& r : *removed) outcome.removed.push_back(db.name + ": " + r);
  RemoveWayBack(m, clean.index, src, dst, outcome);
  // The marks of an interrupted cutover: without replication no resume
  // needs them (a resumed replication starts its database over).
  if (dst.ok() && db.method == Method::kReplication) {
    Result<bool> marks = ProgressMarksExist(**dst);
    Status dropped = marks.ok() && *marks ? DropProgressMarks(**dst) : marks.status();
    if (!dropped.ok()) {
      outcome.problems.push_back(db.name + ": " + dropped.ToString());
    } else if (*marks) {
      outcome.removed.push_back(db.name + ": schema " + std::string(kProgressSchema) + " (target)");
    }
  }
  UndoChanges(*m.store, db, changes, src, dst, outcome);
  if (src.ok() && dst.ok() && Replicating(db.state)) {
    StoredDatabase cancelled = db;
    cancelled.state = DatabaseState::kCancelled;
    cancelled.error = "replication removed by pgcourier cleanup before cutover";
    Status set = m.store->PutDatabase(cancelled);
    if (!set.ok()) outcome.problems.push_back(set.ToString());
  }
}

}  // namespace

Result<CleanupOutcome> Cleanup(const CleanupOptions& co) {
  Result<RecordedMigration> recorded = OpenRecorded(co.work_dir, co.source, co.target);
  if (!recorded.ok()) return recorded.status();
  RecordedMigration& m = *recorded;
  const SessionFactory sessions(m.source, m.target, co.connect_timeout, co.cancel,
                                m.options.lock_timeout);
  std::vector<ToClean> to_clean;
  for (size_t i = 0; i < m.databases.size(); ++i) {
    Result<std::vector<StoredChange>> changes = m.store->Changes(m.databases[i].name);
    if (!changes.ok()) return changes.status();
    const bool changed = std::any_of(changes->begin(), changes->end(), [](const StoredChange& c) {
      return c.state == ChangeState::kMade;
    });
    if (m.databases[i].method != Method::kReplication && !changed) continue;
    to_clean.push_back({i, std::move(*changes), Status::Ok(), Status::Ok()});
  }
  // Before anything is dropped: a pooler in transaction mode in front of a
  // side refuses the whole cleanup (pg/pooler.h); an unreachable side is
  // cleaned up without, as before.
  for (ToClean& clean : to_clean) {
    const StoredDatabase& db = m.databases[clean.index];
    PGC_RETURN_IF_ERROR(sessions.RefusePooler("source", db.name, &clean.source_reached));
    PGC_RETURN_IF_ERROR(sessions.RefusePooler("target", db.target_name, &clean.target_reached));
  }
  CleanupOutcome outcome;
  for (const ToClean& clean : to_clean) CleanUpDatabase(m, sessions, clean, outcome);
  return outcome;
}

}  // namespace pgcourier

#include "migrate/cutover.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "copy/database_objects.h"
#include "copy/extension_config.h"
#include "copy/progress_marks.h"
#include "copy/quiet_triggers.h"
#include "copy/snapshot.h"
#include "copy/table_copy.h"
#include "migrate/append_only.h"
#include "migrate/database_migration.h"
#include "migrate/recorded_run.h"
#include "migrate/sessions.h"
#include "pg/quote.h"
#include "preflight/checker.h"
#include "replication/health.h"
#include "replication/replication.h"
#include "verify/verifier.h"

namespace pgcourier {
namespace {

using Clock = std::chrono::steady_clock;

// The cutover of one replicating database, built from the recorded run.
class DatabaseCutover {
 public:
  DatabaseCutover(const RecordedMigration& m, const SessionFactory& sessions,
                  const CutoverOptions& options, DatabaseRecord& record, ReplicationNames names)
      : migration_(m),
        sessions_(sessions),
        options_(options),
        record_(record),
        stored_(record.Get()),
        names_(std::move(names)) {}

  Status Run(CutoverDatabase& out);
  void RecordPhases(const CutoverDatabase& out);

 private:
  void Progress(const std::string& message) const {
    if (options_.on_progress) options_.on_progress({stored_.name, "cutover", message, 0, 0});
  }
  Status ExpectReplication();
  Status CheckHealth(bool sample_worker);
  Status MakeSourceWritableAgain(CutoverDatabase& out);
  Status StopSourceWrites(CutoverDatabase& out);
  Status CatchUp();
  Status TakeSnapshot();
  Status CopySequences(CutoverDatabase& out);
  Status CheckAppendOnly(CutoverDatabase& out);
  Status CopyUnreplicated(CutoverDatabase& out);
  Status CopyExtensionRows();
  Status Switch();
  Status Verify(CutoverDatabase& out);
  Status RemoveReplication(CutoverDatabase& out);

  const RecordedMigration& migration_;
  const SessionFactory& sessions_;
  const CutoverOptions& options_;
  DatabaseRecord& record_;
  const StoredDatabase stored_;
  const ReplicationNames names_;
  std::unique_ptr<Connection> source_;
  std::unique_ptr<Connection> target_;
  std::unique_ptr<ExportedSnapshot> snapshot_;         // the source's, from TakeSnapshot on
  std::unique_ptr<ExportedSnapshot> target_snapshot_;  // the target's at the switch moment
  std::optional<VerifyOptions> verify_;
  CopyCatalog catalog_;
  bool broke_while_waiting_ = false;
  std::string stopped_at_;  // the source's clock when writes were stopped
  // The tables published for inserts and truncates only that saw no update
  // or delete since the copy (schema.table, quoted): not copied again.
  std::set<std::string> append_unchanged_;
  std::map<std::string, std::string> append_why_;  // the others: why copied again
};

Status DatabaseCutover::ExpectReplication() {
  Result<ReplicationLag> lag = ReadLag(source_.get(), target_.get(), names_);
  if (!lag.ok()) return lag.status();
  if (lag->slot_exists && lag->subscription_exists) return Status::Ok();
  return Status(StatusCode::kFailedPrecondition,
                fmt::format("the replication of {} is incomplete: {} {}", stored_.name,
                            lag->slot_exists ? "" : "no slot " + names_.slot + " on the source;",
                            lag->subscription_exists
                                ? ""
                                : "no subscription " + names_.subscription + " on the target"),
                "run pgcourier cleanup, then move the database again");
}

// A replication that cannot catch up by waiting (replication/health.h)
// stops the cutover: before the source is touched, or while it waits.
Status DatabaseCutover::CheckHealth(bool sample_worker) {
  Result<StoredErrorBaseline> baseline = record_.store().ErrorBaseline(stored_.name);
  if (!baseline.ok()) return baseline.status();
  Result<ReplicationHealth> health =
      ReadHealth(*source_, *target_, names_, migration_.options.filter,
                 {baseline->apply_errors, baseline->sync_errors}, options_.work_dir, sample_worker);
  if (!health.ok()) return health.status().WithContext("reading the replication's health");
  for (const auto& warning : health->warnings) Progress("WARNING: " + warning);
  if (!health->broken()) return Status::Ok();
  return Status(StatusCode::kFailedPrecondition,
                "the replication of " + stored_.name + " is broken: " + health->Error(),
                health->Hint());
}

// Undoes the read-only setting this cutover made (a cause that waiting
// cannot fix must not leave the source read-only).
Status DatabaseCutover::MakeSourceWritableAgain(CutoverDatabase& out) {
  Result<std::vector<StoredChange>> changes = record_.Changes();
  if (!changes.ok()) return changes.status();
  for (const auto& c : *changes) {
    if (c.object != kReadOnlyChange || c.state != ChangeState::kMade) continue;
    PGC_RETURN_IF_ERROR(UndoChange(*source_, record_.store(), c));
    out.undo.clear();
    Progress("source database " + stored_.name + " is writable again");
  }
  return Status::Ok();
}

Status DatabaseCutover::StopSourceWrites(CutoverDatabase& out) {
  // The session may itself be in a read-only database: it opts out first.
  out.undo = "SET default_transaction_read_only = off; ALTER DATABASE " + QuoteIdent(stored_.name) +
             " RESET default_transaction_read_only;";
  PGC_RETURN_IF_ERROR(record_.Change(Side::kSource, kReadOnlyChange, out.undo));
  PGC_RETURN_IF_ERROR(source_
                          ->Run("ALTER DATABASE " + QuoteIdent(stored_.name) +
                                " SET default_transaction_read_only = on")
                          .WithContext("making the source database read-only"));
  // The setting applies to new sessions: the open ones are ended, so that
  // the applications reconnect read-only (their open transactions roll
  // back). Replication's own walsenders are not client backends.
  Result<QueryResult> ended = source_->ExecParams(
      "SELECT count(*) FILTER (WHERE pg_catalog.pg_terminate_backend(a.pid)), count(*), "
      "pg_catalog.statement_timestamp()::text "
      "FROM pg_catalog.pg_stat_activity a WHERE a.datname = $1 "
      "AND a.pid <> pg_catalog.pg_backend_pid() AND a.backend_type = 'client backend'",
      {stored_.name});
  if (!ended.ok()) return ended.status().WithContext("ending the source's open sessions");
  stopped_at_ = ended->GetString(0, 2);
  if (ended->GetInt(0, 0) < ended->GetInt(0, 1)) {
    Progress(
        fmt::format("{} of {} open session(s) on the source could not be ended (no "
                    "right to): they may still write",
                    ended->GetInt(0, 1) - ended->GetInt(0, 0), ended->GetInt(0, 1)));
  }
  Progress("source database " + stored_.name +
           " is read-only for new transactions (to undo, on the source: " + out.undo + ")");
  return Status::Ok();
}

// Everything written up to now must be on the target.
Status DatabaseCutover::CatchUp() {
  Result<QueryResult> now = source_->Exec("SELECT pg_catalog.pg_current_wal_lsn()::text");
  if (!now.ok()) return now.status();
  const std::string lsn = now->GetString(0, 0);
  Progress("waiting for the target to apply the source's changes up to " + lsn);
  Status waited = WaitApplied(
      *source_, names_, lsn,
      Deadline::After(std::chrono::duration_cast<std::chrono::milliseconds>(options_.timeout)),
      options_.cancel, [this] {
        Status healthy = CheckHealth(true);
        broke_while_waiting_ = healthy.code() == StatusCode::kFailedPrecondition;
        return healthy;
      });
  PGC_RETURN_IF_ERROR(waited);
  Progress("the target has applied every change up to " + lsn);
  return Status::Ok();
}

// What replication does not carry is read at a snapshot taken now (no slot
// needed: the source is caught up).
Status DatabaseCutover::TakeSnapshot() {
  Result<std::unique_ptr<Connection>> holder = sessions_.Source(stored_.name);
  if (!holder.ok()) return holder.status();
  Result<std::unique_ptr<ExportedSnapshot>> exported =
      ExportedSnapshot::Export(std::move(*holder), Deadline::Never());
  if (!exported.ok()) return exported.status();
  snapshot_ = std::move(*exported);
  Result<CopyCatalog> catalog =
      ReadCopyCatalog(snapshot_->conn(), migration_.options.filter, Deadline::Never());
  if (!catalog.ok()) return catalog.status();
  catalog_ = std::move(*catalog);
  return Status::Ok();
}

Status DatabaseCutover::CopySequences(CutoverDatabase& out) {
  Result<int64_t> sequences = SetSequences(snapshot_->conn(), *target_, catalog_.sequences);
  if (!sequences.ok()) return sequences.status();
  out.sequences = *sequences;
  return Status::Ok();
}

// The tables published for inserts and truncates only (when the
// subscription takes that publication): which saw no update or delete since
// the copy, as the source's statistics show once writes have stopped
// (migrate/append_only.h). Runs before the snapshot: no session of this
// cutover but source_ is open in the source database.
Status DatabaseCutover::CheckAppendOnly(CutoverDatabase& out) {
  Result<QueryResult> subscribed = target_->ExecParams(
      "SELECT $2 = ANY (s.subpublications) FROM pg_catalog.pg_subscription s WHERE s.subname = $1 "
      "AND s.subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = "
      "pg_catalog.current_database())",
      {names_.subscription, names_.append_publication});
  if (!subscribed.ok()) return subscribed.status().WithContext("reading the subscription");
  if (names_.append_publication.empty() || subscribed->rows() == 0 || !subscribed->GetBool(0, 0)) {
    return Status::Ok();
  }
  Result<CopyCatalog> catalog =
      ReadCopyCatalog(*source_, migration_.options.filter, Deadline::Never());
  if (!catalog.ok()) return catalog.status();
  Result<QueryResult> published = source_->ExecParams(
      "SELECT schemaname, tablename FROM pg_catalog.pg_publication_tables WHERE pubname = $1",
      {names_.append_publication});
  if (!published.ok()) return published.status();
  std::set<std::string> in_publication;
  for (int r = 0; r < published->rows(); ++r) {
    in_publication.insert(QualifiedName(published->GetString(r, 0), published->GetString(r, 1)));
  }
  std::vector<TableToCopy> tables;
  for (const auto& t : catalog->tables) {
    const bool published_itself = in_publication.count(t.QualifiedName()) > 0;
    const bool leaves_published =
        t.through_root() &&
        std::all_of(t.partitions.begin(), t.partitions.end(), [&](const auto& l) {
          return in_publication.count(QualifiedName(l.schema, l.name)) > 0;
        });
    if (published_itself || leaves_published) tables.push_back(t);
  }
  if (tables.empty()) return Status::Ok();
  Result<std::string> unsettled =
      WriteCountersSettled(*source_, stored_.name, stopped_at_, std::chrono::seconds(5));
  if (!unsettled.ok()) return unsettled.status();
  Result<std::vector<StoredWriteCounters>> before = record_.store().WriteCounters(stored_.name);
  if (!before.ok()) return before.status();
  std::map<std::string, StoredWriteCounters> recorded;
  for (auto& c : *before) recorded[c.table] = std::move(c);
  Result<std::vector<StoredWriteCounters>> now =
      unsettled->empty() ? ReadWriteCounters(*source_, stored_.name, tables)
                         : std::vector<StoredWriteCounters>();
  if (!now.ok()) return now.status();
  for (size_t i = 0; i < tables.size(); ++i) {
    const std::string name = tables[i].QualifiedName();
    auto then = recorded.find(name);
    std::string why = *unsettled;
    if (why.empty() && then == recorded.end()) why = "no write counters were recorded at the copy";
    if (why.empty()) why = WhyNotUnchanged(then->second, (*now)[i]);
    if (why.empty()) {
      append_unchanged_.insert(name);
      out.append_only.push_back(
          {tables[i].Display(), false, "no update or delete on the source since the copy"});
      Progress(tables[i].Display() +
               " (inserts and truncates replicated): no update or delete since the copy, not "
               "copied again");
    } else {
      append_why_[name] = why;
    }
  }
  return Status::Ok();
}

// The tables the publications left out (or the append-only ones not shown
// unchanged), large objects, the extensions' configuration rows and
// materialized views.
Status DatabaseCutover::CopyUnreplicated(CutoverDatabase& out) {
  Result<QueryResult> published = snapshot_->conn().ExecParams(
      "SELECT schemaname, tablename FROM pg_catalog.pg_publication_tables WHERE pubname = $1",
      {names_.publication});
  if (!published.ok()) return published.status();
  std::set<std::string> carried = append_unchanged_;
  for (int r = 0; r < published->rows(); ++r) {
    carried.insert(QualifiedName(published->GetString(r, 0), published->GetString(r, 1)));
  }
  Result<std::unique_ptr<Connection>> copier = sessions_.Source(stored_.name);
  if (!copier.ok()) return copier.status();
  PGC_RETURN_IF_ERROR(ExportedSnapshot::BeginAt(**copier, snapshot_->id(), Deadline::Never()));
  // Fresh marks: an interrupted cutover's are of no use (its copies are
  // made again, each one emptying its table first).
  PGC_RETURN_IF_ERROR(DropProgressMarks(*target_));
  PGC_RETURN_IF_ERROR(CreateProgressMarks(*target_));
  std::vector<TableToCopy> again;
  for (const auto& table : catalog_.tables) {
    if (carried.count(table.QualifiedName()) == 0) again.push_back(table);
  }
  // The target has its triggers by now; the rows already carry their effects.
  Result<std::map<std::string, QuietTriggers>> quiet = PlanQuietTriggers(*target_, again);
  if (!quiet.ok()) return quiet.status();
  for (const auto& table : again) {
    auto quieted = quiet->find(table.QualifiedName());
    const QuietTriggers none;
    const QuietTriggers& q = quieted == quiet->end() ? none : quieted->second;
    Result<TableCopyStats> copied =
        CopyTable(**copier, *target_, table, std::nullopt, 1, "cutover " + table.QualifiedName(),
                  Deadline::Never(), q);
    if (!copied.ok()) return copied.status();
    ++out.tables_recopied;
    auto append = append_why_.find(table.QualifiedName());
    if (append != append_why_.end()) {
      out.append_only.push_back({table.Display(), true, append->second});
    }
    Progress(fmt::format("{} ({}) copied again: {} rows{}", table.Display(),
                         append == append_why_.end()
                             ? "not replicated"
                             : "inserts and truncates replicated; " + append->second,
                         copied->rows, q.how.empty() ? "" : " (" + q.how + ")"));
  }
  if (!catalog_.large_objects.empty()) {
    PGC_RETURN_IF_ERROR(
        target_->Run("SELECT pg_catalog.lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata"));
    Result<LargeObjectsCopied> copied = CopyLargeObjects(
        snapshot_->conn(), *target_, catalog_.large_objects,
        {migration_.options.policy.preserve_owners, migration_.options.policy.preserve_acl});
    if (!copied.ok()) return copied.status();
  }
  PGC_RETURN_IF_ERROR(CopyExtensionRows());
  return RefreshMaterializedViews(*target_, catalog_.materialized_views).status();
}

// The extensions' configuration rows, which replication does not carry,
// copied again; not those of a table that another table references by
// foreign key (replacing its rows could cascade into replicated ones): a
// change there shows in the verification.
Status DatabaseCutover::CopyExtensionRows() {
  Result<std::string> cron = ReadCronDatabase(*target_);
  if (!cron.ok()) return cron.status();
  Result<std::vector<ExtensionConfigTable>> tables = ReadExtensionConfig(
      snapshot_->conn(), migration_.options.filter, LeftOutExtensions(stored_.target_name, *cron));
  if (!tables.ok()) return tables.status();
  std::erase_if(*tables, [](const ExtensionConfigTable& t) { return t.referenced_from_outside; });
  Result<ExtensionConfigCopied> copied =
      CopyExtensionConfig(snapshot_->conn(), *target_, *tables, std::nullopt);
  if (!copied.ok()) return copied.status();
  if (copied->tables + copied->sequences > 0) {
    Progress(fmt::format("{} row(s) of {} extension configuration table(s) copied again",
                         copied->rows, copied->tables));
  }
  return Status::Ok();
}

// The switch moment, last step of the write-stop window: the sequences
// compared (their values are not transactional: no snapshot could read them
// as they were later), the progress marks dropped in a transaction committed
// with synchronous_commit on (its WAL flush covers every earlier
// asynchronous commit, so what the target has is durable), and the target's
// snapshot exported and held. The source's is the one TakeSnapshot holds:
// the source took no write since (read-only, or stopped by the user).
Status DatabaseCutover::Switch() {
  Result<std::vector<SequenceVerification>> sequences =
      CompareSequences(sessions_.source().WithDatabase(stored_.name),
                       sessions_.target().WithDatabase(stored_.target_name), *verify_);
  if (!sequences.ok()) return sequences.status().WithContext("comparing the sequences");
  verify_->compared_sequences = std::move(*sequences);
  PGC_RETURN_IF_ERROR(target_->Run("SET synchronous_commit = on"));
  PGC_RETURN_IF_ERROR(DropProgressMarks(*target_));
  Result<std::unique_ptr<Connection>> holder = sessions_.Target(stored_.target_name);
  if (!holder.ok()) return holder.status();
  Result<std::unique_ptr<ExportedSnapshot>> exported =
      ExportedSnapshot::Export(std::move(*holder), Deadline::Never());
  if (!exported.ok()) return exported.status().WithContext("holding the target's snapshot");
  target_snapshot_ = std::move(*exported);
  return Status::Ok();
}

// A few of the differences, named: the cutover's error says what differs.
std::string DifferencesSummary(const DatabaseVerification& v) {
  std::vector<std::string> named;
  for (const auto& t : v.tables) {
    if (t.match()) continue;
    named.push_back(
        QualifiedName(t.schema, t.name) +
        (t.error.empty()
             ? fmt::format(" ({} rows on the source, {} on the target{})", t.source_rows,
                           t.target_rows, t.source_rows == t.target_rows ? ", contents differ" : "")
             : " (" + t.error + ")"));
  }
  for (const auto& q : v.sequences) {
    if (!q.match()) named.push_back("sequence " + QualifiedName(q.schema, q.name));
  }
  for (const auto& k : v.schema) {
    if (!k.match()) named.push_back("schema: " + k.kind + "s");
  }
  for (const auto& p : v.properties) {
    if (!p.match()) named.push_back(p.property);
  }
  std::string out;
  for (size_t i = 0; i < named.size() && i < 5; ++i) out += (i == 0 ? "" : "; ") + named[i];
  if (named.size() > 5) out += fmt::format("; and {} more", named.size() - 5);
  return out;
}

// The whole database compared at the switch moment's two snapshots, while
// the target may already take writes (they are not in its snapshot).
Status DatabaseCutover::Verify(CutoverDatabase& out) {
  verify_->source_snapshot = snapshot_->id();
  verify_->target_snapshot = target_snapshot_->id();
  Result<DatabaseVerification> verified =
      VerifyDatabase(sessions_.source().WithDatabase(stored_.name),
                     sessions_.target().WithDatabase(stored_.target_name), *verify_);
  if (!verified.ok()) return verified.status();
  out.verification = std::move(*verified);
  Status differs = DifferencesStatus(*out.verification, stored_.consistent);
  if (differs.ok()) return Status::Ok();
  return Status(StatusCode::kFailedPrecondition,
                fmt::format("verified at the switch moment, the target differs from the source "
                            "in {} place(s): {}",
                            out.verification->Mismatches(), DifferencesSummary(*out.verification)),
                differs.hint());
}

// The replication objects, and what replication needed (an extension
// installed for it, REPLICA IDENTITY FULL); the read-only source stays so
// until cleanup or the printed undo.
Status DatabaseCutover::RemoveReplication(CutoverDatabase& out) {
  Result<std::vector<std::string>> removed = DropReplication(source_.get(), target_.get(), names_);
  if (!removed.ok()) return removed.status();
  out.removed = *removed;
  Result<std::vector<StoredChange>> changes = record_.Changes();
  if (!changes.ok()) return changes.status();
  for (size_t i = changes->size(); i-- > 0;) {
    const StoredChange& c = (*changes)[i];
    if (c.state != ChangeState::kMade || c.object == kReadOnlyChange) continue;
    Connection& on = c.side == Side::kSource ? *source_ : *target_;
    PGC_RETURN_IF_ERROR(UndoChange(on, record_.store(), c));
    out.removed.push_back(c.object + " (" + Name(c.side) + ", undone)");
  }
  return Status::Ok();
}

// Each phase as a step of the database (kind phase, "cutover: <name>"), so
// that status shows the last cutover's breakdown.
void DatabaseCutover::RecordPhases(const CutoverDatabase& out) {
  for (const auto* list : {&out.window, &out.after}) {
    for (const CutoverPhase& phase : *list) {
      StoredStep step;
      step.database = stored_.name;
      step.kind = StepKind::kPhase;
      step.object = std::string(kCutoverPhasePrefix) + phase.name;
      step.part = list == &out.window ? kCutoverWindowPart : kCutoverAfterPart;
      step.state = StepState::kDone;
      step.seconds = phase.seconds;
      record_.Step(std::move(step));
    }
  }
}

Status DatabaseCutover::Run(CutoverDatabase& out) {
  Result<std::unique_ptr<Connection>> source = sessions_.Source(stored_.name);
  if (!source.ok()) return source.status();
  source_ = std::move(*source);
  Result<std::unique_ptr<Connection>> target = sessions_.Target(stored_.target_name);
  if (!target.ok()) return target.status();
  target_ = std::move(*target);
  PGC_RETURN_IF_ERROR(ExpectReplication());
  // Before the source is touched: a broken replication never catches up.
  PGC_RETURN_IF_ERROR(CheckHealth(true));
  // Prepared before the window: it reads the target's settings.
  MigrateOptions options = migration_.options;
  options.check.jobs = options_.jobs;
  Result<VerifyOptions> verify =
      MovedDatabaseVerifyOptions(options, sessions_, stored_.target_name);
  if (!verify.ok()) return verify.status();
  verify_ = std::move(*verify);

  const auto stopped = Clock::now();
  auto since = stopped;
  auto timed = [&since](std::vector<CutoverPhase>& phases, const char* name) {
    const auto now = Clock::now();
    phases.push_back({name, std::chrono::duration<double>(now - since).count()});
    since = now;
  };
  if (options_.stop_source_writes) {
    PGC_RETURN_IF_ERROR(StopSourceWrites(out));
    timed(out.window, "stopping writes");
  }
  Status caught_up = CatchUp();
  if (!caught_up.ok() && broke_while_waiting_) {
    Status writable = MakeSourceWritableAgain(out);
    if (!writable.ok()) {
      return caught_up.WithHint(caught_up.hint() + "; making the source writable again failed (" +
                                writable.message() + "): on the source, " + out.undo);
    }
    return caught_up;
  }
  PGC_RETURN_IF_ERROR(caught_up);
  timed(out.window, "catching up");
  PGC_RETURN_IF_ERROR(CheckAppendOnly(out));
  timed(out.window, "write counters");
  PGC_RETURN_IF_ERROR(TakeSnapshot());
  timed(out.window, "snapshot");
  PGC_RETURN_IF_ERROR(CopySequences(out));
  timed(out.window, "sequences");
  PGC_RETURN_IF_ERROR(CopyUnreplicated(out));
  timed(out.window, "unreplicated copy");
  PGC_RETURN_IF_ERROR(Switch());
  timed(out.window, "switch");
  // The switch moment: the target is the primary from here on, and never
  // cut over again (that would empty tables the applications write to).
  out.switched = true;
  out.writes_stopped_seconds = std::chrono::duration<double>(since - stopped).count();
  // Until the verification ends, the record says so: a cutover killed
  // from here on leaves this error.
  record_.Update([](StoredDatabase& d) {
    d.state = DatabaseState::kDone;
    d.error =
        "NOT VERIFIED: switched to the target, but the verification at the switch moment "
        "did not finish";
    d.hint =
        "the target is the primary: do not cut over again; pgcourier cleanup removes what "
        "is left of the replication, pgcourier verify compares the two as they are now";
  });
  Progress(fmt::format(
      "switch moment: writes were stopped for {:.1f} s; the target is the primary and may take "
      "writes; verifying at the switch moment's snapshots",
      out.writes_stopped_seconds));
  if (options_.on_switched) options_.on_switched(stored_.name);
  Status removed = RemoveReplication(out);
  timed(out.after, "removing replication");
  PGC_RETURN_IF_ERROR(removed);
  Status verified = Verify(out);
  timed(out.after, "verification");
  return verified;
}

// Runs the cutover of the i-th recorded database into `out`, and records
// the database's state after it: a failed cutover leaves the database
// replicating, so that it can be run again.
void CutOver(const RecordedMigration& m, const SessionFactory& sessions, const CutoverOptions& co,
             size_t i, CutoverDatabase& out) {
  DatabaseRecord record(*m.store, m.databases[i]);
  record.Update([](StoredDatabase& d) { d.state = DatabaseState::kCutover; });
  DatabaseCutover cutover(m, sessions, co, record, m.Names(i));
  Status status = cutover.Run(out);
  if (status.ok()) {
    out.state = CutoverState::kDone;
  } else {
    const bool cancelled =
        status.code() == StatusCode::kCancelled || (co.cancel != nullptr && co.cancel->cancelled());
    out.state = cancelled ? CutoverState::kCancelled : CutoverState::kFailed;
    out.error = status.ToString();
    out.hint = status.hint();
  }
  if (out.switched && !status.ok()) {
    // Past the switch moment there is no going back: say so, and what to do.
    const bool differs = out.verification && !out.verification->ok();
    out.error =
        (differs ? "NOT VERIFIED: " : "NOT VERIFIED (the cutover did not finish): ") + out.error;
    out.hint = fmt::format(
        "the target is already the primary and may have taken writes: do not run cutover "
        "again. {}The old source is untouched{}: {}",
        differs ? "The differences above are as of the switch moment. " : "",
        out.undo.empty() ? "" : " and stays read-only",
        differs ? "read the differing rows there and repair them on the target (pgcourier "
                  "verify compares the two as they are now, so the target's new writes show "
                  "as differences too)"
                : "pgcourier cleanup removes what is left of the replication; pgcourier verify "
                  "compares the two as they are now (the target's new writes show as "
                  "differences)");
  }
  cutover.RecordPhases(out);
  record.Update([&](StoredDatabase& d) {
    const bool done = out.state == CutoverState::kDone || out.switched;
    d.state = done ? DatabaseState::kDone : DatabaseState::kSyncing;
    d.error = out.error;
    d.hint = out.hint;
  });
}

}  // namespace

const char* Name(CutoverState state) {
  switch (state) {
    case CutoverState::kDone:
      return "done";
    case CutoverState::kFailed:
      return "failed";
    case CutoverState::kCancelled:
      return "cancelled";
    case CutoverState::kSkipped:
      break;
  }
  return "skipped";
}

bool CutoverOutcome::ok() const {
  for (const auto& db : databases) {
    if (db.state != CutoverState::kDone && db.state != CutoverState::kSkipped) return false;
  }
  return !databases.empty();
}

Result<CutoverOutcome> Cutover(const CutoverOptions& co) {
  Result<RecordedMigration> recorded = OpenRecorded(co.work_dir, co.source, co.target);
  if (!recorded.ok()) return recorded.status();
  RecordedMigration& m = *recorded;
  m.options.on_progress = co.on_progress;
  const SessionFactory sessions(m.source, m.target, co.connect_timeout, co.cancel,
                                m.options.lock_timeout);
  CutoverOutcome outcome;
  bool any = false;
  for (size_t i = 0; i < m.databases.size(); ++i) {
    const StoredDatabase& stored = m.databases[i];
    CutoverDatabase out;
    out.name = stored.name;
    out.target_name = stored.target_name;
    // "cutover": a cutover that was interrupted; it is simply done again.
    if (!Replicating(stored.state)) {
      out.state = CutoverState::kSkipped;
      out.hint = "its state is " + std::string(Name(stored.state)) +
                 "; only replicating databases are cut over";
    } else {
      any = true;
      CutOver(m, sessions, co, i, out);
    }
    outcome.databases.push_back(std::move(out));
  }
  if (!any) {
    return Status(StatusCode::kFailedPrecondition,
                  "no database of the migration in " + co.work_dir + " is replicating",
                  "see pgcourier status --dir " + co.work_dir);
  }
  bool all_done = true;
  Result<std::vector<StoredDatabase>> after = m.store->Databases();
  if (after.ok()) {
    for (const auto& d : *after) all_done = all_done && d.state == DatabaseState::kDone;
  }
  (void)m.store->FinishRun(all_done ? RunState::kDone : RunState::kSyncing, "");
  return outcome;
}

}  // namespace pgcourier

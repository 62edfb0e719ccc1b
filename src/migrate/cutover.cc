#include "migrate/cutover.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

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
#include "pg/transaction.h"
#include "preflight/checker.h"
#include "replication/health.h"
#include "replication/replication.h"
#include "verify/verifier.h"

namespace pgcourier {
namespace {

using Clock = std::chrono::steady_clock;

// Which way the primary moves: the cutover (source -> target), or the
// rollback (the target back to the old source, over the way back that
// cutover --keep-rollback left). One piece of code with the roles swapped:
// the publisher ("from") has its writes stopped and is read at the
// snapshot; the subscriber ("to") catches up, gets the sequences and what
// replication does not carry, and becomes the primary. For a rollback the
// SessionFactory is made with the servers swapped (its Source() is the
// target), so sessions_.Source(from_db_) is always the publisher.
enum class Direction { kCutover, kRollback };

// The cutover (or rollback) of one replicating database, built from the
// recorded run.
class DatabaseCutover {
 public:
  DatabaseCutover(const RecordedMigration& m, const SessionFactory& sessions,
                  const CutoverOptions& options, DatabaseRecord& record, ReplicationNames names,
                  ReplicationNames back, Direction direction)
      : migration_(m),
        sessions_(sessions),
        options_(options),
        record_(record),
        stored_(record.Get()),
        names_(std::move(names)),
        back_(std::move(back)),
        forward_(direction == Direction::kCutover),
        keep_rollback_(forward_ && options.keep_rollback),
        from_db_(forward_ ? stored_.name : stored_.target_name),
        to_db_(forward_ ? stored_.target_name : stored_.name),
        from_side_(forward_ ? Side::kSource : Side::kTarget),
        from_label_(forward_ ? "source" : "target"),
        to_label_(forward_ ? "target" : "old source") {}

  Status Run(CutoverDatabase& out);
  void RecordPhases(const CutoverDatabase& out);

 private:
  void Progress(const std::string& message, const std::string& object = "",
                ProgressEvent::Level level = ProgressEvent::Level::kInfo) const {
    if (options_.on_progress) {
      ProgressEvent event{stored_.name, forward_ ? "cutover" : "rollback", message, 0, 0};
      event.object = object;
      event.level = level;
      options_.on_progress(event);
    }
  }
  Status Prepare();
  Status ExpectReplication();
  Status CheckHealth(bool sample_worker);
  Status CheckWayBack();
  Status ReadWayBackTables();
  Status TryWayBack();
  Status MakeWritableAgain(Side side, Connection& on);
  Status StopWrites(CutoverDatabase& out);
  Status CatchUp();
  Status TakeSnapshot();
  Status CopySequences(CutoverDatabase& out);
  Status CheckAppendOnly(CutoverDatabase& out);
  Status CopyUnreplicated(CutoverDatabase& out);
  Status CopyExtensionRows();
  Status PrepareWayBack();
  Status Switch();
  void MarkSwitched(CutoverDatabase& out);
  Status Verify(CutoverDatabase& out);
  Status RemoveReplication(CutoverDatabase& out);
  Status FollowTarget(CutoverDatabase& out);
  Status PutWayBack(RollbackState state) {
    return record_.store().PutRollback(
        {stored_.name, state, back_.publication, back_.slot, back_.subscription, ""});
  }

  const RecordedMigration& migration_;
  const SessionFactory& sessions_;
  const CutoverOptions& options_;
  DatabaseRecord& record_;
  const StoredDatabase stored_;
  const ReplicationNames names_;  // the replication this run switches over
  const ReplicationNames back_;   // the way back (cutover --keep-rollback)
  const bool forward_;
  const bool keep_rollback_;
  const std::string from_db_;  // the publisher's database
  const std::string to_db_;    // the subscriber's database
  const Side from_side_;       // where writes are stopped
  const std::string from_label_;
  const std::string to_label_;
  std::unique_ptr<Connection> source_;          // the publisher (the target for a rollback)
  std::unique_ptr<Connection> target_;          // the subscriber (the old source for a rollback)
  std::unique_ptr<ExportedSnapshot> snapshot_;  // the publisher's, from TakeSnapshot on
  std::unique_ptr<ExportedSnapshot> target_snapshot_;  // the subscriber's at the switch moment
  std::optional<VerifyOptions> verify_;
  CopyCatalog catalog_;
  bool broke_while_waiting_ = false;
  std::vector<std::string> back_tables_;  // the way back publishes these
  bool back_via_root_ = false;
  std::string stopped_at_;  // the publisher's clock when writes were stopped
  // The tables published for inserts and truncates only that saw no update
  // or delete since the copy (schema.table, quoted): not copied again.
  std::set<std::string> append_unchanged_;
  std::map<std::string, std::string> append_why_;  // the others: why copied again
};

Status DatabaseCutover::ExpectReplication() {
  Result<ReplicationLag> lag = ReadLag(source_.get(), target_.get(), names_);
  if (!lag.ok()) return lag.status();
  if (lag->slot_exists && lag->subscription_exists) return Status::Ok();
  return Status(
      StatusCode::kFailedPrecondition,
      fmt::format("the {} of {} is incomplete: {} {}", forward_ ? "replication" : "way back",
                  stored_.name,
                  lag->slot_exists ? "" : "no slot " + names_.slot + " on the " + from_label_ + ";",
                  lag->subscription_exists
                      ? ""
                      : "no subscription " + names_.subscription + " on the " + to_label_),
      forward_ ? "run pgcourier cleanup, then move the database again"
               : "the target stays the primary; pgcourier cleanup removes what is left "
                 "of the way back");
}

// A replication that cannot catch up by waiting (replication/health.h)
// stops the cutover: before the publisher is touched, or while it waits.
Status DatabaseCutover::CheckHealth(bool sample_worker) {
  ErrorCounts baseline;  // the way back's subscription counts from zero
  if (forward_) {
    Result<StoredErrorBaseline> stored = record_.store().ErrorBaseline(stored_.name);
    if (!stored.ok()) return stored.status();
    baseline = {stored->apply_errors, stored->sync_errors};
  }
  Result<ReplicationHealth> health =
      ReadHealth(*source_, *target_, names_, migration_.options.filter, baseline, options_.work_dir,
                 sample_worker);
  if (!health.ok()) return health.status().WithContext("reading the replication's health");
  for (const auto& warning : health->warnings) {
    Progress(warning, "", ProgressEvent::Level::kWarning);
  }
  if (!health->broken()) return Status::Ok();
  std::string hint = health->Hint();
  if (!forward_ && !health->drift.empty()) {
    // The DDL health spells out is for the move's direction.
    hint =
        "the target's tables changed since the cutover: make the old source's tables match "
        "them, then run pgcourier rollback again";
  }
  return Status(StatusCode::kFailedPrecondition,
                fmt::format("the {} of {} is broken: {}", forward_ ? "replication" : "way back",
                            stored_.name, health->Error()),
                hint);
}

// The tables the way back publishes: those the move's publication lists
// (itself or a partition tree's root), that have a replica identity on the
// target (publishing one without would make the applications' UPDATE and
// DELETE there fail); the others are copied back by a rollback.
Status DatabaseCutover::ReadWayBackTables() {
  Result<QueryResult> listed = source_->ExecParams(
      "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), p.pubviaroot "
      "FROM pg_catalog.pg_publication p JOIN pg_catalog.pg_publication_rel r ON r.prpubid = p.oid "
      "JOIN pg_catalog.pg_class c ON c.oid = r.prrelid "
      "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE p.pubname = $1 ORDER BY 1",
      {names_.publication});
  if (!listed.ok()) return listed.status().WithContext("reading the move's publication");
  Result<QueryResult> identified = target_->Exec(
      "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c "
      "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'p' "
      "OR c.relreplident = 'f' OR EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE "
      "i.indrelid = c.oid AND ((c.relreplident = 'd' AND i.indisprimary) OR "
      "(c.relreplident = 'i' AND i.indisreplident)))");
  if (!identified.ok()) return identified.status().WithContext("reading the target's tables");
  std::set<std::string> with_identity;
  for (int r = 0; r < identified->rows(); ++r) with_identity.insert(identified->GetString(r, 0));
  back_tables_.clear();
  for (int r = 0; r < listed->rows(); ++r) {
    back_via_root_ = back_via_root_ || listed->GetBool(r, 1);
    if (with_identity.count(listed->GetString(r, 0)) > 0) {
      back_tables_.push_back(listed->GetString(r, 0));
    }
  }
  return Status::Ok();
}

// What the way back needs, checked before the source is touched: the source
// user may subscribe there, the target has logical WAL, a free slot and
// sender and a user who may make them, and may publish the tables.
Status DatabaseCutover::CheckWayBack() {
  const std::string refused = "cutover --keep-rollback of " + stored_.name + " refused: ";
  const std::string without = "; or cut over without --keep-rollback";
  Result<QueryResult> source = source_->Exec(
      "SELECT r.rolsuper, r.rolsuper OR CASE WHEN "
      "pg_catalog.current_setting('server_version_num')::int >= 160000 THEN "
      "pg_catalog.pg_has_role('pg_create_subscription', 'USAGE') AND "
      "pg_catalog.has_database_privilege(pg_catalog.current_database(), 'CREATE') ELSE false "
      "END, current_user FROM pg_catalog.pg_roles r WHERE r.rolname = current_user");
  if (!source.ok()) return source.status().WithContext("reading the source user's rights");
  if (source->rows() == 0 || !source->GetBool(0, 1)) {
    const std::string user = source->rows() > 0 ? source->GetString(0, 2) : "?";
    return Status(StatusCode::kFailedPrecondition,
                  refused + "the source user " + user +
                      " may not create a subscription on the source (the old source subscribes "
                      "to the target on the way back)",
                  "connect to the source as a superuser or, on PostgreSQL 16+, GRANT "
                  "pg_create_subscription and CREATE on the database to " +
                      user + without);
  }
  Result<QueryResult> target = target_->Exec(
      "SELECT pg_catalog.current_setting('wal_level'), r.rolsuper OR r.rolreplication, "
      "pg_catalog.current_setting('max_replication_slots')::int - (SELECT count(*) FROM "
      "pg_catalog.pg_replication_slots), pg_catalog.current_setting('max_wal_senders')::int - "
      "(SELECT count(*) FROM pg_catalog.pg_stat_replication), current_user "
      "FROM pg_catalog.pg_roles r WHERE r.rolname = current_user");
  if (!target.ok()) return target.status().WithContext("reading the target's settings");
  std::string problem;
  std::string fix;
  if (target->rows() == 0) {
    problem = "the target user is not in pg_roles";
  } else if (target->GetString(0, 0) != "logical") {
    problem = "the target's wal_level is " + target->GetString(0, 0) + ", not logical";
    fix = "set wal_level = logical on the target and restart it";
  } else if (!target->GetBool(0, 1)) {
    problem = "the target user " + target->GetString(0, 4) +
              " may not create a replication slot (no REPLICATION)";
    fix = "ALTER ROLE " + QuoteIdent(target->GetString(0, 4)) + " REPLICATION on the target";
  } else if (target->GetInt(0, 2) < 1 || target->GetInt(0, 3) < 1) {
    problem = "the target has no free replication slot or WAL sender";
    fix = "raise max_replication_slots and max_wal_senders on the target (restart)";
  }
  if (!problem.empty()) {
    return Status(StatusCode::kFailedPrecondition, refused + problem, fix + without);
  }
  PGC_RETURN_IF_ERROR(ReadWayBackTables());
  return TryWayBack();
}

// The way back's two statements tried in transactions that are rolled
// back: the publication on the target (the target user may publish the
// tables) and, for a superuser source user (whose session keeps the
// statement, with the target's password, out of the server's log), the
// subscription on the source, which connects to the target as the old
// source server will: its address and pg_hba.conf are tried from there.
Status DatabaseCutover::TryWayBack() {
  const std::string refused = "cutover --keep-rollback of " + stored_.name + " refused: ";
  // One an interrupted cutover left is made again.
  Result<std::optional<StoredRollback>> left = record_.store().Rollback(stored_.name);
  if (!left.ok()) return left.status();
  if (*left && (*left)->state != RollbackState::kRemoved) {
    PGC_RETURN_IF_ERROR(DropReplication(target_.get(), source_.get(), back_).status());
  }
  Status published = Status::Ok();
  {
    Result<Transaction> trial = Transaction::Begin(*target_, {}, Deadline::Never());
    if (!trial.ok()) return trial.status();
    published = target_->Run(PublicationStatement(back_.publication, back_tables_, back_via_root_));
    PGC_RETURN_IF_ERROR(trial->Rollback());
  }
  if (!published.ok()) {
    return Status(StatusCode::kFailedPrecondition,
                  refused + "the target user may not publish the tables on the target: " +
                      published.message(),
                  "connect to the target as the tables' owner or a superuser; or cut over "
                  "without --keep-rollback");
  }
  Result<QueryResult> superuser =
      source_->Exec("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user");
  if (!superuser.ok()) return superuser.status();
  if (superuser->rows() == 0 || !superuser->GetBool(0, 0)) return Status::Ok();
  const RecordChangeFn no_change = [](const std::string&, const std::string&) {
    return Status(StatusCode::kFailedPrecondition, "not while trying");
  };
  Result<Transaction> trial = Transaction::Begin(*source_, {}, Deadline::Never());
  if (!trial.ok()) return trial.status();
  Result<SubscriptionOptions> tried =
      CreateSubscription(*source_, *target_, sessions_.target(), back_, no_change, {});
  PGC_RETURN_IF_ERROR(trial->Rollback());
  if (tried.ok()) return Status::Ok();
  return Status(StatusCode::kFailedPrecondition,
                refused +
                    "the source server cannot subscribe to the target as pgcourier reaches "
                    "it: " +
                    tried.status().message(),
                "give --target as the source server can reach it (a host name or address it "
                "resolves, not a local socket) and let the target's pg_hba.conf accept a "
                "replication connection from the source server; or cut over without "
                "--keep-rollback");
}

// Undoes the read-only setting recorded for `side` (a cause that waiting
// cannot fix must not leave the publisher read-only; a rollback opens the
// old source again).
Status DatabaseCutover::MakeWritableAgain(Side side, Connection& on) {
  Result<std::vector<StoredChange>> changes = record_.Changes();
  if (!changes.ok()) return changes.status();
  for (const auto& c : *changes) {
    if (c.object != kReadOnlyChange || c.side != side || c.state != ChangeState::kMade) continue;
    PGC_RETURN_IF_ERROR(UndoChange(on, record_.store(), c));
    Progress(fmt::format("{} database is writable again",
                         side == Side::kSource ? "the source" : "the target"));
  }
  return Status::Ok();
}

Status DatabaseCutover::StopWrites(CutoverDatabase& out) {
  // The session may itself be in a read-only database: it opts out first.
  out.undo = "SET default_transaction_read_only = off; ALTER DATABASE " + QuoteIdent(from_db_) +
             " RESET default_transaction_read_only;";
  PGC_RETURN_IF_ERROR(record_.Change(from_side_, kReadOnlyChange, out.undo));
  PGC_RETURN_IF_ERROR(source_
                          ->Run("ALTER DATABASE " + QuoteIdent(from_db_) +
                                " SET default_transaction_read_only = on")
                          .WithContext("making the " + from_label_ + " database read-only"));
  // The setting applies to new sessions: the open ones are ended, so that
  // the applications reconnect read-only (their open transactions roll
  // back). Replication's own walsenders are not client backends.
  Result<QueryResult> ended = source_->ExecParams(
      "SELECT count(*) FILTER (WHERE pg_catalog.pg_terminate_backend(a.pid)), count(*), "
      "pg_catalog.statement_timestamp()::text "
      "FROM pg_catalog.pg_stat_activity a WHERE a.datname = $1 "
      "AND a.pid <> pg_catalog.pg_backend_pid() AND a.backend_type = 'client backend'",
      {from_db_});
  if (!ended.ok()) return ended.status().WithContext("ending the " + from_label_ + "'s sessions");
  stopped_at_ = ended->GetString(0, 2);
  if (ended->GetInt(0, 0) < ended->GetInt(0, 1)) {
    Progress(
        fmt::format("{} of {} open session(s) on the {} could not be ended (no "
                    "right to): they may still write",
                    ended->GetInt(0, 1) - ended->GetInt(0, 0), ended->GetInt(0, 1), from_label_));
  }
  Progress(fmt::format("{} database {} is read-only for new transactions (to undo, on the {}: {})",
                       from_label_, from_db_, from_label_, out.undo));
  return Status::Ok();
}

// Everything written up to now must be on the subscriber.
Status DatabaseCutover::CatchUp() {
  Result<QueryResult> now = source_->Exec("SELECT pg_catalog.pg_current_wal_lsn()::text");
  if (!now.ok()) return now.status();
  const std::string lsn = now->GetString(0, 0);
  Progress(fmt::format("waiting for the {} to apply the {}'s changes up to {}", to_label_,
                       from_label_, lsn));
  Status waited = WaitApplied(
      *source_, names_, lsn,
      Deadline::After(std::chrono::duration_cast<std::chrono::milliseconds>(options_.timeout)),
      options_.cancel, [this] {
        Status healthy = CheckHealth(true);
        broke_while_waiting_ = healthy.code() == StatusCode::kFailedPrecondition;
        return healthy;
      });
  PGC_RETURN_IF_ERROR(waited);
  Progress(fmt::format("the {} has applied every change up to {}", to_label_, lsn));
  return Status::Ok();
}

// What replication does not carry is read at a snapshot taken now (no slot
// needed: the subscriber is caught up).
Status DatabaseCutover::TakeSnapshot() {
  Result<std::unique_ptr<Connection>> holder = sessions_.Source(from_db_);
  if (!holder.ok()) return holder.status();
  Result<std::unique_ptr<ExportedSnapshot>> exported =
      ExportedSnapshot::Export(std::move(*holder), Deadline::Never());
  if (!exported.ok()) return exported.status();
  snapshot_ = std::move(*exported);
  Result<CopyCatalog> catalog =
      ReadCopyCatalog(snapshot_->conn(), migration_.options.filter, Deadline::Never());
  if (!catalog.ok()) return catalog.status();
  catalog_ = std::move(*catalog);
  if (migration_.options.copy_as_text) CopyAllAsText(catalog_, "--copy-format text");
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
// cutover but source_ is open in the source database. Forward only: the way
// back has no such publication.
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
                   "copied again",
               tables[i].Display());
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
  Result<std::unique_ptr<Connection>> copier = sessions_.Source(from_db_);
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
                         copied->rows, q.how.empty() ? "" : " (" + q.how + ")"),
             table.Display());
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
      snapshot_->conn(), migration_.options.filter, LeftOutExtensions(to_db_, *cron));
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
  Result<std::vector<SequenceVerification>> sequences = CompareSequences(
      sessions_.source().WithDatabase(from_db_), sessions_.target().WithDatabase(to_db_), *verify_);
  if (!sequences.ok()) return sequences.status().WithContext("comparing the sequences");
  verify_->compared_sequences = std::move(*sequences);
  PGC_RETURN_IF_ERROR(target_->Run("SET synchronous_commit = on"));
  PGC_RETURN_IF_ERROR(DropProgressMarks(*target_));
  Result<std::unique_ptr<Connection>> holder = sessions_.Target(to_db_);
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
  Result<DatabaseVerification> verified = VerifyDatabase(
      sessions_.source().WithDatabase(from_db_), sessions_.target().WithDatabase(to_db_), *verify_);
  if (!verified.ok()) return verified.status();
  out.verification = std::move(*verified);
  Status differs = DifferencesStatus(*out.verification, stored_.consistent);
  if (differs.ok()) return Status::Ok();
  return Status(StatusCode::kFailedPrecondition,
                fmt::format("verified at the switch moment, the {} differs from the {} in {} "
                            "place(s): {}",
                            to_label_, from_label_, out.verification->Mismatches(),
                            DifferencesSummary(*out.verification)),
                differs.hint());
}

// The replication objects, and what replication needed (an extension
// installed for it, REPLICA IDENTITY FULL); the read-only source stays so
// until cleanup or the printed undo. A rollback removes the way back.
Status DatabaseCutover::RemoveReplication(CutoverDatabase& out) {
  Result<std::vector<std::string>> removed = DropReplication(source_.get(), target_.get(), names_);
  if (!removed.ok()) return removed.status();
  out.removed = *removed;
  if (!forward_) {
    for (auto& r : out.removed) r = "way back " + WayBackSides(r);
    return PutWayBack(RollbackState::kRemoved);
  }
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

// The way back's publisher side, inside the window: the target has every
// change of the source now, and takes none of its own before the switch
// moment, so the slot starts where the two are equal. Recorded first, so
// that cleanup looks for it whatever happens next.
Status DatabaseCutover::PrepareWayBack() {
  PGC_RETURN_IF_ERROR(PutWayBack(RollbackState::kPrepared));
  const std::chrono::milliseconds wait = sessions_.lock_timeout();
  PGC_RETURN_IF_ERROR(
      CreatePublicationAndSlot(*target_, back_, back_tables_, back_via_root_,
                               wait.count() > 0 ? Deadline::After(wait) : Deadline::Never()));
  Progress(fmt::format("way back: publication {} ({} table(s)) and slot {} made on the target",
                       back_.publication, back_tables_.size(), back_.slot));
  return Status::Ok();
}

// The old source follows the target, after the switch moment: a
// subscription on the old source over the slot made in the window, copying
// nothing. The old source stays read-only for the applications (the
// database's default_transaction_read_only); the apply worker writes all
// the same: it applies changes below the executor's read-only check (seen
// on 13, 15 and 17). The target server connects with the target's
// parameters as this process reached it (the password included, kept in
// pg_subscription.subconninfo on the old source until the way back is
// removed).
Status DatabaseCutover::FollowTarget(CutoverDatabase& out) {
  Result<SubscriptionOptions> with = ChooseSubscriptionOptions(*source_, *target_, back_);
  if (!with.ok()) return with.status();
  // On 16+ the old source asks only for the target's own changes. Before
  // 16 it cannot filter by origin, but it does not need to: the move's
  // subscription on the target was dropped before this one was made
  // (removing replication comes first), so every change the target
  // publishes from now on is its own, and nothing loops either way.
  with->origin_none = source_->server_version() >= 160000 && target_->server_version() >= 160000;
  Result<SubscriptionOptions> made = CreateSubscription(
      *source_, *target_, sessions_.target(), back_, record_.ChangeRecorder(Side::kSource), *with);
  if (!made.ok()) return made.status().WithContext("making the way back");
  PGC_RETURN_IF_ERROR(PutWayBack(RollbackState::kFollowing));
  out.rollback_kept = true;
  out.rollback_options = made->Text();
  Progress("way back: the old source follows the target (subscription " + back_.subscription +
           ", " + out.rollback_options +
           "); pgcourier rollback switches back, pgcourier cleanup "
           "removes the way back");
  return Status::Ok();
}

// Each phase as a step of the database (kind phase, "cutover: <name>"), so
// that status shows the last cutover's breakdown: the phases of an earlier
// attempt (one that failed, or stopped writes where this one did not) are
// replaced, never shown beside these.
void DatabaseCutover::RecordPhases(const CutoverDatabase& out) {
  const char* prefix = forward_ ? kCutoverPhasePrefix : kRollbackPhasePrefix;
  std::vector<StoredStep> steps;
  for (const auto* list : {&out.window, &out.after}) {
    for (const CutoverPhase& phase : *list) {
      StoredStep step;
      step.database = stored_.name;
      step.kind = StepKind::kPhase;
      step.object = std::string(prefix) + phase.name;
      step.part = list == &out.window ? kCutoverWindowPart : kCutoverAfterPart;
      step.state = StepState::kDone;
      step.seconds = phase.seconds;
      steps.push_back(std::move(step));
    }
  }
  Status put = record_.store().ReplaceSteps(stored_.name, StepKind::kPhase, prefix, steps);
  if (!put.ok()) {
    spdlog::warn("recording the {}phases of {}: {}", prefix, stored_.name, put.ToString());
  }
}

// Everything before the window: the sessions, the replication there and
// healthy, the way back possible, the verification's options (they read
// the subscriber's settings).
Status DatabaseCutover::Prepare() {
  Result<std::unique_ptr<Connection>> source = sessions_.Source(from_db_);
  if (!source.ok()) return source.status();
  source_ = std::move(*source);
  Result<std::unique_ptr<Connection>> target = sessions_.Target(to_db_);
  if (!target.ok()) return target.status();
  target_ = std::move(*target);
  PGC_RETURN_IF_ERROR(ExpectReplication());
  // Before the publisher is touched: a broken replication never catches up.
  PGC_RETURN_IF_ERROR(CheckHealth(true));
  if (keep_rollback_) PGC_RETURN_IF_ERROR(CheckWayBack());
  MigrateOptions options = migration_.options;
  options.check.jobs = options_.jobs;
  Result<VerifyOptions> verify = MovedDatabaseVerifyOptions(options, sessions_, to_db_);
  if (!verify.ok()) return verify.status();
  verify_ = std::move(*verify);
  // A lock that stops the sequences' comparison before the switch moment:
  // the database still replicates, and the command can run again. (Past
  // the switch moment, the failure's hint says what is left to do.)
  verify_->after_lock_wait = fmt::format("run pgcourier {} --dir {} again",
                                         forward_ ? "cutover" : "rollback", options_.work_dir);
  return Status::Ok();
}

// The switch moment reached: recorded (until the verification ends, the
// record says it did not: a cutover killed from here on leaves this error),
// said, and handed to on_switched.
void DatabaseCutover::MarkSwitched(CutoverDatabase& out) {
  const bool forward = forward_;
  record_.Update([forward](StoredDatabase& d) {
    d.state = DatabaseState::kDone;
    d.error = forward ? "NOT VERIFIED: switched to the target, but the verification at the "
                        "switch moment did not finish"
                      : "NOT VERIFIED: rolled back to the source, but the verification at the "
                        "switch moment did not finish";
    d.hint = forward ? "the target is the primary: do not cut over again; pgcourier cleanup "
                       "removes what is left of the replication, pgcourier verify compares the "
                       "two as they are now"
                     : "the old source is the primary again; pgcourier cleanup removes what is "
                       "left of the way back";
  });
  if (!forward_) (void)PutWayBack(RollbackState::kRolledBack);
  Progress(fmt::format(
      "switch moment: writes were stopped for {:.1f} s; the {} is the primary and may take "
      "writes; verifying at the switch moment's snapshots",
      out.writes_stopped_seconds, to_label_));
  if (options_.on_switched) options_.on_switched(stored_.name);
}

Status DatabaseCutover::Run(CutoverDatabase& out) {
  PGC_RETURN_IF_ERROR(Prepare());
  const auto stopped = Clock::now();
  auto since = stopped;
  auto timed = [&since](std::vector<CutoverPhase>& phases, const char* name) {
    const auto now = Clock::now();
    phases.push_back({name, std::chrono::duration<double>(now - since).count()});
    since = now;
  };
  // A rollback always stops the target's writes: the applications write
  // there until then.
  if (!forward_ || options_.stop_source_writes) {
    PGC_RETURN_IF_ERROR(StopWrites(out));
    timed(out.window, "stopping writes");
  }
  Status caught_up = CatchUp();
  if (!caught_up.ok() && broke_while_waiting_) {
    Status writable = MakeWritableAgain(from_side_, *source_);
    if (!writable.ok()) {
      return caught_up.WithHint(
          fmt::format("{}; making the {} writable again failed ({}): on the {}, {}",
                      caught_up.hint(), from_label_, writable.message(), from_label_, out.undo));
    }
    out.undo.clear();
    return caught_up;
  }
  PGC_RETURN_IF_ERROR(caught_up);
  timed(out.window, "catching up");
  if (forward_) {
    // The way back publishes no table without replica identity: a rollback
    // copies those back in its unreplicated copy.
    PGC_RETURN_IF_ERROR(CheckAppendOnly(out));
    timed(out.window, "write counters");
  }
  PGC_RETURN_IF_ERROR(TakeSnapshot());
  timed(out.window, "snapshot");
  PGC_RETURN_IF_ERROR(CopySequences(out));
  timed(out.window, "sequences");
  PGC_RETURN_IF_ERROR(CopyUnreplicated(out));
  timed(out.window, "unreplicated copy");
  if (keep_rollback_) {
    PGC_RETURN_IF_ERROR(PrepareWayBack());
    timed(out.window, "way back publication");
  }
  PGC_RETURN_IF_ERROR(Switch());
  timed(out.window, "switch");
  // The switch moment: the subscriber is the primary from here on, and
  // never switched to again (that would empty tables the applications
  // write to).
  out.switched = true;
  if (!forward_) {
    // The old source takes the applications' writes again.
    Status opened = MakeWritableAgain(Side::kSource, *target_);
    timed(out.window, "opening writes");
    PGC_RETURN_IF_ERROR(opened.WithContext("making the old source writable again"));
  }
  out.writes_stopped_seconds = std::chrono::duration<double>(since - stopped).count();
  MarkSwitched(out);
  Status removed = RemoveReplication(out);
  timed(out.after, "removing replication");
  PGC_RETURN_IF_ERROR(removed);
  if (keep_rollback_) {
    Status followed = FollowTarget(out);
    timed(out.after, "way back subscription");
    PGC_RETURN_IF_ERROR(followed);
  }
  Status verified = Verify(out);
  timed(out.after, "verification");
  return verified;
}

// Runs the cutover of the i-th recorded database into `out`, and records
// the database's state after it: a failed cutover leaves the database
// replicating, so that it can be run again. `reached`: the error of the
// pooler probe that could not reach a side (then nothing is tried).
// The state a cutover or rollback of one database ended in, from its status.
void SetEnd(const Status& status, const CutoverOptions& co, CutoverDatabase& out) {
  if (status.ok()) {
    out.state = CutoverState::kDone;
    return;
  }
  const bool cancelled =
      status.code() == StatusCode::kCancelled || (co.cancel != nullptr && co.cancel->cancelled());
  out.state = cancelled ? CutoverState::kCancelled : CutoverState::kFailed;
  out.error = status.ToString();
  out.hint = status.hint();
}

void CutOver(const RecordedMigration& m, const SessionFactory& sessions, const CutoverOptions& co,
             size_t i, const Status& reached, CutoverDatabase& out) {
  DatabaseRecord record(*m.store, m.databases[i]);
  record.Update([](StoredDatabase& d) { d.state = DatabaseState::kCutover; });
  DatabaseCutover cutover(m, sessions, co, record, m.Names(i),
                          RollbackNamesFor(m.run.id, static_cast<int>(i)), Direction::kCutover);
  Status status = reached.ok() ? cutover.Run(out) : reached;
  SetEnd(status, co, out);
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

// Runs the rollback of the i-th recorded database into `out`, over the
// factory with the servers swapped. The database stays done either way; a
// rollback that fails before its switch moment leaves the way back in
// place (and the target read-only when it stopped its writes: the undo is
// in `out`), so that it can be run again.
void RollBack(const RecordedMigration& m, const SessionFactory& swapped, const CutoverOptions& co,
              size_t i, CutoverDatabase& out) {
  DatabaseRecord record(*m.store, m.databases[i]);
  const ReplicationNames back = RollbackNamesFor(m.run.id, static_cast<int>(i));
  DatabaseCutover rollback(m, swapped, co, record, back, back, Direction::kRollback);
  Status status = rollback.Run(out);
  SetEnd(status, co, out);
  if (out.switched && !status.ok()) {
    out.error = "NOT VERIFIED (rolled back to the old source): " + out.error;
    out.hint =
        "the old source is the primary again and may have taken writes: do not run rollback "
        "again; pgcourier cleanup removes what is left of the way back; pgcourier verify "
        "compares the two as they are now";
  }
  rollback.RecordPhases(out);
  record.Update([&](StoredDatabase& d) {
    if (out.switched) {
      d.error = out.state == CutoverState::kDone ? "" : out.error;
      d.hint = out.state == CutoverState::kDone
                   ? "rolled back: the source is the primary again (pgcourier rollback)"
                   : out.hint;
    }
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
  if (co.keep_rollback && !co.stop_source_writes) {
    return Status(StatusCode::kInvalidArgument,
                  "--keep-rollback needs --stop-source-writes: the old source follows the new "
                  "primary only while the applications cannot write to it",
                  "add --stop-source-writes");
  }
  Result<RecordedMigration> recorded = OpenRecorded(co.work_dir, co.source, co.target);
  if (!recorded.ok()) return recorded.status();
  RecordedMigration& m = *recorded;
  m.options.on_progress = co.on_progress;
  const SessionFactory sessions(m.source, m.target, co.connect_timeout, co.cancel,
                                m.options.lock_timeout);
  // Before anything, both sides of every database to cut over: a pooler in
  // transaction mode refuses the whole cutover (pg/pooler.h).
  std::vector<Status> reached(m.databases.size());
  for (size_t i = 0; i < m.databases.size(); ++i) {
    const StoredDatabase& stored = m.databases[i];
    if (!Replicating(stored.state)) continue;
    PGC_RETURN_IF_ERROR(sessions.RefusePooler("source", stored.name, &reached[i]));
    if (!reached[i].ok()) continue;  // the cutover of this database fails on it alone
    PGC_RETURN_IF_ERROR(sessions.RefusePooler("target", stored.target_name, &reached[i]));
  }
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
      CutOver(m, sessions, co, i, reached[i], out);
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

Result<CutoverOutcome> Rollback(const CutoverOptions& co) {
  Result<RecordedMigration> recorded = OpenRecorded(co.work_dir, co.source, co.target);
  if (!recorded.ok()) return recorded.status();
  RecordedMigration& m = *recorded;
  m.options.on_progress = co.on_progress;
  // The publisher is the target now: its sessions are the factory's
  // "source" ones (default_transaction_read_only off, as it is made
  // read-only), the old source's its "target" ones.
  const SessionFactory swapped(m.target, m.source, co.connect_timeout, co.cancel,
                               m.options.lock_timeout);
  CutoverOutcome outcome;
  bool any = false;
  for (size_t i = 0; i < m.databases.size(); ++i) {
    const StoredDatabase& stored = m.databases[i];
    CutoverDatabase out;
    out.name = stored.name;
    out.target_name = stored.target_name;
    Result<std::optional<StoredRollback>> back = m.store->Rollback(stored.name);
    if (!back.ok()) return back.status();
    if (!*back || (*back)->state != RollbackState::kFollowing) {
      out.state = CutoverState::kSkipped;
      out.hint = !*back ? "its cutover kept no way back (cutover --keep-rollback)"
                        : "its way back is " + std::string(Name((*back)->state)) +
                              "; only a way back the old source follows is rolled back";
    } else {
      any = true;
      RollBack(m, swapped, co, i, out);
    }
    outcome.databases.push_back(std::move(out));
  }
  if (!any) {
    return Status(
        StatusCode::kFailedPrecondition,
        "no database of the migration in " + co.work_dir + " has a way back the old source follows",
        "cutover --keep-rollback keeps one; see pgcourier status --dir " + co.work_dir);
  }
  return outcome;
}

}  // namespace pgcourier

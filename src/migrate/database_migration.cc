#include "migrate/database_migration.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <set>

#include "copy/database_objects.h"
#include "copy/extension_config.h"
#include "copy/progress_marks.h"
#include "migrate/append_only.h"
#include "migrate/data_phase.h"
#include "migrate/disk_full.h"
#include "migrate/lock_waits.h"
#include "migrate/standby_source.h"
#include "preflight/checker.h"
#include "preflight/wal_retention.h"
#include "replication/health.h"
#include "schema/database_properties.h"
#include "schema/present_objects.h"
#include "schema/script_restore.h"
#include "schema/target_claim.h"
#include "schema/target_database.h"
#include "util/size.h"

namespace pgcourier {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr const char* kTargetStartedSql = "SELECT pg_catalog.pg_postmaster_start_time()::text";

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

DatabaseMigration::DatabaseMigration(const RunContext& run, DatabaseRecord& record,
                                     DatabaseOutcome& outcome, ReplicationNames names)
    : run_(run),
      options_(*run.options),
      sessions_(*run.sessions),
      record_(record),
      outcome_(outcome),
      names_(std::move(names)),
      replication_(outcome.method == Method::kReplication) {}

void DatabaseMigration::Progress(const std::string& phase, const std::string& message, int64_t done,
                                 int64_t total) const {
  if (options_.on_progress) options_.on_progress({outcome_.name, phase, message, done, total});
}

void DatabaseMigration::Warn(const std::string& phase, const std::string& message) const {
  if (!options_.on_progress) return;
  ProgressEvent event{outcome_.name, phase, message, 0, 0};
  event.level = ProgressEvent::Level::kWarning;
  options_.on_progress(event);
}

// A step that gave up waiting for a lock (lock_timeout): who holds locks on
// the database's tables, on either side, and what to do.
Status DatabaseMigration::ExplainLockTimeout(const Status& status) const {
  std::string holders;
  std::vector<LockHolder> all;
  for (const bool source : {true, false}) {
    Result<std::unique_ptr<Connection>> conn =
        source ? sessions_.Source(outcome_.name)
               : sessions_.Target(outcome_.target_name, SessionFactory::TargetUse::kAdmin);
    if (!conn.ok()) continue;
    Result<std::vector<LockHolder>> found = LockHolders(**conn, "", "");
    if (!found.ok()) continue;
    const std::string named = DescribeLockHolders(*found);
    if (named.empty()) continue;
    holders += fmt::format("{}on the {}: {}", holders.empty() ? "" : "; ",
                           source ? "source" : "target", named);
    all.insert(all.end(), found->begin(), found->end());
  }
  if (holders.empty()) return status;
  return Status(StatusCode::kFailedPrecondition,
                fmt::format("{} (waited {} s for a lock; held {})", status.message(),
                            options_.lock_timeout.count() / 1000, holders),
                LockHint(all, options_.work_dir));
}

Status DatabaseMigration::Phase(const std::string& phase, const std::function<Status()>& body) {
  auto started = Clock::now();
  StoredStep step;
  step.kind = StepKind::kPhase;
  step.object = phase;
  step.state = StepState::kRunning;
  record_.Step(step);
  Status status = body();
  if (IsLockTimeout(status)) status = ExplainLockTimeout(status);
  status = ExplainStandbyFailure(status, run_.check->source.in_recovery, options_.work_dir);
  status = ExplainOutOfSpace(status, options_.work_dir);
  step.seconds = SecondsSince(started);
  outcome_.phases.push_back({phase, step.seconds});
  step.state = status.ok() ? StepState::kDone : StepState::kFailed;
  if (!status.ok()) step.error = status.ToString();
  record_.Step(step);
  if (!status.ok()) return status.WithContext(phase);
  return status;
}

// Whether the interrupted run got this database past its schema: the
// progress marks are made right after the pre-data restore (which is one
// transaction), so their schema on the target says so, whatever the store
// managed to record before the run was stopped.
Result<bool> DatabaseMigration::SchemaRestoredEarlier() {
  if (!fs::exists(archive_) || !fs::exists(list_)) return false;
  Result<std::unique_ptr<Connection>> target =
      sessions_.Target(outcome_.target_name, SessionFactory::TargetUse::kAdmin);
  if (!target.ok()) {
    // No such database (3D000): nothing restored.
    if (target.status().sqlstate() == "3D000" ||
        target.status().message().find("does not exist") != std::string::npos) {
      return false;
    }
    return target.status();
  }
  return ProgressMarksExist(**target);
}

// A database whose schema was not completely restored is begun again from
// nothing: its target database dropped when pgcourier made it (the pre-data
// restore is one transaction, so a database that existed before is as empty
// as it was).
Status DatabaseMigration::StartOver() {
  if (!record_.Get().created_target) return Status::Ok();
  Result<std::unique_ptr<Connection>> target = sessions_.TargetServer();
  if (!target.ok()) return target.status();
  PGC_RETURN_IF_ERROR(DropTargetDatabase(**target, outcome_.target_name));
  record_.Update([](StoredDatabase& d) { d.created_target = false; });
  dropped_incomplete_ = true;
  Progress("create", "dropped the incomplete target database " + outcome_.target_name +
                         " of the interrupted run");
  return Status::Ok();
}

Status DatabaseMigration::SetReplicaIdentityFull(Connection& holder, const TableToCopy& t) {
  Result<QueryResult> before = holder.ExecParams(
      "SELECT relreplident = 'n' FROM pg_catalog.pg_class WHERE oid = $1::regclass",
      {t.QualifiedName()});
  if (!before.ok()) return before.status();
  const bool nothing = before->rows() > 0 && before->GetBool(0, 0);
  PGC_RETURN_IF_ERROR(record_.Change(Side::kSource, "REPLICA IDENTITY FULL on " + t.Display(),
                                     "ALTER TABLE ONLY " + t.QualifiedName() +
                                         " REPLICA IDENTITY " + (nothing ? "NOTHING" : "DEFAULT")));
  Status full = holder.Run("ALTER TABLE ONLY " + t.QualifiedName() + " REPLICA IDENTITY FULL");
  if (!full.ok()) {
    return full.WithContext("setting REPLICA IDENTITY FULL on " + t.Display())
        .WithHint(
            "the source user must own the table; or leave out --replica-identity-full "
            "(the table is then copied again at cutover)");
  }
  Progress("snapshot", t.Display() + ": REPLICA IDENTITY FULL set on the source");
  return Status::Ok();
}

// The tables replication can carry, published before the slot is made; the
// bulk copy then reads at the slot's own snapshot, so every change after it
// arrives through the slot, none twice, none missed. `holder` becomes the
// snapshot's holder.
Result<std::string> DatabaseMigration::PublishAndCreateSlot(Connection& holder) {
  Result<CopyCatalog> now = ReadCopyCatalog(holder, options_.filter, Deadline::Never());
  if (!now.ok()) return now.status();
  std::vector<std::string> published;
  std::vector<std::string> append_only;
  std::vector<TableToCopy> counted;
  bool via_root = false;
  for (const auto& t : now->tables) {
    if (!t.replicable && !t.unlogged && options_.replica_identity_full) {
      if (t.through_root()) {
        // The identity that matters is each partition's.
        for (const auto& leaf : t.partitions) {
          if (leaf.replicable) continue;
          TableToCopy partition;
          partition.schema = leaf.schema;
          partition.name = leaf.name;
          PGC_RETURN_IF_ERROR(SetReplicaIdentityFull(holder, partition));
        }
      } else {
        PGC_RETURN_IF_ERROR(SetReplicaIdentityFull(holder, t));
      }
      published.push_back(t.QualifiedName());
    } else if (t.replicable) {
      published.push_back(t.QualifiedName());
    } else if (!t.unlogged) {
      // Inserts and truncates only (replication/replication.h).
      append_only.push_back(t.QualifiedName());
      counted.push_back(t);
    } else {
      continue;
    }
    via_root = via_root || t.through_root();
  }
  // From its creation the slot keeps the source's WAL until the target
  // applies it: the check's estimate of how much, said again here.
  const std::string wal_warning = WalRetentionWarning(*run_.check);
  if (!wal_warning.empty()) Warn("snapshot", wal_warning);
  // Read before the snapshot: every update or delete after it is counted
  // after this reading (migrate/append_only.h).
  std::vector<StoredWriteCounters> counters;
  if (WriteCountersUsable(holder)) {
    Result<std::vector<StoredWriteCounters>> read =
        ReadWriteCounters(holder, outcome_.name, counted);
    if (!read.ok()) return read.status();
    counters = std::move(*read);
  }
  PGC_RETURN_IF_ERROR(record_.store().PutWriteCounters(outcome_.name, counters));
  // The slot waits for the transactions open on the source: said in the
  // progress and in status (the database's hint) while it lasts, and
  // bounded by --lock-timeout.
  SlotWait wait;
  wait.limit = options_.lock_timeout;
  wait.then = "pgcourier migrate --resume --dir " + options_.work_dir;
  wait.on_wait = [this](const std::vector<OpenTransaction>& open, std::chrono::seconds waited) {
    const std::string line = DescribeSlotWait(open, waited);
    Warn("snapshot", line);
    record_.Update([&](StoredDatabase& db) {
      db.hint = line + "; end " + (open.size() == 1 ? "it (" : "them (") +
                EndTransactionsHint(open) + ") or wait";
    });
  };
  Result<std::string> id = StartReplication(
      sessions_.source().WithDatabase(outcome_.name), holder, names_, published, append_only,
      sessions_.BareOptions("source"), record_.ChangeRecorder(Side::kSource), wait, via_root);
  if (!record_.Get().hint.empty()) {
    record_.Update([](StoredDatabase& db) { db.hint.clear(); });
  }
  if (!id.ok()) return id.status();
  Progress("snapshot", fmt::format("publication {} of {} table(s){} and slot {} created{}",
                                   names_.publication, published.size(),
                                   append_only.empty()
                                       ? ""
                                       : fmt::format(", {} of {} table(s) without replica "
                                                     "identity (inserts and truncates only)",
                                                     names_.append_publication, append_only.size()),
                                   names_.slot,
                                   via_root ? " (partition trees loaded through their root are "
                                              "published through it: publish_via_partition_root)"
                                            : ""));
  return id;
}

Status DatabaseMigration::TakeSnapshot() {
  {
    Result<std::unique_ptr<Connection>> target = sessions_.TargetServer();
    if (!target.ok()) return target.status();
    Result<std::string> cron = ReadCronDatabase(**target);
    if (!cron.ok()) return cron.status();
    left_out_extensions_ = LeftOutExtensions(outcome_.target_name, *cron);
  }
  if (trial_dump_) {
    std::optional<KeptSchemaDump> kept = std::move(trial_dump_);
    trial_dump_.reset();
    if (!replication_ && !resumed_schema_) {
      // The check's trial dumped the schema at a snapshot it exported for
      // the copy: that snapshot, and that archive for pre-data.
      snapshot_ = ExportedSnapshot::Adopt(std::move(kept->holder.conn), kept->holder.id);
      trial_archive_ = kept->archive;
      return ReadCatalogAtSnapshot();
    }
    std::error_code ignored;
    fs::remove(kept->archive, ignored);
  }
  Result<std::unique_ptr<Connection>> holder = sessions_.Source(outcome_.name);
  if (!holder.ok()) return holder.status();
  if (replication_) {
    Result<std::string> id = PublishAndCreateSlot(**holder);
    if (!id.ok()) return id.status();
    snapshot_ = ExportedSnapshot::Adopt(std::move(*holder), *id);
  } else {
    Result<std::unique_ptr<ExportedSnapshot>> exported =
        ExportedSnapshot::Export(std::move(*holder), Deadline::Never());
    if (!exported.ok()) return exported.status();
    snapshot_ = std::move(*exported);
  }
  return ReadCatalogAtSnapshot();
}

// The object filter resolved and the tables, indexes, sequences and the rest
// read at the snapshot.
Status DatabaseMigration::ReadCatalogAtSnapshot() {
  Result<ResolvedObjectFilter> filtered =
      ResolveObjectFilter(snapshot_->conn(), options_.filter, Deadline::Never());
  if (!filtered.ok()) return filtered.status();
  filtered_ = std::move(*filtered);
  Result<CopyCatalog> catalog =
      ReadCopyCatalog(snapshot_->conn(), options_.filter, Deadline::Never());
  if (!catalog.ok()) return catalog.status();
  catalog_ = std::move(*catalog);
  if (options_.copy_as_text) CopyAllAsText(catalog_, "--copy-format text");
  Result<std::vector<ExtensionConfigTable>> config =
      ReadExtensionConfig(snapshot_->conn(), options_.filter, left_out_extensions_);
  if (!config.ok()) return config.status();
  extension_config_ = std::move(*config);
  Result<QueryResult> publications =
      snapshot_->conn().Exec("SELECT pubname FROM pg_catalog.pg_publication");
  if (!publications.ok()) return publications.status();
  own_publications_.clear();
  for (int r = 0; r < publications->rows(); ++r) {
    if (IsRunObjectName(publications->GetString(r, 0))) {
      own_publications_.push_back(publications->GetString(r, 0));
    }
  }
  size_t indexes = 0;
  for (const auto& t : catalog_.tables) indexes += t.indexes.size();
  record_.Update([&](StoredDatabase& db) {
    db.snapshot = snapshot_->id();
    db.tables_total = static_cast<int64_t>(catalog_.tables.size());
    db.indexes_total = static_cast<int64_t>(indexes);
    db.bytes_total = catalog_.total_bytes;
  });
  // The totals of the status page's per-table bars.
  std::vector<StoredTableSize> sizes;
  sizes.reserve(catalog_.tables.size());
  for (const auto& t : catalog_.tables) sizes.push_back({t.Display(), t.estimated_rows, t.bytes});
  // Only what status shows: a store that cannot take them fails nothing.
  Status put = record_.store().PutTableSizes(outcome_.name, sizes);
  if (!put.ok()) spdlog::warn("recording the table sizes of {}: {}", outcome_.name, put.ToString());
  std::string left_out;
  if (!options_.filter.empty()) {
    left_out =
        fmt::format(" (filters leave out {} schema(s), {} table(s), and the rows of {} table(s))",
                    filtered_.excluded_schemas.size(), filtered_.excluded_tables.size(),
                    filtered_.data_excluded_tables.size());
  }
  Progress("snapshot",
           fmt::format("snapshot {}: {} table(s), {}{}", snapshot_->id(), catalog_.tables.size(),
                       FormatBytes(catalog_.total_bytes), left_out));
  for (const auto& t : catalog_.tables) {
    if (t.through_root()) Progress("snapshot", t.Display() + ": " + LoadedThroughRootNote(t));
  }
  return Status::Ok();
}

Status DatabaseMigration::CreateTarget() {
  bool exists = false;
  for (const auto& plan : run_.check->databases) {
    if (plan.name == outcome_.name) exists = plan.exists_on_target;
  }
  Result<std::unique_ptr<Connection>> target = sessions_.TargetServer();
  if (!target.ok()) return target.status();
  if (exists && !record_.Get().created_target) {
    // Recheck: a resumed run may just have dropped it.
    Result<bool> found = TargetDatabaseExists(**target, outcome_.target_name);
    if (!found.ok()) return found.status();
    if (*found) {
      Progress("create", "target database " + outcome_.target_name + " exists and is empty");
      return Status::Ok();
    }
  }
  Result<std::unique_ptr<Connection>> source = sessions_.SourceServer();
  if (!source.ok()) {
    source = sessions_.Source(outcome_.name);
    if (!source.ok()) return source.status();
  }
  const TargetDatabaseSpec spec{outcome_.name, outcome_.target_name};
  // Recorded first: a run killed right after the CREATE still knows the
  // database is its own (dropping one that does not exist is harmless).
  auto mine = [this] {
    record_.Update([](StoredDatabase& d) { d.created_target = true; });
    return Status::Ok();
  };
  Status created = CreateTargetDatabase(**source, **target, spec, mine);
  if (!created.ok() && dropped_incomplete_ &&
      (created.sqlstate() == "23505" || created.sqlstate() == "42P04")) {
    // The killed run's CREATE DATABASE was still running on the server when
    // its database was dropped, and committed since: it is that run's, and
    // as incomplete.
    if (DropTargetDatabase(**target, outcome_.target_name).ok()) {
      created = CreateTargetDatabase(**source, **target, spec, mine);
    }
  }
  if (!created.ok()) {
    record_.Update([](StoredDatabase& d) { d.created_target = false; });
    return created;
  }
  Progress("create", "created target database " + outcome_.target_name);
  return Status::Ok();
}

// What the restore leaves out: provider-only extensions, pgcourier's own
// publications, and the indexes and constraints that the data phase builds
// itself.
RestoreListFilter DatabaseMigration::RestoreFilter() const {
  RestoreListFilter filter;
  filter.extensions = left_out_extensions_;
  filter.publications = own_publications_;
  for (const auto& table : catalog_.tables) {
    for (const auto& index : table.indexes) {
      filter.index_oids.insert(index.index_oid);
      if (index.constraint_oid != 0) filter.constraint_oids.insert(index.constraint_oid);
    }
  }
  return filter;
}

Status DatabaseMigration::RestorePreData() {
  // pg_dump writes in its session's client_encoding, which a database or
  // role default could set to one that cannot hold every name: the
  // database's own, as every session of pgcourier (pg/connection.h).
  const ConnInfo source_db = sessions_.source()
                                 .WithDatabase(outcome_.name)
                                 .With("client_encoding", snapshot_->conn().server_encoding());
  const ConnInfo target_db = sessions_.target().WithDatabase(outcome_.target_name);
  Status dumped = Status::Ok();
  if (!trial_archive_.empty()) {
    // Dumped by the check's trial, at this snapshot and with this filter
    // (resolved at the same snapshot): pg_dump runs once.
    std::error_code ec;
    fs::rename(trial_archive_, archive_, ec);
    if (ec) {
      dumped = DumpSchema(tools_, source_db, snapshot_->id(), filtered_, archive_);
    } else {
      trial_archive_.clear();
      Progress("pre-data",
               "schema dumped once, at the copy's snapshot, for the check's trial and "
               "this restore");
    }
  } else {
    dumped = DumpSchema(tools_, source_db, snapshot_->id(), filtered_, archive_);
  }
  if (!dumped.ok() && dumped.message().find("max_locks_per_transaction") != std::string::npos) {
    return ExplainLockTableFull(dumped, true, catalog_, options_.work_dir);
  }
  if (!dumped.ok() && dumped.message().find("LOCK TABLE") != std::string::npos) {
    // pg_dump gave up waiting for a table's lock (--lock-wait-timeout).
    return ExplainLockTimeout(Status(dumped.code(), dumped.message(), dumped.hint(), "55P03"));
  }
  PGC_RETURN_IF_ERROR(dumped);
  Result<std::string> listed = ListArchive(tools_, archive_);
  if (!listed.ok()) return listed.status();
  Result<int> kept = WriteRestoreList(*listed, RestoreFilter(), list_);
  if (!kept.ok()) return kept.status();
  {
    // A session of its own, closed after: the script sets what pg_restore
    // sets on its session.
    Result<std::unique_ptr<Connection>> restorer =
        sessions_.Target(outcome_.target_name, SessionFactory::TargetUse::kAdmin);
    if (!restorer.ok()) return restorer.status();
    PGC_RETURN_IF_ERROR(ExplainLockTableFull(
        RestorePreDataThrough(tools_, **restorer, target_db, archive_, list_, options_.policy),
        false, catalog_, options_.work_dir));
  }
  Result<std::unique_ptr<Connection>> target = sessions_.Target(outcome_.target_name);
  if (!target.ok()) return target.status();
  // The marks' schema says that the schema is restored (SchemaRestoredEarlier):
  // committed asynchronously, a target crash could take it and leave the
  // restored schema, and a resumed run would restore it again.
  PGC_RETURN_IF_ERROR((*target)->Run("SET synchronous_commit = on"));
  PGC_RETURN_IF_ERROR(CreateProgressMarks(**target));
  Progress("pre-data", "schema restored (pre-data)");
  return Status::Ok();
}

// The rows of the extensions' configuration tables, once the restore made
// the extensions (and their own rows), before any user table, foreign key
// or trigger could refer to them; once: a resumed run keeps a committed copy.
Status DatabaseMigration::CopyExtensionData() {
  if (extension_config_.empty()) return Status::Ok();
  Result<std::unique_ptr<Connection>> target = sessions_.Target(outcome_.target_name);
  if (!target.ok()) return target.status();
  ProgressMark mark;
  Result<bool> done = HasProgressMark(**target, kExtensionConfigStep, &mark);
  if (!done.ok()) return done.status();
  if (*done) {
    // Rows of the earlier snapshot, as a table kept from the interrupted run.
    outcome_.consistent = false;
    record_.Update([](StoredDatabase& db) { db.consistent = false; });
    Progress("extension config",
             "configuration rows of the extensions copied by the "
             "interrupted run");
    return Status::Ok();
  }
  Result<ExtensionConfigCopied> copied = pgcourier::CopyExtensionConfig(
      snapshot_->conn(), **target, extension_config_, std::string(kExtensionConfigStep));
  if (!copied.ok()) return copied.status();
  Progress("extension config",
           fmt::format("{} row(s) of {} extension configuration table(s) copied, {} "
                       "configuration sequence(s) set",
                       copied->rows, copied->tables, copied->sequences));
  return Status::Ok();
}

Status DatabaseMigration::CopyData() {
  Result<std::vector<TablePlan>> plans =
      PlanTables(snapshot_->conn(), catalog_, options_.split_bytes, options_.check.jobs);
  if (!plans.ok()) return plans.status();
  plans_ = std::move(*plans);
  {
    Result<std::unique_ptr<Connection>> target = sessions_.Target(outcome_.target_name);
    if (!target.ok()) return target.status();
    Result<QueryResult> started = (*target)->Exec(kTargetStartedSql);
    if (!started.ok()) return started.status();
    target_started_ = started->GetString(0, 0);
    Result<ResumePlan> resume = ReconcileWithMarks(**target, catalog_, plans_);
    if (!resume.ok()) return resume.status();
    resume_ = std::move(*resume);
  }
  for (const auto& table : resume_.recopied) {
    Progress("data", table + ": partly copied by the interrupted run; copied again");
  }
  if (resume_.any_earlier) {
    outcome_.consistent = false;
    record_.Update([](StoredDatabase& db) { db.consistent = false; });
  }
  DataPhaseSetup setup;
  setup.options = &options_;
  setup.sessions = &sessions_;
  setup.session_pool = run_.session_pool;
  setup.pool = run_.pool;
  setup.record = &record_;
  setup.source_database = outcome_.name;
  setup.target_database = outcome_.target_name;
  setup.snapshot = snapshot_->id();
  setup.catalog = &catalog_;
  setup.plans = &plans_;
  setup.progress = [this](ProgressEvent event) {
    event.database = outcome_.name;
    if (options_.on_progress) options_.on_progress(event);
  };
  setup.post_data = [this] { return Phase("post-data", [this] { return PostData(); }); };
  Result<DataPhaseResult> result = RunDataPhase(setup);
  if (!result.ok()) return result.status();
  outcome_.tables = std::move(result->tables);
  compared_ = std::move(result->compared);
  return Status::Ok();
}

Status DatabaseMigration::PostData() {
  PGC_RETURN_IF_ERROR(CopyLargeObjects());
  // A resumed run restores only what the interrupted one did not.
  if (resumed_schema_) {
    Result<std::string> listed = ListArchive(tools_, archive_);
    if (!listed.ok()) return listed.status();
    Result<std::unique_ptr<Connection>> target = sessions_.Target(outcome_.target_name);
    if (!target.ok()) return target.status();
    Result<std::set<std::pair<uint32_t, uint32_t>>> present =
        FindPresentObjects(snapshot_->conn(), **target, ParseArchiveList(*listed));
    if (!present.ok()) return present.status();
    if (!present->empty()) {
      RestoreListFilter filter = RestoreFilter();
      filter.present = std::move(*present);
      Result<int> kept = WriteRestoreList(*listed, filter, list_);
      if (!kept.ok()) return kept.status();
    }
  }
  PGC_RETURN_IF_ERROR(RestoreSection(tools_, sessions_.target().WithDatabase(outcome_.target_name),
                                     archive_, list_, "post-data", options_.check.jobs,
                                     options_.policy));
  Progress("post-data", "indexes, constraints, triggers and the rest restored (post-data)");
  return Status::Ok();
}

Status DatabaseMigration::CopyLargeObjects() {
  if (catalog_.large_objects.empty()) return Status::Ok();
  if (resume_.marks.count(kLargeObjectsStep) != 0) return Status::Ok();
  Result<std::unique_ptr<Connection>> target = sessions_.Target(outcome_.target_name);
  if (!target.ok()) return target.status();
  // Read at the snapshot through its holder, written in one transaction.
  Result<LargeObjectsCopied> copied =
      pgcourier::CopyLargeObjects(snapshot_->conn(), **target, catalog_.large_objects,
                                  {options_.policy.preserve_owners, options_.policy.preserve_acl});
  if (!copied.ok()) return copied.status();
  outcome_.large_objects = copied->count;
  for (const auto& line : copied->notes) Progress("data", line);
  Progress("data", fmt::format("{} large object(s) copied", copied->count));
  return Status::Ok();
}

Status DatabaseMigration::SetSequences() {
  if (catalog_.sequences.empty()) return Status::Ok();
  Result<std::unique_ptr<Connection>> target = sessions_.Target(outcome_.target_name);
  if (!target.ok()) return target.status();
  Result<int64_t> set = pgcourier::SetSequences(snapshot_->conn(), **target, catalog_.sequences);
  if (!set.ok()) return set.status();
  outcome_.sequences = *set;
  Progress("sequences", fmt::format("{} sequence(s) set to the source's values", *set));
  return Status::Ok();
}

Status DatabaseMigration::RefreshMaterializedViews() {
  if (std::none_of(catalog_.materialized_views.begin(), catalog_.materialized_views.end(),
                   [](const MaterializedView& mv) { return mv.populated; })) {
    return Status::Ok();
  }
  Result<std::unique_ptr<Connection>> target = sessions_.Target(outcome_.target_name);
  if (!target.ok()) return target.status();
  Result<int64_t> refreshed =
      pgcourier::RefreshMaterializedViews(**target, catalog_.materialized_views);
  if (!refreshed.ok()) return refreshed.status();
  outcome_.materialized_views = *refreshed;
  Progress("post-data", fmt::format("{} materialized view(s) populated", *refreshed));
  return Status::Ok();
}

// Every copied table was analyzed after its comparison; what is left are the
// partitioned tables and the materialized views.
Status DatabaseMigration::AnalyzeRest() {
  Result<std::unique_ptr<Connection>> target = sessions_.Target(outcome_.target_name);
  if (!target.ok()) return target.status();
  return AnalyzeRemaining(**target);
}

// Settings, role settings, comment, connection limit and grants of the
// database, read at the snapshot; after the data, so that none of them
// stands in the way of the move's own sessions.
Status DatabaseMigration::ApplyProperties() {
  Result<std::unique_ptr<Connection>> target = sessions_.TargetServer();
  if (!target.ok()) return target.status();
  const DatabasePropertiesSpec spec{outcome_.name, outcome_.target_name,
                                    options_.policy.preserve_acl};
  auto note = [this](const std::string& line) { Progress("database properties", line); };
  return ApplyDatabaseProperties(snapshot_->conn(), **target, spec, note);
}

Result<VerifyOptions> MovedDatabaseVerifyOptions(const MigrateOptions& options,
                                                 const SessionFactory& sessions,
                                                 const std::string& target_database) {
  VerifyOptions verify;
  verify.jobs = options.check.jobs;
  verify.filter = options.filter;
  // pgcourier's own schema on the target, dropped once the run is verified.
  verify.filter.exclude_schemas.emplace_back(kProgressSchema);
  verify.connect_timeout = sessions.connect_timeout();
  verify.cancel = sessions.cancel();
  verify.lock_timeout = sessions.lock_timeout();
  verify.after_lock_wait = "pgcourier migrate --resume --dir " + options.work_dir;
  {
    Result<std::unique_ptr<Connection>> target =
        sessions.Target(target_database, SessionFactory::TargetUse::kAdmin);
    if (!target.ok()) return target.status();
    Result<std::string> cron = ReadCronDatabase(**target);
    if (!cron.ok()) return cron.status();
    verify.left_out_extensions = LeftOutExtensions(target_database, *cron);
  }
  verify.owners = options.policy.preserve_owners;
  verify.grants = options.policy.preserve_acl;
  return verify;
}

Status DifferencesStatus(const DatabaseVerification& verified, bool consistent) {
  const int mismatches = verified.Mismatches();
  if (mismatches == 0) return Status::Ok();
  std::string hint = "see the verification report; the target database is incomplete";
  if (!consistent) {
    hint =
        "the data was copied at more than one snapshot (the run was resumed): a source that "
        "took writes in between differs from it; stop writes and run pgcourier verify, or "
        "move the database again";
  }
  return Status(StatusCode::kFailedPrecondition,
                fmt::format("the target differs from the source in {} place(s)", mismatches), hint);
}

Result<DatabaseVerification> VerifyMovedDatabase(const MigrateOptions& options,
                                                 const SessionFactory& sessions,
                                                 const std::string& source_database,
                                                 const std::string& target_database,
                                                 const std::string& snapshot,
                                                 std::vector<TableVerification> compared,
                                                 bool sequences, bool consistent) {
  Result<VerifyOptions> verify = MovedDatabaseVerifyOptions(options, sessions, target_database);
  if (!verify.ok()) return verify.status();
  verify->source_snapshot = snapshot;
  verify->compared_tables = std::move(compared);
  verify->sequences = sequences;
  Result<DatabaseVerification> verified =
      VerifyDatabase(sessions.source().WithDatabase(source_database),
                     sessions.target().WithDatabase(target_database), *verify);
  if (!verified.ok()) return verified.status();
  PGC_RETURN_IF_ERROR(DifferencesStatus(*verified, consistent));
  return verified;
}

Result<bool> DatabaseMigration::TargetRestarted(Connection& target) {
  Result<QueryResult> started = target.Exec(kTargetStartedSql);
  if (!started.ok()) return started.status();
  const bool restarted = started->GetString(0, 0) != target_started_;
  target_started_ = started->GetString(0, 0);
  return restarted;
}

Status DatabaseMigration::Verify() {
  // Rows compared right after their copy were committed asynchronously: a
  // target that restarted since may have lost the last of them, so every
  // table is compared again.
  Result<std::unique_ptr<Connection>> target =
      sessions_.Target(outcome_.target_name, SessionFactory::TargetUse::kAdmin);
  if (!target.ok()) return target.status();
  Result<bool> restarted = TargetRestarted(**target);
  if (!restarted.ok()) return restarted.status();
  if (*restarted) {
    compared_.clear();
    Progress("verify",
             "the target server restarted during the move: every table is compared again");
  }
  // A source that replication keeps following moves its sequences on: they
  // are synced, and compared, at cutover.
  Result<DatabaseVerification> verified =
      VerifyMovedDatabase(options_, sessions_, outcome_.name, outcome_.target_name, snapshot_->id(),
                          compared_, !replication_, outcome_.consistent);
  if (verified.ok()) {
    outcome_.verification = std::move(*verified);
    Progress("verify", fmt::format("{} table(s), {} sequence(s) and the schema match the source",
                                   outcome_.verification->tables.size(),
                                   outcome_.verification->sequences.size()));
  }
  return verified.status();
}

Status DatabaseMigration::FinishDurably() {
  Result<std::unique_ptr<Connection>> target = sessions_.Target(outcome_.target_name);
  if (!target.ok()) return target.status();
  // Committed with synchronous_commit on: its WAL flush covers every earlier
  // asynchronous commit of the bulk load, so "done" is durable. A restart
  // after the verification could have lost commits it saw; one after this
  // check ends this session, and the commit with it.
  PGC_RETURN_IF_ERROR((*target)->Run("SET synchronous_commit = on"));
  Result<bool> restarted = TargetRestarted(**target);
  if (!restarted.ok()) return restarted.status();
  if (*restarted) {
    return Status(StatusCode::kFailedPrecondition,
                  "the target server restarted after the verification: rows committed "
                  "asynchronously just before may be lost",
                  "pgcourier migrate --resume --dir " + options_.work_dir +
                      " copies what is missing and compares every table again");
  }
  return DropProgressMarks(**target);
}

// The bulk copy is verified: the changes made since its snapshot stream in
// from now on.
Status DatabaseMigration::Subscribe() {
  Result<std::unique_ptr<Connection>> target = sessions_.Target(outcome_.target_name);
  if (!target.ok()) return target.status();
  Result<SubscriptionOptions> chosen =
      ChooseSubscriptionOptions(**target, snapshot_->conn(), names_);
  if (!chosen.ok()) return chosen.status();
  Result<SubscriptionOptions> used = CreateSubscription(
      **target, snapshot_->conn(), sessions_.source().WithDatabase(outcome_.name), names_,
      record_.ChangeRecorder(Side::kTarget), *chosen);
  if (!used.ok()) return used.status();
  // Recorded as a step, so that status shows what the subscription runs with.
  StoredStep step;
  step.database = outcome_.name;
  step.kind = StepKind::kPhase;
  step.object = kSubscriptionStep;
  step.part = used->Text();
  step.state = StepState::kDone;
  record_.Step(std::move(step));
  // Errors of its workers count from here (a new subscription's are zero;
  // recorded all the same, so that an earlier run's baseline goes).
  Result<std::optional<ErrorCounts>> errors = ReadErrorCounts(**target, names_.subscription);
  if (!errors.ok()) return errors.status();
  const ErrorCounts counts = errors->value_or(ErrorCounts{});
  PGC_RETURN_IF_ERROR(
      record_.store().PutErrorBaseline({outcome_.name, counts.apply, counts.sync, ""}));
  Progress("syncing", "subscription " + names_.subscription + " (" + used->Text() +
                          ") streams the source's changes; finish with pgcourier cutover");
  return Status::Ok();
}

// A resumed database: what of the interrupted run's work it keeps.
Status DatabaseMigration::PrepareResume() {
  if (!replication_) {
    Result<bool> restored = SchemaRestoredEarlier();
    if (!restored.ok()) return restored.status().WithContext("resuming");
    resumed_schema_ = *restored;
    // Without its schema, the database starts over.
    return resumed_schema_ ? Status::Ok() : StartOver();
  }
  // The slot's changes start at the interrupted run's snapshot, which is
  // gone: tables copied at a new one would get those changes twice. The
  // database starts over, with new replication objects.
  PGC_RETURN_IF_ERROR(RemoveReplication());
  if (!record_.Get().created_target) {
    Result<bool> restored = SchemaRestoredEarlier();
    if (!restored.ok()) return restored.status().WithContext("resuming");
    if (*restored) {
      return Status(StatusCode::kFailedPrecondition,
                    "the interrupted replication of " + outcome_.name +
                        " filled a target database that pgcourier did not create",
                    "drop and recreate " + outcome_.target_name +
                        " on the target (empty), then resume again");
    }
  }
  return StartOver();
}

Status DatabaseMigration::Run() {
  const std::string dir = options_.work_dir + "/" + outcome_.name;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status(StatusCode::kIoError, "cannot create " + dir + ": " + ec.message());
  archive_ = dir + "/schema.dump";
  list_ = dir + "/schema.list";
  tools_ = {run_.check->tools.pg_dump, run_.check->tools.pg_restore, options_.check.cancel,
            options_.lock_timeout};
  // The check's trial dump of this database, when it kept one: taken now,
  // so that its holder closes with this pipeline whatever happens; its
  // archive is removed unless pre-data moved it.
  if (run_.schema_dumps != nullptr) {
    trial_dump_ = run_.schema_dumps->Take(outcome_.name);
    if (trial_dump_) trial_archive_ = trial_dump_->archive;
  }
  struct TrialArchiveRemoved {
    const std::string& path;
    ~TrialArchiveRemoved() {
      std::error_code ignored;
      if (!path.empty()) fs::remove(path, ignored);
    }
  } trial_archive_removed{trial_archive_};
  record_.Update([](StoredDatabase& db) {
    db.state = DatabaseState::kSchema;
    db.error.clear();
    db.hint.clear();
  });
  // Before anything is written there: one migration per target database.
  Result<std::unique_ptr<Connection>> claim = sessions_.TargetServer();
  if (!claim.ok()) return claim.status();
  PGC_RETURN_IF_ERROR(TakeTargetClaim(**claim, outcome_.target_name));
  claim_ = std::move(*claim);
  if (options_.resume) PGC_RETURN_IF_ERROR(PrepareResume());

  // The snapshot comes first: the filter is resolved at it, and one that
  // selects nothing ends the run before the target is touched.
  PGC_RETURN_IF_ERROR(Phase("snapshot", [&] { return TakeSnapshot(); }));
  if (!resumed_schema_) {
    PGC_RETURN_IF_ERROR(Phase("create", [&] { return CreateTarget(); }));
    PGC_RETURN_IF_ERROR(Phase("pre-data", [&] { return RestorePreData(); }));
  } else {
    Progress("pre-data", "schema restored by the interrupted run; resuming its data");
  }
  record_.Update([](StoredDatabase& db) { db.state = DatabaseState::kCopying; });
  PGC_RETURN_IF_ERROR(Phase("extension config", [&] { return CopyExtensionData(); }));
  PGC_RETURN_IF_ERROR(Phase("data", [&] { return CopyData(); }));
  record_.Update([](StoredDatabase& db) { db.state = DatabaseState::kIndexing; });
  PGC_RETURN_IF_ERROR(Phase("sequences", [&] { return SetSequences(); }));
  PGC_RETURN_IF_ERROR(Phase("materialized views", [&] { return RefreshMaterializedViews(); }));
  PGC_RETURN_IF_ERROR(Phase("analyze", [&] { return AnalyzeRest(); }));
  PGC_RETURN_IF_ERROR(Phase("database properties", [&] { return ApplyProperties(); }));
  record_.Update([](StoredDatabase& db) { db.state = DatabaseState::kVerifying; });
  PGC_RETURN_IF_ERROR(Phase("verify", [&] { return Verify(); }));
  PGC_RETURN_IF_ERROR(Phase("finish", [&] { return FinishDurably(); }));
  if (!replication_) return Status::Ok();
  return Phase("subscribe", [&] { return Subscribe(); });
}

// Removes this database's replication objects, when any exist (a failed or
// interrupted setup).
Status DatabaseMigration::RemoveReplication() {
  Result<std::unique_ptr<Connection>> source = sessions_.Source(outcome_.name);
  if (!source.ok()) return source.status();
  Result<std::unique_ptr<Connection>> target =
      sessions_.Target(outcome_.target_name, SessionFactory::TargetUse::kAdmin);
  Connection* dst = target.ok() ? target->get() : nullptr;  // no database: no subscription
  Result<std::vector<std::string>> removed = DropReplication(source->get(), dst, names_);
  if (!removed.ok()) return removed.status().WithContext("removing replication objects");
  for (const auto& r : *removed) Progress("cleanup", "removed " + r);
  return Status::Ok();
}

}  // namespace pgcourier

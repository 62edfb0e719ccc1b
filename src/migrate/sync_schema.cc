#include "migrate/sync_schema.h"

#include <fmt/format.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "migrate/recorded_run.h"
#include "migrate/sessions.h"
#include "pg/quote.h"

namespace pgcourier {
namespace {

using Clock = std::chrono::steady_clock;

// Whether an apply worker of `subscription` runs now.
Result<bool> ApplyWorkerRuns(Connection& target, const std::string& subscription) {
  Result<QueryResult> worker = target.ExecParams(
      "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_subscription st JOIN "
      "pg_catalog.pg_subscription s ON s.oid = st.subid WHERE s.subname = $1 AND st.relid IS NULL "
      "AND st.pid IS NOT NULL)",
      {subscription});
  if (!worker.ok()) return worker.status();
  return worker->GetBool(0, 0);
}

// Waits until the subscription's workers stop failing: no new error over
// one retry interval of theirs (wal_retrieve_retry_interval) plus a second,
// with the apply worker running at its end; then records the counters as
// the new baseline. A worker still failing at `timeout` is an error.
Status Settle(Connection& target, StateStore& store, const std::string& database,
              const ReplicationNames& names, std::chrono::milliseconds timeout,
              const CancelToken* cancel) {
  Result<QueryResult> ms = target.Exec(
      "SELECT (extract(epoch FROM pg_catalog.current_setting('wal_retrieve_retry_interval')"
      "::interval) * 1000)::bigint");
  if (!ms.ok()) return ms.status();
  const std::chrono::milliseconds retry(ms->GetInt(0, 0, 5000));
  const auto window = retry + std::chrono::seconds(1);
  const auto deadline = Clock::now() + timeout;
  Result<std::optional<ErrorCounts>> before = ReadErrorCounts(target, names.subscription);
  if (!before.ok()) return before.status();
  for (;;) {
    if (!SleepFor(std::chrono::duration_cast<std::chrono::milliseconds>(window), cancel)) {
      return Status(StatusCode::kCancelled, "cancelled while waiting for the subscription");
    }
    Result<std::optional<ErrorCounts>> after = ReadErrorCounts(target, names.subscription);
    if (!after.ok()) return after.status();
    Result<bool> runs = ApplyWorkerRuns(target, names.subscription);
    if (!runs.ok()) return runs.status();
    const ErrorCounts a = before->value_or(ErrorCounts{});
    const ErrorCounts b = after->value_or(ErrorCounts{});
    if (*runs && a.apply == b.apply && a.sync == b.sync) {
      return store.PutErrorBaseline({database, b.apply, b.sync, ""});
    }
    if (Clock::now() >= deadline) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("the subscription {} on the target still fails ({} apply and {} "
                                "table synchronization error(s) in the last {} s{})",
                                names.subscription, b.apply - a.apply, b.sync - a.sync,
                                std::chrono::duration_cast<std::chrono::seconds>(window).count(),
                                *runs ? "" : ", no apply worker running"),
                    "the target server's log says why (lines of the logical replication "
                    "workers); fix it and run pgcourier sync-schema --apply again");
    }
    before = std::move(after);
  }
}

Status SyncDatabase(const RecordedMigration& m, const SessionFactory& sessions,
                    const SyncSchemaOptions& options, size_t i, SyncSchemaDatabase& out) {
  const ReplicationNames names = m.Names(i);
  Result<std::unique_ptr<Connection>> source = sessions.Source(out.name);
  if (!source.ok()) return source.status();
  Result<std::unique_ptr<Connection>> target =
      sessions.Target(out.target_name, SessionFactory::TargetUse::kAdmin);
  if (!target.ok()) return target.status();
  Result<std::vector<SchemaDrift>> drift =
      ReadSchemaDrift(**source, **target, names, m.options.filter);
  if (!drift.ok()) return drift.status();
  out.drift = *drift;
  std::string target_ddl;
  std::vector<std::string> source_ddl;
  for (const auto& d : out.drift) {
    if (!d.additive) {
      out.left.push_back(d);
      continue;
    }
    if (!d.target_ddl.empty()) target_ddl += d.target_ddl + "\n";
    if (!d.source_ddl.empty()) source_ddl.push_back(d.source_ddl);
  }
  if (!options.apply) return Status::Ok();
  // The target's part in one transaction: all of it or nothing.
  if (!target_ddl.empty()) {
    PGC_RETURN_IF_ERROR((*target)->Run(target_ddl).WithContext("changing the target's schema"));
    for (const auto& d : out.drift) {
      if (d.additive && !d.target_ddl.empty()) out.applied.push_back("target: " + d.target_ddl);
    }
  }
  // On the source only pgcourier's own publication changes.
  for (const auto& sql : source_ddl) {
    PGC_RETURN_IF_ERROR(
        (*source)->Run(sql).WithContext("adding a table to the publication " + names.publication));
    out.applied.push_back("source: " + sql);
  }
  if (!source_ddl.empty()) {
    const std::string refresh =
        "ALTER SUBSCRIPTION " + QuoteIdent(names.subscription) + " REFRESH PUBLICATION;";
    PGC_RETURN_IF_ERROR((*target)->Run(refresh).WithContext("refreshing the subscription"));
    out.applied.push_back("target: " + refresh);
  }
  PGC_RETURN_IF_ERROR(
      Settle(**target, *m.store, out.name, names, options.settle_timeout, options.cancel));
  out.healthy = true;
  return Status::Ok();
}

}  // namespace

bool SyncSchemaOutcome::ok() const {
  for (const auto& db : databases) {
    if (!db.error.empty() || !db.left.empty()) return false;
    if (!applied && !db.drift.empty()) return false;
  }
  return true;
}

Result<SyncSchemaOutcome> SyncSchema(const SyncSchemaOptions& options) {
  Result<RecordedMigration> recorded =
      OpenRecorded(options.work_dir, options.source, options.target);
  if (!recorded.ok()) return recorded.status();
  const RecordedMigration& m = *recorded;
  const SessionFactory sessions(m.source, m.target, options.connect_timeout, options.cancel,
                                m.options.lock_timeout);
  SyncSchemaOutcome outcome;
  outcome.applied = options.apply;
  for (size_t i = 0; i < m.databases.size(); ++i) {
    const StoredDatabase& stored = m.databases[i];
    if (stored.method != Method::kReplication || !Replicating(stored.state)) continue;
    SyncSchemaDatabase out;
    out.name = stored.name;
    out.target_name = stored.target_name;
    Status synced = SyncDatabase(m, sessions, options, i, out);
    if (!synced.ok()) {
      out.error = synced.ToString();
      out.hint = synced.hint();
    }
    outcome.databases.push_back(std::move(out));
  }
  if (outcome.databases.empty()) {
    return Status(StatusCode::kFailedPrecondition,
                  "no database of the migration in " + options.work_dir + " is replicating",
                  "see pgcourier status --dir " + options.work_dir);
  }
  return outcome;
}

}  // namespace pgcourier

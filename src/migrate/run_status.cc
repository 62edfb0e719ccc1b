#include "migrate/run_status.h"

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <thread>
#include <utility>

#include "migrate/cutover.h"
#include "migrate/database_migration.h"
#include "migrate/recorded_run.h"
#include "pg/connection.h"
#include "pg/conninfo.h"
#include "pg/pooler.h"
#include "util/size.h"

namespace pgcourier {

namespace {

// The subscription's options and the last cutover's phases, from the steps
// of one database.
void ReadReplicationSteps(const std::string& database, const std::vector<StoredStep>& steps,
                          StatusView& view) {
  for (const auto& step : steps) {
    if (step.kind != StepKind::kPhase) continue;
    if (step.object == kSubscriptionStep) view.subscription_options[database] = step.part;
    if (step.object.starts_with(kCutoverPhasePrefix)) {
      view.cutover_phases[database].push_back(step);
    }
  }
}

// Bytes per second the slot's confirmed position moved from `confirmed`
// over `interval`; -1 when it cannot be read.
double ApplyRate(Connection& source, const std::string& confirmed, const std::string& slot,
                 std::chrono::milliseconds interval) {
  const auto started = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(interval);
  Result<QueryResult> moved = source.ExecParams(
      "SELECT pg_catalog.pg_wal_lsn_diff(confirmed_flush_lsn, $1::pg_catalog.pg_lsn)::bigint "
      "FROM pg_catalog.pg_replication_slots WHERE slot_name = $2",
      {confirmed, slot});
  if (!moved.ok() || moved->rows() == 0 || moved->IsNull(0, 0)) return -1;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return static_cast<double>(moved->GetInt(0, 0)) / seconds;
}

}  // namespace

Result<StatusView> ReadStatus(const std::string& dir, bool with_steps) {
  StatusView view;
  // Whether a process holds the directory is asked first: a run that ends
  // between the two reads then shows as ended, never as interrupted.
  view.live = StateStore::RunIsLive(dir);
  Result<std::unique_ptr<StateStore>> store = StateStore::OpenReadOnly(dir);
  if (!store.ok()) return store.status();
  Result<std::optional<StoredRun>> run = (*store)->Run();
  if (!run.ok()) return run.status();
  view.run = std::move(*run);
  Result<std::vector<StoredDatabase>> databases = (*store)->Databases();
  if (!databases.ok()) return databases.status();
  view.databases = std::move(*databases);
  view.dir = dir;
  for (const auto& db : view.databases) {
    Result<StoredErrorBaseline> baseline = (*store)->ErrorBaseline(db.name);
    if (!baseline.ok()) return baseline.status();
    view.error_baselines[db.name] = {baseline->apply_errors, baseline->sync_errors};
    Result<std::vector<StoredStep>> steps = (*store)->Steps(db.name);
    if (!steps.ok()) return steps.status();
    ReadReplicationSteps(db.name, *steps, view);
    if (with_steps) {
      view.steps[db.name] = std::move(*steps);
      Result<std::vector<StoredTableSize>> sizes = (*store)->TableSizes(db.name);
      if (!sizes.ok()) return sizes.status();
      view.table_sizes[db.name] = std::move(*sizes);
    }
    Result<std::optional<StoredRollback>> back = (*store)->Rollback(db.name);
    if (!back.ok()) return back.status();
    if (*back) view.rollbacks[db.name] = **back;
  }
  return view;
}

namespace {

// One direction of replication to read: the publisher's and the
// subscriber's database and how they are called in messages.
struct ReplicationSides {
  ConnInfo publisher;
  ConnInfo subscriber;
  const char* publisher_label;
  const char* subscriber_label;
};

// Connects to both sides and reads the lag and, when both answer, the
// health.
void ReadOneReplication(const ReplicationSides& sides, const ReplicationNames& names,
                        const ObjectFilter& filter, const ErrorCounts& baseline,
                        const std::string& dir, std::chrono::milliseconds connect_timeout,
                        std::chrono::milliseconds rate_sample, ReplicationView& out) {
  // Each side probed for a pooler first (pg/pooler.h): the settings of
  // status's sessions would stay behind on a server session of a pooler in
  // transaction mode. A side the probe cannot reach is not tried again.
  ConnectOptions connect;
  connect.total_timeout = connect_timeout;
  Status src_reached;
  Status dst_reached;
  connect.role = sides.publisher_label;
  Status refused = RefuseTransactionPooler(sides.publisher, connect.role, connect, &src_reached);
  connect.role = sides.subscriber_label;
  if (refused.ok()) {
    refused = RefuseTransactionPooler(sides.subscriber, connect.role, connect, &dst_reached);
  }
  if (!refused.ok()) {
    out.error = refused.message();
    out.hint = refused.hint();
    return;
  }
  connect.role = sides.publisher_label;
  Result<std::unique_ptr<Connection>> src = src_reached.ok()
                                                ? Connection::Connect(sides.publisher, connect)
                                                : Result<std::unique_ptr<Connection>>(src_reached);
  connect.role = sides.subscriber_label;
  Result<std::unique_ptr<Connection>> dst = dst_reached.ok()
                                                ? Connection::Connect(sides.subscriber, connect)
                                                : Result<std::unique_ptr<Connection>>(dst_reached);
  if (!src.ok()) out.error = std::string(sides.publisher_label) + ": " + src.status().message();
  if (!dst.ok()) {
    out.error += (out.error.empty() ? "" : "; ") +
                 (std::string(sides.subscriber_label) + ": " + dst.status().message());
  }
  Result<ReplicationLag> lag =
      ReadLag(src.ok() ? src->get() : nullptr, dst.ok() ? dst->get() : nullptr, names);
  if (!lag.ok()) {
    out.error += (out.error.empty() ? "" : "; ") + lag.status().message();
    return;
  }
  out.lag = *lag;
  if (src.ok() && dst.ok() && lag->slot_exists && lag->subscription_exists) {
    Result<ReplicationHealth> health = ReadHealth(**src, **dst, names, filter, baseline, dir);
    if (!health.ok()) {
      out.error = health.status().message();
      return;
    }
    out.health = std::move(*health);
    out.broken = out.health->broken();
    out.error = out.health->Error();
    out.hint = out.health->Hint();
    for (const auto& w : out.health->warnings) {
      out.warning += (out.warning.empty() ? "" : "; ") + w;
    }
  }
  out.in_sync = out.error.empty() && !out.broken && lag->slot_exists && lag->subscription_exists &&
                lag->AllReady() && lag->lag_bytes >= 0 && lag->lag_bytes <= kInSyncLagBytes;
  if (lag->retained_bytes > kRetainedWalWarningBytes) {
    out.warning += std::string(out.warning.empty() ? "" : "; ") +
                   fmt::format(
                       "the slot keeps {} of WAL on the {}; finish with pgcourier {}, or remove "
                       "it with pgcourier cleanup before the {}'s disk fills",
                       FormatBytes(lag->retained_bytes), sides.publisher_label,
                       std::string(sides.publisher_label) == "source" ? "cutover" : "rollback",
                       sides.publisher_label);
  }
  if (src.ok() && lag->slot_exists && rate_sample.count() > 0) {
    out.apply_bytes_per_second = ApplyRate(**src, lag->confirmed_lsn, names.slot, rate_sample);
  }
  if (src.ok() && !lag->slot_exists) {
    out.error = std::string("the replication slot is missing on the ") + sides.publisher_label;
  }
  if (dst.ok() && !lag->subscription_exists) {
    out.error += (out.error.empty() ? "" : "; ") +
                 std::string("the subscription is missing on the ") + sides.subscriber_label;
  }
  if ((src.ok() && !lag->slot_exists) || (dst.ok() && !lag->subscription_exists)) {
    out.broken = true;
    out.hint = "run pgcourier cleanup --dir " + dir + ", then move the database again";
  }
}

}  // namespace

void ReadReplication(StatusView& view, std::chrono::milliseconds connect_timeout,
                     std::chrono::milliseconds rate_sample) {
  if (!view.run) return;
  Result<ConnInfo> source = ConnInfo::Parse(view.run->source);
  Result<ConnInfo> target = ConnInfo::Parse(view.run->target);
  MigrateOptions recorded;
  const Status options = OptionsFromJson(view.run->options_json, recorded);
  for (size_t i = 0; i < view.databases.size(); ++i) {
    const StoredDatabase& db = view.databases[i];
    const int index = static_cast<int>(i);
    auto back = view.rollbacks.find(db.name);
    const bool following =
        back != view.rollbacks.end() && back->second.state == RollbackState::kFollowing;
    const bool replicating = db.method == Method::kReplication && Replicating(db.state);
    if (!replicating && !following) continue;
    ReplicationView& out = following ? view.way_back[db.name] : view.replication[db.name];
    if (!source.ok() || !target.ok()) {
      out.error = "the recorded connection strings cannot be read";
      continue;
    }
    if (!options.ok()) {
      out.error = options.message();
      continue;
    }
    if (following) {
      // Its error counters count from zero: the subscription is new.
      ReadOneReplication(
          {target->WithDatabase(db.target_name), source->WithDatabase(db.name), "target", "source"},
          RollbackNamesFor(view.run->id, index), recorded.filter, {}, view.dir, connect_timeout,
          rate_sample, out);
      if (out.broken && out.lag.slot_exists && out.lag.subscription_exists) continue;
      if (out.broken) {
        out.hint = "the target stays the primary; pgcourier cleanup --dir " + view.dir +
                   " removes what is left of the way back";
      }
      continue;
    }
    ReadOneReplication(
        {source->WithDatabase(db.name), target->WithDatabase(db.target_name), "source", "target"},
        NamesFor(view.run->id, index), recorded.filter, view.error_baselines[db.name], view.dir,
        connect_timeout, rate_sample, out);
  }
}

bool AnyReplicationBroken(const StatusView& view) {
  auto broken = [](const auto& r) { return r.second.broken; };
  return std::any_of(view.replication.begin(), view.replication.end(), broken) ||
         std::any_of(view.way_back.begin(), view.way_back.end(), broken);
}

std::string OverallState(const StatusView& view) {
  if (!view.run) return "empty";
  const RunState state = view.run->state;
  if (state == RunState::kRunning) return view.live ? "running" : "interrupted";
  if (state == RunState::kDone) {
    bool any_failed =
        std::any_of(view.databases.begin(), view.databases.end(),
                    [](const StoredDatabase& db) { return db.state == DatabaseState::kFailed; });
    if (any_failed) return "failed";
  }
  return Name(state);
}

}  // namespace pgcourier

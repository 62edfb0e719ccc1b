// The checks of `pgcourier check` that only logical replication needs: the
// source's WAL settings and slots, both users' rights, the target's workers
// and origins, and what each database's tables allow.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>

#include "catalog/database_facts.h"
#include "catalog/open_transactions.h"
#include "catalog/server_facts.h"
#include "pg/pooler.h"
#include "preflight/checker_internal.h"
#include "util/size.h"

namespace pgcourier::checker_internal {

namespace {

// Open longer than this, a transaction is worth a warning: the slot will
// wait for it. PGCOURIER_LONG_TRANSACTION_SECONDS (> 0) overrides it.
std::chrono::seconds LongTransaction() {
  const char* text = std::getenv("PGCOURIER_LONG_TRANSACTION_SECONDS");
  if (text != nullptr) {
    char* end = nullptr;
    const long seconds = std::strtol(text, &end, 10);
    if (end != text && *end == '\0' && seconds > 0) return std::chrono::seconds(seconds);
  }
  return std::chrono::minutes(5);
}

bool HasExtension(const ServerFacts& f, const char* name) {
  return std::any_of(f.available_extensions.begin(), f.available_extensions.end(),
                     [&](const AvailableExtension& a) { return a.name == name; });
}

}  // namespace

void Checker::CheckReplication() {
  if (source_.pooled) {
    // A pooler passes no replication connection (PgBouncer: "unsupported
    // startup parameter: replication"); the slot could not be made.
    AddServerProblem(check_code::kSourcePooler, "source",
                     "the source is reached through a connection pooler, which passes no "
                     "replication connection",
                     DirectConnectionHint(source_.info));
  }
  CheckSourceWal();
  CheckReplicationRights();
  CheckSubscriptionCapacity();
  CheckReplicatedTables();
  CheckOpenTransactions();
}

int64_t Checker::SubscriptionsNeeded() const {
  return static_cast<int64_t>(report_.databases.size());
}

void Checker::AddServerProblem(const char* code, const std::string& object,
                               const std::string& detail, const std::string& hint) {
  Add(code, ReplicationProblem(), object, detail, hint);
  if (replication_server_problem_.empty()) replication_server_problem_ = detail;
}

void Checker::CheckSourceWal() {
  const ServerFacts& s = *source_.facts;
  const int64_t needed = SubscriptionsNeeded();
  if (s.in_recovery) {
    // PostgreSQL 16+ decodes on a standby, but the publication is written
    // in the catalog, which only the primary can.
    AddServerProblem(check_code::kReplicationStandby, "source",
                     "the source is a standby (in recovery): logical replication needs the "
                     "primary, where the publication (and, before PostgreSQL 16, the slot) is "
                     "made; a standby cannot write its catalog",
                     "connect to the primary, or use --method copy");
    return;
  }
  if (s.major < 10) {
    AddServerProblem(check_code::kWalLevel, "source",
                     "logical replication needs PostgreSQL 10 or newer on the source",
                     "use --method copy");
  }
  std::string wal_level = s.Setting("wal_level");
  if (wal_level == "logical") {
    Add(check_code::kWalLevel, CheckStatus::kPass, "source", "wal_level is logical");
  } else {
    AddServerProblem(check_code::kWalLevel, "source",
                     "wal_level is " + (wal_level.empty() ? std::string("unknown") : wal_level) +
                         ", not logical",
                     "set wal_level = logical and restart the source (ALTER SYSTEM SET wal_level = "
                     "logical; on RDS set rds.logical_replication = 1 in the parameter group; on "
                     "Cloud SQL the flag cloudsql.logical_decoding = on; on Azure the server "
                     "parameter wal_level), or use --method copy");
  }

  int64_t free_slots = s.SettingInt("max_replication_slots") - s.replication_slots_used;
  std::string slots = fmt::format(
      "{} free replication slot(s) (max_replication_slots {}, {} in "
      "use); {} needed, one per database",
      std::max<int64_t>(free_slots, 0), s.SettingInt("max_replication_slots"),
      s.replication_slots_used, needed);
  if (free_slots >= needed) {
    Add(check_code::kReplicationSlots, CheckStatus::kPass, "source", slots);
  } else {
    AddServerProblem(check_code::kReplicationSlots, "source", slots,
                     "raise max_replication_slots on the source (restart needed), or drop unused "
                     "slots listed in pg_replication_slots");
  }

  // The slots keep WAL from their start until the target confirms it: the
  // WAL the source writes during the bulk copy (unknowable; for a busy
  // source it can reach the size of the data) and while it syncs. Past
  // max_slot_wal_keep_size the source removes it and the slot is lost.
  // As current_setting() shows it: "-1" (unlimited), "0", "512MB", "1GB".
  const Result<int64_t> keep_size = ParseByteSize(s.Setting("max_slot_wal_keep_size"));
  const int64_t keep = keep_size.ok() ? *keep_size : -1;
  if (keep >= 0) {
    int64_t moved = 0;
    for (const auto& plan : report_.databases) moved += std::max<int64_t>(plan.size_bytes, 0);
    const std::string detail =
        fmt::format("max_slot_wal_keep_size is {}; the databases to move hold {}",
                    FormatBytes(keep), FormatBytes(moved));
    if (keep < moved) {
      Add(check_code::kSlotWalLimit, CheckStatus::kWarn, "source", detail,
          "a slot that falls behind by more than max_slot_wal_keep_size is lost and the "
          "database must be moved again; the rule here: warn when it is smaller than the data "
          "to move (a busy source can write that much WAL during the copy). Raise it (ALTER "
          "SYSTEM SET max_slot_wal_keep_size = '<size>'; SELECT pg_reload_conf();) or set -1");
    } else {
      Add(check_code::kSlotWalLimit, CheckStatus::kPass, "source", detail);
    }
  }
  CheckWalRetention(keep);

  int64_t free_senders = s.SettingInt("max_wal_senders") - s.wal_senders_used;
  std::string senders = fmt::format(
      "{} free WAL sender(s) (max_wal_senders {}, {} in use); {} "
      "needed",
      std::max<int64_t>(free_senders, 0), s.SettingInt("max_wal_senders"), s.wal_senders_used,
      needed);
  if (free_senders >= needed) {
    Add(check_code::kWalSenders, CheckStatus::kPass, "source", senders);
  } else {
    AddServerProblem(check_code::kWalSenders, "source", senders,
                     "raise max_wal_senders on the source (restart needed)");
  }
}

void Checker::CheckWalRetention(int64_t keep_size) {
  if (!wal_start_) return;  // not readable: the slot_wal_limit rule still stands
  Result<WalRate> rate =
      MeasureWalRate(*source_.conn, *wal_start_, kWalRateSample, options_.cancel, QueryDeadline());
  if (!rate.ok()) {
    if (rate.status().code() == StatusCode::kCancelled) return;
    Add(check_code::kWalRetention, CheckStatus::kWarn, "source",
        "the WAL the slot will retain during the copy could not be estimated: " +
            rate.status().message(),
        "watch the WAL each slot keeps during the copy: SELECT slot_name, "
        "pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)) FROM "
        "pg_replication_slots (pgcourier status shows it too)");
    return;
  }
  int64_t moved = 0;
  for (const auto& plan : report_.databases) moved += std::max<int64_t>(plan.size_bytes, 0);
  report_.items.push_back(WalRetentionItem(EstimateWalRetention(*rate, moved), keep_size));
}

void Checker::CheckReplicationRights() {
  const ServerFacts& s = *source_.facts;
  const ServerFacts& t = *target_.facts;
  // The slot is made over a replication connection, which aiven_extras
  // does not open for anyone: REPLICATION (or a provider's equivalent) it is.
  if (s.is_superuser || s.can_replicate || s.member_of.count("rds_replication") != 0) {
    std::string how = s.is_superuser    ? "is a superuser"
                      : s.can_replicate ? "has the REPLICATION attribute"
                                        : "is a member of rds_replication";
    Add(check_code::kSourceReplicationPrivilege, CheckStatus::kPass, "source",
        fmt::format("{} {}", s.current_user, how));
  } else {
    AddServerProblem(check_code::kSourceReplicationPrivilege, "source",
                     fmt::format("{} may not replicate (not a superuser, no REPLICATION attribute)",
                                 s.current_user),
                     fmt::format("ALTER ROLE {} REPLICATION (on RDS: GRANT rds_replication TO {}), "
                                 "or use --method copy",
                                 s.current_user, s.current_user));
  }

  bool target_aiven_extras = HasExtension(t, "aiven_extras");
  bool can_subscribe = t.is_superuser ||
                       (t.major >= 16 && t.member_of.count("pg_create_subscription") != 0) ||
                       target_aiven_extras;
  if (can_subscribe) {
    Add(check_code::kTargetSubscriptionPrivilege, CheckStatus::kPass, "target",
        fmt::format("{} may create subscriptions", t.current_user));
  } else {
    AddServerProblem(check_code::kTargetSubscriptionPrivilege, "target",
                     fmt::format("{} may not create subscriptions", t.current_user),
                     t.major >= 16 ? fmt::format("GRANT pg_create_subscription TO {} on the "
                                                 "target, or use --method copy",
                                                 t.current_user)
                                   : "connect to the target as a superuser (PostgreSQL 16+ also "
                                     "allows members of pg_create_subscription), or use --method "
                                     "copy");
  }
}

void Checker::CheckSubscriptionCapacity() {
  const ServerFacts& t = *target_.facts;
  const int64_t needed = SubscriptionsNeeded();
  int64_t workers = t.SettingInt("max_logical_replication_workers") - t.subscription_workers_used;
  std::string worker_detail = fmt::format(
      "{} free logical replication worker(s) on the target (max_logical_replication_workers {}, "
      "{} in use); {} needed",
      std::max<int64_t>(workers, 0), t.SettingInt("max_logical_replication_workers"),
      t.subscription_workers_used, needed);
  if (workers >= needed) {
    Add(check_code::kTargetWorkers, CheckStatus::kPass, "target", worker_detail);
  } else {
    AddServerProblem(check_code::kTargetWorkers, "target", worker_detail,
                     "raise max_logical_replication_workers (and max_worker_processes) on the "
                     "target (restart needed)");
  }

  // Each subscription needs a replication origin, limited on the target by
  // max_replication_slots before PostgreSQL 18.
  std::string origin_setting = t.settings.count("max_active_replication_origins") != 0
                                   ? "max_active_replication_origins"
                                   : "max_replication_slots";
  int64_t origins = t.SettingInt(origin_setting) - t.replication_origins_used;
  std::string origin_detail =
      fmt::format("{} free replication origin(s) on the target ({} {}, {} in use); {} needed",
                  std::max<int64_t>(origins, 0), origin_setting, t.SettingInt(origin_setting),
                  t.replication_origins_used, needed);
  if (origins >= needed) {
    Add(check_code::kTargetOrigins, CheckStatus::kPass, "target", origin_detail);
  } else {
    AddServerProblem(check_code::kTargetOrigins, "target", origin_detail,
                     fmt::format("raise {} on the target (restart needed)", origin_setting));
  }
}

void Checker::CheckReplicatedTables() {
  const ServerFacts& s = *source_.facts;
  const CheckStatus problem = ReplicationProblem();
  const bool source_aiven_extras = HasExtension(s, "aiven_extras");
  for (size_t i = 0; i < report_.databases.size() && i < source_dbs_.size(); ++i) {
    const DatabasePlan& plan = report_.databases[i];
    const DatabaseFacts& db = source_dbs_[i];
    if (db.name.empty()) continue;  // unreadable: already failed
    if (!s.is_superuser && !source_aiven_extras && !db.tables_not_owned.empty()) {
      std::string detail =
          fmt::format("{} may not publish {} table(s) it does not own: {}", s.current_user,
                      db.tables_not_owned.size(), JoinTables(db.tables_not_owned));
      Add(check_code::kPublishPrivilege, problem, plan.name, detail,
          "connect to the source as the tables' owner or a superuser, or use --method copy");
      replication_blocked_.emplace(plan.name, detail);
    }
    if (db.tables_without_identity.empty()) {
      Add(check_code::kReplicaIdentity, CheckStatus::kPass, plan.name,
          "every table has a primary key or replica identity");
    } else {
      Add(check_code::kReplicaIdentity, CheckStatus::kWarn, plan.name,
          fmt::format("{} table(s) have no primary key or replica identity: {}; publishing them "
                      "would make UPDATE and DELETE fail on the source, so they are not "
                      "published and are copied again at cutover",
                      db.tables_without_identity.size(), JoinTables(db.tables_without_identity)),
          "add a primary key to them, or accept the copy at cutover (REPLICA IDENTITY FULL only "
          "if you ask for it)");
    }
    if (db.large_objects > 0) {
      Add(check_code::kLargeObjects, CheckStatus::kWarn, plan.name,
          fmt::format("{} large object(s): logical replication does not carry them; they are "
                      "copied again at cutover",
                      db.large_objects));
    }
    if (!db.unlogged_tables.empty()) {
      Add(check_code::kUnloggedTables, CheckStatus::kWarn, plan.name,
          fmt::format("{} unlogged table(s) are not replicated and are copied again at "
                      "cutover: {}",
                      db.unlogged_tables.size(), JoinTables(db.unlogged_tables)));
    }
  }
}

// The slot is made only once every transaction that holds a transaction id
// has ended: one open for long now would hold the migration at its start.
void Checker::CheckOpenTransactions() {
  if (!replication_server_problem_.empty()) return;  // no slot will be made
  const std::chrono::seconds long_open = LongTransaction();
  Result<std::vector<OpenTransaction>> open =
      ReadOpenTransactions(*source_.conn, long_open, 5, QueryDeadline());
  if (!open.ok()) {
    if (open.status().code() == StatusCode::kCancelled) return;
    Add(check_code::kOpenTransactions, CheckStatus::kWarn, "source", open.status().message(),
        "the replication slot waits for every transaction open on the source to end");
    return;
  }
  if (open->empty()) {
    Add(check_code::kOpenTransactions, CheckStatus::kPass, "source",
        fmt::format("no transaction has been open on the source for more than {}",
                    FormatOpenTime(long_open.count())));
    return;
  }
  Add(check_code::kOpenTransactions, CheckStatus::kWarn, "source",
      fmt::format("{} transaction(s) open on the source for more than {}: {}; the replication "
                  "slot is made only once they have ended",
                  open->size(), FormatOpenTime(long_open.count()), DescribeOpenTransactions(*open)),
      fmt::format("end them ({}) or let them finish before migrating; migrate waits for them at "
                  "most --lock-timeout",
                  EndTransactionsHint(*open)));
}

}  // namespace pgcourier::checker_internal

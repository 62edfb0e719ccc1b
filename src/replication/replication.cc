#include "replication/replication.h"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <algorithm>
#include <set>

#include "pg/quote.h"

namespace pgcourier {

ReplicationNames NamesFor(const std::string& run_id, int index) {
  const std::string base = "pgcourier_" + run_id;
  return {base, fmt::format("{}_{}", base, index), base};
}

Result<std::string> StartReplication(const ConnInfo& source_db, Connection& holder,
                                     const ReplicationNames& names,
                                     const std::vector<std::string>& tables,
                                     const ConnectOptions& connect) {
  // The publication first: the slot decodes with the catalog as of its
  // starting point, which must already hold it.
  std::string publication = "CREATE PUBLICATION " + QuoteIdent(names.publication);
  if (!tables.empty()) {
    publication += " FOR TABLE ";
    for (size_t i = 0; i < tables.size(); ++i) {
      if (i > 0) publication += ", ";
      publication += "ONLY " + tables[i];
    }
  }
  Status published = holder.Run(publication);
  if (!published.ok()) return published.WithContext("creating the publication on the source");

  ConnectOptions replication_connect = connect;
  replication_connect.secure_search_path = false;  // no SQL before the slot
  Result<std::unique_ptr<Connection>> walsender =
      Connection::Connect(source_db.With("replication", "database"), replication_connect);
  if (!walsender.ok()) return walsender.status().WithContext("opening a replication connection");
  Result<QueryResult> slot = (*walsender)
                                 ->Exec("CREATE_REPLICATION_SLOT " + QuoteIdent(names.slot) +
                                        " LOGICAL pgoutput EXPORT_SNAPSHOT");
  if (!slot.ok()) return slot.status().WithContext("creating the replication slot " + names.slot);
  const std::string exported = slot->GetString(0, 2);
  // The slot's snapshot lives while the replication connection is idle: it
  // is imported on the holder, whose transaction keeps it for the copy.
  Result<QueryResult> again =
      holder.Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT " +
                  QuoteLiteral(exported) + "; SELECT pg_catalog.pg_export_snapshot()");
  if (!again.ok()) return again.status().WithContext("taking over the slot's snapshot");
  return again->GetString(0, 0);
}

Status CreateSubscription(Connection& target, Connection& source, const ReplicationNames& names) {
  // The source as this process reached it, password included (from the
  // URI, PGPASSWORD or .pgpass): the target server connects with it.
  static const std::set<std::string> kKeep = {
      "host",       "hostaddr",    "port",       "user",
      "password",   "dbname",      "sslmode",    "sslcert",
      "sslkey",     "sslrootcert", "sslcrl",     "channel_binding",
      "gssencmode", "sslpassword", "requiressl", "target_session_attrs"};
  PQconninfoOption* options = PQconninfo(source.raw());
  if (options == nullptr) return Status(StatusCode::kIoError, "out of memory");
  std::string conninfo;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr || *o->val == '\0' || kKeep.count(o->keyword) == 0) continue;
    if (!conninfo.empty()) conninfo.push_back(' ');
    conninfo += std::string(o->keyword) + "=" + QuoteConnValue(o->val);
  }
  PQconninfoFree(options);
  Status created = target.Run(
      fmt::format("CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} WITH (create_slot = false, "
                  "slot_name = {}, copy_data = false, enabled = true)",
                  QuoteIdent(names.subscription), QuoteLiteral(conninfo),
                  QuoteIdent(names.publication), QuoteLiteral(names.slot)));
  // The statement holds the password: the error never repeats it.
  if (!created.ok()) {
    return Status(created.code(),
                  "creating the subscription " + names.subscription + " on the target failed (" +
                      created.sqlstate() + ")",
                  created.sqlstate() == "42501"
                      ? "the target user needs superuser or, on 16+, pg_create_subscription"
                      : "check that the target server can reach the source as pgcourier does",
                  created.sqlstate());
  }
  return Status::Ok();
}

bool ReplicationLag::AllReady() const {
  return std::all_of(tables.begin(), tables.end(), [](const auto& t) { return t.second == "r"; });
}

Result<ReplicationLag> ReadLag(Connection* source, Connection* target,
                               const ReplicationNames& names) {
  ReplicationLag lag;
  if (source != nullptr) {
    Result<QueryResult> slot = source->ExecParams(
        "SELECT pg_catalog.pg_current_wal_lsn()::text, s.confirmed_flush_lsn::text, s.active, "
        "pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), "
        "s.confirmed_flush_lsn)::bigint, "
        "pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), s.restart_lsn)::bigint "
        "FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = $1",
        {names.slot});
    if (!slot.ok()) return slot.status().WithContext("reading the replication slot");
    if (slot->rows() > 0) {
      lag.slot_exists = true;
      lag.source_lsn = slot->GetString(0, 0);
      lag.confirmed_lsn = slot->GetString(0, 1);
      lag.slot_active = slot->GetBool(0, 2);
      lag.lag_bytes = slot->GetInt(0, 3, -1);
      lag.retained_bytes = slot->GetInt(0, 4, -1);
    }
  }
  if (target != nullptr) {
    Result<QueryResult> sub = target->ExecParams(
        "SELECT coalesce(extract(epoch FROM now() - max(st.last_msg_receipt_time)), -1)::float8 "
        "FROM pg_catalog.pg_subscription s "
        "LEFT JOIN pg_catalog.pg_stat_subscription st ON st.subid = s.oid "
        "WHERE s.subname = $1 GROUP BY s.oid",
        {names.subscription});
    if (!sub.ok()) return sub.status().WithContext("reading the subscription");
    if (sub->rows() > 0) {
      lag.subscription_exists = true;
      lag.lag_seconds = std::stod(sub->GetString(0, 0));
      Result<QueryResult> rels = target->ExecParams(
          "SELECT r.srrelid::regclass::text, r.srsubstate::text FROM "
          "pg_catalog.pg_subscription_rel r "
          "JOIN pg_catalog.pg_subscription s ON s.oid = r.srsubid WHERE s.subname = $1 ORDER BY 1",
          {names.subscription});
      if (!rels.ok()) return rels.status().WithContext("reading the subscription's tables");
      for (int r = 0; r < rels->rows(); ++r) {
        lag.tables.emplace_back(rels->GetString(r, 0), rels->GetString(r, 1));
      }
    }
  }
  return lag;
}

Status WaitApplied(Connection& source, const ReplicationNames& names, const std::string& lsn,
                   Deadline deadline, const CancelToken* cancel) {
  for (;;) {
    Result<QueryResult> reached = source.ExecParams(
        "SELECT s.confirmed_flush_lsn >= $2::pg_lsn, s.confirmed_flush_lsn::text "
        "FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = $1",
        {names.slot, lsn});
    if (!reached.ok()) return reached.status();
    if (reached->rows() == 0) {
      return Status(StatusCode::kNotFound, "the replication slot " + names.slot + " is gone",
                    "the changes since the bulk copy cannot be applied; move the database again");
    }
    if (reached->GetBool(0, 0)) return Status::Ok();
    if (deadline.passed()) {
      return Status(StatusCode::kTimeout,
                    fmt::format("the target has applied changes up to {}, not yet up to {}",
                                reached->GetString(0, 1), lsn),
                    "wait and run cutover again, or give it a longer --timeout");
    }
    if (!SleepFor(std::chrono::milliseconds(200), cancel)) {
      return Status(StatusCode::kCancelled, "cancelled while waiting for the target to catch up");
    }
  }
}

Result<std::vector<std::string>> DropReplication(Connection* source, Connection* target,
                                                 const ReplicationNames& names) {
  std::vector<std::string> removed;
  if (target != nullptr) {
    Result<QueryResult> sub = target->ExecParams(
        "SELECT 1 FROM pg_catalog.pg_subscription WHERE subname = $1 AND subdbid = "
        "(SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())",
        {names.subscription});
    if (!sub.ok()) return sub.status().WithContext("looking for the subscription");
    if (sub->rows() > 0) {
      // Detached from its slot first: dropping then needs no connection to
      // the source (the slot is dropped there below).
      const std::string name = QuoteIdent(names.subscription);
      PGC_RETURN_IF_ERROR(target->Run("ALTER SUBSCRIPTION " + name + " DISABLE")
                              .WithContext("disabling the subscription"));
      PGC_RETURN_IF_ERROR(target->Run("ALTER SUBSCRIPTION " + name + " SET (slot_name = NONE)")
                              .WithContext("detaching the subscription from its slot"));
      PGC_RETURN_IF_ERROR(
          target->Run("DROP SUBSCRIPTION " + name).WithContext("dropping the subscription"));
      removed.push_back("subscription " + names.subscription + " (target)");
    }
  }
  if (source != nullptr) {
    // A slot still in use by a walsender (the subscription's, until it
    // notices) cannot be dropped: end that walsender, then drop.
    for (int attempt = 0;; ++attempt) {
      Result<QueryResult> slot = source->ExecParams(
          "SELECT active_pid FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
          {names.slot});
      if (!slot.ok()) return slot.status().WithContext("looking for the replication slot");
      if (slot->rows() == 0) break;
      if (!slot->IsNull(0, 0)) {
        (void)source->ExecParams("SELECT pg_catalog.pg_terminate_backend($1::int)",
                                 {slot->GetString(0, 0)});
      }
      Result<QueryResult> dropped =
          source->ExecParams("SELECT pg_catalog.pg_drop_replication_slot($1)", {names.slot});
      if (dropped.ok()) {
        removed.push_back("replication slot " + names.slot + " (source)");
        break;
      }
      if (attempt >= 50) return dropped.status().WithContext("dropping the replication slot");
      SleepFor(std::chrono::milliseconds(100), nullptr);
    }
    Result<QueryResult> pub = source->ExecParams(
        "SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1", {names.publication});
    if (!pub.ok()) return pub.status().WithContext("looking for the publication");
    if (pub->rows() > 0) {
      PGC_RETURN_IF_ERROR(source->Run("DROP PUBLICATION " + QuoteIdent(names.publication))
                              .WithContext("dropping the publication"));
      removed.push_back("publication " + names.publication + " (source)");
    }
  }
  return removed;
}

}  // namespace pgcourier

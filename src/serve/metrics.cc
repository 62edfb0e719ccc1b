#include "serve/metrics.h"

#include <fmt/format.h>

#include <array>
#include <functional>
#include <vector>

#include "migrate/cutover.h"
#include "state/run_states.h"

namespace pgcourier {
namespace {

constexpr std::array kDatabaseStates = {
    DatabaseState::kPending,   DatabaseState::kSchema,    DatabaseState::kCopying,
    DatabaseState::kIndexing,  DatabaseState::kVerifying, DatabaseState::kSyncing,
    DatabaseState::kCutover,   DatabaseState::kDone,      DatabaseState::kFailed,
    DatabaseState::kCancelled,
};

// A sample value as the exposition format writes it: integers without a
// fraction, others in the shortest form that reads back the same.
std::string Number(double value) { return fmt::format("{}", value); }
std::string Number(int64_t value) { return std::to_string(value); }

class Exposition {
 public:
  void Family(const char* name, const char* type, const char* help) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  void Sample(const char* name, const std::string& labels, const std::string& value) {
    out_ += labels.empty() ? fmt::format("{} {}\n", name, value)
                           : fmt::format("{}{{{}}} {}\n", name, labels, value);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string DatabaseLabel(const std::string& name) {
  return fmt::format("database=\"{}\"", EscapeLabelValue(name));
}

// One family with one series per database, the value taken from its record.
void PerDatabase(Exposition& out, const StatusView& view, const char* name, const char* type,
                 const char* help, const std::function<int64_t(const StoredDatabase&)>& value) {
  out.Family(name, type, help);
  for (const auto& db : view.databases) {
    out.Sample(name, DatabaseLabel(db.name), Number(value(db)));
  }
}

// One family with one series per replicating database whose value is known.
void PerReplication(Exposition& out, const StatusView& view, const char* name, const char* type,
                    const char* help,
                    const std::function<std::optional<double>(const ReplicationView&)>& value) {
  out.Family(name, type, help);
  for (const auto& [database, replication] : view.replication) {
    if (std::optional<double> v = value(replication)) {
      out.Sample(name, DatabaseLabel(database), Number(*v));
    }
  }
}

void RunFamilies(Exposition& out, const StatusView& view, double read_at_unix, bool read_ok) {
  out.Family("pgcourier_status_read_ok", "gauge",
             "1 when the last reading of the work directory succeeded, else 0 (the other "
             "metrics are then those of the last good reading).");
  out.Sample("pgcourier_status_read_ok", "", read_ok ? "1" : "0");
  out.Family("pgcourier_status_read_timestamp_seconds", "gauge",
             "When the work directory was last read, in seconds since the Unix epoch.");
  out.Sample("pgcourier_status_read_timestamp_seconds", "", Number(read_at_unix));
  out.Family("pgcourier_run_info", "gauge",
             "Always 1; the labels name the run and its overall state (running, interrupted, "
             "done, failed, cancelled, empty).");
  out.Sample(
      "pgcourier_run_info",
      fmt::format("run_id=\"{}\",state=\"{}\"", EscapeLabelValue(view.run ? view.run->id : ""),
                  EscapeLabelValue(OverallState(view))),
      "1");
  out.Family("pgcourier_run_live", "gauge",
             "1 while a pgcourier process holds the work directory (a migrate, cutover or "
             "cleanup runs), else 0.");
  out.Sample("pgcourier_run_live", "", view.live ? "1" : "0");
}

void DatabaseFamilies(Exposition& out, const StatusView& view) {
  out.Family("pgcourier_database_state", "gauge",
             "1 for the state the database is in, 0 for the others (one series per state).");
  for (const auto& db : view.databases) {
    for (DatabaseState state : kDatabaseStates) {
      out.Sample("pgcourier_database_state",
                 fmt::format("{},state=\"{}\"", DatabaseLabel(db.name), Name(state)),
                 db.state == state ? "1" : "0");
    }
  }
  PerDatabase(out, view, "pgcourier_copied_bytes_total", "counter",
              "Bytes of table data copied to the target (a resumed table copied again counts "
              "from zero again).",
              [](const StoredDatabase& db) { return db.bytes_done; });
  PerDatabase(out, view, "pgcourier_planned_bytes", "gauge",
              "Bytes of table data the copy plans to move (the source's table sizes).",
              [](const StoredDatabase& db) { return db.bytes_total; });
  PerDatabase(out, view, "pgcourier_copied_rows_total", "counter", "Rows copied to the target.",
              [](const StoredDatabase& db) { return db.rows_done; });
  PerDatabase(out, view, "pgcourier_tables_copied_total", "counter",
              "Tables whose copy is finished.",
              [](const StoredDatabase& db) { return db.tables_done; });
  PerDatabase(out, view, "pgcourier_planned_tables", "gauge", "Tables the copy plans to move.",
              [](const StoredDatabase& db) { return db.tables_total; });
  PerDatabase(out, view, "pgcourier_indexes_built_total", "counter",
              "Indexes (and constraints with an index) built on the target.",
              [](const StoredDatabase& db) { return db.indexes_done; });
  PerDatabase(out, view, "pgcourier_planned_indexes", "gauge",
              "Indexes the post-data phase plans to build.",
              [](const StoredDatabase& db) { return db.indexes_total; });
}

std::optional<double> Known(double value) {
  return value < 0 ? std::nullopt : std::optional<double>(value);
}

void ReplicationFamilies(Exposition& out, const StatusView& view) {
  PerReplication(
      out, view, "pgcourier_replication_lag_bytes", "gauge",
      "Bytes of the source's WAL the target has not confirmed applied (the slot's "
      "confirmed_flush_lsn to the current WAL position).",
      [](const ReplicationView& r) { return Known(static_cast<double>(r.lag.lag_bytes)); });
  PerReplication(out, view, "pgcourier_replication_lag_seconds", "gauge",
                 "Seconds since the subscriber's last message to the source's walsender.",
                 [](const ReplicationView& r) { return Known(r.lag.lag_seconds); });
  PerReplication(
      out, view, "pgcourier_replication_retained_wal_bytes", "gauge",
      "Bytes of WAL the replication slot keeps on the source (its restart_lsn to the "
      "current WAL position).",
      [](const ReplicationView& r) { return Known(static_cast<double>(r.lag.retained_bytes)); });
  PerReplication(out, view, "pgcourier_replication_apply_errors_total", "counter",
                 "Errors of the subscription's apply worker (pg_stat_subscription_stats, "
                 "PostgreSQL 15 and later targets).",
                 [](const ReplicationView& r) -> std::optional<double> {
                   if (!r.health || !r.health->errors) return std::nullopt;
                   return static_cast<double>(r.health->errors->apply);
                 });
  PerReplication(out, view, "pgcourier_replication_sync_errors_total", "counter",
                 "Errors of the subscription's table synchronization workers "
                 "(pg_stat_subscription_stats, PostgreSQL 15 and later targets).",
                 [](const ReplicationView& r) -> std::optional<double> {
                   if (!r.health || !r.health->errors) return std::nullopt;
                   return static_cast<double>(r.health->errors->sync);
                 });
  PerReplication(out, view, "pgcourier_replication_broken", "gauge",
                 "1 when the replication cannot catch up by waiting (status exits 1), else 0.",
                 [](const ReplicationView& r) { return r.broken ? 1.0 : 0.0; });
  PerReplication(out, view, "pgcourier_replication_in_sync", "gauge",
                 "1 when every table is ready, the lag is under 16 MB and nothing is broken.",
                 [](const ReplicationView& r) { return r.in_sync ? 1.0 : 0.0; });
}

void CutoverFamilies(Exposition& out, const StatusView& view) {
  out.Family("pgcourier_cutover_write_stop_seconds", "gauge",
             "Seconds the database's last cutover kept the applications' writes stopped (its "
             "window: from stopping writes to the switch).");
  for (const auto& [database, phases] : view.cutover_phases) {
    double window = 0;
    for (const auto& p : phases) {
      if (p.part == kCutoverWindowPart) window += p.seconds;
    }
    out.Sample("pgcourier_cutover_write_stop_seconds", DatabaseLabel(database), Number(window));
  }
}

}  // namespace

std::string EscapeLabelValue(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string PrometheusText(const StatusView& view, double read_at_unix, bool read_ok) {
  Exposition out;
  RunFamilies(out, view, read_at_unix, read_ok);
  DatabaseFamilies(out, view);
  ReplicationFamilies(out, view);
  CutoverFamilies(out, view);
  return out.Take();
}

}  // namespace pgcourier

#include "report/status_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "migrate/cutover.h"
#include "util/size.h"

namespace pgcourier {
namespace {

constexpr size_t kMaxNameWidth = 40;
constexpr const char* kInconsistentNote =
    "copied at more than one snapshot; verify compares with the source as it is now";

nlohmann::json NullIfEmpty(const std::string& s) {
  return s.empty() ? nlohmann::json() : nlohmann::json(s);
}

// One line: errors from servers and tools may span several.
std::string OneLine(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  std::replace(text.begin(), text.end(), '\r', ' ');
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

std::string Upper(std::string text) {
  for (char& c : text) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return text;
}

std::string Truncated(const std::string& text, size_t width) {
  if (text.size() <= width) return text;
  return text.substr(0, width - 3) + "...";
}

std::string Fraction(int64_t done, int64_t total) { return fmt::format("{}/{}", done, total); }

std::string Bytes(const StoredDatabase& db) {
  if (db.bytes_total <= 0) return FormatBytes(db.bytes_done);
  return fmt::format("{} / {}", FormatBytes(db.bytes_done), FormatBytes(db.bytes_total));
}

// Rows, then the widest cell of each column; the last column is not padded.
std::string Table(const std::vector<std::vector<std::string>>& rows, const std::string& indent,
                  const std::vector<bool>& right_aligned = {}) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line = indent;
    for (size_t i = 0; i < row.size(); ++i) {
      if (i > 0) line += "  ";
      bool right = i < right_aligned.size() && right_aligned[i];
      if (i + 1 == row.size() && !right) {
        line += row[i];
      } else if (right) {
        line += fmt::format("{:>{}}", row[i], widths[i]);
      } else {
        line += fmt::format("{:<{}}", row[i], widths[i]);
      }
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

void RenderSteps(const std::string& database, const std::vector<StoredStep>& steps,
                 std::string& out) {
  out += fmt::format("\n{}: {} {}\n", database, steps.size(), steps.size() == 1 ? "step" : "steps");
  if (steps.empty()) return;
  std::vector<std::vector<std::string>> rows = {
      {"KIND", "OBJECT", "PART", "STATE", "ROWS", "BYTES", "SECONDS", "TRIES", "ERROR"}};
  for (const auto& s : steps) {
    const bool sized = s.kind == StepKind::kCopy || s.rows != 0 || s.bytes != 0;
    rows.push_back({Name(s.kind), Truncated(s.object, kMaxNameWidth), s.part, Name(s.state),
                    sized ? std::to_string(s.rows) : "", sized ? FormatBytes(s.bytes) : "",
                    s.seconds > 0 ? fmt::format("{:.1f}", s.seconds) : "",
                    s.attempts > 0 ? std::to_string(s.attempts) : "", OneLine(s.error)});
  }
  out += Table(rows, "  ", {false, false, false, false, true, true, true, true, false});
}

// "writes stopped 1.9 s (stopping writes 0.1 s, ...); after the switch:
// removing replication 0.2 s, verification 9.1 s"
std::string CutoverPhasesText(const std::vector<StoredStep>& phases) {
  double window = 0;
  std::string in;
  std::string after;
  for (const auto& p : phases) {
    const std::string name = p.object.substr(std::string(kCutoverPhasePrefix).size());
    std::string& list = p.part == kCutoverWindowPart ? in : after;
    list += fmt::format("{}{} {:.1f} s", list.empty() ? "" : ", ", name, p.seconds);
    if (p.part == kCutoverWindowPart) window += p.seconds;
  }
  return fmt::format("writes stopped {:.1f} s ({}); after the switch: {}", window, in,
                     after.empty() ? "-" : after);
}

nlohmann::json CutoverPhasesJson(const std::vector<StoredStep>& phases) {
  nlohmann::json window = nlohmann::json::array();
  nlohmann::json after = nlohmann::json::array();
  for (const auto& p : phases) {
    nlohmann::json one = {{"phase", p.object.substr(std::string(kCutoverPhasePrefix).size())},
                          {"seconds", p.seconds}};
    (p.part == kCutoverWindowPart ? window : after).push_back(std::move(one));
  }
  return {{"window", window}, {"after_switch", after}};
}

// The lines of one direction of replication: broken or not, the lag, the
// apply rate, the tables not ready, the warnings. `kept_on`: the side whose
// WAL the slot keeps.
std::string ReplicationText(const ReplicationView& r, const std::string& label,
                            const char* kept_on) {
  std::string out;
  if (r.broken) {
    out += "    " + label + ": BROKEN: " + OneLine(r.error) + "\n";
    if (!r.hint.empty()) out += "    hint: " + OneLine(r.hint) + "\n";
  } else if (!r.error.empty()) {
    out += "    " + label + ": " + OneLine(r.error) + "\n";
  }
  if (r.lag.slot_exists) {
    size_t ready = 0;
    for (const auto& t : r.lag.tables) ready += t.second == "r" ? 1 : 0;
    out += fmt::format("    {}: {}, {} behind{}, {}/{} tables ready, {} of WAL kept on the {}\n",
                       label, r.broken ? "broken" : (r.in_sync ? "in sync" : "catching up"),
                       FormatBytes(std::max<int64_t>(r.lag.lag_bytes, 0)),
                       r.lag.lag_seconds >= 0
                           ? fmt::format(" (last message {:.0f} s ago)", r.lag.lag_seconds)
                           : "",
                       ready, r.lag.tables.size(),
                       FormatBytes(std::max<int64_t>(r.lag.retained_bytes, 0)), kept_on);
  }
  if (r.apply_bytes_per_second >= 0) {
    out += fmt::format("    apply rate: {}/s (the slot's confirmed position)\n",
                       FormatBytes(static_cast<int64_t>(r.apply_bytes_per_second)));
  }
  if (r.health && !r.health->not_ready.empty()) {
    std::string names;
    for (const auto& t : r.health->not_ready) names += (names.empty() ? "" : ", ") + t;
    out += "    not ready yet: " + names + "\n";
  }
  if (!r.warning.empty()) out += "    WARNING: " + r.warning + "\n";
  return out;
}

// The JSON of one direction of replication (pgcourier.status/1's
// "replication" and "way_back.replication").
nlohmann::json ReplicationJson(const ReplicationView& r) {
  nlohmann::json rel = nlohmann::json::array();
  for (const auto& t : r.lag.tables) rel.push_back({{"table", t.first}, {"state", t.second}});
  nlohmann::json out = {
      {"in_sync", r.in_sync},
      {"slot_exists", r.lag.slot_exists},
      {"slot_active", r.lag.slot_active},
      {"subscription_exists", r.lag.subscription_exists},
      {"source_lsn", NullIfEmpty(r.lag.source_lsn)},
      {"confirmed_lsn", NullIfEmpty(r.lag.confirmed_lsn)},
      {"lag_bytes", r.lag.lag_bytes},
      {"lag_seconds", r.lag.lag_seconds},
      {"retained_wal_bytes", r.lag.retained_bytes},
      {"apply_bytes_per_second",
       r.apply_bytes_per_second < 0 ? nlohmann::json() : nlohmann::json(r.apply_bytes_per_second)},
      {"tables", rel},
      {"warning", NullIfEmpty(r.warning)},
      {"broken", r.broken},
      {"error", NullIfEmpty(r.error)},
      {"hint", NullIfEmpty(r.hint)},
      {"health", nullptr}};
  if (r.health) {
    const ReplicationHealth& h = *r.health;
    nlohmann::json drift = nlohmann::json::array();
    for (const auto& d : h.drift) {
      drift.push_back({{"kind", Name(d.kind)},
                       {"table", d.table},
                       {"detail", d.detail},
                       {"target_ddl", NullIfEmpty(d.target_ddl)},
                       {"source_ddl", NullIfEmpty(d.source_ddl)},
                       {"additive", d.additive}});
    }
    nlohmann::json errors;
    if (h.errors) {
      errors = {{"apply", h.errors->apply},
                {"sync", h.errors->sync},
                {"apply_since_baseline", h.errors->apply - h.baseline.apply},
                {"sync_since_baseline", h.errors->sync - h.baseline.sync}};
    }
    out["health"] = {{"subscription_enabled", h.subscription_enabled},
                     {"apply_worker", h.apply_worker},
                     {"errors", errors},
                     {"wal_status", NullIfEmpty(h.wal_status)},
                     {"safe_wal_size", h.safe_wal_size},
                     {"not_ready", h.not_ready},
                     {"schema_drift", drift}};
  }
  return out;
}

}  // namespace

std::string RenderStatusText(const StatusView& view, bool tables) {
  const std::string overall = OverallState(view);
  if (!view.run) {
    return fmt::format("{}: no migration was started in this work directory yet\n", Upper(overall));
  }
  const StoredRun& run = *view.run;
  std::string out =
      fmt::format("{}  migration {}  {} -> {}\n", Upper(overall), run.id, run.source, run.target);
  std::string when = "  started " + run.started_at;
  if (!run.finished_at.empty()) {
    when += ", finished " + run.finished_at;
  } else if (!run.updated_at.empty()) {
    when += ", last update " + run.updated_at;
  }
  when += fmt::format(", pid {}", run.pid);
  if (run.resumes > 0) {
    when += fmt::format(", resumed {} {}", run.resumes, run.resumes == 1 ? "time" : "times");
  }
  out += when + "\n";
  if (overall == "interrupted") {
    out += fmt::format(
        "  the process that ran it (pid {}) is gone without finishing; `pgcourier migrate "
        "--resume` continues it\n",
        run.pid);
  }
  if (!run.error.empty()) out += "  error: " + OneLine(run.error) + "\n";

  if (view.databases.empty()) {
    out += "\nno database planned yet\n";
    return out;
  }
  out += "\n";
  std::vector<std::vector<std::string>> rows = {
      {"DATABASE", "TARGET", "METHOD", "STATE", "TABLES", "INDEXES", "BYTES", "ERROR"}};
  for (const auto& db : view.databases) {
    rows.push_back({Truncated(db.name, kMaxNameWidth), Truncated(db.target_name, kMaxNameWidth),
                    Name(db.method), Name(db.state), Fraction(db.tables_done, db.tables_total),
                    Fraction(db.indexes_done, db.indexes_total), Bytes(db), OneLine(db.error)});
  }
  // The table, with each database's hint and note under its row.
  std::string table = Table(rows, "");
  size_t line_start = table.find('\n') + 1;  // past the header
  out += table.substr(0, line_start);
  for (const auto& db : view.databases) {
    size_t line_end = table.find('\n', line_start) + 1;
    out += table.substr(line_start, line_end - line_start);
    line_start = line_end;
    if (!db.hint.empty()) out += "    hint: " + OneLine(db.hint) + "\n";
    if (!db.consistent) out += fmt::format("    note: {}\n", kInconsistentNote);
    if (auto o = view.subscription_options.find(db.name); o != view.subscription_options.end()) {
      out += "    subscription: " + o->second + "\n";
    }
    if (auto c = view.cutover_phases.find(db.name); c != view.cutover_phases.end()) {
      out += "    last cutover: " + CutoverPhasesText(c->second) + "\n";
    }
    if (auto rep = view.replication.find(db.name); rep != view.replication.end()) {
      out += ReplicationText(rep->second, "replication", "source");
    }
    if (auto back = view.rollbacks.find(db.name); back != view.rollbacks.end()) {
      out += fmt::format(
          "    way back: {} (publication {} and slot {} on the target, subscription "
          "{} on the source)\n",
          back->second.state, back->second.publication, back->second.slot,
          back->second.subscription);
    }
    if (auto rep = view.way_back.find(db.name); rep != view.way_back.end()) {
      out += ReplicationText(rep->second, "way back", "target");
    }
  }

  if (tables) {
    for (const auto& db : view.databases) {
      auto it = view.steps.find(db.name);
      RenderSteps(db.name, it == view.steps.end() ? std::vector<StoredStep>() : it->second, out);
    }
  }
  return out;
}

nlohmann::json StatusJson(const StatusView& view, bool tables) {
  nlohmann::json run;  // null without a run
  if (view.run) {
    const StoredRun& r = *view.run;
    run = {{"id", r.id},
           {"source", r.source},
           {"target", r.target},
           {"started_at", NullIfEmpty(r.started_at)},
           {"updated_at", NullIfEmpty(r.updated_at)},
           {"finished_at", NullIfEmpty(r.finished_at)},
           {"pid", r.pid},
           {"resumes", r.resumes},
           {"error", NullIfEmpty(r.error)}};
  }
  nlohmann::json databases = nlohmann::json::array();
  for (const auto& db : view.databases) {
    nlohmann::json entry = {{"dbname", db.name},
                            {"target_dbname", db.target_name},
                            {"method", db.method},
                            {"method_reason", NullIfEmpty(db.method_reason)},
                            {"status", db.state},
                            {"error", NullIfEmpty(db.error)},
                            {"hint", NullIfEmpty(db.hint)},
                            {"consistent", db.consistent},
                            {"progress",
                             {{"tables_done", db.tables_done},
                              {"tables_total", db.tables_total},
                              {"indexes_done", db.indexes_done},
                              {"indexes_total", db.indexes_total},
                              {"bytes_done", db.bytes_done},
                              {"bytes_total", db.bytes_total},
                              {"rows_done", db.rows_done}}},
                            {"started_at", NullIfEmpty(db.started_at)},
                            {"finished_at", NullIfEmpty(db.finished_at)},
                            {"replication", nullptr},
                            {"subscription_options", nullptr},
                            {"cutover", nullptr},
                            {"way_back", nullptr}};
    if (auto o = view.subscription_options.find(db.name); o != view.subscription_options.end()) {
      entry["subscription_options"] = o->second;
    }
    if (auto c = view.cutover_phases.find(db.name); c != view.cutover_phases.end()) {
      entry["cutover"] = CutoverPhasesJson(c->second);
    }
    if (auto rep = view.replication.find(db.name); rep != view.replication.end()) {
      entry["replication"] = ReplicationJson(rep->second);
    }
    if (auto back = view.rollbacks.find(db.name); back != view.rollbacks.end()) {
      const StoredRollback& b = back->second;
      auto rep = view.way_back.find(db.name);
      entry["way_back"] = {
          {"state", b.state},
          {"publication", b.publication},
          {"slot", b.slot},
          {"subscription", b.subscription},
          {"replication",
           rep == view.way_back.end() ? nlohmann::json() : ReplicationJson(rep->second)}};
    }
    if (tables) {
      nlohmann::json steps = nlohmann::json::array();
      auto it = view.steps.find(db.name);
      if (it != view.steps.end()) {
        for (const auto& s : it->second) {
          steps.push_back({{"object", s.object},
                           {"part", NullIfEmpty(s.part)},
                           {"kind", s.kind},
                           {"state", s.state},
                           {"rows", s.rows},
                           {"bytes", s.bytes},
                           {"seconds", s.seconds},
                           {"attempts", s.attempts},
                           {"error", NullIfEmpty(s.error)}});
        }
      }
      entry["tables"] = std::move(steps);
      nlohmann::json sizes = nlohmann::json::array();
      if (auto found = view.table_sizes.find(db.name); found != view.table_sizes.end()) {
        for (const auto& size : found->second) {
          sizes.push_back(
              {{"table", size.table},
               {"expected_rows",
                size.expected_rows < 0 ? nlohmann::json() : nlohmann::json(size.expected_rows)},
               {"expected_bytes", size.expected_bytes}});
        }
      }
      entry["table_sizes"] = std::move(sizes);
    }
    databases.push_back(std::move(entry));
  }
  return {{"format", "pgcourier.status/1"},
          {"state", OverallState(view)},
          {"run", run},
          {"databases", databases}};
}

}  // namespace pgcourier

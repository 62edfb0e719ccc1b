#include "report/migrate_report.h"

#include <fmt/format.h>

#include <algorithm>

#include "report/check_report.h"
#include "report/verify_report.h"
#include "util/size.h"

namespace pgcourier {
namespace {

// "    rows in COPY's binary form: 6 table(s); as text: 2 (public.a: column m is
// of type public.mood; ...)", naming at most three tables.
std::string CopyFormatLine(const std::vector<TableOutcome>& tables) {
  size_t binary = 0;
  std::vector<std::string> text;
  for (const auto& t : tables) {
    if (t.binary) {
      ++binary;
    } else {
      text.push_back(t.table + ": " + t.text_reason);
    }
  }
  std::string line =
      fmt::format("    rows in COPY's binary form: {} table(s); as text: {}", binary, text.size());
  if (!text.empty()) {
    const size_t named = std::min<size_t>(text.size(), 3);
    line += " (";
    for (size_t i = 0; i < named; ++i) line += (i > 0 ? "; " : "") + text[i];
    line += text.size() > named ? "; ...)" : ")";
  }
  return line + "\n";
}

}  // namespace

std::string RenderMigrateText(const MigrationOutcome& outcome) {
  if (!outcome.checks_passed) {
    TextStyle style;
    style.show_passes = false;
    return RenderCheckText(outcome.check, style) +
           "\nNothing was changed: the pre-flight checks failed.\n";
  }
  std::string out;
  if (outcome.roles) {
    int created = 0;
    std::vector<std::string> notes;
    for (const auto& r : outcome.roles->roles) {
      if (r.action == RoleOutcome::Action::kCreated) ++created;
      for (const auto& note : r.notes) notes.push_back(r.name + ": " + note);
    }
    out += fmt::format("\nroles: {} created, {} membership(s) granted\n", created,
                       outcome.roles->memberships_granted.size());
    for (const auto& w : outcome.roles->warnings) out += "  ! " + w + "\n";
    for (const auto& n : notes) out += "  ! " + n + "\n";
  }
  for (const auto& db : outcome.databases) {
    std::string name = db.name == db.target_name ? db.name : db.name + " -> " + db.target_name;
    out += fmt::format("\n{}: {}{}\n", name, db.state,
                       db.done_earlier ? " (finished by the run that was resumed)" : "");
    if (!db.consistent) {
      out +=
          "  note: resumed after its snapshot was gone: tables copied by the interrupted run are "
          "from an earlier moment than the others (verified against the source as it is now)\n";
    }
    if (!db.error.empty()) out += fmt::format("  error: {}\n", db.error);
    if (!db.hint.empty()) out += fmt::format("  -> {}\n", db.hint);
    if (!db.phases.empty()) {
      std::string phases;
      for (const auto& p : db.phases) {
        if (!phases.empty()) phases += ", ";
        phases += fmt::format("{} {:.1f} s", p.phase, p.seconds);
      }
      out += "  phases: " + phases + "\n";
    }
    int64_t rows = 0;
    int64_t bytes = 0;
    for (const auto& t : db.tables) {
      rows += t.rows;
      bytes += t.bytes;
    }
    if (!db.tables.empty()) {
      out += fmt::format(
          "  data: {} table(s), {} rows, {}; {} sequence(s), {} large object(s), "
          "{} materialized view(s)\n",
          db.tables.size(), rows, FormatBytes(bytes), db.sequences, db.large_objects,
          db.materialized_views);
      std::vector<const TableOutcome*> slowest;
      for (const auto& t : db.tables) slowest.push_back(&t);
      std::sort(slowest.begin(), slowest.end(), [](const TableOutcome* a, const TableOutcome* b) {
        return a->seconds > b->seconds;
      });
      for (size_t i = 0; i < slowest.size() && i < 5; ++i) {
        const TableOutcome& t = *slowest[i];
        out += fmt::format("    {:<40} {:>12} rows {:>10} {:>7.1f} s{}\n", t.table, t.rows,
                           FormatBytes(t.bytes), t.seconds,
                           t.attempts > 1 ? fmt::format(" ({} attempts)", t.attempts) : "");
      }
      for (const auto& t : db.tables) {
        if (!t.note.empty()) out += fmt::format("    {}: {}\n", t.table, t.note);
      }
      out += CopyFormatLine(db.tables);
    }
    if (db.verification) out += RenderVerifyDatabaseText(*db.verification);
  }
  int done = 0;
  int syncing = 0;
  for (const auto& db : outcome.databases) {
    done += db.state == DatabaseState::kDone ? 1 : 0;
    syncing += db.state == DatabaseState::kSyncing ? 1 : 0;
  }
  out += "\n";
  if (outcome.ok() && syncing > 0) {
    out += fmt::format(
        "REPLICATING: {0} database(s) copied, verified and now following the source{1}.\n"
        "  watch:  pgcourier status --watch --dir {2}\n"
        "  finish: pgcourier cutover --dir {2} --stop-source-writes\n"
        "          (or stop the application's writes yourself, then pgcourier cutover --dir {2})\n"
        "  undo:   pgcourier cleanup --dir {2} (removes the publication, slot and subscription)\n",
        syncing, done > 0 ? fmt::format("; {} moved and verified", done) : "", outcome.work_dir);
  } else if (outcome.ok()) {
    out += fmt::format("DONE: {} database(s) moved and verified.\n", done);
  } else {
    out += fmt::format(
        "INCOMPLETE: {} of {} database(s) moved and verified; the others are "
        "not usable on the target.\n",
        done, outcome.databases.size());
  }
  return out;
}

nlohmann::json MigrateToJson(const MigrationOutcome& outcome) {
  nlohmann::json databases = nlohmann::json::array();
  for (const auto& db : outcome.databases) {
    nlohmann::json phases = nlohmann::json::array();
    for (const auto& p : db.phases) phases.push_back({{"phase", p.phase}, {"seconds", p.seconds}});
    nlohmann::json tables = nlohmann::json::array();
    for (const auto& t : db.tables) {
      tables.push_back({{"table", t.table},
                        {"rows", t.rows},
                        {"bytes", t.bytes},
                        {"seconds", t.seconds},
                        {"attempts", t.attempts},
                        {"earlier_run", t.earlier_run},
                        {"copy_format", t.binary ? "binary" : "text"},
                        {"text_reason",
                         t.text_reason.empty() ? nlohmann::json() : nlohmann::json(t.text_reason)},
                        {"note", t.note.empty() ? nlohmann::json() : nlohmann::json(t.note)}});
    }
    nlohmann::json verification = nullptr;
    if (db.verification) verification = VerifyToJson({*db.verification})["databases"][0];
    databases.push_back({{"name", db.name},
                         {"target_name", db.target_name},
                         {"method", db.method},
                         {"state", db.state},
                         {"consistent", db.consistent},
                         {"done_earlier", db.done_earlier},
                         {"error", db.error.empty() ? nlohmann::json() : nlohmann::json(db.error)},
                         {"hint", db.hint.empty() ? nlohmann::json() : nlohmann::json(db.hint)},
                         {"phases", phases},
                         {"tables", tables},
                         {"sequences", db.sequences},
                         {"large_objects", db.large_objects},
                         {"materialized_views", db.materialized_views},
                         {"verification", verification}});
  }
  nlohmann::json roles = nullptr;
  if (outcome.roles) {
    roles = {{"roles", nlohmann::json::array()},
             {"memberships_granted", outcome.roles->memberships_granted},
             {"warnings", outcome.roles->warnings}};
    for (const auto& r : outcome.roles->roles) {
      static constexpr const char* kActions[] = {"created", "existing", "provider_skipped",
                                                 "failed"};
      roles["roles"].push_back({{"name", r.name},
                                {"action", kActions[static_cast<int>(r.action)]},
                                {"password_copied", r.password_copied},
                                {"notes", r.notes}});
    }
  }
  return {{"format", "pgcourier.migrate/1"},
          {"ok", outcome.ok()},
          {"run_id", outcome.run_id},
          {"resumed", outcome.resumed},
          {"roles", roles},
          {"check", CheckReportToJson(outcome.check)},
          {"databases", databases}};
}

}  // namespace pgcourier

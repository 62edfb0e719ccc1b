#include "report/cutover_report.h"

#include <fmt/format.h>

#include "report/verify_report.h"

namespace pgcourier {
namespace {

nlohmann::json NullIfEmpty(const std::string& s) {
  return s.empty() ? nlohmann::json() : nlohmann::json(s);
}

}  // namespace

std::string RenderCutoverText(const CutoverOutcome& outcome) {
  std::string text;
  for (const auto& db : outcome.databases) {
    text += fmt::format("\n{}: {}\n", db.name, db.state);
    if (!db.error.empty()) text += "  error: " + db.error + "\n";
    if (!db.hint.empty()) text += "  -> " + db.hint + "\n";
    if (db.state == CutoverState::kDone) {
      text += fmt::format(
          "  writes stopped for {:.1f} s; {} sequence(s) synced, {} table(s) not replicated "
          "copied again\n",
          db.writes_stopped_seconds, db.sequences, db.tables_recopied);
      for (const auto& r : db.removed) text += "  removed " + r + "\n";
      if (db.verification) text += RenderVerifyDatabaseText(*db.verification);
    }
    if (!db.undo.empty()) text += "  the source is read-only; to undo: " + db.undo + "\n";
  }
  text += outcome.ok() ? "\nDONE: the target has everything; point the application at it.\n"
                       : "\nINCOMPLETE: see above; replication of the others goes on.\n";
  return text;
}

nlohmann::json CutoverToJson(const CutoverOutcome& outcome) {
  nlohmann::json dbs = nlohmann::json::array();
  for (const auto& db : outcome.databases) {
    nlohmann::json verification = nullptr;
    if (db.verification) verification = VerifyToJson({*db.verification})["databases"][0];
    dbs.push_back({{"dbname", db.name},
                   {"target_dbname", db.target_name},
                   {"status", db.state},
                   {"error", NullIfEmpty(db.error)},
                   {"hint", NullIfEmpty(db.hint)},
                   {"writes_stopped_seconds", db.writes_stopped_seconds},
                   {"undo", NullIfEmpty(db.undo)},
                   {"tables_recopied", db.tables_recopied},
                   {"sequences", db.sequences},
                   {"removed", db.removed},
                   {"verification", verification}});
  }
  return {{"format", "pgcourier.cutover/1"}, {"ok", outcome.ok()}, {"databases", dbs}};
}

std::string RenderCleanupText(const CleanupOutcome& outcome) {
  std::string text;
  for (const auto& r : outcome.removed) text += "removed " + r + "\n";
  for (const auto& u : outcome.undone) text += "undone " + u + "\n";
  for (const auto& p : outcome.problems) text += "NOT REMOVED: " + p + "\n";
  if (outcome.removed.empty() && outcome.undone.empty() && outcome.problems.empty()) {
    text += "nothing to remove: no replication object or change of this migration remains\n";
  }
  return text;
}

nlohmann::json CleanupToJson(const CleanupOutcome& outcome) {
  return {{"format", "pgcourier.cleanup/1"},
          {"ok", outcome.ok()},
          {"removed", outcome.removed},
          {"undone", outcome.undone},
          {"problems", outcome.problems}};
}

}  // namespace pgcourier

#include "report/cutover_report.h"

#include <fmt/format.h>

#include "report/verify_report.h"

namespace pgcourier {
namespace {

nlohmann::json NullIfEmpty(const std::string& s) {
  return s.empty() ? nlohmann::json() : nlohmann::json(s);
}

std::string PhasesText(const std::vector<CutoverPhase>& phases) {
  std::string out;
  for (const auto& p : phases) {
    out += fmt::format("{}{} {:.1f} s", out.empty() ? "" : ", ", p.name, p.seconds);
  }
  return out;
}

nlohmann::json PhasesJson(const std::vector<CutoverPhase>& phases) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : phases) out.push_back({{"phase", p.name}, {"seconds", p.seconds}});
  return out;
}

nlohmann::json AppendOnlyJson(const std::vector<AppendOnlyTable>& tables) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& t : tables) {
    out.push_back({{"table", t.table}, {"recopied", t.recopied}, {"why", t.why}});
  }
  return out;
}

// The text of a cutover, or of a rollback (the same phases with the roles
// swapped).
std::string RenderText(const CutoverOutcome& outcome, bool rollback) {
  std::string text;
  for (const auto& db : outcome.databases) {
    text += fmt::format("\n{}: {}\n", db.name, db.state);
    if (!db.error.empty()) text += "  error: " + db.error + "\n";
    if (!db.hint.empty()) text += "  -> " + db.hint + "\n";
    if (db.switched) {
      text +=
          fmt::format("  writes stopped for {:.1f} s ({}); {} sequence(s) synced, {} table(s) {}\n",
                      db.writes_stopped_seconds, PhasesText(db.window), db.sequences,
                      db.tables_recopied, rollback ? "not replicated copied back" : "copied again");
      for (const auto& t : db.append_only) {
        text += fmt::format("  {} (inserts and truncates replicated): {}: {}\n", t.table,
                            t.recopied ? "copied again" : "not copied again", t.why);
      }
      text += "  after the switch moment: " + PhasesText(db.after) + "\n";
      for (const auto& r : db.removed) text += "  removed " + r + "\n";
      if (db.rollback_kept) {
        text += "  way back kept: the old source follows the target (" + db.rollback_options +
                "); pgcourier rollback switches back, pgcourier cleanup removes it\n";
      }
      if (db.verification) {
        text += db.verification->ok() ? "  verified at the switch moment:\n"
                                      : "  VERIFICATION AT THE SWITCH MOMENT FOUND DIFFERENCES:\n";
        text += RenderVerifyDatabaseText(*db.verification);
      }
    } else if (!db.window.empty()) {
      text += "  before it stopped: " + PhasesText(db.window) + "\n";
    }
    if (!db.undo.empty()) {
      text += fmt::format("  the {} is read-only; to undo: {}\n", rollback ? "target" : "source",
                          db.undo);
    }
  }
  std::string unverified;
  for (const auto& db : outcome.databases) {
    if (db.switched && db.state != CutoverState::kDone) {
      unverified += (unverified.empty() ? "" : ", ") + db.name;
    }
  }
  if (outcome.ok()) {
    text += rollback ? "\nDONE: the old source has everything, verified at the switch moment, "
                       "and takes writes again; point the application back at it.\n"
                     : "\nDONE: the target has everything, verified at the switch moment; point "
                       "the application at it.\n";
  } else if (!unverified.empty()) {
    text += "\nNOT VERIFIED: " + unverified +
            (rollback ? " switched back to the old source" : " switched to the target") +
            ", but its verification at the switch moment failed (see above); databases that "
            "did not switch keep replicating.\n";
  } else {
    text += rollback ? "\nINCOMPLETE: see above; the target stays the primary of the others.\n"
                     : "\nINCOMPLETE: see above; replication of the others goes on.\n";
  }
  return text;
}

nlohmann::json ToJson(const CutoverOutcome& outcome, const char* format) {
  nlohmann::json dbs = nlohmann::json::array();
  for (const auto& db : outcome.databases) {
    nlohmann::json verification = nullptr;
    if (db.verification) verification = VerifyToJson({*db.verification})["databases"][0];
    dbs.push_back({{"dbname", db.name},
                   {"target_dbname", db.target_name},
                   {"status", db.state},
                   {"error", NullIfEmpty(db.error)},
                   {"hint", NullIfEmpty(db.hint)},
                   {"switched", db.switched},
                   {"writes_stopped_seconds", db.writes_stopped_seconds},
                   {"window", PhasesJson(db.window)},
                   {"after_switch", PhasesJson(db.after)},
                   {"undo", NullIfEmpty(db.undo)},
                   {"tables_recopied", db.tables_recopied},
                   {"append_only", AppendOnlyJson(db.append_only)},
                   {"sequences", db.sequences},
                   {"removed", db.removed},
                   {"rollback_kept", db.rollback_kept},
                   {"rollback_options", NullIfEmpty(db.rollback_options)},
                   {"verification", verification}});
  }
  return {{"format", format}, {"ok", outcome.ok()}, {"databases", dbs}};
}

}  // namespace

std::string RenderCutoverText(const CutoverOutcome& outcome) { return RenderText(outcome, false); }

nlohmann::json CutoverToJson(const CutoverOutcome& outcome) {
  return ToJson(outcome, "pgcourier.cutover/1");
}

std::string RenderRollbackText(const CutoverOutcome& outcome) { return RenderText(outcome, true); }

nlohmann::json RollbackToJson(const CutoverOutcome& outcome) {
  return ToJson(outcome, "pgcourier.rollback/1");
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

#include "report/sync_schema_report.h"

#include <fmt/format.h>

#include <string>
#include <vector>

namespace pgcourier {
namespace {

nlohmann::json NullIfEmpty(const std::string& s) {
  return s.empty() ? nlohmann::json() : nlohmann::json(s);
}

nlohmann::json DriftJson(const std::vector<SchemaDrift>& drift) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& d : drift) {
    out.push_back({{"kind", Name(d.kind)},
                   {"table", d.table},
                   {"detail", d.detail},
                   {"target_ddl", NullIfEmpty(d.target_ddl)},
                   {"source_ddl", NullIfEmpty(d.source_ddl)},
                   {"additive", d.additive}});
  }
  return out;
}

}  // namespace

std::string RenderSyncSchemaText(const SyncSchemaOutcome& outcome) {
  std::string out;
  for (const auto& db : outcome.databases) {
    if (db.drift.empty()) {
      out += fmt::format("{}: the schemas match\n", db.name);
    } else {
      out += fmt::format("{}: {} difference(s)\n", db.name, db.drift.size());
      for (const auto& d : db.drift) {
        out += "  " + d.detail + (d.additive ? "" : " (not applied by --apply)") + "\n";
        if (!d.target_ddl.empty()) out += "    on the target: " + d.target_ddl + "\n";
        if (!d.source_ddl.empty()) out += "    on the source: " + d.source_ddl + "\n";
      }
    }
    for (const auto& a : db.applied) out += "  applied on the " + a + "\n";
    if (outcome.applied && db.healthy) {
      out += "  the subscription's workers run without new errors\n";
    }
    if (!db.error.empty()) out += "  error: " + db.error + "\n";
    if (!db.hint.empty()) out += "  -> " + db.hint + "\n";
  }
  out += "\n";
  if (outcome.ok()) {
    out += outcome.applied ? "DONE: the target's schema matches what replication needs\n"
                           : "DONE: nothing to change\n";
  } else if (!outcome.applied) {
    out +=
        "INCOMPLETE: run the statements above, or pgcourier sync-schema --apply for the "
        "additive ones\n";
  } else {
    out += "INCOMPLETE: see the errors and the statements left above\n";
  }
  return out;
}

nlohmann::json SyncSchemaToJson(const SyncSchemaOutcome& outcome) {
  nlohmann::json databases = nlohmann::json::array();
  for (const auto& db : outcome.databases) {
    databases.push_back({{"dbname", db.name},
                         {"target_dbname", db.target_name},
                         {"drift", DriftJson(db.drift)},
                         {"applied", db.applied},
                         {"left", DriftJson(db.left)},
                         {"healthy", db.healthy},
                         {"error", NullIfEmpty(db.error)},
                         {"hint", NullIfEmpty(db.hint)}});
  }
  return {{"format", "pgcourier.sync-schema/1"},
          {"ok", outcome.ok()},
          {"applied", outcome.applied},
          {"databases", databases}};
}

}  // namespace pgcourier

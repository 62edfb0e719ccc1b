#include "report/verify_report.h"

#include <fmt/format.h>

#include <algorithm>

namespace pgcourier {
namespace {

// Names listed per schema kind before "and N more".
constexpr size_t kMaxNamesShown = 10;
constexpr size_t kMaxNameWidth = 60;

std::string Rows(int64_t rows) { return rows < 0 ? "-" : std::to_string(rows); }

std::string SequenceValue(const std::optional<int64_t>& value, bool read) {
  if (!read) return "-";
  return value ? std::to_string(*value) : "not called";
}

std::string TableVerdict(const TableVerification& t) {
  if (!t.error.empty()) return t.error;
  if (t.source_rows != t.target_rows) return "row count differs";
  if (t.source_checksum != t.target_checksum) return "checksum differs";
  return t.counts_only ? "ok (row count; contents not compared)" : "ok";
}

std::string TableResult(const TableVerification& t) {
  if (!t.partition_tree) return TableVerdict(t);
  return TableVerdict(t) + " (whole partition tree, compared at its root)";
}

std::string NameList(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < kMaxNamesShown; ++i) {
    if (i > 0) out += ", ";
    out += names[i];
  }
  if (names.size() > kMaxNamesShown) {
    out += fmt::format(" and {} more", names.size() - kMaxNamesShown);
  }
  return out;
}

// A property's value in the text report: "(none)" when absent, long ones
// cut (the JSON has them whole).
std::string PropertyValue(const std::string& value) {
  constexpr size_t kMaxValueWidth = 40;
  if (value.empty()) return "(none)";
  if (value.size() <= kMaxValueWidth) return value;
  return value.substr(0, kMaxValueWidth - 3) + "...";
}

// Left-out properties are always listed: something did not arrive.
bool Shown(const PropertyVerification& p, bool show_matches) {
  return show_matches || !p.match() || !p.left_out.empty();
}

std::string PropertyResult(const PropertyVerification& p) {
  if (!p.left_out.empty()) return "left out: " + p.left_out;
  return p.match() ? "ok" : "differs";
}

void RenderProperties(const DatabaseVerification& db, bool show_matches, std::string& out) {
  bool any = std::any_of(db.properties.begin(), db.properties.end(),
                         [&](const PropertyVerification& p) { return Shown(p, show_matches); });
  if (!any) return;
  size_t width = 8;
  size_t source_width = 6;
  size_t target_width = 6;
  for (const auto& p : db.properties) {
    if (!Shown(p, show_matches)) continue;
    width = std::max(width, p.property.size());
    source_width = std::max(source_width, PropertyValue(p.source_value).size());
    target_width = std::max(target_width, PropertyValue(p.target_value).size());
  }
  width = std::min(width, kMaxNameWidth);
  auto line = [&](const std::string& name, const std::string& source, const std::string& target,
                  const std::string& result) {
    out += fmt::format("  {:<{}}  {:<{}}  {:<{}}  {}\n", name, width, source, source_width, target,
                       target_width, result);
  };
  line("PROPERTY", "SOURCE", "TARGET", "RESULT");
  for (const auto& p : db.properties) {
    if (!Shown(p, show_matches)) continue;
    line(p.property, PropertyValue(p.source_value), PropertyValue(p.target_value),
         PropertyResult(p));
  }
}

std::string Plural(size_t n, const char* one, const char* many) {
  return fmt::format("{} {}", n, n == 1 ? one : many);
}

void RenderDatabase(const DatabaseVerification& db, bool show_matches, bool heading,
                    std::string& out) {
  if (heading) {
    out += db.source_database == db.target_database
               ? db.source_database + "\n"
               : db.source_database + " -> " + db.target_database + "\n";
  }

  size_t width = 8;
  for (const auto& t : db.tables) {
    if (show_matches || !t.match()) width = std::max(width, t.schema.size() + 1 + t.name.size());
  }
  for (const auto& s : db.sequences) {
    if (show_matches || !s.match()) width = std::max(width, s.schema.size() + 1 + s.name.size());
  }
  for (const auto& k : db.schema) width = std::max(width, k.kind.size());
  width = std::min(width, kMaxNameWidth);

  auto shown = [&](bool match) { return show_matches || !match; };
  auto header = [&](const char* what, const char* source, const char* target) {
    out += fmt::format("  {:<{}}  {:>12}  {:>12}  {}\n", what, width, source, target, "RESULT");
  };

  bool any = std::any_of(db.tables.begin(), db.tables.end(),
                         [&](const TableVerification& t) { return shown(t.match()); });
  if (any) {
    header("TABLE", "SOURCE ROWS", "TARGET ROWS");
    for (const auto& t : db.tables) {
      if (!shown(t.match())) continue;
      out += fmt::format("  {:<{}}  {:>12}  {:>12}  {}\n", t.schema + "." + t.name, width,
                         Rows(t.source_rows), Rows(t.target_rows),
                         t.extension.empty()
                             ? TableResult(t)
                             : TableResult(t) + " (" + t.extension + " configuration rows)");
    }
  }

  any = std::any_of(db.sequences.begin(), db.sequences.end(),
                    [&](const SequenceVerification& s) { return shown(s.match()); });
  if (any) {
    header("SEQUENCE", "SOURCE VALUE", "TARGET VALUE");
    for (const auto& s : db.sequences) {
      if (!shown(s.match())) continue;
      bool source_read = s.error.rfind("source: ", 0) != 0;
      bool target_read = s.error.empty();
      std::string verdict = !s.error.empty() ? s.error : (s.match() ? "ok" : "value differs");
      out += fmt::format("  {:<{}}  {:>12}  {:>12}  {}\n", s.schema + "." + s.name, width,
                         SequenceValue(s.source_last_value, source_read),
                         SequenceValue(s.target_last_value, target_read), verdict);
    }
  }

  any = std::any_of(db.schema.begin(), db.schema.end(),
                    [&](const SchemaVerification& k) { return shown(k.match()); });
  if (any) {
    header("OBJECTS", "SOURCE", "TARGET");
    for (const auto& k : db.schema) {
      if (!shown(k.match())) continue;
      std::string verdict = "ok";
      if (!k.match()) {
        verdict.clear();
        if (!k.missing_on_target.empty()) {
          verdict = fmt::format("{} missing on the target", k.missing_on_target.size());
        }
        if (!k.extra_on_target.empty()) {
          if (!verdict.empty()) verdict += ", ";
          verdict += fmt::format("{} extra on the target", k.extra_on_target.size());
        }
      }
      out += fmt::format("  {:<{}}  {:>12}  {:>12}  {}\n", k.kind, width, k.source_count,
                         k.target_count, verdict);
      if (!k.missing_on_target.empty()) {
        out += fmt::format("      missing: {}\n", NameList(k.missing_on_target));
      }
      if (!k.extra_on_target.empty()) {
        out += fmt::format("      extra:   {}\n", NameList(k.extra_on_target));
      }
    }
  }

  RenderProperties(db, show_matches, out);

  int mismatches = db.Mismatches();
  const auto counted =
      static_cast<size_t>(std::count_if(db.tables.begin(), db.tables.end(),
                                        [](const TableVerification& t) { return t.counts_only; }));
  out += fmt::format("  {}: {}, {}, {} verified: {}{}\n", db.source_database,
                     Plural(db.tables.size(), "table", "tables"),
                     Plural(db.sequences.size(), "sequence", "sequences"),
                     Plural(db.schema.size(), "object kind", "object kinds"),
                     mismatches == 0 ? "OK" : Plural(mismatches, "mismatch", "mismatches"),
                     counted == 0 ? ""
                                  : fmt::format(" ({}: row counts only, contents NOT compared)",
                                                Plural(counted, "table", "tables")));
}

nlohmann::json OptionalInt(const std::optional<int64_t>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json();
}

nlohmann::json NullIfEmpty(const std::string& s) {
  return s.empty() ? nlohmann::json() : nlohmann::json(s);
}

}  // namespace

std::string RenderVerifyText(const std::vector<DatabaseVerification>& databases,
                             bool show_matches) {
  std::string out;
  size_t tables = 0;
  size_t sequences = 0;
  int mismatches = 0;
  size_t bad_databases = 0;
  for (const auto& db : databases) {
    if (!out.empty()) out += "\n";
    RenderDatabase(db, show_matches, true, out);
    tables += db.tables.size();
    sequences += db.sequences.size();
    mismatches += db.Mismatches();
    if (!db.ok()) ++bad_databases;
  }
  out += "\n";
  if (mismatches == 0) {
    out +=
        fmt::format("VERIFIED: {}, {}, {}: source and target match.\n",
                    Plural(databases.size(), "database", "databases"),
                    Plural(tables, "table", "tables"), Plural(sequences, "sequence", "sequences"));
  } else {
    out += fmt::format("MISMATCH: {} in {} of {}.\n", Plural(mismatches, "mismatch", "mismatches"),
                       bad_databases, Plural(databases.size(), "database", "databases"));
  }
  return out;
}

std::string RenderVerifyDatabaseText(const DatabaseVerification& database) {
  std::string out;
  RenderDatabase(database, false, false, out);
  return out;
}

nlohmann::json VerifyToJson(const std::vector<DatabaseVerification>& databases) {
  nlohmann::json dbs = nlohmann::json::array();
  bool all_ok = true;
  for (const auto& db : databases) {
    nlohmann::json tables = nlohmann::json::array();
    for (const auto& t : db.tables) {
      tables.push_back(
          {{"schema", t.schema},
           {"name", t.name},
           {"source_rows", t.source_rows < 0 ? nlohmann::json() : nlohmann::json(t.source_rows)},
           {"target_rows", t.target_rows < 0 ? nlohmann::json() : nlohmann::json(t.target_rows)},
           {"source_checksum", NullIfEmpty(t.source_checksum)},
           {"target_checksum", NullIfEmpty(t.target_checksum)},
           {"match", t.match()},
           {"contents_compared", !t.counts_only},
           {"partition_tree", t.partition_tree},
           {"error", NullIfEmpty(t.error)}});
      if (!t.extension.empty()) tables.back()["extension"] = t.extension;
    }
    nlohmann::json sequences = nlohmann::json::array();
    for (const auto& s : db.sequences) {
      sequences.push_back({{"schema", s.schema},
                           {"name", s.name},
                           {"source_last_value", OptionalInt(s.source_last_value)},
                           {"target_last_value", OptionalInt(s.target_last_value)},
                           {"match", s.match()},
                           {"error", NullIfEmpty(s.error)}});
    }
    nlohmann::json schema = nlohmann::json::array();
    for (const auto& k : db.schema) {
      schema.push_back({{"kind", k.kind},
                        {"source_count", k.source_count},
                        {"target_count", k.target_count},
                        {"missing_on_target", k.missing_on_target},
                        {"extra_on_target", k.extra_on_target},
                        {"match", k.match()}});
    }
    nlohmann::json properties = nlohmann::json::array();
    for (const auto& p : db.properties) {
      properties.push_back({{"property", p.property},
                            {"source", NullIfEmpty(p.source_value)},
                            {"target", NullIfEmpty(p.target_value)},
                            {"match", p.match()},
                            {"left_out", NullIfEmpty(p.left_out)}});
    }
    all_ok = all_ok && db.ok();
    dbs.push_back({{"source_database", db.source_database},
                   {"target_database", db.target_database},
                   {"ok", db.ok()},
                   {"mismatches", db.Mismatches()},
                   {"tables", tables},
                   {"sequences", sequences},
                   {"schema", schema},
                   {"properties", properties}});
  }
  return {{"format", "pgcourier.verify/1"}, {"ok", all_ok}, {"databases", dbs}};
}

}  // namespace pgcourier

#include "report/check_report.h"

#include <fmt/format.h>

#include <algorithm>

#include "util/size.h"

namespace pgcourier {
namespace {

const char* Color(CheckStatus status) {
  switch (status) {
    case CheckStatus::kPass:
      return "\033[32m";
    case CheckStatus::kWarn:
      return "\033[33m";
    case CheckStatus::kFail:
      return "\033[31m";
  }
  return "";
}

std::string ServerLine(const char* label, const ServerSummary& s) {
  if (!s.reachable) return fmt::format("  {:<7} {}  (not reachable)\n", label, s.display);
  return fmt::format("  {:<7} {}  PostgreSQL {}, user {}{}, {}\n", label, s.display, s.version,
                     s.user, s.superuser ? " (superuser)" : "",
                     !s.encrypted            ? std::string("not encrypted")
                     : s.tls_version.empty() ? std::string("encrypted")
                                             : "encrypted (" + s.tls_version + ")");
}

nlohmann::json ServerJson(const ServerSummary& s) {
  return {
      {"display", s.display},
      {"reachable", s.reachable},
      {"version", s.version},
      {"major", s.major},
      {"encrypted", s.encrypted},
      {"user", s.user},
      {"superuser", s.superuser},
      {"tls_version", s.tls_version.empty() ? nlohmann::json() : nlohmann::json(s.tls_version)}};
}

}  // namespace

std::string RenderCheckText(const CheckReport& report, const TextStyle& style) {
  std::string out;
  out += ServerLine("source", report.source);
  out += ServerLine("target", report.target);
  if (!report.tools.pg_dump.empty()) {
    out += fmt::format("  {:<7} {} (version {})\n", "pg_dump", report.tools.pg_dump,
                       report.tools.major);
  }
  out += "\n";

  size_t code_width = 4;
  size_t object_width = 6;
  for (const auto& item : report.items) {
    if (!style.show_passes && item.status == CheckStatus::kPass) continue;
    code_width = std::max(code_width, item.code.size());
    object_width = std::min<size_t>(std::max(object_width, item.object.size()), 40);
  }
  out += fmt::format("{:<6}{:<{}}  {:<{}}  {}\n", "", "CHECK", code_width, "OBJECT", object_width,
                     "DETAIL");
  for (const auto& item : report.items) {
    if (!style.show_passes && item.status == CheckStatus::kPass) continue;
    std::string status = CheckStatusName(item.status);
    if (style.color) status = std::string(Color(item.status)) + status + "\033[0m";
    out += fmt::format("{}  {:<{}}  {:<{}}  {}\n", status, item.code, code_width, item.object,
                       object_width, item.detail);
    if (!item.hint.empty() && item.status != CheckStatus::kPass) {
      out += fmt::format("{:<6}{:<{}}  -> {}\n", "", "", code_width, item.hint);
    }
  }

  if (!report.databases.empty()) {
    out += "\nDatabases to move:\n";
    size_t name_width = 4;
    for (const auto& db : report.databases) {
      std::string shown = db.name == db.target_name ? db.name : db.name + " -> " + db.target_name;
      name_width = std::max(name_width, shown.size());
    }
    for (const auto& db : report.databases) {
      std::string shown = db.name == db.target_name ? db.name : db.name + " -> " + db.target_name;
      std::string size = db.size_bytes >= 0 ? FormatBytes(db.size_bytes) : "?";
      std::string method = Name(db.method);
      if (!db.reason.empty()) method += " (" + db.reason + ")";
      out += fmt::format("  {:<{}}  {:>10}  {}\n", shown, name_width, size, method);
    }
  }

  int fails = report.Count(CheckStatus::kFail);
  int warns = report.Count(CheckStatus::kWarn);
  int passes = report.Count(CheckStatus::kPass);
  out += "\n";
  if (fails > 0) {
    out += fmt::format(
        "BLOCKED: {} check(s) failed, {} warning(s), {} passed. Fix the failures "
        "above before migrating.\n",
        fails, warns, passes);
  } else {
    out += fmt::format("READY: {} passed, {} warning(s).\n", passes, warns);
  }
  return out;
}

nlohmann::json CheckReportToJson(const CheckReport& report) {
  nlohmann::json checks = nlohmann::json::array();
  for (const auto& item : report.items) {
    checks.push_back({{"code", item.code},
                      {"status", CheckStatusName(item.status)},
                      {"object", item.object},
                      {"detail", item.detail},
                      {"hint", item.hint}});
  }
  nlohmann::json databases = nlohmann::json::array();
  for (const auto& db : report.databases) {
    databases.push_back(
        {{"name", db.name},
         {"target_name", db.target_name},
         {"method", Name(db.method)},
         {"reason", db.reason.empty() ? nlohmann::json() : nlohmann::json(db.reason)},
         {"exists_on_target", db.exists_on_target},
         {"size_bytes", db.size_bytes}});
  }
  nlohmann::json tools = nullptr;
  if (!report.tools.pg_dump.empty()) {
    tools = {{"pg_dump", report.tools.pg_dump},
             {"pg_restore", report.tools.pg_restore},
             {"major", report.tools.major}};
  }
  return {{"format", "pgcourier.check/1"},
          {"verdict", report.blocked() ? "blocked" : "ready"},
          {"method", Name(report.method)},
          {"source", ServerJson(report.source)},
          {"target", ServerJson(report.target)},
          {"tools", tools},
          {"databases", databases},
          {"checks", checks},
          {"summary",
           {{"pass", report.Count(CheckStatus::kPass)},
            {"warn", report.Count(CheckStatus::kWarn)},
            {"fail", report.Count(CheckStatus::kFail)}}}};
}

}  // namespace pgcourier

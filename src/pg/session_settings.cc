#include "pg/session_settings.h"

#include <cctype>

#include "pg/quote.h"

namespace pgcourier {
namespace {

std::string CleanName(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '.') out.push_back(c);
  }
  return out;
}

void AppendEscaped(std::string& out, std::string_view text) {
  for (char c : text) {
    if (c == ' ' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
}

}  // namespace

std::vector<SessionSetting> PinnedFormatSettings() {
  return {{"DateStyle", "ISO, YMD"},   {"IntervalStyle", "postgres"},
          {"extra_float_digits", "3"}, {"bytea_output", "hex"},
          {"TimeZone", "UTC"},         {"standard_conforming_strings", "on"},
          {"xmloption", "content"},    {"lc_monetary", "C"}};
}

std::string StartupOptions(const std::vector<SessionSetting>& settings, std::string_view existing) {
  std::string out(existing);
  for (const SessionSetting& s : settings) {
    if (!out.empty()) out.push_back(' ');
    out += "-c ";
    AppendEscaped(out, CleanName(s.name));
    out.push_back('=');
    AppendEscaped(out, s.value);
  }
  return out;
}

std::string SetConfigSql(const std::vector<SessionSetting>& settings) {
  std::string sql;
  for (const SessionSetting& s : settings) {
    sql += sql.empty() ? "SELECT " : ", ";
    sql += "pg_catalog.set_config(" + QuoteLiteral(CleanName(s.name)) + ", " +
           QuoteLiteral(s.value) + ", false)";
  }
  return sql;
}

}  // namespace pgcourier

#include "pg/setting_entry.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "pg/quote.h"

namespace pgcourier {
namespace {

// GUC_LIST_QUOTE settings of the server.
constexpr std::array<std::string_view, 6> kListQuoteSettings = {
    "local_preload_libraries",  "search_path",      "session_preload_libraries",
    "shared_preload_libraries", "temp_tablespaces", "unix_socket_directories"};

bool IsListQuoteSetting(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return std::find(kListQuoteSettings.begin(), kListQuoteSettings.end(), lower) !=
         kListQuoteSettings.end();
}

// Splits a list setting's stored value the way the server's SplitGUCList
// does: comma-separated elements, optionally double-quoted ("" inside quotes
// is one "), whitespace around them ignored. std::nullopt when malformed.
std::optional<std::vector<std::string>> SplitSettingList(std::string_view value) {
  std::vector<std::string> out;
  size_t i = 0;
  auto skip_space = [&] {
    while (i < value.size() && std::isspace(static_cast<unsigned char>(value[i])) != 0) ++i;
  };
  skip_space();
  if (i == value.size()) return out;  // the empty list
  while (true) {
    std::string element;
    if (value[i] == '"') {
      ++i;
      while (true) {
        if (i == value.size()) return std::nullopt;  // no closing quote
        if (value[i] == '"') {
          if (i + 1 < value.size() && value[i + 1] == '"') {
            element.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        element.push_back(value[i++]);
      }
    } else {
      while (i < value.size() && value[i] != ',' &&
             std::isspace(static_cast<unsigned char>(value[i])) == 0) {
        element.push_back(value[i++]);
      }
      if (element.empty()) return std::nullopt;  // an empty unquoted element
    }
    out.push_back(std::move(element));
    skip_space();
    if (i == value.size()) return out;
    if (value[i] != ',') return std::nullopt;
    ++i;
    skip_space();
    if (i == value.size()) return std::nullopt;  // a trailing comma
  }
}

}  // namespace

std::string SettingName(std::string_view entry) {
  return std::string(entry.substr(0, entry.find('=')));
}

std::optional<std::string> SettingAssignment(std::string_view config_entry) {
  size_t eq = config_entry.find('=');
  if (eq == std::string_view::npos || eq == 0) return std::nullopt;
  std::string_view name = config_entry.substr(0, eq);
  std::string_view value = config_entry.substr(eq + 1);
  std::string out = QuoteIdent(name) + " TO ";
  std::optional<std::vector<std::string>> elements;
  if (IsListQuoteSetting(name)) elements = SplitSettingList(value);
  if (!elements || elements->empty()) return out + QuoteLiteral(value);
  for (size_t i = 0; i < elements->size(); ++i) {
    if (i > 0) out += ", ";
    out += QuoteLiteral((*elements)[i]);
  }
  return out;
}

std::string SettingValueForComparison(std::string_view config_entry) {
  size_t eq = config_entry.find('=');
  if (eq == std::string_view::npos) return std::string(config_entry);
  std::string_view value = config_entry.substr(eq + 1);
  if (!IsListQuoteSetting(config_entry.substr(0, eq))) return std::string(value);
  std::optional<std::vector<std::string>> elements = SplitSettingList(value);
  if (!elements) return std::string(value);
  std::string out;
  for (size_t i = 0; i < elements->size(); ++i) {
    if (i > 0) out += ", ";
    out += DisplayIdent((*elements)[i]);
  }
  return out;
}

}  // namespace pgcourier

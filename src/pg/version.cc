#include "pg/version.h"

#include <cctype>
#include <regex>

namespace pgcourier {

int MajorFromVersionNum(int version_num) { return version_num / 10000; }

std::optional<int> MajorFromVersionText(const std::string& text) {
  static const std::regex kVersion(R"((\d+)(\.\d+)?(devel|beta\d*|rc\d*)?)");
  std::smatch match;
  // The first number that is followed by a dot or stands alone after
  // "PostgreSQL)" or at the start.
  auto begin = text.cbegin();
  while (std::regex_search(begin, text.cend(), match, kVersion)) {
    int major = std::stoi(match[1].str());
    if (major >= 7 && major < 100) return major;
    begin = match.suffix().first;
  }
  return std::nullopt;
}

int CompareExtensionVersions(const std::string& a, const std::string& b) {
  size_t i = 0;
  size_t j = 0;
  while (i < a.size() || j < b.size()) {
    bool a_digit = i < a.size() && std::isdigit(static_cast<unsigned char>(a[i])) != 0;
    bool b_digit = j < b.size() && std::isdigit(static_cast<unsigned char>(b[j])) != 0;
    if (a_digit && b_digit) {
      size_t i_end = i;
      size_t j_end = j;
      while (i_end < a.size() && std::isdigit(static_cast<unsigned char>(a[i_end])) != 0) ++i_end;
      while (j_end < b.size() && std::isdigit(static_cast<unsigned char>(b[j_end])) != 0) ++j_end;
      unsigned long long x = std::stoull(a.substr(i, std::min<size_t>(i_end - i, 18)));
      unsigned long long y = std::stoull(b.substr(j, std::min<size_t>(j_end - j, 18)));
      if (x != y) return x < y ? -1 : 1;
      i = i_end;
      j = j_end;
      continue;
    }
    if (i >= a.size()) return -1;
    if (j >= b.size()) return 1;
    if (a[i] != b[j]) return a[i] < b[j] ? -1 : 1;
    ++i;
    ++j;
  }
  return 0;
}

}  // namespace pgcourier

#include "util/size.h"

#include <fmt/format.h>

#include <array>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <string_view>

namespace pgcourier {

Result<int64_t> ParseByteSize(const std::string& text) {
  const char* begin = text.c_str();
  char* end = nullptr;
  double number = std::strtod(begin, &end);
  if (end == begin || number < 0 || !std::isfinite(number)) {
    return Status(StatusCode::kInvalidArgument, "'" + text + "' is not a size",
                  "write a size such as 500MB, 50GB or 2TB");
  }
  std::string unit(end);
  while (!unit.empty() && std::isspace(static_cast<unsigned char>(unit.front())) != 0) {
    unit.erase(0, 1);
  }
  std::string lower;
  for (char c : unit)
    lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (!lower.empty() && lower.back() == 'b') lower.pop_back();
  if (!lower.empty() && lower.back() == 'i') lower.pop_back();
  double factor = 0;
  if (lower.empty()) {
    factor = 1;
  } else if (lower == "k") {
    factor = 1024.0;
  } else if (lower == "m") {
    factor = 1024.0 * 1024;
  } else if (lower == "g") {
    factor = 1024.0 * 1024 * 1024;
  } else if (lower == "t") {
    factor = 1024.0 * 1024 * 1024 * 1024;
  } else if (lower == "p") {
    factor = 1024.0 * 1024 * 1024 * 1024 * 1024;
  } else {
    return Status(StatusCode::kInvalidArgument,
                  "unknown size unit '" + unit + "' in '" + text + "'", "use B, kB, MB, GB or TB");
  }
  return static_cast<int64_t>(number * factor);
}

std::string FormatBytes(int64_t bytes) {
  static constexpr std::array<std::string_view, 6> kUnits = {"bytes", "kB", "MB", "GB", "TB", "PB"};
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (std::fabs(value) >= 1024 && unit + 1 < kUnits.size()) {
    value /= 1024;
    ++unit;
  }
  if (unit == 0) return fmt::format("{} {}", bytes, kUnits[0]);
  return fmt::format("{:.1f} {}", value, kUnits[unit]);
}

}  // namespace pgcourier

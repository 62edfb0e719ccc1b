#include "util/pattern.h"

#include <fnmatch.h>

namespace pgcourier {

bool MatchesPattern(const std::string& pattern, const std::string& name) {
  return ::fnmatch(pattern.c_str(), name.c_str(), 0) == 0;
}

bool MatchesAnyPattern(const std::vector<std::string>& patterns, const std::string& name) {
  for (const auto& p : patterns) {
    if (MatchesPattern(p, name)) return true;
  }
  return false;
}

}  // namespace pgcourier

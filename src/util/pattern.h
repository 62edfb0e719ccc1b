// Name patterns for --databases, --exclude-database and later table filters:
// shell-style globs (`*`, `?`, `[...]`), matched against whole names.
#pragma once

#include <string>
#include <vector>

namespace pgcourier {

bool MatchesPattern(const std::string& pattern, const std::string& name);
bool MatchesAnyPattern(const std::vector<std::string>& patterns, const std::string& name);

}  // namespace pgcourier

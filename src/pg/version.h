// PostgreSQL version numbers as servers and tools report them.
#pragma once

#include <optional>
#include <string>

namespace pgcourier {

// server_version_num (e.g. 150018) -> major (15). Before 10 the major had two
// parts (90624 -> 9.6), returned as 9 (pgcourier needs 10+ for replication
// and compares majors only against 10+ anyway).
int MajorFromVersionNum(int version_num);
// "15.18", "17.10 (Debian 17.10-1)", "pg_dump (PostgreSQL) 16.4" -> the major.
std::optional<int> MajorFromVersionText(const std::string& text);
// Extension versions: "1.10" > "1.9"; numeric parts compare as numbers, the
// rest as text. Returns <0, 0, >0.
int CompareExtensionVersions(const std::string& a, const std::string& b);

}  // namespace pgcourier

// Entries of pg_db_role_setting.setconfig ("name=value"), as ALTER DATABASE
// and ALTER ROLE store them, turned back into SQL the way pg_dump and
// pg_dumpall write them.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgcourier {

// The database setting a move never copies, nor compares: a source made
// read-only for the move (by its owner, or by `cutover --stop-source-writes`)
// would leave the target read-only.
inline constexpr const char* kReadOnlySetting = "default_transaction_read_only";

// The setting's name: the entry up to its first '='.
std::string SettingName(std::string_view entry);

// The "name TO value[, ...]" part of ALTER ROLE/DATABASE ... SET for one
// entry: settings whose value is a list of quoted names (search_path,
// temp_tablespaces, *_preload_libraries, unix_socket_directories) are split
// into one literal per element; any other value is one literal. std::nullopt
// when the entry has no '='.
std::optional<std::string> SettingAssignment(std::string_view config_entry);

// The entry's value as it is compared between servers: for the list
// settings above, the parsed elements, each quoted as an identifier where it
// needs to be, joined by ", " (so `app, public` and one quoted name
// `"app, public"` differ, however either was spelled); any other value as
// stored.
std::string SettingValueForComparison(std::string_view config_entry);

}  // namespace pgcourier

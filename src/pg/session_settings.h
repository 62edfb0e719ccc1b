// The settings of a session (search_path, value formats, timeouts, ...) as
// (name, value) pairs, and the two ways they reach the server: the startup
// packet's `options` (`-c name=value`), which ends with the session whatever
// sits between pgcourier and the server, and set_config() calls, the
// fallback for a pooler that refuses or drops `options`.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pgcourier {

struct SessionSetting {
  std::string name;   // a plain GUC name, e.g. "lock_timeout"
  std::string value;  // as SET would take it unquoted, e.g. "ISO, YMD", "" for search_path
};

// The settings that decide how a value is written as text and read back
// (COPY, query results, literals): DateStyle ISO, IntervalStyle postgres,
// extra_float_digits 3 (exact floats), bytea_output hex, TimeZone UTC,
// standard_conforming_strings on, xmloption content, lc_monetary C. Every
// session of pgcourier sends them as it connects (ConnectOptions::
// pin_formats): a source whose database or role says
// `extra_float_digits = 0` or `DateStyle = 'SQL, DMY'` would otherwise write
// text the target reads differently, or refuses. client_encoding is not
// among them: a session's default is its database's encoding, and
// Connection::Connect sets it only where a role or database setting says
// otherwise.
std::vector<SessionSetting> PinnedFormatSettings();

// The value of libpq's `options` keyword that sets `settings` at session
// start: `-c name=value` each, spaces and backslashes escaped with a
// backslash as libpq requires. Appended to `existing` (the user's own
// options) so that pgcourier's come last and win.
std::string StartupOptions(const std::vector<SessionSetting>& settings,
                           std::string_view existing = {});

// One statement that sets `settings` for the session:
// `SELECT pg_catalog.set_config('name', 'value', false), ...`; empty when
// there are none. Names are kept to letters, digits, '_' and '.'.
std::string SetConfigSql(const std::vector<SessionSetting>& settings);

}  // namespace pgcourier

// The properties of a database that live outside it, in the server's shared
// catalogs, which pg_dump writes only with --create: its settings, the
// settings of roles in it, its comment, its connection limit and its grants.
#pragma once

#include <functional>
#include <string>

#include "pg/connection.h"
#include "pg/setting_entry.h"

namespace pgcourier {

struct DatabasePropertiesSpec {
  std::string source_name;  // the database on the source
  std::string target_name;  // the database on the target
  bool grants = false;      // --preserve-acl: the database's grants too
};

// Gives `spec.target_name` the properties `spec.source_name` has on the
// source: ALTER DATABASE ... SET for each of its settings (list values such as
// search_path as one literal per element; never kReadOnlySetting), ALTER ROLE ... IN DATABASE ...
// SET for the settings of roles present on the target, COMMENT ON DATABASE, CONNECTION LIMIT and,
// with `spec.grants`, its grants (to roles present on the target). `source` is a session on the
// source server (at the move's snapshot, when it has one), `target` one on the target server; both
// may be in any database. Applied after the data, so that no setting (a session_preload_libraries,
// a connection limit) stands in the way of the move's own sessions. What the target refuses, and
// what is left out (the read-only setting, roles missing on the target), is passed to `note` (may
// be empty), not an error: verification finds what did not arrive. Errors
// are failed reads and lost connections.
Status ApplyDatabaseProperties(Connection& source, Connection& target,
                               const DatabasePropertiesSpec& spec,
                               const std::function<void(const std::string&)>& note);

}  // namespace pgcourier

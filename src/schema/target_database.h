// The target database itself: created like the source's (encoding, locale,
// locale provider), or dropped when a run that made it has to begin again.
// Its settings, comment, connection limit and grants come after the data
// (schema/database_properties.h).
#pragma once

#include <functional>
#include <string>

#include "pg/connection.h"

namespace pgcourier {

struct TargetDatabaseSpec {
  std::string source_name;  // the database on the source
  std::string target_name;  // the database to create on the target
};

// Creates `spec.target_name` on `target` (a session in another database of
// the target server) from template0 with the encoding, collation, ctype and
// locale provider of `spec.source_name` on `source` (a session on the source
// server). `before_create` runs right
// before the CREATE DATABASE (to record that the database is the run's own);
// its error stops the creation.
Status CreateTargetDatabase(Connection& source, Connection& target, const TargetDatabaseSpec& spec,
                            const std::function<Status()>& before_create);

// DROP DATABASE IF EXISTS, ending the sessions still connected to it on 13+
// (WITH (FORCE)): those of a killed run go on until they notice their client
// is gone.
Status DropTargetDatabase(Connection& target, const std::string& name);

// Whether the target server has a database of that name.
Result<bool> TargetDatabaseExists(Connection& target, const std::string& name);

}  // namespace pgcourier

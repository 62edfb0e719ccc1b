// Keeping the target's user triggers from firing while a copy loads rows
// that already carry their effects: the source's triggers ran when the rows
// were written there. A BEFORE INSERT trigger would rewrite them (a tsvector
// kept up to date) or refuse them.
//
// The initial copy needs none of this: triggers come with post-data, after
// every table is loaded. Cutover's re-copy of the tables replication does
// not carry (copy/table_copy.h, CopyTable) loads into tables that have them.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "catalog/copy_catalog.h"
#include "pg/connection.h"
#include "util/status.h"

namespace pgcourier {

// How one table's copy keeps its triggers quiet, inside the copy's own
// transaction: nothing is left changed after it commits or rolls back.
struct QuietTriggers {
  // Sent with the copy's BEGIN, before its TRUNCATE: either
  // `SET LOCAL session_replication_role = replica` or one `ALTER TABLE ...
  // DISABLE TRIGGER` per trigger that would fire.
  std::string before;
  // Sent before the COMMIT: puts each disabled trigger back as it was
  // (ENABLE, or ENABLE ALWAYS). Empty with the replica role.
  std::string after;
  // For the output: "session_replication_role = replica", or "user
  // triggers disabled for the copy: a, b". Empty when nothing would fire.
  std::string how;
};

// Per table of `tables` (by TableToCopy::QualifiedName) that has user
// triggers enabled on the target, how to keep them quiet. The replica role
// is used where the target user may set it (a superuser, or on 15+ one
// granted SET on session_replication_role) and no trigger of the table is
// ENABLE REPLICA or ENABLE ALWAYS (those fire under it); otherwise the
// triggers that would fire are disabled, which needs the table's ownership.
Result<std::map<std::string, QuietTriggers>> PlanQuietTriggers(
    Connection& target, const std::vector<TableToCopy>& tables);

}  // namespace pgcourier

// Which entries of a schema archive already exist on the target: after an
// interrupted restore of the post-data section (foreign keys, triggers,
// rules, policies, ...), a resumed run restores only what is missing.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "pg/connection.h"
#include "util/status.h"

namespace pgcourier {

// One line of `pg_restore --list`: the catalog and OID of the object on the
// source, and the rest of the line ("FK CONSTRAINT public orders ...").
struct ArchiveEntry {
  uint32_t catalog = 0;
  uint32_t oid = 0;
  std::string description;
};

// Parses `pg_restore --list` output; lines that name no object are skipped.
std::vector<ArchiveEntry> ParseArchiveList(const std::string& list);

// The (catalog, OID) of each entry of `entries` whose object exists on the
// target under the name it has on the source (read through `source`, at the
// migration's snapshot): constraints, triggers, rules, policies, indexes,
// extended statistics, event triggers and publications. Other kinds
// (comments, grants, ...) are never reported: restoring them again is
// harmless.
Result<std::set<std::pair<uint32_t, uint32_t>>> FindPresentObjects(
    Connection& source, Connection& target, const std::vector<ArchiveEntry>& entries);

}  // namespace pgcourier

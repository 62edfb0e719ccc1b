// The tables of the work directory's catalog (state/store.h), its version
// (PRAGMA user_version) and the upgrades from older versions. Private to
// src/state/.
#pragma once

#include <string>

#include "util/status.h"

struct sqlite3;

namespace pgcourier {

// Reads PRAGMA user_version and whether the file holds any table at all.
Status ReadVersion(sqlite3* db, const std::string& path, int& version, bool& has_tables);

// Fails for a catalog of a newer pgcourier, and for an SQLite file that is
// no pgcourier catalog (version 0 with tables).
Status CheckVersion(const std::string& path, int version, bool has_tables);

// Brings a catalog of `version` (0: empty) to StateStore::kSchemaVersion in
// one transaction. The caller holds the store's lock.
Status UpgradeCatalog(sqlite3* db, const std::string& path, int version);

}  // namespace pgcourier

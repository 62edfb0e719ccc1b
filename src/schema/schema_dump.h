// Schema through pg_dump and pg_restore: the source's schema is dumped once
// (custom format, schema only, at the migration's snapshot) into the work
// directory, then restored in pg_dump's sections: pre-data before the data,
// post-data (indexes, constraints, triggers, ...) after it.
//
// Passwords never go on the command line of these processes: they get a
// connection string without secrets and the password in PGPASSWORD.
#pragma once

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "catalog/object_filter.h"
#include "pg/conninfo.h"
#include "util/cancel.h"
#include "util/status.h"

namespace pgcourier {

struct SchemaTools {
  std::string pg_dump;
  std::string pg_restore;
  const CancelToken* cancel = nullptr;  // stops a running pg_dump/pg_restore
  // pg_dump --lock-wait-timeout: how long it waits for each table's ACCESS
  // SHARE lock before it fails (zero: no limit).
  std::chrono::milliseconds lock_wait_timeout{0};
};

struct RestorePolicy {
  bool preserve_owners = false;  // default: objects owned by the target user
  bool preserve_acl = false;     // default: source GRANTs not applied
};

// pg_dump's arguments that leave out `excluded`'s schemas and tables: one
// --exclude-schema="name" / --exclude-table="schema"."name" per object, the
// exact names in double quotes (embedded ones doubled), in which pg_dump's
// patterns take every character literally (no case folding; `*`, `?`, `.`
// and regular expression characters match themselves).
std::vector<std::string> DumpExclusionArgs(const ResolvedObjectFilter& excluded);

// pg_dump --schema-only --format=custom --snapshot=... into `archive`,
// without the schemas and tables `excluded` names. An empty `snapshot` dumps
// at pg_dump's own snapshot.
Status DumpSchema(const SchemaTools& tools, const ConnInfo& source_db, const std::string& snapshot,
                  const ResolvedObjectFilter& excluded, const std::string& archive);

// What a restore list leaves out.
struct RestoreListFilter {
  std::vector<std::string> extensions;  // provider-only ones, with their comments
  // Publications (pgcourier's own on the source), with their tables,
  // schemas and comments.
  std::vector<std::string> publications;
  // Source OIDs of indexes (pg_class) and constraints (pg_constraint) that
  // pgcourier builds itself as soon as their table's data is in.
  std::set<uint32_t> index_oids;
  std::set<uint32_t> constraint_oids;
  // (catalog, OID) of entries already on the target (a resumed restore).
  std::set<std::pair<uint32_t, uint32_t>> present;
};

// `pg_restore --list` of `archive`.
Result<std::string> ListArchive(const SchemaTools& tools, const std::string& archive);

// Writes a pg_restore list (-L) of the entries of `listing` (ListArchive's
// output) with those `filter` names commented out. Returns the number of
// entries kept.
Result<int> WriteRestoreList(const std::string& listing, const RestoreListFilter& filter,
                             const std::string& list_path);

// pg_restore of one section ("pre-data" or "post-data") into `target_db`:
// pre-data in a single transaction, post-data with `jobs` parallel jobs.
// Stops at the first error, which is returned with pg_restore's message.
Status RestoreSection(const SchemaTools& tools, const ConnInfo& target_db,
                      const std::string& archive, const std::string& list_path,
                      const std::string& section, int jobs, const RestorePolicy& policy);

// The SQL script that pg_restore would run for the entries of `list_path`
// (WriteRestoreList's file): `pg_restore --file=-`, of one `section` or,
// when it is empty, every section, with --no-owner / --no-privileges as
// `policy` says. pg_restore connects to nothing for it.
Result<std::string> RestoreScript(const SchemaTools& tools, const std::string& archive,
                                  const std::string& list_path, const RestorePolicy& policy,
                                  const std::string& section = "");

}  // namespace pgcourier

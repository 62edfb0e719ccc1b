// `pgcourier sync-schema`: the schema changes made on the source while its
// databases replicate (replication/health.h, ReadSchemaDrift), as the DDL
// that repairs them; with `apply`, the additive part run: on the target the
// new columns, tables and partitions, on the source new tables added to
// pgcourier's own publication, then ALTER SUBSCRIPTION ... REFRESH
// PUBLICATION so PostgreSQL copies the new tables. Then it waits (bounded)
// until the subscription's workers stop failing and records their error
// counters as the point from which errors count again.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "replication/health.h"
#include "util/cancel.h"
#include "util/status.h"

namespace pgcourier {

struct SyncSchemaOptions {
  std::string work_dir;
  std::string source;  // optional: the recorded servers, with passwords
  std::string target;
  bool apply = false;
  // How long, after applying, the workers may take to stop failing.
  std::chrono::milliseconds settle_timeout{std::chrono::seconds(60)};
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(30)};
  const CancelToken* cancel = nullptr;
};

struct SyncSchemaDatabase {
  std::string name;
  std::string target_name;
  std::vector<SchemaDrift> drift;    // found (before applying)
  std::vector<std::string> applied;  // statements run, "target: ..." / "source: ..."
  std::vector<SchemaDrift> left;     // not additive: for the user to decide and run
  bool healthy = false;              // after applying: the workers stopped failing
  std::string error;
  std::string hint;
};

struct SyncSchemaOutcome {
  bool applied = false;  // --apply was given
  std::vector<SyncSchemaDatabase> databases;
  // Nothing left to run and nothing failed.
  bool ok() const;
};

Result<SyncSchemaOutcome> SyncSchema(const SyncSchemaOptions& options);

}  // namespace pgcourier

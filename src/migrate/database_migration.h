// The pipeline of one database, as `pgcourier migrate` runs it: snapshot
// (and, for the replication method, publication and slot), target database,
// schema pre-data, the data phase (migrate/data_phase.h) with post-data,
// sequences, materialized views, ANALYZE, verification, then (replication)
// the subscription. Each phase is timed and recorded as a step; a database
// ends "done" (or "syncing") only when its verification found no difference.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "catalog/copy_catalog.h"
#include "catalog/extension_config.h"
#include "catalog/object_filter.h"
#include "copy/snapshot.h"
#include "migrate/options.h"
#include "migrate/outcome.h"
#include "migrate/recorded_run.h"
#include "migrate/resume_plan.h"
#include "migrate/session_pool.h"
#include "migrate/sessions.h"
#include "migrate/work_pool.h"
#include "replication/replication.h"
#include "schema/schema_dump.h"
#include "verify/verifier.h"

namespace pgcourier {

// What every database of a run shares.
struct RunContext {
  const MigrateOptions* options = nullptr;
  const SessionFactory* sessions = nullptr;
  const CheckReport* check = nullptr;
  WorkPool* pool = nullptr;
  SessionPool* session_pool = nullptr;
  // The check's trial dumps kept for the copy (null: none).
  SchemaDumpHandover* schema_dumps = nullptr;
};

class DatabaseMigration {
 public:
  DatabaseMigration(const RunContext& run, DatabaseRecord& record, DatabaseOutcome& outcome,
                    ReplicationNames names);

  Status Run();
  // Removes this database's replication objects, when any exist (a failed or
  // interrupted setup).
  Status RemoveReplication();

 private:
  void Progress(const std::string& phase, const std::string& message, int64_t done = 0,
                int64_t total = 0) const;
  // An event at warning level: something the user may want to act on.
  void Warn(const std::string& phase, const std::string& message) const;
  // Runs `body` as the phase `phase`, timed and recorded as a step.
  Status Phase(const std::string& phase, const std::function<Status()>& body);
  Status ExplainLockTimeout(const Status& status) const;
  Status PrepareResume();

  Result<bool> SchemaRestoredEarlier();
  Status StartOver();
  Status TakeSnapshot();
  Result<std::string> PublishAndCreateSlot(Connection& holder);
  Status ReadCatalogAtSnapshot();
  Status SetReplicaIdentityFull(Connection& holder, const TableToCopy& table);
  Status CreateTarget();
  RestoreListFilter RestoreFilter() const;
  Status RestorePreData();
  Status CopyExtensionData();
  Status CopyData();
  Status PostData();
  Status CopyLargeObjects();
  Status SetSequences();
  Status RefreshMaterializedViews();
  Status AnalyzeRest();
  Status ApplyProperties();
  Status Verify();
  Status FinishDurably();
  // Whether the target server restarted since the data phase began, or
  // since the last time this was asked (its pg_postmaster_start_time
  // changed), read over `target`.
  Result<bool> TargetRestarted(Connection& target);
  Status Subscribe();

  const RunContext run_;
  const MigrateOptions& options_;
  const SessionFactory& sessions_;
  DatabaseRecord& record_;
  DatabaseOutcome& outcome_;
  const ReplicationNames names_;
  const bool replication_;  // the replication method: publication, slot, subscription
  std::string archive_;
  // The check's trial dump of this database (SchemaDumpHandover), until the
  // snapshot phase adopts its holder; then its archive, which pre-data
  // restores instead of dumping again (empty: pre-data dumps).
  std::optional<KeptSchemaDump> trial_dump_;
  std::string trial_archive_;
  std::string list_;
  SchemaTools tools_;
  bool resumed_schema_ = false;  // the interrupted run restored the pre-data
  // StartOver dropped the target database the interrupted run had created.
  bool dropped_incomplete_ = false;
  std::unique_ptr<ExportedSnapshot> snapshot_;
  // The session holding this run's claim on the target database
  // (schema/target_claim.h), for as long as the pipeline runs.
  std::unique_ptr<Connection> claim_;
  ResolvedObjectFilter filtered_;  // options_.filter at the snapshot
  CopyCatalog catalog_;
  // Extensions the move leaves out (LeftOutExtensions), and the
  // configuration tables of the others, read at the snapshot.
  std::vector<std::string> left_out_extensions_;
  std::vector<ExtensionConfigTable> extension_config_;
  // pgcourier's publications on the source (of any run), left out of the
  // restore.
  std::vector<std::string> own_publications_;
  std::vector<TablePlan> plans_;
  ResumePlan resume_;
  std::vector<TableVerification> compared_;  // right after their copy
  std::string target_started_;               // pg_postmaster_start_time() when the data phase began
};

// The step (kind phase) whose part records the options the subscription was
// made with (SubscriptionOptions::Text), for status.
inline constexpr const char* kSubscriptionStep = "subscription";

// The options of the verification of a moved database: the run's filter
// with pgcourier's progress marks left out, the extensions the move leaves
// out, owners and grants compared as the run preserves them; no snapshot.
Result<VerifyOptions> MovedDatabaseVerifyOptions(const MigrateOptions& options,
                                                 const SessionFactory& sessions,
                                                 const std::string& target_database);

// The error for a verification that found differences; Ok when there is
// none. `consistent`: the data was copied at one snapshot (the hint says
// why it may differ when not).
Status DifferencesStatus(const DatabaseVerification& verified, bool consistent);

// The verification of a moved database (everything but the tables in
// `compared`, which were compared right after their copy), with
// pgcourier's progress marks left out; sequences only when asked (a source
// that replication keeps following moves its sequences on: they are synced,
// and compared, at cutover). An error when anything differs.
Result<DatabaseVerification> VerifyMovedDatabase(const MigrateOptions& options,
                                                 const SessionFactory& sessions,
                                                 const std::string& source_database,
                                                 const std::string& target_database,
                                                 const std::string& snapshot,
                                                 std::vector<TableVerification> compared,
                                                 bool sequences, bool consistent);

}  // namespace pgcourier

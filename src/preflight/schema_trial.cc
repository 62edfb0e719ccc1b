// schema.restorable: the trial restore. What pg_restore would run for the
// migration (pre-data and post-data, from the same kind of schema-only
// archive, with the same restore list and owner/privilege policy) is sent to
// the target as SQL inside BEGIN ... ROLLBACK, on tables without rows. So a
// target that refuses the schema (lz4 compression it was built without, a C
// function's missing library, a role a policy names, DDL a newer server
// rejects) fails the check, before any row moves.
//
// Where it runs: in the target database when it exists (the check found it
// empty; a name the schema creates that is already there would fail the
// restore too, so it is a real finding). For a database the migration
// creates, in a scratch database made for the trial exactly as the migration
// will make its database (template0, the source's encoding and locale) and
// dropped after it: CREATE DATABASE cannot run in a transaction, and a
// database the user already has (such as postgres) holds objects of its own
// whose names could collide with the schema's.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "catalog/object_filter.h"
#include "pg/connection.h"
#include "pg/quote.h"
#include "preflight/checker.h"
#include "preflight/checker_internal.h"
#include "schema/restore_script.h"
#include "schema/schema_dump.h"
#include "schema/script_restore.h"
#include "schema/target_database.h"

namespace pgcourier::checker_internal {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A private temporary directory for the archive and its list, removed with
// what it holds.
class ScratchDir {
 public:
  ScratchDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/pgcourier-check-XXXXXX";
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// What to do about the server's refusal of an entry.
std::string TrialHint(const Status& error, const ScriptEntry& entry) {
  const std::string& m = error.message();
  const std::string& state = error.sqlstate();
  if (m.find("lz4") != std::string::npos) {
    return "the target server is built without lz4: on the source, ALTER TABLE ... ALTER COLUMN "
           "... SET COMPRESSION pglz for these columns (the copy compresses values anew on the "
           "target), or use a target built with lz4";
  }
  if (state == "58P01" || m.find("could not access file") != std::string::npos ||
      m.find("could not load library") != std::string::npos) {
    return "the target server lacks the shared library this function is written in: install "
           "the package that provides it on the target, or drop the function (and what uses it) "
           "from the source";
  }
  if (state == "42704" && m.find("role") != std::string::npos) {
    return "create the role on the target first, or add --roles to migrate";
  }
  if (state == "42501") {
    return "the target user may not do this: run the move as a user with the right (a superuser "
           "or the provider's admin role), or change the object on the source";
  }
  if (state == "42P06" || state == "42P07" || state == "42710" || state == "42723") {
    return "the target database already holds an object of this name: drop it there, or move "
           "into a new database";
  }
  if (state.rfind("0A", 0) == 0) {
    return "the target server does not support this feature: change the object on the source, "
           "or use a target that supports it";
  }
  return "the target refuses " + entry.Describe() +
         " as the source has it: change it on the source (or what it depends on) so the "
         "target's version accepts it";
}

// Runs the entries in one transaction that is rolled back. The roles in
// `stub_roles` are created in it first (when `may_create_roles`), so a role
// reported missing by roles.required does not hide what follows. Returns the
// index of the entry the server refused with its error, or -1.
struct TrialOutcome {
  int failed = -1;
  Status error = Status::Ok();
};

Result<TrialOutcome> RunTrial(Connection& conn, const std::vector<ScriptEntry>& entries,
                              const std::set<std::string>& stub_roles, Deadline deadline) {
  TrialOutcome outcome;
  PGC_RETURN_IF_ERROR(conn.Run("BEGIN", deadline));
  if (!stub_roles.empty()) {
    std::string create = "SAVEPOINT roles;";
    for (const auto& role : stub_roles) create += " CREATE ROLE " + QuoteIdent(role) + " NOLOGIN;";
    Status created = conn.Run(create + " RELEASE SAVEPOINT roles", deadline);
    if (created.code() == StatusCode::kCancelled) return created;
    if (!created.ok()) PGC_RETURN_IF_ERROR(conn.Run("ROLLBACK TO SAVEPOINT roles", deadline));
  }
  // In chunks of entries, one round trip each; a refused chunk is sent
  // again entry by entry to name the entry refused.
  Result<ScriptRun> ran = RunScriptEntries(conn, entries, deadline);
  if (!ran.ok()) return ran.status();
  outcome.failed = ran->failed;
  outcome.error = ran->error;
  PGC_RETURN_IF_ERROR(conn.RunIgnoringCancel("ROLLBACK", Deadline::After(std::chrono::minutes(1))));
  return outcome;
}

// For migrate (CheckOptions::schema_dumps, null otherwise): a snapshot
// exported for the copy of `database`. nullopt when none could be exported:
// the trial then dumps at pg_dump's own snapshot and the move dumps again.
Result<std::optional<SnapshotHolder>> ExportForCopy(SchemaDumpHandover* dumps,
                                                    const std::string& database) {
  if (dumps == nullptr) return std::optional<SnapshotHolder>();
  Result<SnapshotHolder> exported = dumps->export_snapshot(database);
  if (!exported.ok()) {
    if (exported.status().code() == StatusCode::kCancelled) return exported.status();
    return std::optional<SnapshotHolder>();
  }
  return std::optional<SnapshotHolder>(std::move(*exported));
}

// Where a kept archive of `database` goes, its directory made; "" when it
// cannot be made.
std::string KeptArchivePath(const std::string& directory, const std::string& database) {
  const std::string kept_dir = directory + "/" + database;
  std::error_code ec;
  std::filesystem::create_directories(kept_dir, ec);
  return ec ? "" : kept_dir + "/schema.trial.dump";
}

// Removes `path` (when not empty) when it goes out of scope.
struct RemovedUnlessKept {
  std::string path;
  RemovedUnlessKept() = default;
  RemovedUnlessKept(const RemovedUnlessKept&) = delete;
  RemovedUnlessKept& operator=(const RemovedUnlessKept&) = delete;
  ~RemovedUnlessKept() {
    std::error_code ignored;
    if (!path.empty()) std::filesystem::remove(path, ignored);
  }
};

}  // namespace

Status Checker::TrySchema(const DatabasePlan& plan, const std::vector<ScriptEntry>& entries,
                          double dump_seconds) {
  const Clock::time_point started = Clock::now();
  const bool scratch = !plan.exists_on_target;
  const std::string database =
      scratch ? fmt::format("pgcourier_trial_{}_{}", ::getpid(),
                            std::chrono::system_clock::now().time_since_epoch().count() % 1000000)
              : plan.target_name;
  if (scratch) {
    TargetDatabaseSpec spec{plan.name, database};
    Status created =
        CreateTargetDatabase(*source_.conn, *target_.conn, spec, [] { return Status::Ok(); });
    if (created.code() == StatusCode::kCancelled) return created;
    if (!created.ok()) {
      // What the migration's CREATE DATABASE would meet too.
      (void)target_.conn->RunIgnoringCancel("DROP DATABASE IF EXISTS " + QuoteIdent(database),
                                            QueryDeadline());
      Add(check_code::kSchemaRestorable, CheckStatus::kFail, plan.name,
          "the target cannot create a database like the source's: " + created.message(),
          created.hint().empty() ? "the target needs the source's encoding and locale (see the "
                                   "error); or create the target database yourself first"
                                 : created.hint());
      return Status::Ok();
    }
    (void)target_.conn->Run(fmt::format("COMMENT ON DATABASE {} IS {}", QuoteIdent(database),
                                        QuoteLiteral("pgcourier check: trial restore of the "
                                                     "schema of " +
                                                     plan.name + "; safe to drop")),
                            QueryDeadline());
  }
  Result<TrialOutcome> tried = [&]() -> Result<TrialOutcome> {
    Result<std::unique_ptr<Connection>> conn = Connection::Connect(
        target_.info.WithDatabase(database), ConnectOptionsFor("target database " + database));
    if (!conn.ok()) return conn.status();
    const std::set<std::string> stubs =
        target_.facts->is_superuser || target_.facts->can_create_role ? trial_roles_
                                                                      : std::set<std::string>{};
    return RunTrial(**conn, entries, stubs,
                    Deadline::After(std::max<std::chrono::milliseconds>(options_.query_timeout,
                                                                        std::chrono::minutes(10))));
  }();
  if (scratch) {
    // FORCE (13+): a session of the trial that is still ending holds it.
    Status dropped =
        target_.conn->RunIgnoringCancel("DROP DATABASE IF EXISTS " + QuoteIdent(database) +
                                            (target_.facts->major >= 13 ? " WITH (FORCE)" : ""),
                                        QueryDeadline());
    if (!dropped.ok()) {
      Add(check_code::kSchemaRestorable, CheckStatus::kWarn, plan.name,
          "the trial's scratch database " + database +
              " could not be dropped: " + dropped.message(),
          "drop it on the target: DROP DATABASE " + QuoteIdent(database));
    }
  }
  if (!tried.ok()) {
    if (tried.status().code() == StatusCode::kCancelled) return tried.status();
    Add(check_code::kSchemaRestorable, CheckStatus::kWarn, plan.name,
        "the schema's restore on the target could not be tried: " + tried.status().message(),
        tried.status().hint());
    return Status::Ok();
  }
  if (tried->failed < 0) {
    Add(check_code::kSchemaRestorable, CheckStatus::kPass, plan.name,
        fmt::format("the whole schema ({} entries) restores on the target, tried in a transaction "
                    "that was rolled back{} (dump {:.1f} s, restore {:.1f} s)",
                    entries.size(), scratch ? ", in a scratch database" : "", dump_seconds,
                    SecondsSince(started)));
    return Status::Ok();
  }
  const ScriptEntry& entry = entries[static_cast<size_t>(tried->failed)];
  const Status& error = tried->error;
  const std::string object = plan.name + ": " + entry.Describe();
  const std::string statement = StatementExcerpt(entry.sql);
  const std::string detail =
      fmt::format("the target refuses it: {}{}{}", error.message(),
                  error.sqlstate().empty() ? "" : " (SQLSTATE " + error.sqlstate() + ")",
                  statement.empty() ? "" : "; statement: " + statement);
  if (error.sqlstate() == "53200") {
    // The trial holds the locks of pre-data and post-data at once, more
    // than the migration's restore does: an estimate, as locks.target.
    Add(check_code::kSchemaRestorable, CheckStatus::kWarn, object,
        fmt::format("the trial ran out of the target's lock table after {} of {} entries; the "
                    "rest was not tried: {}",
                    tried->failed, entries.size(), error.message()),
        "raise max_locks_per_transaction on the target, or skip the trial with "
        "--no-schema-trial");
  } else if (error.sqlstate() == "25001") {
    Add(check_code::kSchemaRestorable, CheckStatus::kWarn, object,
        "cannot be tried inside a transaction, so the rest of the schema was not tried: " +
            error.message(),
        "");
  } else {
    Add(check_code::kSchemaRestorable, CheckStatus::kFail, object, detail, TrialHint(error, entry));
  }
  return Status::Ok();
}

Status Checker::CheckSchemaTrials() {
  if (options_.schema_dumps != nullptr) {
    // The copied databases the pipelines start first: the largest, as many
    // as run at once.
    std::vector<const DatabasePlan*> copied;
    for (const auto& plan : report_.databases) {
      if (plan.method == Method::kCopy) copied.push_back(&plan);
    }
    std::stable_sort(
        copied.begin(), copied.end(), [](const DatabasePlan* a, const DatabasePlan* b) {
          return std::max<int64_t>(a->size_bytes, 0) > std::max<int64_t>(b->size_bytes, 0);
        });
    for (size_t i = 0;
         i < copied.size() && i < static_cast<size_t>(options_.schema_dumps->max_databases); ++i) {
      keep_dumps_.insert(copied[i]->name);
    }
  }
  for (const auto& plan : report_.databases) PGC_RETURN_IF_ERROR(CheckSchemaRestorable(plan));
  return Status::Ok();
}

Status Checker::CheckSchemaRestorable(const DatabasePlan& plan) {
  // A resumed database's schema is on the target already.
  if (options_.owned_target_databases.count(plan.target_name) != 0) return Status::Ok();
  if (!options_.schema_trial) {
    Add(check_code::kSchemaRestorable, CheckStatus::kWarn, plan.name,
        "the schema's restore on the target was not tried (--no-schema-trial)",
        "objects the target refuses then fail the move after the data is copied");
    return Status::Ok();
  }
  if (report_.tools.pg_dump.empty()) return Status::Ok();  // tools.pg_dump failed
  for (const auto& item : report_.items) {
    const bool this_database = item.object == plan.name || item.object == plan.target_name ||
                               item.object.rfind(plan.name + ": ", 0) == 0;
    if (item.status == CheckStatus::kFail && this_database) {
      Add(check_code::kSchemaRestorable, CheckStatus::kWarn, plan.name,
          "the schema's restore on the target was not tried because of the failures above",
          "fix them and run the check again");
      return Status::Ok();
    }
  }
  const Clock::time_point started = Clock::now();
  auto fail = [&](const std::string& detail, const std::string& hint) {
    Add(check_code::kSchemaRestorable, CheckStatus::kFail, plan.name, detail, hint);
    return Status::Ok();
  };

  // The archive, as migrate makes it (at its snapshot when kept for it).
  ScratchDir dir;
  if (dir.path().empty()) {
    return fail("no temporary directory for the schema archive could be made",
                "set TMPDIR to a writable directory");
  }
  ResolvedObjectFilter excluded;
  // For migrate: the dump at a snapshot the copy then uses, kept with its
  // holder for the move. Else pg_dump's own snapshot.
  Result<std::optional<SnapshotHolder>> exported =
      ExportForCopy(keep_dumps_.count(plan.name) != 0 ? options_.schema_dumps : nullptr, plan.name);
  if (!exported.ok()) return exported.status();
  std::optional<SnapshotHolder> holder = std::move(*exported);
  Result<std::unique_ptr<Connection>> conn =
      holder ? Result<std::unique_ptr<Connection>>(std::move(holder->conn))
             : Connection::Connect(source_.info.WithDatabase(plan.name),
                                   ConnectOptionsFor("source database " + plan.name));
  if (!conn.ok()) {
    if (conn.status().code() == StatusCode::kCancelled) return conn.status();
    return fail("the source database could not be read: " + conn.status().message(),
                conn.status().hint());
  }
  if (!options_.filter.empty()) {
    Result<ResolvedObjectFilter> resolved =
        ResolveObjectFilter(**conn, options_.filter, QueryDeadline());
    if (!resolved.ok()) {
      if (resolved.status().code() == StatusCode::kCancelled) return resolved.status();
      if (resolved.status().code() == StatusCode::kInvalidArgument) {
        // A selection that matches nothing: the move of this database fails
        // on it before it touches the target, saying so.
        Add(check_code::kSchemaRestorable, CheckStatus::kWarn, plan.name,
            "the schema's restore on the target was not tried: " + resolved.status().message(),
            resolved.status().hint());
        return Status::Ok();
      }
      return fail("the object filter could not be resolved: " + resolved.status().message(),
                  resolved.status().hint());
    }
    excluded = std::move(*resolved);
  }
  // pg_dump waits for the locks it takes no longer than a query may run (or
  // migrate's --lock-timeout).
  const SchemaTools tools{
      report_.tools.pg_dump, report_.tools.pg_restore, options_.cancel,
      options_.lock_timeout.count() > 0 ? options_.lock_timeout : options_.query_timeout};
  std::string archive = dir.path() + "/schema.dump";
  // A kept archive is removed on every way out but the one that keeps it.
  RemovedUnlessKept unless_kept;
  if (holder) {
    unless_kept.path = KeptArchivePath(options_.schema_dumps->directory, plan.name);
    if (unless_kept.path.empty()) holder.reset();  // pg_dump's own snapshot, not kept
    if (holder) archive = unless_kept.path;
  }
  const std::string list = dir.path() + "/schema.list";
  // pg_dump in the database's own encoding, as migrate runs it: a database or
  // role default could set one that cannot hold every name.
  Status dumped = DumpSchema(
      tools,
      source_.info.WithDatabase(plan.name).With("client_encoding", (*conn)->server_encoding()),
      holder ? holder->id : "", excluded, archive);
  Result<std::string> listing = dumped.ok() ? ListArchive(tools, archive) : dumped;
  RestoreListFilter filter;
  filter.extensions = ProviderOnlyExtensions();
  Result<int> kept = listing.ok() ? WriteRestoreList(*listing, filter, list) : listing.status();
  const RestorePolicy policy{options_.preserve_owners, options_.preserve_acl};
  Result<std::string> script =
      kept.ok() ? RestoreScript(tools, archive, list, policy) : kept.status();
  if (!script.ok()) {
    if (script.status().code() == StatusCode::kCancelled) return script.status();
    // pg_dump's --lock-wait-timeout cancels its LOCK TABLE.
    if (script.status().message().find("LOCK TABLE") != std::string::npos) {
      // A lock held on the source now says nothing about the target; the
      // move waits for it in its turn, bounded and naming the holder.
      Add(check_code::kSchemaRestorable, CheckStatus::kWarn, plan.name,
          "the schema's restore on the target was not tried: pg_dump waited too long for a "
          "lock on the source: " +
              script.status().message(),
          "end the session that holds the lock, or run the check again later");
      return Status::Ok();
    }
    return fail("the schema could not be dumped to try it: " + script.status().message(),
                script.status().hint());
  }
  Result<std::vector<ScriptEntry>> entries = ParseRestoreScript(*script);
  if (!entries.ok()) return fail(entries.status().message(), entries.status().hint());
  const double dump_seconds = SecondsSince(started);
  PGC_RETURN_IF_ERROR(TrySchema(plan, *entries, dump_seconds));
  if (holder) {
    // Whatever the trial found: a blocked check's migration discards it.
    holder->conn = std::move(*conn);
    options_.schema_dumps->Keep(plan.name, KeptSchemaDump{std::move(*holder), archive});
    unless_kept.path.clear();
  }
  return Status::Ok();
}

}  // namespace pgcourier::checker_internal

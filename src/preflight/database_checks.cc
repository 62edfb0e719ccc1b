// The per-database checks of `pgcourier check`: each selected database is
// read on the source (and on the target when it exists there already).
#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "catalog/database_facts.h"
#include "catalog/server_facts.h"
#include "catalog/user_objects.h"
#include "pg/connection.h"
#include "pg/quote.h"
#include "pg/version.h"
#include "preflight/checker_internal.h"
#include "schema/target_claim.h"

namespace pgcourier::checker_internal {

Status Checker::CheckDatabases() {
  for (auto& plan : report_.databases) {
    Result<std::unique_ptr<Connection>> conn = Connection::Connect(
        source_.info.WithDatabase(plan.name), ConnectOptionsFor("source database " + plan.name));
    if (!conn.ok()) {
      if (conn.status().code() == StatusCode::kCancelled) return conn.status();
      Add(check_code::kDatabaseConnect, CheckStatus::kFail, plan.name, conn.status().message(),
          conn.status().hint());
      source_dbs_.emplace_back();
      continue;
    }
    Result<DatabaseFacts> facts = ReadDatabaseFacts(**conn, QueryDeadline());
    if (!facts.ok()) {
      if (facts.status().code() == StatusCode::kCancelled) return facts.status();
      Add(check_code::kDatabaseConnect, CheckStatus::kFail, plan.name, facts.status().ToString(),
          "the source user must be able to read the database's catalogs");
      source_dbs_.emplace_back();
      continue;
    }
    source_dbs_.push_back(std::move(*facts));
    const DatabaseFacts& source_db = source_dbs_.back();
    PGC_RETURN_IF_ERROR(CollectRoleReferences(**conn, plan));
    // A resumed database was checked when its run began.
    if (options_.owned_target_databases.count(plan.target_name) == 0) {
      PGC_RETURN_IF_ERROR(CheckReadable(**conn, plan));
    }

    std::optional<DatabaseFacts> target_db;
    // Another run writing it (schema/target_claim.h) says so, whatever the
    // database holds by now.
    Result<std::optional<ClaimHolder>> claim = FindTargetClaim(*target_.conn, plan.target_name);
    if (claim.ok() && *claim) {
      Status claimed = ClaimedByAnother(plan.target_name, **claim);
      Add(check_code::kDatabaseTarget, CheckStatus::kFail, plan.target_name, claimed.message(),
          claimed.hint());
      CheckExtensions(plan, source_db, target_db);
      CheckLanguages(plan, source_db);
      continue;
    }
    if (plan.exists_on_target) {
      Result<std::unique_ptr<Connection>> tconn =
          Connection::Connect(target_.info.WithDatabase(plan.target_name),
                              ConnectOptionsFor("target database " + plan.target_name));
      Result<DatabaseFacts> tfacts = tconn.ok() ? ReadDatabaseFacts(**tconn, QueryDeadline())
                                                : Result<DatabaseFacts>(tconn.status());
      if (!tfacts.ok()) {
        if (tfacts.status().code() == StatusCode::kCancelled) return tfacts.status();
        Add(check_code::kDatabaseTarget, CheckStatus::kFail, plan.target_name,
            "the database exists on the target but cannot be read: " + tfacts.status().message(),
            tfacts.status().hint().empty() ? "grant the target user CONNECT on it, or drop it"
                                           : tfacts.status().hint());
      } else if (options_.owned_target_databases.count(plan.target_name) != 0) {
        Add(check_code::kDatabaseTarget, CheckStatus::kPass, plan.target_name,
            "being filled by the migration that is resumed");
        target_db = std::move(*tfacts);
      } else if (tfacts->user_relations > 0) {
        Add(check_code::kDatabaseTarget, CheckStatus::kFail, plan.target_name,
            fmt::format("the target database already holds user data: {} relation(s), e.g. {}",
                        tfacts->user_relations, JoinTables(tfacts->sample_user_relations, 5)),
            "move into an empty database: drop it or pick another name (pgcourier never mixes "
            "data into a database that has its own)");
        target_db = std::move(*tfacts);
      } else if (!target_.facts->is_superuser && !tfacts->can_create_in_database) {
        // Schemas and the progress marks are created in it.
        Add(check_code::kDatabaseTarget, CheckStatus::kFail, plan.target_name,
            fmt::format("exists on the target and is empty, but the target user {} may not "
                        "CREATE in it",
                        target_.facts->current_user),
            fmt::format("GRANT CREATE ON DATABASE {} TO {} on the target, or connect as its owner",
                        QuoteIdent(plan.target_name), QuoteIdent(target_.facts->current_user)));
        target_db = std::move(*tfacts);
      } else {
        Add(check_code::kDatabaseTarget, CheckStatus::kPass, plan.target_name,
            "exists on the target and holds no user data");
        target_db = std::move(*tfacts);
      }
    } else {
      std::string detail = "does not exist on the target; it will be created";
      if (!target_.facts->can_create_db && !target_.facts->is_superuser) {
        Add(check_code::kDatabaseTarget, CheckStatus::kFail, plan.target_name,
            detail + ", but the target user may not create databases",
            "create it on the target first (CREATE DATABASE ... OWNER <target user>), or grant "
            "CREATEDB to the target user");
      } else {
        Add(check_code::kDatabaseTarget, CheckStatus::kPass, plan.target_name, detail);
      }
    }
    CheckExtensions(plan, source_db, target_db);
    CheckLanguages(plan, source_db);
  }
  return Status::Ok();
}

Status Checker::CheckReadable(Connection& source_db, const DatabasePlan& plan) {
  if (source_.facts->is_superuser) return Status::Ok();
  // pg_dump locks and reads every table and sequence it dumps: one the user
  // may not read fails the schema dump, after the target database was made.
  Result<QueryResult> unreadable = source_db.Exec(
      "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c "
      "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
      "WHERE c.relkind IN ('r', 'p', 'm', 'S', 'f') AND " +
          sql::UserRelation() +
          "AND NOT (pg_catalog.has_schema_privilege(n.oid, 'USAGE') AND "
          "pg_catalog.has_table_privilege(c.oid, 'SELECT')) ORDER BY 1, 2",
      QueryDeadline());
  if (!unreadable.ok()) {
    if (unreadable.status().code() == StatusCode::kCancelled) return unreadable.status();
    Add(check_code::kDatabaseReadable, CheckStatus::kWarn, plan.name,
        "could not list the tables the source user may not read: " + unreadable.status().message());
    return Status::Ok();
  }
  std::vector<TableName> blocked;
  for (int row = 0; row < unreadable->rows(); ++row) {
    TableName table{unreadable->GetString(row, 0), unreadable->GetString(row, 1)};
    if (!options_.filter.ExcludesTable(table.schema, table.name)) blocked.push_back(table);
  }
  if (blocked.empty()) {
    Add(check_code::kDatabaseReadable, CheckStatus::kPass, plan.name,
        "the source user may read every table and sequence");
    return Status::Ok();
  }
  Add(check_code::kDatabaseReadable, CheckStatus::kFail, plan.name,
      fmt::format("the source user {} may not read {} table(s) or sequence(s): {}",
                  source_.facts->current_user, blocked.size(), JoinTables(blocked, 5)),
      fmt::format("GRANT SELECT on them (and USAGE on their schemas) to {} on the source, connect "
                  "as their owner or a superuser, or leave them out with --exclude-table",
                  QuoteIdent(source_.facts->current_user)));
  return Status::Ok();
}

bool Checker::ExtensionCreatable(const std::string& name,
                                 const AvailableExtension& available) const {
  const ServerFacts& t = *target_.facts;
  if (t.is_superuser || !available.superuser || available.trusted) return true;
  for (const char* setting :
       {"extwlist.extensions", "azure.extensions", "rds.allowed_extensions"}) {
    std::set<std::string> allowed = SplitList(t.Setting(setting));
    if (allowed.count(name) != 0 || allowed.count("*") != 0) return true;
  }
  return false;
}

void Checker::CheckExtensions(const DatabasePlan& plan, const DatabaseFacts& source_db,
                              const std::optional<DatabaseFacts>& target_db) {
  const ServerFacts& t = *target_.facts;
  for (const auto& ext : source_db.extensions) {
    if (ext.name == "plpgsql") continue;
    std::string object = plan.name + ": extension " + ext.name;
    // pg_cron moves where the target runs it for this database.
    const bool cron_moves = ext.name == "pg_cron" && !t.Setting("cron.database_name").empty() &&
                            t.Setting("cron.database_name") == plan.target_name;
    if (const ProviderExtension* provider = FindProviderExtension(ext.name);
        provider != nullptr && !cron_moves) {
      Add(check_code::kExtensionProvider, CheckStatus::kWarn, object, std::string(provider->advice),
          "objects that depend on it must be re-created by hand on the target");
      continue;
    }
    if (target_db) {
      auto installed =
          std::find_if(target_db->extensions.begin(), target_db->extensions.end(),
                       [&](const InstalledExtension& e) { return e.name == ext.name; });
      if (installed != target_db->extensions.end() &&
          CompareExtensionVersions(installed->version, ext.version) >= 0) {
        Add(check_code::kExtensionAvailable, CheckStatus::kPass, object,
            fmt::format("already installed in the target database (version {})",
                        installed->version));
        continue;
      }
    }
    const AvailableExtension* best = nullptr;
    for (const auto& a : t.available_extensions) {
      if (a.name != ext.name) continue;
      if (best == nullptr || CompareExtensionVersions(a.version, best->version) > 0) best = &a;
    }
    if (best == nullptr) {
      Add(check_code::kExtensionAvailable, CheckStatus::kFail, object,
          fmt::format("version {} is installed in the source, but the target server does not "
                      "offer the extension at all",
                      ext.version),
          "install the extension's package on the target server (or enable it in the provider's "
          "console), or drop it from the source database if nothing uses it");
      continue;
    }
    if (CompareExtensionVersions(best->version, ext.version) < 0) {
      Add(check_code::kExtensionAvailable, CheckStatus::kFail, object,
          fmt::format("the source has version {}, the target offers at most {}", ext.version,
                      best->version),
          "install a newer build of the extension on the target");
      continue;
    }
    // Find whether the source's exact version is installable or only newer.
    const AvailableExtension* same = nullptr;
    for (const auto& a : t.available_extensions) {
      if (a.name == ext.name && a.version == ext.version) same = &a;
    }
    const AvailableExtension& use = same != nullptr ? *same : *best;
    if (!ExtensionCreatable(ext.name, use)) {
      Add(check_code::kExtensionAvailable, CheckStatus::kFail, object,
          fmt::format("available on the target, but only a superuser may create it and {} is "
                      "not one",
                      t.current_user),
          fmt::format("ask the target's administrator to run CREATE EXTENSION {} in the target "
                      "database first, or allow-list it in the provider's settings",
                      ext.name));
      continue;
    }
    Add(check_code::kExtensionAvailable, CheckStatus::kPass, object,
        same != nullptr ? fmt::format("version {} is available on the target", ext.version)
                        : fmt::format("the target offers version {} (source has {})", best->version,
                                      ext.version));
  }
}

void Checker::CheckLanguages(const DatabasePlan& plan, const DatabaseFacts& source_db) {
  const ServerFacts& t = *target_.facts;
  for (const auto& lang : source_db.languages) {
    if (lang.name == "plpgsql" || lang.from_extension) continue;  // extensions are checked above
    std::string object = plan.name + ": language " + lang.name;
    bool available = t.languages.count(lang.name) != 0 ||
                     std::any_of(t.available_extensions.begin(), t.available_extensions.end(),
                                 [&](const AvailableExtension& a) { return a.name == lang.name; });
    if (available) {
      Add(check_code::kLanguageAvailable, CheckStatus::kPass, object, "available on the target");
    } else {
      Add(check_code::kLanguageAvailable, CheckStatus::kFail, object,
          "the procedural language is used in the source but the target does not have it",
          "install the language's package on the target server (e.g. postgresql-plperl-NN), or "
          "drop the language and its functions from the source if unused");
    }
  }
}

}  // namespace pgcourier::checker_internal

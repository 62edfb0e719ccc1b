#include "preflight/checker.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <set>
#include <string_view>

#include "catalog/database_facts.h"
#include "catalog/server_facts.h"
#include "catalog/user_objects.h"
#include "pg/connection.h"
#include "pg/quote.h"
#include "pg/version.h"
#include "preflight/checker_internal.h"
#include "preflight/pg_tools.h"
#include "roles/provider_roles.h"
#include "util/pattern.h"
#include "util/size.h"

namespace pgcourier {
namespace {

constexpr std::array<std::string_view, 8> kProviderAdminDatabases = {
    "_aiven",        "rdsadmin",     "azure_maintenance", "azure_sys",
    "cloudsqladmin", "alloydbadmin", "alloydbmetadata",   "_supabase"};

// Extensions that exist only at one provider (or hold provider-managed
// state): never created on the target by pgcourier.
constexpr std::array<checker_internal::ProviderExtension, 15> kProviderExtensions = {{
    {"aiven_extras", "Aiven's helper extension; not needed on the target and left out"},
    {"pg_cron",
     "its jobs live in the provider-managed cron schema and are not moved; re-create the "
     "jobs on the target after the move"},
    {"rds_tools", "Amazon RDS only; left out"},
    {"aws_commons", "Amazon RDS only; left out"},
    {"aws_s3", "Amazon RDS only; left out (re-create S3 imports by hand)"},
    {"aws_lambda", "Amazon RDS only; left out"},
    {"azure", "Azure only; left out"},
    {"pgaadauth", "Azure only (Entra ID sign-in); left out"},
    {"azure_storage", "Azure only; left out"},
    {"azure_ai", "Azure only; left out"},
    {"google_columnar_engine", "Google Cloud only; left out"},
    {"google_ml_integration", "Google Cloud only; left out"},
    {"neon", "Neon only; left out"},
    {"neon_utils", "Neon only; left out"},
    {"supautils", "Supabase only; left out"},
}};

}  // namespace

namespace checker_internal {

const ProviderExtension* FindProviderExtension(const std::string& name) {
  for (const auto& e : kProviderExtensions) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

std::string JoinNames(const std::vector<std::string>& names, size_t limit) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < limit; ++i) {
    if (i > 0) out += ", ";
    out += names[i];
  }
  if (names.size() > limit) out += fmt::format(" and {} more", names.size() - limit);
  return out;
}

std::string JoinTables(const std::vector<TableName>& tables, size_t limit) {
  std::vector<std::string> names;
  names.reserve(tables.size());
  for (const auto& t : tables) names.push_back(t.Display());
  return JoinNames(names, limit);
}

std::set<std::string> SplitList(const std::string& list) {
  std::set<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    std::string item = list.substr(start, end - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) out.insert(item);
    start = end + 1;
  }
  return out;
}

Status Checker::ConnectSide(Side& side, const char* connect_code, const char* encryption_code) {
  ServerSummary& summary = side.role == "source" ? report_.source : report_.target;
  summary.display = side.info.Redacted();
  ConnInfo bootstrap = side.info;
  std::string named = side.info.ExplicitDatabase();
  if (named.empty()) bootstrap = side.info.WithDatabase("postgres");
  Result<std::unique_ptr<Connection>> conn =
      Connection::Connect(bootstrap, ConnectOptionsFor(side.role));
  // The target database may not exist yet (it is created by migrate):
  // read the server through its "postgres" database then.
  if (!conn.ok() && conn.status().sqlstate() == "3D000" && side.role == "target" &&
      named != "postgres") {
    conn = Connection::Connect(side.info.WithDatabase("postgres"), ConnectOptionsFor(side.role));
  }
  if (!conn.ok()) {
    if (conn.status().code() == StatusCode::kCancelled) return conn.status();
    Add(connect_code, CheckStatus::kFail, side.role, conn.status().message(), conn.status().hint());
    return Status::Ok();
  }
  side.conn = std::move(*conn);
  Result<ServerFacts> facts = ReadServerFacts(*side.conn, QueryDeadline());
  if (!facts.ok()) {
    if (facts.status().code() == StatusCode::kCancelled) return facts.status();
    Add(connect_code, CheckStatus::kFail, side.role, facts.status().ToString(),
        "the user must be able to read the system catalogs");
    side.conn.reset();
    return Status::Ok();
  }
  side.facts = std::move(*facts);
  summary.reachable = true;
  summary.version = side.facts->version_text;
  summary.major = side.facts->major;
  summary.encrypted = side.conn->ssl_in_use();
  summary.user = side.facts->current_user;
  summary.superuser = side.facts->is_superuser;
  Add(connect_code, CheckStatus::kPass, side.role,
      fmt::format("connected to PostgreSQL {} as {}{}", side.facts->version_text,
                  side.facts->current_user, side.facts->is_superuser ? " (superuser)" : ""));
  AddEncryption(side, encryption_code);
  return Status::Ok();
}

void Checker::AddEncryption(Side& side, const char* code) {
  if (side.conn->ssl_in_use()) {
    const std::string protocol = side.conn->tls_protocol();
    ServerSummary& summary = side.role == "source" ? report_.source : report_.target;
    summary.tls_version = protocol;
    Add(code, CheckStatus::kPass, side.role,
        fmt::format("encrypted ({})", !protocol.empty() ? protocol : "SSL"));
    return;
  }
  // The address this session really reached (the string may list several
  // hosts, or a name that resolves to this machine).
  std::string reached = side.conn->host_address();
  if (reached.empty()) reached = side.conn->host();
  switch (ClassifyHost(reached)) {
    case HostKind::kUnixSocket:
      Add(code, CheckStatus::kPass, side.role, "not encrypted (local: unix socket)");
      break;
    case HostKind::kLoopback:
      Add(code, CheckStatus::kPass, side.role, "not encrypted (local: " + reached + ")");
      break;
    case HostKind::kRemote:
      Add(code, CheckStatus::kWarn, side.role,
          "not encrypted: passwords and data cross the network to " + reached + " in clear",
          "add sslmode=require (or verify-full with sslrootcert) to the connection string, and "
          "enable ssl on the server if it has none");
      break;
  }
}

void Checker::CheckDistinct() {
  const ServerFacts& s = *source_.facts;
  const ServerFacts& t = *target_.facts;
  bool both_sysid = s.system_identifier && t.system_identifier;
  bool same_start =
      s.postmaster_start_time == t.postmaster_start_time && s.port_setting == t.port_setting;
  if (same_start && (!both_sysid || *s.system_identifier == *t.system_identifier)) {
    Add(check_code::kServersDistinct, CheckStatus::kFail, "source, target",
        fmt::format("source and target are the same server (port {}, started at the same "
                    "instant{})",
                    s.port_setting,
                    both_sysid ? ", system identifier " + *s.system_identifier : ""),
        "point --target at the server you are moving to; a move onto its own source would "
        "destroy it");
    return;
  }
  if (both_sysid && *s.system_identifier == *t.system_identifier) {
    Add(check_code::kServersDistinct, CheckStatus::kWarn, "source, target",
        "the target shares the source's system identifier " + *s.system_identifier +
            ": it is a physical copy or standby of the source",
        "make sure the target is the server you mean to move to");
  } else {
    Add(check_code::kServersDistinct, CheckStatus::kPass, "source, target",
        both_sysid ? fmt::format("different servers (system identifiers {} and {})",
                                 *s.system_identifier, *t.system_identifier)
                   : "different servers (start time and port differ)");
  }
  if (t.in_recovery) {
    Add(check_code::kTargetWritable, CheckStatus::kFail, "target",
        "the target is a read-only standby (in recovery)",
        "use the primary server of the target, or promote this one");
  } else {
    Add(check_code::kTargetWritable, CheckStatus::kPass, "target", "the target accepts writes");
  }
}

void Checker::CheckVersions() {
  int s = source_.facts->major;
  int t = target_.facts->major;
  if (t < s) {
    Add(check_code::kVersionCompatible, CheckStatus::kFail, "source, target",
        fmt::format("the target runs PostgreSQL {}, older than the source's {}", t, s),
        fmt::format("use a target running PostgreSQL {} or newer", s));
  } else {
    Add(check_code::kVersionCompatible, CheckStatus::kPass, "source, target",
        fmt::format("PostgreSQL {} to {}", s, t));
  }
}

void Checker::CheckTools() {
  int source_major = source_.facts->major;
  std::vector<PgDumpCandidate> candidates = FindPgDumpCandidates(options_.pg_bindirs);
  std::optional<PgDumpCandidate> chosen =
      ChoosePgDump(candidates, source_major, target_.facts->major);
  std::vector<std::string> found;
  found.reserve(candidates.size());
  for (const auto& c : candidates) found.push_back(fmt::format("{} ({})", c.pg_dump, c.major));

  for (const auto& dir : options_.pg_bindirs) {
    bool usable = std::any_of(candidates.begin(), candidates.end(), [&](const PgDumpCandidate& c) {
      return c.origin == "--pg-bindir" && c.bindir == dir && c.major >= source_major &&
             !c.pg_restore.empty();
    });
    if (!usable) {
      Add(check_code::kPgDump, CheckStatus::kWarn, dir,
          fmt::format("--pg-bindir {} holds no pg_dump/pg_restore of version {} or newer", dir,
                      source_major),
          "give the bin directory of a PostgreSQL client installation, e.g. "
          "/usr/lib/postgresql/17/bin");
    }
  }
  if (!chosen) {
    Add(check_code::kPgDump, CheckStatus::kFail, "pg_dump",
        fmt::format("no pg_dump/pg_restore of version {} or newer found (found: {})", source_major,
                    found.empty() ? "none" : JoinNames(found)),
        fmt::format("install them (Debian/Ubuntu: apt-get install {} from the PostgreSQL apt "
                    "repository; macOS: brew install postgresql@{}), or pass --pg-bindir DIR",
                    PgClientPackageHint(source_major), source_major));
  } else {
    report_.tools = {chosen->pg_dump, chosen->pg_restore, chosen->major};
    Add(check_code::kPgDump, CheckStatus::kPass, "pg_dump",
        fmt::format("using {} and pg_restore from {} (found via {})", chosen->version_text,
                    chosen->bindir, chosen->origin));
  }
  std::optional<PgDumpCandidate> first = FirstPgDumpOnPath(candidates);
  if (first && first->major < source_major) {
    Add(check_code::kPgDumpOnPath, CheckStatus::kWarn, first->pg_dump,
        fmt::format("the pg_dump first on PATH ({}) is version {}, older than the source's {}; "
                    "pgcourier does not use it, but scripts and manual runs would fail with "
                    "\"server version mismatch\"",
                    first->pg_dump, first->major, source_major),
        "put the newer PostgreSQL bin directory first on PATH, or remove the old client");
  }
}

bool Checker::SelectDatabases() {
  const ServerFacts& s = *source_.facts;
  const bool single = !source_named_db_.empty() && options_.include_databases.empty();
  std::vector<std::string> names = SelectDatabaseNames(
      s.databases, source_named_db_, options_.include_databases, options_.exclude_databases);
  if (names.empty()) {
    std::string asked =
        single ? source_named_db_
               : (options_.include_databases.empty() ? std::string("all databases")
                                                     : JoinNames(options_.include_databases));
    Add(check_code::kDatabasesSelected, CheckStatus::kFail, "source",
        "no database to move matches " + asked,
        "list the source's databases with \\l in psql and check --databases / "
        "--exclude-database");
    return false;
  }
  for (const auto& name : names) {
    DatabasePlan plan;
    plan.name = name;
    plan.target_name = TargetDatabaseName(name, single, target_named_db_);
    for (const auto& db : s.databases) {
      if (db.name == name) plan.size_bytes = db.size_bytes;
    }
    for (const auto& db : target_.facts->databases) {
      if (db.name == plan.target_name) plan.exists_on_target = true;
    }
    report_.databases.push_back(std::move(plan));
  }
  std::vector<std::string> shown;
  for (const auto& p : report_.databases) {
    shown.push_back(p.name == p.target_name ? p.name : p.name + " -> " + p.target_name);
  }
  Add(check_code::kDatabasesSelected, CheckStatus::kPass, "source",
      fmt::format("{} database(s) to move: {}", shown.size(), JoinNames(shown, 20)));
  return true;
}

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
    // A resumed database was checked when its run began.
    if (options_.owned_target_databases.count(plan.target_name) == 0) {
      PGC_RETURN_IF_ERROR(CheckReadable(**conn, plan));
    }

    std::optional<DatabaseFacts> target_db;
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
    if (const ProviderExtension* provider = FindProviderExtension(ext.name)) {
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

void Checker::CheckRoles() {
  std::set<std::string> referenced;
  for (const auto& db : source_dbs_)
    referenced.insert(db.referenced_roles.begin(), db.referenced_roles.end());
  std::vector<std::string> missing;
  std::vector<std::string> provider;
  for (const auto& role : referenced) {
    if (target_.facts->role_names.count(role) != 0) continue;
    (IsProviderRole(role) ? provider : missing).push_back(role);
  }
  if (missing.empty()) {
    Add(check_code::kRolesMissing, CheckStatus::kPass, "roles",
        referenced.empty()
            ? "no role of the source owns objects or holds grants in the databases to move"
            : fmt::format("every role that owns objects or holds grants exists on the target{}",
                          provider.empty()
                              ? ""
                              : " (provider roles left out: " + JoinNames(provider) + ")"));
  } else {
    Add(check_code::kRolesMissing, CheckStatus::kWarn, "roles",
        fmt::format(
            "{} role(s) that own objects or hold grants in the source are missing on the "
            "target: {}{}",
            missing.size(), JoinNames(missing),
            provider.empty() ? "" : " (provider roles left out: " + JoinNames(provider) + ")"),
        fmt::format("by default objects are owned by the target user ({}) and source grants are "
                    "not applied; to keep owners and grants, create these roles on the target "
                    "first",
                    target_.facts->current_user));
  }
  if (source_.facts->can_read_passwords) {
    Add(check_code::kRolesPasswords, CheckStatus::kPass, "roles",
        "role passwords can be read on the source");
  } else {
    Add(check_code::kRolesPasswords, CheckStatus::kWarn, "roles",
        "role passwords cannot be read on the source (pg_authid is not readable by " +
            source_.facts->current_user + ")",
        "roles created on the target will have no password: set them with ALTER ROLE ... "
        "PASSWORD after the move");
  }
}

void Checker::CheckConnections(const Side& side, int needed, const char* code) {
  const ServerFacts& f = *side.facts;
  int64_t max = f.SettingInt("max_connections");
  int64_t reserved = 0;
  if (!f.is_superuser) {
    reserved += f.SettingInt("superuser_reserved_connections");
    if (f.member_of.count("pg_use_reserved_connections") == 0) {
      reserved += f.SettingInt("reserved_connections");
    }
  }
  // The connection this check holds will be given back.
  int64_t free = max - f.connections_used - reserved + 1;
  std::string limit_note;
  if (f.role_connection_limit >= 0) {
    int64_t role_free = f.role_connection_limit - f.role_connections + 1;
    if (role_free < free) {
      free = role_free;
      limit_note = fmt::format(" (role {} is limited to {} connections)", f.current_user,
                               f.role_connection_limit);
    }
  }
  std::string detail = fmt::format(
      "{} free connection slot(s){} of max_connections {} ({} in use, {} reserved); --jobs {} "
      "needs {}",
      std::max<int64_t>(free, 0), limit_note, max, f.connections_used, reserved, options_.jobs,
      needed);
  const int64_t overhead = needed - options_.jobs;
  if (free >= needed) {
    Add(code, CheckStatus::kPass, side.role, detail);
  } else if (free > overhead) {
    Add(code, CheckStatus::kWarn, side.role, detail,
        fmt::format("use --jobs {}, or close idle connections / raise max_connections on the {}",
                    free - overhead, side.role));
  } else {
    Add(code, CheckStatus::kFail, side.role, detail,
        fmt::format("free connection slots on the {}: close idle connections, use a direct (not "
                    "pooled) endpoint, or raise max_connections",
                    side.role));
  }
}

// pg_dump locks every relation it dumps in one transaction, and the
// pre-data restore (one transaction too) every relation it creates, with its
// TOAST table: a server whose lock table is smaller fails part-way with "out
// of shared memory". An estimate, so a warning.
void Checker::CheckLockTables() {
  int64_t largest = 0;
  std::string which;
  for (size_t i = 0; i < source_dbs_.size() && i < report_.databases.size(); ++i) {
    if (source_dbs_[i].user_relations > largest) {
      largest = source_dbs_[i].user_relations;
      which = report_.databases[i].name;
    }
  }
  if (largest == 0) return;
  for (const Side* side : {&source_, &target_}) {
    const ServerFacts& f = *side->facts;
    const int64_t per_transaction = f.SettingInt("max_locks_per_transaction", 64);
    const int64_t sessions =
        f.SettingInt("max_connections", 100) + f.SettingInt("max_prepared_transactions", 0);
    const int64_t slots = per_transaction * sessions;
    const int64_t needed = side == &source_ ? largest : 2 * largest;
    const std::string detail = fmt::format(
        "{} relation(s) in {}, about {} lock(s) in one transaction; the lock table holds about {} "
        "(max_locks_per_transaction {} x {} sessions)",
        largest, which, needed, slots, per_transaction, sessions);
    const char* code = side == &source_ ? check_code::kSourceLocks : check_code::kTargetLocks;
    if (needed <= slots) {
      Add(code, CheckStatus::kPass, side->role, detail);
    } else {
      Add(code, CheckStatus::kWarn, side->role, detail,
          fmt::format("raise max_locks_per_transaction on the {} to at least {} (restart needed), "
                      "or move the database in parts (--include-schema)",
                      side->role, (needed + sessions - 1) / sessions + 16));
    }
  }
}

void Checker::CheckSize() {
  int64_t total = 0;
  std::vector<std::string> unknown;
  for (const auto& plan : report_.databases) {
    if (plan.size_bytes >= 0) {
      total += plan.size_bytes;
    } else {
      unknown.push_back(plan.name);
    }
  }
  auto needed = static_cast<int64_t>(static_cast<double>(total) * 1.3);
  std::string detail = fmt::format(
      "{} to move; the target needs about {} (1.3x){}", FormatBytes(total), FormatBytes(needed),
      unknown.empty() ? "" : "; size unknown for " + JoinNames(unknown));
  if (!options_.target_storage_limit) {
    Add(check_code::kTargetSize, CheckStatus::kPass, "target", detail, "");
    return;
  }
  int64_t used = 0;
  for (const auto& db : target_.facts->databases) used += std::max<int64_t>(db.size_bytes, 0);
  int64_t available = *options_.target_storage_limit - used;
  detail += fmt::format("; --target-storage-limit {} with {} in use leaves {}",
                        FormatBytes(*options_.target_storage_limit), FormatBytes(used),
                        FormatBytes(std::max<int64_t>(available, 0)));
  if (available < needed) {
    Add(check_code::kTargetSize, CheckStatus::kFail, "target", detail,
        fmt::format("give the target at least {} of storage, or move fewer databases",
                    FormatBytes(needed + used)));
  } else {
    Add(check_code::kTargetSize, CheckStatus::kPass, "target", detail);
  }
}

void Checker::CheckReplication() {
  const ServerFacts& s = *source_.facts;
  const ServerFacts& t = *target_.facts;
  const auto needed = static_cast<int64_t>(report_.databases.size());
  const CheckStatus problem = ReplicationProblem();
  auto server_problem = [&](const char* code, const std::string& object, const std::string& detail,
                            const std::string& hint) {
    Add(code, problem, object, detail, hint);
    if (replication_server_problem_.empty()) replication_server_problem_ = detail;
  };
  auto has_extension = [](const ServerFacts& f, const char* name) {
    return std::any_of(f.available_extensions.begin(), f.available_extensions.end(),
                       [&](const AvailableExtension& a) { return a.name == name; });
  };

  if (s.major < 10) {
    server_problem(check_code::kWalLevel, "source",
                   "logical replication needs PostgreSQL 10 or newer on the source",
                   "use --method copy");
  }
  std::string wal_level = s.Setting("wal_level");
  if (wal_level == "logical") {
    Add(check_code::kWalLevel, CheckStatus::kPass, "source", "wal_level is logical");
  } else {
    server_problem(check_code::kWalLevel, "source",
                   "wal_level is " + (wal_level.empty() ? std::string("unknown") : wal_level) +
                       ", not logical",
                   "set wal_level = logical and restart the source (ALTER SYSTEM SET wal_level = "
                   "logical; on RDS set rds.logical_replication = 1 in the parameter group; on "
                   "Cloud SQL the flag cloudsql.logical_decoding = on; on Azure the server "
                   "parameter wal_level), or use --method copy");
  }

  int64_t free_slots = s.SettingInt("max_replication_slots") - s.replication_slots_used;
  std::string slots = fmt::format(
      "{} free replication slot(s) (max_replication_slots {}, {} in "
      "use); {} needed, one per database",
      std::max<int64_t>(free_slots, 0), s.SettingInt("max_replication_slots"),
      s.replication_slots_used, needed);
  if (free_slots >= needed) {
    Add(check_code::kReplicationSlots, CheckStatus::kPass, "source", slots);
  } else {
    server_problem(check_code::kReplicationSlots, "source", slots,
                   "raise max_replication_slots on the source (restart needed), or drop unused "
                   "slots listed in pg_replication_slots");
  }

  int64_t free_senders = s.SettingInt("max_wal_senders") - s.wal_senders_used;
  std::string senders = fmt::format(
      "{} free WAL sender(s) (max_wal_senders {}, {} in use); {} "
      "needed",
      std::max<int64_t>(free_senders, 0), s.SettingInt("max_wal_senders"), s.wal_senders_used,
      needed);
  if (free_senders >= needed) {
    Add(check_code::kWalSenders, CheckStatus::kPass, "source", senders);
  } else {
    server_problem(check_code::kWalSenders, "source", senders,
                   "raise max_wal_senders on the source (restart needed)");
  }

  bool source_aiven_extras = has_extension(s, "aiven_extras");
  // The slot is made over a replication connection, which aiven_extras
  // does not open for anyone: REPLICATION (or a provider's equivalent) it is.
  if (s.is_superuser || s.can_replicate || s.member_of.count("rds_replication") != 0) {
    std::string how = s.is_superuser    ? "is a superuser"
                      : s.can_replicate ? "has the REPLICATION attribute"
                                        : "is a member of rds_replication";
    Add(check_code::kSourceReplicationPrivilege, CheckStatus::kPass, "source",
        fmt::format("{} {}", s.current_user, how));
  } else {
    server_problem(check_code::kSourceReplicationPrivilege, "source",
                   fmt::format("{} may not replicate (not a superuser, no REPLICATION attribute)",
                               s.current_user),
                   fmt::format("ALTER ROLE {} REPLICATION (on RDS: GRANT rds_replication TO {}), "
                               "or use --method copy",
                               s.current_user, s.current_user));
  }

  bool target_aiven_extras = has_extension(t, "aiven_extras");
  bool can_subscribe = t.is_superuser ||
                       (t.major >= 16 && t.member_of.count("pg_create_subscription") != 0) ||
                       target_aiven_extras;
  if (can_subscribe) {
    Add(check_code::kTargetSubscriptionPrivilege, CheckStatus::kPass, "target",
        fmt::format("{} may create subscriptions", t.current_user));
  } else {
    server_problem(check_code::kTargetSubscriptionPrivilege, "target",
                   fmt::format("{} may not create subscriptions", t.current_user),
                   t.major >= 16 ? fmt::format("GRANT pg_create_subscription TO {} on the "
                                               "target, or use --method copy",
                                               t.current_user)
                                 : "connect to the target as a superuser (PostgreSQL 16+ also "
                                   "allows members of pg_create_subscription), or use --method "
                                   "copy");
  }

  int64_t workers = t.SettingInt("max_logical_replication_workers") - t.subscription_workers_used;
  std::string worker_detail = fmt::format(
      "{} free logical replication worker(s) on the target (max_logical_replication_workers {}, "
      "{} in use); {} needed",
      std::max<int64_t>(workers, 0), t.SettingInt("max_logical_replication_workers"),
      t.subscription_workers_used, needed);
  if (workers >= needed) {
    Add(check_code::kTargetWorkers, CheckStatus::kPass, "target", worker_detail);
  } else {
    server_problem(check_code::kTargetWorkers, "target", worker_detail,
                   "raise max_logical_replication_workers (and max_worker_processes) on the "
                   "target (restart needed)");
  }

  // Each subscription needs a replication origin, limited on the target by
  // max_replication_slots before PostgreSQL 18.
  std::string origin_setting = t.settings.count("max_active_replication_origins") != 0
                                   ? "max_active_replication_origins"
                                   : "max_replication_slots";
  int64_t origins = t.SettingInt(origin_setting) - t.replication_origins_used;
  std::string origin_detail =
      fmt::format("{} free replication origin(s) on the target ({} {}, {} in use); {} needed",
                  std::max<int64_t>(origins, 0), origin_setting, t.SettingInt(origin_setting),
                  t.replication_origins_used, needed);
  if (origins >= needed) {
    Add(check_code::kTargetOrigins, CheckStatus::kPass, "target", origin_detail);
  } else {
    server_problem(check_code::kTargetOrigins, "target", origin_detail,
                   fmt::format("raise {} on the target (restart needed)", origin_setting));
  }

  for (size_t i = 0; i < report_.databases.size() && i < source_dbs_.size(); ++i) {
    const DatabasePlan& plan = report_.databases[i];
    const DatabaseFacts& db = source_dbs_[i];
    if (db.name.empty()) continue;  // unreadable: already failed
    if (!s.is_superuser && !source_aiven_extras && !db.tables_not_owned.empty()) {
      std::string detail =
          fmt::format("{} may not publish {} table(s) it does not own: {}", s.current_user,
                      db.tables_not_owned.size(), JoinTables(db.tables_not_owned));
      Add(check_code::kPublishPrivilege, problem, plan.name, detail,
          "connect to the source as the tables' owner or a superuser, or use --method copy");
      replication_blocked_.emplace(plan.name, detail);
    }
    if (db.tables_without_identity.empty()) {
      Add(check_code::kReplicaIdentity, CheckStatus::kPass, plan.name,
          "every table has a primary key or replica identity");
    } else {
      Add(check_code::kReplicaIdentity, CheckStatus::kWarn, plan.name,
          fmt::format("{} table(s) have no primary key or replica identity: {}; publishing them "
                      "would make UPDATE and DELETE fail on the source, so they are not "
                      "published and are copied again at cutover",
                      db.tables_without_identity.size(), JoinTables(db.tables_without_identity)),
          "add a primary key to them, or accept the copy at cutover (REPLICA IDENTITY FULL only "
          "if you ask for it)");
    }
    if (db.large_objects > 0) {
      Add(check_code::kLargeObjects, CheckStatus::kWarn, plan.name,
          fmt::format("{} large object(s): logical replication does not carry them; they are "
                      "copied again at cutover",
                      db.large_objects));
    }
    if (!db.unlogged_tables.empty()) {
      Add(check_code::kUnloggedTables, CheckStatus::kWarn, plan.name,
          fmt::format("{} unlogged table(s) are not replicated and are copied again at "
                      "cutover: {}",
                      db.unlogged_tables.size(), JoinTables(db.unlogged_tables)));
    }
  }
}

Result<CheckReport> Checker::Run() {
  report_.method = options_.method;
  Result<ConnInfo> source_info = ConnInfo::Parse(options_.source);
  if (!source_info.ok()) return source_info.status().WithContext("--source");
  Result<ConnInfo> target_info = ConnInfo::Parse(options_.target);
  if (!target_info.ok()) return target_info.status().WithContext("--target");
  source_ = {"source", *source_info, nullptr, std::nullopt};
  target_ = {"target", *target_info, nullptr, std::nullopt};
  source_named_db_ = source_.info.ExplicitDatabase();
  target_named_db_ = target_.info.ExplicitDatabase();

  PGC_RETURN_IF_ERROR(
      ConnectSide(source_, check_code::kSourceConnect, check_code::kSourceEncryption));
  PGC_RETURN_IF_ERROR(
      ConnectSide(target_, check_code::kTargetConnect, check_code::kTargetEncryption));
  if (!source_.facts || !target_.facts) return std::move(report_);

  CheckDistinct();
  if (report_.blocked()) return std::move(report_);  // never read further on one server twice
  CheckVersions();
  CheckTools();
  if (!SelectDatabases()) return std::move(report_);
  PGC_RETURN_IF_ERROR(CheckDatabases());
  CheckRoles();
  CheckConnections(source_, options_.jobs + 2, check_code::kSourceConnections);
  CheckConnections(target_, options_.jobs + 1, check_code::kTargetConnections);
  CheckSize();
  CheckLockTables();
  if (options_.method != Method::kCopy) CheckReplication();

  for (auto& plan : report_.databases) {
    if (options_.method == Method::kCopy) {
      plan.method = Method::kCopy;
      Add(check_code::kMethod, CheckStatus::kPass, plan.name, "copy (as asked)");
      continue;
    }
    auto blocked = replication_blocked_.find(plan.name);
    std::string reason = !replication_server_problem_.empty()    ? replication_server_problem_
                         : blocked != replication_blocked_.end() ? blocked->second
                                                                 : "";
    if (reason.empty()) {
      plan.method = Method::kReplication;
      Add(check_code::kMethod, CheckStatus::kPass, plan.name, "replication");
    } else if (options_.method == Method::kAuto) {
      plan.method = Method::kCopy;
      plan.reason = reason;
      Add(check_code::kMethod, CheckStatus::kPass, plan.name,
          "copy, because replication is not possible: " + reason);
    } else {
      plan.method = Method::kReplication;
      plan.reason = reason;
      Add(check_code::kMethod, CheckStatus::kFail, plan.name,
          "replication was asked for but is not possible: " + reason,
          "fix the replication checks above, or use --method auto to copy instead");
    }
  }
  return std::move(report_);
}

}  // namespace checker_internal

bool IsProviderAdminDatabase(const std::string& name) {
  return std::find(kProviderAdminDatabases.begin(), kProviderAdminDatabases.end(), name) !=
         kProviderAdminDatabases.end();
}

std::vector<std::string> SelectDatabaseNames(const std::vector<DatabaseInfo>& databases,
                                             const std::string& named,
                                             const std::vector<std::string>& include,
                                             const std::vector<std::string>& exclude) {
  std::vector<std::string> names;
  const bool single = !named.empty() && include.empty();
  for (const auto& db : databases) {
    if (single) {
      if (db.name == named) names.push_back(db.name);
      continue;
    }
    if (db.is_template || !db.allow_connections || IsProviderAdminDatabase(db.name)) continue;
    if (!include.empty() && !MatchesAnyPattern(include, db.name)) continue;
    if (MatchesAnyPattern(exclude, db.name)) continue;
    names.push_back(db.name);
  }
  return names;
}

std::string TargetDatabaseName(const std::string& source_name, bool single,
                               const std::string& target_named) {
  if (single && !target_named.empty() && target_named != "postgres") return target_named;
  return source_name;
}

std::vector<std::string> ProviderOnlyExtensions() {
  std::vector<std::string> names;
  names.reserve(kProviderExtensions.size());
  for (const auto& e : kProviderExtensions) names.emplace_back(e.name);
  return names;
}

Result<CheckReport> RunChecks(const CheckOptions& options) {
  if (options.jobs < 1) {
    return Status(StatusCode::kInvalidArgument, "--jobs must be 1 or more");
  }
  checker_internal::Checker checker(options);
  return checker.Run();
}

}  // namespace pgcourier

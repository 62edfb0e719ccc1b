#include "preflight/checker.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <functional>
#include <memory>
#include <set>
#include <string_view>

#include "catalog/database_facts.h"
#include "catalog/server_facts.h"
#include "pg/connection.h"
#include "pg/pooler.h"
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
  Result<bool> usable = CheckPooler(
      side, bootstrap,
      side.role == "source" ? check_code::kSourcePooler : check_code::kTargetPooler, connect_code);
  if (!usable.ok()) return usable.status();
  if (!*usable) return Status::Ok();
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
  summary.in_recovery = side.facts->in_recovery;
  Add(connect_code, CheckStatus::kPass, side.role,
      fmt::format("connected to PostgreSQL {} as {}{}", side.facts->version_text,
                  side.facts->current_user, side.facts->is_superuser ? " (superuser)" : ""));
  AddEncryption(side, encryption_code);
  return Status::Ok();
}

Result<bool> Checker::CheckPooler(Side& side, const ConnInfo& info, const char* code,
                                  const char* connect_code) {
  Result<PoolerProbe> probe = ProbePooler(info, ConnectOptionsFor(side.role));
  if (!probe.ok() && probe.status().sqlstate() == "3D000" && side.role == "target") {
    // The target database may not exist yet.
    probe = ProbePooler(info.WithDatabase("postgres"), ConnectOptionsFor(side.role));
  }
  if (!probe.ok()) {
    if (probe.status().code() == StatusCode::kCancelled) return probe.status();
    // The side's connection would fail alike (and wait as long again).
    Add(connect_code, CheckStatus::kFail, side.role, probe.status().message(),
        probe.status().hint());
    return false;
  }
  const std::string hint = DirectConnectionHint(info);
  switch (probe->mode) {
    case PoolerMode::kNone:
      Add(code, CheckStatus::kPass, side.role, "a server session of its own (no pooler)");
      return true;
    case PoolerMode::kTransaction:
      Add(code, CheckStatus::kFail, side.role, TransactionPoolerMessage(side.role, probe->evidence),
          hint);
      return false;
    case PoolerMode::kSession:
      break;
  }
  side.pooled = true;
  if (probe->pool_exhausted) {
    Add(code, CheckStatus::kFail, side.role,
        fmt::format("the {} is reached through a connection pooler in session mode whose pool "
                    "has no second server session ({}): pgcourier opens several sessions at "
                    "once and would wait for its own; nothing was changed",
                    side.role, probe->evidence),
        hint + ", or raise the pooler's pool size (default_pool_size) above --jobs + 3");
    return false;
  }
  Add(code, CheckStatus::kWarn, side.role,
      fmt::format("the {} is reached through a connection pooler in session mode ({}): each of "
                  "pgcourier's sessions holds one of its server sessions for its whole life{}",
                  side.role, probe->evidence,
                  side.role == "source" ? "; logical replication needs the server itself" : ""),
      hint);
  return true;
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
  if (s.in_recovery) CheckSourceStandby();
}

// A standby can be copied from (the snapshot is exported there, and nothing
// pgcourier does in a copy writes to the source), but its recovery cancels
// reads that hold back the cleanup of rows the primary removed, unless it
// tells the primary what it still reads or waits for its readers.
void Checker::CheckSourceStandby() {
  const ServerFacts& s = *source_.facts;
  const std::string feedback = s.Setting("hot_standby_feedback");
  const std::string delay = s.Setting("max_standby_streaming_delay");
  if (feedback == "on" || delay == "-1") {
    Add(check_code::kSourceStandby, CheckStatus::kPass, "source",
        fmt::format(
            "the source is a standby (in recovery); {} keeps its recovery from "
            "cancelling the copy's reads",
            feedback == "on" ? "hot_standby_feedback = on" : "max_standby_streaming_delay = -1"));
    return;
  }
  Add(check_code::kSourceStandby, CheckStatus::kWarn, "source",
      fmt::format("the source is a standby (in recovery) with hot_standby_feedback = {} and "
                  "max_standby_streaming_delay = {}: its recovery may cancel a long copy "
                  "(\"conflict with recovery\")",
                  feedback.empty() ? "unknown" : feedback, delay.empty() ? "unknown" : delay),
      "set hot_standby_feedback = on on the standby (or max_standby_streaming_delay = -1) and "
      "reload it; or copy from the primary");
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
  } else if (options_.roles) {
    Add(check_code::kRolesMissing, CheckStatus::kPass, "roles",
        fmt::format("{} role(s) that own objects or hold grants in the source are missing on the "
                    "target; --roles creates them first: {}",
                    missing.size(), JoinNames(missing)));
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

void Checker::CheckConnections(const Side& side, const std::function<int(int)>& needed,
                               const char* code) {
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
      needed(options_.jobs));
  int fitting = options_.jobs;  // the most jobs that fit
  while (fitting > 0 && needed(fitting) > free) --fitting;
  if (fitting == options_.jobs) {
    Add(code, CheckStatus::kPass, side.role, detail);
  } else if (fitting > 0) {
    Add(code, CheckStatus::kWarn, side.role, detail,
        fmt::format("use --jobs {}, or close idle connections / raise max_connections on the {}",
                    fitting, side.role));
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

// A standby keeps unlogged tables empty and refuses to read them during
// recovery: their copy would fail.
void Checker::CheckStandbyUnlogged() {
  for (size_t i = 0; i < report_.databases.size() && i < source_dbs_.size(); ++i) {
    std::vector<TableName> unreadable;
    for (const auto& t : source_dbs_[i].unlogged_tables) {
      if (options_.filter.ExcludesTable(t.schema, t.name) ||
          options_.filter.ExcludesTableData(t.schema, t.name)) {
        continue;
      }
      unreadable.push_back(t);
    }
    if (unreadable.empty()) continue;
    Add(check_code::kSourceStandby, CheckStatus::kFail, report_.databases[i].name,
        fmt::format("{} unlogged table(s) cannot be read on a standby (recovery keeps them "
                    "empty and unreadable): {}",
                    unreadable.size(), JoinTables(unreadable)),
        "copy from the primary, or leave their rows out with --exclude-table-data");
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
  if (options_.method != Method::kCopy && !source_.facts->in_recovery &&
      source_.facts->major >= 10) {
    // The first reading of the source's WAL rate; the checks in between
    // make most of the interval (replication_checks.cc).
    Result<WalPosition> start = ReadWalPosition(*source_.conn, QueryDeadline());
    if (start.ok()) wal_start_ = *start;
  }

  CheckDistinct();
  if (report_.blocked()) return std::move(report_);  // never read further on one server twice
  CheckVersions();
  CheckTools();
  if (!SelectDatabases()) return std::move(report_);
  PGC_RETURN_IF_ERROR(CheckDatabases());
  if (source_.facts->in_recovery) CheckStandbyUnlogged();
  CheckRoles();
  CheckRequiredRoles();
  const int databases = static_cast<int>(report_.databases.size());
  CheckConnections(
      source_, [databases](int jobs) { return MigrationSessions(jobs, databases).source; },
      check_code::kSourceConnections);
  CheckConnections(
      target_, [databases](int jobs) { return MigrationSessions(jobs, databases).target; },
      check_code::kTargetConnections);
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
  // Last: it is not tried for a database whose other checks failed.
  PGC_RETURN_IF_ERROR(CheckSchemaTrials());
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

Result<std::string> ReadCronDatabase(Connection& target) {
  // pg_settings leaves out what the user may not read, where
  // current_setting would fail.
  Result<QueryResult> rows =
      target.Exec("SELECT setting FROM pg_catalog.pg_settings WHERE name = 'cron.database_name'");
  if (!rows.ok()) return rows.status().WithContext("reading the target's cron.database_name");
  return rows->rows() == 0 ? std::string() : rows->GetString(0, 0);
}

std::vector<std::string> LeftOutExtensions(const std::string& target_database,
                                           const std::string& cron_database) {
  std::vector<std::string> names = ProviderOnlyExtensions();
  if (!cron_database.empty() && cron_database == target_database) {
    names.erase(std::remove(names.begin(), names.end(), "pg_cron"), names.end());
  }
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

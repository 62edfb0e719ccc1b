#include "catalog/server_facts.h"

#include <cstdlib>

#include "pg/version.h"

namespace pgcourier {
namespace {

// Settings the checks read. current_setting(name, true) returns NULL for the
// ones this server does not know (older versions, absent provider modules);
// it still fails for settings the user may not read (data_directory and
// other pg_read_all_settings ones), so none of those may be listed here.
constexpr const char* kSettingNames =
    "{wal_level,max_replication_slots,max_wal_senders,max_connections,max_locks_per_transaction,"
    "max_prepared_transactions,max_slot_wal_keep_size,"
    "superuser_reserved_connections,reserved_connections,max_logical_replication_workers,"
    "max_worker_processes,max_sync_workers_per_subscription,max_active_replication_origins,"
    "server_encoding,ssl,extwlist.extensions,azure.extensions,"
    "rds.allowed_extensions,rds.logical_replication,cloudsql.logical_decoding,"
    "cloudsql.enable_pglogical,hot_standby_feedback,max_standby_streaming_delay}";

constexpr const char* kIdentitySql = R"sql(
SELECT current_setting('server_version'),
       current_setting('server_version_num')::int,
       extract(epoch FROM pg_postmaster_start_time())::text,
       current_setting('port'),
       host(inet_server_addr()),
       pg_is_in_recovery(),
       r.rolname, r.rolsuper, r.rolreplication, r.rolcreatedb, r.rolcreaterole, r.rolconnlimit,
       (SELECT count(*) FROM pg_stat_activity a WHERE a.usesysid = r.oid)
  FROM pg_roles r
 WHERE r.rolname = current_user
)sql";

constexpr const char* kUsageSql = R"sql(
SELECT (SELECT coalesce(sum(numbackends), 0) FROM pg_stat_database),
       (SELECT count(*) FROM pg_replication_slots),
       (SELECT count(*) FROM pg_stat_replication),
       (SELECT count(*) FROM pg_stat_subscription WHERE pid IS NOT NULL)
)sql";

std::string DatabasesSql(int version_num) {
  std::string provider = version_num >= 150000
                             ? "CASE d.datlocprovider WHEN 'i' THEN 'icu' WHEN 'b' THEN 'builtin' "
                               "ELSE 'libc' END"
                             : "'libc'";
  return "SELECT d.datname, pg_get_userbyid(d.datdba), pg_encoding_to_char(d.encoding), "
         "d.datcollate, d.datctype, " +
         provider +
         ", d.datallowconn, d.datistemplate, "
         "CASE WHEN d.datallowconn AND NOT d.datistemplate "
         "AND has_database_privilege(d.datname, 'CONNECT') "
         "THEN pg_database_size(d.datname) ELSE -1 END "
         "FROM pg_database d ORDER BY d.datname";
}

}  // namespace

int64_t ServerFacts::SettingInt(const std::string& name, int64_t fallback) const {
  auto it = settings.find(name);
  if (it == settings.end() || it->second.empty()) return fallback;
  char* end = nullptr;
  long long value = std::strtoll(it->second.c_str(), &end, 10);
  return end == it->second.c_str() ? fallback : value;
}

std::string ServerFacts::Setting(const std::string& name) const {
  auto it = settings.find(name);
  return it == settings.end() ? "" : it->second;
}

Result<ServerFacts> ReadServerFacts(Connection& conn, Deadline deadline) {
  ServerFacts facts;
  const std::string where = "reading server facts from " + conn.display();

  Result<QueryResult> identity = conn.Exec(kIdentitySql, deadline);
  if (!identity.ok()) return identity.status().WithContext(where);
  if (identity->rows() != 1) {
    return Status(StatusCode::kServerError, where + ": the current user is not in pg_roles");
  }
  const QueryResult& id = *identity;
  facts.version_text = id.GetString(0, 0);
  facts.version_num = static_cast<int>(id.GetInt(0, 1));
  facts.major = MajorFromVersionNum(facts.version_num);
  facts.postmaster_start_time = id.GetString(0, 2);
  facts.port_setting = id.GetString(0, 3);
  facts.server_address = id.GetOptional(0, 4);
  facts.in_recovery = id.GetBool(0, 5);
  facts.current_user = id.GetString(0, 6);
  facts.is_superuser = id.GetBool(0, 7);
  facts.can_replicate = id.GetBool(0, 8);
  facts.can_create_db = id.GetBool(0, 9);
  facts.can_create_role = id.GetBool(0, 10);
  facts.role_connection_limit = id.GetInt(0, 11, -1);
  facts.role_connections = id.GetInt(0, 12);

  // Not readable without privileges on most managed services: optional.
  Result<QueryResult> sysid =
      conn.Exec("SELECT system_identifier::text FROM pg_control_system()", deadline);
  if (sysid.ok() && sysid->rows() == 1) facts.system_identifier = sysid->GetString(0, 0);

  Result<QueryResult> members = conn.Exec(
      "SELECT rolname FROM pg_roles WHERE pg_has_role(current_user, oid, 'MEMBER') "
      "AND rolname <> current_user",
      deadline);
  if (!members.ok()) return members.status().WithContext(where);
  for (int r = 0; r < members->rows(); ++r) facts.member_of.insert(members->GetString(r, 0));

  Result<QueryResult> settings = conn.ExecParams(
      "SELECT n, current_setting(n, true) FROM unnest($1::text[]) AS n", {kSettingNames}, deadline);
  if (!settings.ok()) return settings.status().WithContext(where);
  for (int r = 0; r < settings->rows(); ++r) {
    if (!settings->IsNull(r, 1))
      facts.settings[settings->GetString(r, 0)] = settings->GetString(r, 1);
  }
  // Superuser-only settings of modules: pg_settings leaves out what the user
  // may not read, where current_setting would fail.
  Result<QueryResult> module_settings = conn.Exec(
      "SELECT name, setting FROM pg_settings WHERE name IN ('cron.database_name')", deadline);
  if (!module_settings.ok()) return module_settings.status().WithContext(where);
  for (int r = 0; r < module_settings->rows(); ++r) {
    facts.settings[module_settings->GetString(r, 0)] = module_settings->GetString(r, 1);
  }

  Result<QueryResult> usage = conn.Exec(kUsageSql, deadline);
  if (!usage.ok()) return usage.status().WithContext(where);
  facts.connections_used = usage->GetInt(0, 0);
  facts.replication_slots_used = usage->GetInt(0, 1);
  facts.wal_senders_used = usage->GetInt(0, 2);
  facts.subscription_workers_used = usage->GetInt(0, 3);
  // pg_replication_origin is readable by superusers only.
  Result<QueryResult> origins = conn.Exec("SELECT count(*) FROM pg_replication_origin", deadline);
  if (origins.ok()) facts.replication_origins_used = origins->GetInt(0, 0);

  Result<QueryResult> databases = conn.Exec(DatabasesSql(facts.version_num), deadline);
  if (!databases.ok()) return databases.status().WithContext(where);
  for (int r = 0; r < databases->rows(); ++r) {
    DatabaseInfo db;
    db.name = databases->GetString(r, 0);
    db.owner = databases->GetString(r, 1);
    db.encoding = databases->GetString(r, 2);
    db.collate = databases->GetString(r, 3);
    db.ctype = databases->GetString(r, 4);
    db.locale_provider = databases->GetString(r, 5);
    db.allow_connections = databases->GetBool(r, 6);
    db.is_template = databases->GetBool(r, 7);
    db.size_bytes = databases->GetInt(r, 8, -1);
    facts.databases.push_back(std::move(db));
  }

  Result<QueryResult> roles = conn.Exec("SELECT rolname FROM pg_roles", deadline);
  if (!roles.ok()) return roles.status().WithContext(where);
  for (int r = 0; r < roles->rows(); ++r) facts.role_names.insert(roles->GetString(r, 0));

  facts.can_read_passwords = conn.Exec("SELECT 1 FROM pg_authid LIMIT 1", deadline).ok();

  std::string extensions_sql =
      facts.version_num >= 130000
          ? "SELECT name, version, superuser, trusted FROM pg_available_extension_versions"
          : "SELECT name, version, superuser, false FROM pg_available_extension_versions";
  Result<QueryResult> extensions = conn.Exec(extensions_sql, deadline);
  if (!extensions.ok()) return extensions.status().WithContext(where);
  for (int r = 0; r < extensions->rows(); ++r) {
    facts.available_extensions.push_back({extensions->GetString(r, 0), extensions->GetString(r, 1),
                                          extensions->GetBool(r, 2), extensions->GetBool(r, 3)});
  }

  Result<QueryResult> languages =
      conn.Exec("SELECT lanname FROM pg_language WHERE lanispl", deadline);
  if (!languages.ok()) return languages.status().WithContext(where);
  for (int r = 0; r < languages->rows(); ++r) facts.languages.insert(languages->GetString(r, 0));

  return facts;
}

}  // namespace pgcourier

// What pgcourier needs to know about a server as a whole (cluster-level
// catalogs, settings, the connected user's rights), read once over one
// connection. Reading never changes anything on the server.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "pg/connection.h"
#include "util/status.h"

namespace pgcourier {

struct DatabaseInfo {
  std::string name;
  std::string owner;
  std::string encoding;
  std::string collate;
  std::string ctype;
  std::string locale_provider;  // "libc", "icu" (15+), "builtin" (17+)
  bool allow_connections = true;
  bool is_template = false;
  int64_t size_bytes = -1;  // -1 when the user may not read it
};

struct AvailableExtension {
  std::string name;
  std::string version;
  bool superuser = true;  // needs superuser to create
  bool trusted = false;   // 13+: creatable by users with CREATE on the database
};

struct ServerFacts {
  // Identity, for telling two servers apart however they were addressed.
  std::string version_text;  // server_version, e.g. "15.18 (Debian 15.18-0+deb12u1)"
  int version_num = 0;       // server_version_num
  int major = 0;
  std::optional<std::string> system_identifier;  // when pg_control_system() is readable
  std::string postmaster_start_time;             // to the microsecond
  std::string port_setting;
  std::optional<std::string> server_address;  // inet_server_addr(); none over a unix socket
  bool in_recovery = false;

  // The connected user.
  std::string current_user;
  bool is_superuser = false;
  bool can_replicate = false;  // rolreplication
  bool can_create_db = false;
  bool can_create_role = false;
  int64_t role_connection_limit = -1;
  int64_t role_connections = 0;
  // Roles the user is a member of (directly or not), for provider
  // equivalents of rights: rds_replication, pg_create_subscription, ...
  std::set<std::string> member_of;

  // Settings by name; a setting the server does not have is absent.
  std::map<std::string, std::string> settings;
  int64_t SettingInt(const std::string& name, int64_t fallback = 0) const;
  std::string Setting(const std::string& name) const;

  // Usage of shared resources.
  int64_t connections_used = 0;
  int64_t replication_slots_used = 0;
  int64_t wal_senders_used = 0;
  int64_t replication_origins_used = 0;
  int64_t subscription_workers_used = 0;

  std::vector<DatabaseInfo> databases;
  std::set<std::string> role_names;
  // false on managed services that hide pg_authid (passwords unreadable).
  bool can_read_passwords = false;
  std::vector<AvailableExtension> available_extensions;
  // Procedural languages in the connected database.
  std::set<std::string> languages;
};

// Reads the facts over `conn` (any database of the server).
Result<ServerFacts> ReadServerFacts(Connection& conn, Deadline deadline);

}  // namespace pgcourier

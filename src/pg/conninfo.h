// A connection string exactly as libpq takes it (URI or key=value, with PG*
// environment variables, .pgpass and service files applied by libpq itself),
// held as parsed keywords so one can be changed (say, the database) without
// re-quoting, and shown without its secrets.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/status.h"

namespace pgcourier {

class ConnInfo {
 public:
  // Parses a URI (postgresql://...) or key=value string with libpq's own
  // parser. An empty string is valid: libpq then takes everything from the
  // environment and its defaults. Fails with a message naming the problem but
  // never echoing the string (it may hold a password).
  static Result<ConnInfo> Parse(const std::string& conninfo);

  // The value of a keyword given in the string ("" when absent). Environment
  // variables are not consulted.
  std::string Get(const std::string& keyword) const;
  bool Has(const std::string& keyword) const;

  // Copies with one keyword set (or replaced).
  ConnInfo With(const std::string& keyword, const std::string& value) const;
  ConnInfo WithDatabase(const std::string& dbname) const { return With("dbname", dbname); }

  // The database the string names explicitly, else PGDATABASE; "" when
  // neither (libpq would then default to the user name, or the service file).
  std::string ExplicitDatabase() const;

  // Effective host, port and user as libpq will use them: the string, else
  // PGHOST/PGPORT/PGUSER, else libpq's defaults (unix socket, 5432, OS user).
  std::string EffectiveHost() const;
  std::string EffectivePort() const;
  std::string EffectiveUser() const;

  // True when every host is a unix socket directory or a loopback address.
  bool IsLocal() const;

  // postgresql://user@host:port/dbname?sslmode=... with the password and
  // every other secret left out. Safe for logs, JSON and state files.
  std::string Redacted() const;

  // key=value form with values quoted as libpq requires, leaving out the
  // password and other secrets: what child processes (pg_dump, pg_restore)
  // get on their command line. The password goes to them in PGPASSWORD.
  std::string ToKeyValueWithoutSecrets() const;

  // Keywords and values, for PQconnectStartParams. Holds the password.
  const std::vector<std::pair<std::string, std::string>>& params() const { return params_; }

 private:
  std::vector<std::pair<std::string, std::string>> params_;
};

// Where a host of a connection string (or PQhost/PQhostaddr) points.
enum class HostKind {
  kUnixSocket,  // a socket directory ("/...", "@abstract") or no host at all
  kLoopback,    // localhost, 127.0.0.0/8, ::1 (also IPv4-mapped): this machine
  kRemote,      // anything else, host names included: traffic may cross a network
};
HostKind ClassifyHost(std::string_view host);

// `value` quoted for a key=value connection string ('...', with quotes and
// backslashes escaped).
std::string QuoteConnValue(std::string_view value);

// True for the keywords whose values must never be displayed.
bool IsSecretConnKeyword(const std::string& keyword);

}  // namespace pgcourier

// Throwaway PostgreSQL clusters for integration tests.
//
// A PgCluster is a real server (initdb + pg_ctl) in a fresh temporary
// directory, listening on a free TCP port on 127.0.0.1 with trust
// authentication, stopped and deleted when the object is destroyed. Tests use
// it like this:
//
//   TEST(Thing, Works) {
//     pgcourier::testing::PgClusterOptions options;
//     options.major = 17;
//     options.settings = {"wal_level = logical"};
//     auto cluster = pgcourier::testing::StartClusterOrFail(options);
//     ASSERT_NE(cluster, nullptr);  // the failure (with the server log) is already recorded
//     auto created = cluster->Sql("CREATE TABLE t (id int)");
//     ASSERT_TRUE(created.ok()) << created.status().ToString();
//     ... connect with cluster->ConnString() or cluster->Uri() ...
//   }
//
// PostgreSQL refuses to run as root, so when the tests run as root (as in CI)
// initdb and pg_ctl run as the OS user `postgres` (override with env
// PGCOURIER_TEST_OS_USER). psql, used by Sql(), runs as the test's own user and
// connects over TCP.
//
// Environment variables read here:
//   PGCOURIER_PG<major>_BINDIR  server binaries for a major (see PgBinDir)
//   PGCOURIER_TEST_OS_USER      OS user that runs the servers when root (default postgres)
//   PGCOURIER_TEST_PSQL         psql binary for Sql() (default: see PsqlPath)
//   PGCOURIER_KEEP_CLUSTERS=1   never delete cluster directories
//   PGCOURIER_TEST_TEMPLATES=0  run initdb for every cluster (see Start)
//   TMPDIR                      where cluster directories and the initdb
//                               templates are created (default /tmp)
//
// Not thread-safe: use one PgCluster from one thread at a time.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "util/status.h"

namespace pgcourier::testing {

// Directory holding the server binaries (initdb, pg_ctl, postgres) of a
// PostgreSQL major version, found in this order:
//   1. env PGCOURIER_PG<major>_BINDIR, when set and non-empty (returned as is);
//   2. /usr/lib/postgresql/<major>/bin, when it has `postgres`;
//   3. /opt/pgcourier/pg/<major>/bin, when it has `postgres`;
//   4. $HOME/.local/share/pgcourier/pg/<major>/bin, when it has `postgres`.
// Returns an empty string when none applies.
std::string PgBinDir(int major);

// The majors (probing 12..18) for which PgBinDir finds an executable
// `postgres`, ascending.
std::vector<int> AvailablePgMajors();

// True when AvailablePgMajors() contains `major`.
bool HavePgMajor(int major);

// The psql used by PgCluster::Sql: env PGCOURIER_TEST_PSQL when set; else the
// first `psql` found in PgBinDir(15), /usr/lib/postgresql/15/bin, then in the
// bindirs of the other available majors (newest first); else "psql" (searched
// in PATH). Any psql can talk to any server version the tests use.
std::string PsqlPath();

struct PgClusterOptions {
  int major = 15;
  // Lines appended to postgresql.conf before the first start, after the
  // harness's own settings (so they can override them), e.g.
  // "wal_level = logical".
  std::vector<std::string> settings;
  // Lines put in pg_hba.conf BEFORE the default lines, which trust every
  // local and 127.0.0.1/::1 connection (including replication). Use them to
  // require passwords, reject a user, and so on.
  std::vector<std::string> hba_lines;
  // Generate a self-signed certificate (CN=localhost) with the openssl CLI and
  // set ssl = on. Non-SSL connections are still accepted unless hba_lines
  // say otherwise.
  bool ssl = false;
  // Instead of the self-signed certificate: a test CA (ssl_ca_path()) and a
  // server certificate it signs for localhost and 127.0.0.1 (subjectAltName),
  // so clients can use sslmode=verify-ca / verify-full. Implies ssl.
  bool ssl_ca_signed = false;
  // Bootstrap superuser name (initdb -U). Its password is unset.
  std::string superuser = "postgres";
  // initdb --locale; the encoding is always UTF8.
  std::string locale = "C";
};

// Per-call options for PgCluster::Sql.
struct SqlOptions {
  std::string dbname = "postgres";
  std::string user;      // empty: the cluster's superuser
  std::string password;  // passed to psql in PGPASSWORD, never in argv
  // Extra libpq key=value pairs appended to the conninfo, e.g. "sslmode=require".
  std::string extra_conninfo;
  std::chrono::milliseconds timeout{std::chrono::minutes(2)};
};

class PgCluster {
 public:
  // Creates and starts a cluster:
  //   - a fresh directory $TMPDIR/pgcourier-test-XXXXXX (mode 0755, chowned to
  //     the server's OS user when root) holding data/ (the data directory,
  //     0700), socket/ (unix_socket_directories) and server.log;
  //   - initdb -A trust -E UTF8 --locale=<locale> -U <superuser> -N, run once
  //     per binaries, superuser and locale into a template
  //     ($TMPDIR/pgcourier-test-templates/) that each cluster copies and gives
  //     a system identifier of its own (system_identifier.h);
  //   - postgresql.conf gets listen_addresses = '127.0.0.1', the socket dir,
  //     fsync = off, lc_messages = 'C', then options.settings;
  //   - pg_hba.conf gets options.hba_lines, then the default trust lines;
  //   - with ssl, data/server.crt and data/server.key (0600) and ssl = on;
  //   - pg_ctl -w -t 60 -l server.log start on a free TCP port (found by
  //     binding port 0; when the server cannot bind it because something took
  //     it meanwhile, another port is tried, up to 5 times).
  // Returns an error Status (kNotFound when the binaries are missing;
  // kIoError otherwise) whose message includes the failing command's output
  // and the tail of the server log. On failure the directory is removed
  // (unless PGCOURIER_KEEP_CLUSTERS=1).
  static Result<std::unique_ptr<PgCluster>> Start(const PgClusterOptions& options);
  // A streaming hot standby of `primary` (running): pg_basebackup -R of it
  // into a fresh directory, its own socket directory and `settings`
  // appended to the configuration it copied, started on a free port. It
  // replays the primary's changes as they come; pg_is_in_recovery() is true.
  static Result<std::unique_ptr<PgCluster>> StartStandby(
      const PgCluster& primary, const std::vector<std::string>& settings = {});

  // Stops the server (pg_ctl stop -m immediate) if running and removes the
  // directory, unless the current gtest test (or, for a cluster created in
  // SetUpTestSuite, any test since it was started) has failed, or env
  // PGCOURIER_KEEP_CLUSTERS=1: then the directory is kept and its data dir
  // and log paths are printed to stderr.
  ~PgCluster();

  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  int major() const { return options_.major; }
  int port() const { return port_; }
  std::string host() const { return "127.0.0.1"; }
  const std::string& superuser() const { return options_.superuser; }
  const std::string& bin_dir() const { return bin_dir_; }
  // The temporary directory holding everything below.
  const std::string& base_dir() const { return base_dir_; }
  const std::string& socket_dir() const { return socket_dir_; }
  const std::string& data_dir() const { return data_dir_; }
  const std::string& log_path() const { return log_path_; }
  // The CA certificate that signed the server's certificate (for libpq's
  // sslrootcert); empty unless PgClusterOptions::ssl_ca_signed.
  const std::string& ssl_ca_path() const { return ssl_ca_path_; }
  // False after Stop() (until Restart()) or after a failed Restart().
  bool running() const { return running_; }

  // libpq key=value conninfo
  // "host=127.0.0.1 port=N user=<user> dbname=<db>[ password=<pw>]", values
  // quoted as libpq requires. `user` defaults to the superuser.
  std::string ConnString(const std::string& dbname = "postgres", const std::string& user = "",
                         const std::string& password = "") const;
  // "postgresql://user[:password]@127.0.0.1:N/dbname", percent-encoded.
  std::string Uri(const std::string& dbname = "postgres", const std::string& user = "",
                  const std::string& password = "") const;

  // Runs SQL (any number of ;-separated statements, psql meta-commands
  // allowed) with `psql -X -q -At -v ON_ERROR_STOP=1 -f <file>` over TCP.
  // Each statement runs in its own transaction (so CREATE DATABASE works).
  // Returns psql's standard output without its final newline: one line per
  // row, columns separated by '|'. Returns an error Status (kServerError,
  // message = psql's stderr) when psql fails, e.g. on an SQL error; statements
  // before the failing one stay committed.
  Result<std::string> Sql(const std::string& sql, const SqlOptions& options) const;
  Result<std::string> Sql(const std::string& sql, const std::string& dbname = "postgres",
                          const std::string& user = "") const;

  // pg_ctl stop -m fast. Ok when already stopped.
  Status Stop();
  // pg_ctl stop -m immediate: the server dies as in a crash (no checkpoint;
  // sessions cut; recovery at the next start). Ok when already stopped.
  // Restart() brings it back on the same port.
  Status Kill();
  // pg_ctl restart -w -m fast on the same port (starts the server when
  // stopped), e.g. after AppendSettings. On failure, the Status has the log tail.
  Status Restart();
  // Appends lines to postgresql.conf; they take effect at the next Restart()
  // (or, for reloadable settings, after SELECT pg_reload_conf()).
  Status AppendSettings(const std::vector<std::string>& lines);
  // Appends lines to the END of pg_hba.conf (after the default trust lines, so
  // mostly useful with PgClusterOptions::hba_lines) and reloads the server.
  Status AppendHbaLines(const std::vector<std::string>& lines);

  // The last `lines` lines of the server log.
  std::string LogTail(int lines = 40) const;

 private:
  explicit PgCluster(PgClusterOptions options);

  Status Init();
  Status StartServer();
  // Runs a server program (initdb, pg_ctl, openssl) as the server's OS user.
  Result<std::string> RunServerCommand(const std::vector<std::string>& argv,
                                       std::chrono::milliseconds timeout) const;
  Status ChownToServerUser(const std::string& path) const;
  void RemoveDir();
  // After a failed start: stops a server that did start, removes the
  // directory.
  void AbandonFailedStart();

  PgClusterOptions options_;
  std::string bin_dir_;
  std::string base_dir_;
  std::string data_dir_;
  std::string socket_dir_;
  std::string log_path_;
  std::string ssl_ca_path_;
  int port_ = 0;
  bool running_ = false;
  bool as_other_user_ = false;  // true when root: servers run as server_uid_
  uid_t server_uid_ = 0;
  gid_t server_gid_ = 0;
  int failed_tests_at_start_ = 0;
  const PgCluster* primary_ = nullptr;  // while StartStandby makes a standby of it
};

// Starts a cluster for the current test. On failure records a non-fatal
// gtest failure (like ADD_FAILURE, reported at the caller's file and line)
// with the Status message and hint, and returns nullptr, so the caller must
// stop the test itself:
//   auto cluster = StartClusterOrFail(options);
//   ASSERT_NE(cluster, nullptr);
// In SetUp() the ASSERT returns from SetUp and gtest then skips the test body;
// in SetUpTestSuite() keep the nullptr in a static and check it in SetUp().
std::unique_ptr<PgCluster> StartClusterOrFail(
    const PgClusterOptions& options,
    // The caller's location, for the failure message (std::source_location
    // is not usable with clang 14 + libstdc++ 12, hence the builtins).
    const char* file = __builtin_FILE(), int line = __builtin_LINE());

}  // namespace pgcourier::testing

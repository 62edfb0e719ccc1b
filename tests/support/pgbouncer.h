// A real PgBouncer in front of a test server, for the tests of connection
// poolers (pg/pooler.h, the settings that must not outlive a session).
//
//   if (!PgBouncer::Installed()) GTEST_SKIP() << "pgbouncer is not installed";
//   PgBouncerOptions options;
//   options.server_port = target_->port();
//   options.pool_mode = "transaction";
//   auto bouncer = PgBouncer::Start(options);
//   ASSERT_TRUE(bouncer.ok()) << bouncer.status().ToString();
//   ... (*bouncer)->ConnString("postgres", "postgres") ...
//
// It runs in the foreground as a child of the test (dying with it), with an
// ini, an auth file (auth_type trust: the users must be listed) and its log
// in a temporary directory; as root it switches to the OS user that runs the
// servers (`-u`, as PgCluster). The destructor stops it (SIGTERM) and
// removes the directory unless the test failed.
//
// Environment: PGCOURIER_TEST_PGBOUNCER, the binary (default
// /usr/sbin/pgbouncer, Debian's package `pgbouncer`).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "util/status.h"

namespace pgcourier::testing {

struct PgBouncerOptions {
  int server_port = 0;                    // the PostgreSQL server on 127.0.0.1 it pools for
  std::string pool_mode = "transaction";  // session | transaction | statement
  int default_pool_size = 2;
  int max_client_conn = 100;
  std::vector<std::string> users = {"postgres"};  // who may log in (trust)
  // Run on a server session before it goes to another client. Empty (the
  // default here, unlike PgBouncer's DISCARD ALL): whatever a client set
  // stays for the next one, so a test sees a setting that leaked.
  std::string server_reset_query;
};

class PgBouncer {
 public:
  static std::string BinaryPath();
  static bool Installed();
  // Starts it on a free port and waits until the port accepts connections.
  static Result<std::unique_ptr<PgBouncer>> Start(const PgBouncerOptions& options);

  ~PgBouncer();
  PgBouncer(const PgBouncer&) = delete;
  PgBouncer& operator=(const PgBouncer&) = delete;

  int port() const { return port_; }
  // "host=127.0.0.1 port=<pooler> user=<user> dbname=<dbname>".
  std::string ConnString(const std::string& dbname, const std::string& user) const;
  std::string LogTail(int lines = 30) const;

 private:
  PgBouncer() = default;
  Status Launch(const PgBouncerOptions& options);

  std::string dir_;
  std::string log_path_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace pgcourier::testing

// Bad input through the real binary: every case ends with a clear error that
// says what to do (key words of the message and of its hint), exit status 1
// (blocked) or 2 (usage), and NOTHING touched on either server: databases,
// schemas, relations, roles, slots, publications and subscriptions are the
// same before and after. And names that are only unusual (quotes, spaces,
// non-ASCII) work.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "cli_runner.h"
#include "pg/connection.h"
#include "pg_cluster.h"
#include "two_servers.h"
#include "util/process.h"

namespace pgcourier {
namespace {

using testing::PgCluster;
using testing::RunCli;

// libpq must not pick up anything from the test's environment.
testing::CliOptions Isolated() {
  testing::CliOptions options;
  options.unset_env = {"PGPASSWORD", "PGPASSFILE",       "PGSERVICE",       "PGSERVICEFILE",
                       "PGSSLMODE",  "PGCOURIER_SOURCE", "PGCOURIER_TARGET"};
  return options;
}

// What a user can see of the servers' contents, through a session per
// database (the library's, not psql: a few hundred of these must be quick).
std::string Snapshot(const PgCluster& cluster) {
  auto query = [&cluster](const std::string& db, const std::string& sql) -> std::string {
    Result<ConnInfo> info = ConnInfo::Parse(cluster.ConnString(db));
    if (!info.ok()) return "parse error";
    Result<std::unique_ptr<Connection>> conn = Connection::Connect(*info, {});
    if (!conn.ok()) return "cannot connect to " + db + ": " + conn.status().message();
    Result<QueryResult> result = (*conn)->Exec(sql);
    if (!result.ok()) return "query failed in " + db + ": " + result.status().message();
    std::string out;
    for (int row = 0; row < result->rows(); ++row) out += result->GetString(row, 0) + "\n";
    return out;
  };
  std::string out =
      query("postgres",
            "SELECT 'database ' || datname FROM pg_catalog.pg_database "
            "UNION ALL SELECT 'role ' || rolname FROM pg_catalog.pg_roles "
            "UNION ALL SELECT 'slot ' || slot_name FROM pg_catalog.pg_replication_slots "
            "UNION ALL SELECT 'subscription ' || subname FROM pg_catalog.pg_subscription "
            "ORDER BY 1");
  Result<ConnInfo> info = ConnInfo::Parse(cluster.ConnString("postgres"));
  Result<std::unique_ptr<Connection>> conn = Connection::Connect(*info, {});
  if (!conn.ok()) return out + conn.status().message();
  Result<QueryResult> dbs = (*conn)->Exec(
      "SELECT datname FROM pg_catalog.pg_database WHERE datallowconn ORDER BY datname");
  if (!dbs.ok()) return out + dbs.status().message();
  for (int row = 0; row < dbs->rows(); ++row) {
    std::string db = dbs->GetString(row, 0);
    out += "-- " + db + "\n" +
           query(db,
                 "SELECT 'schema ' || nspname FROM pg_catalog.pg_namespace "
                 "UNION ALL SELECT format('relation %s.%s %s', n.nspname, c.relname, c.relkind) "
                 "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = "
                 "c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', "
                 "'pg_toast') "
                 "UNION ALL SELECT 'publication ' || pubname FROM pg_catalog.pg_publication "
                 "ORDER BY 1");
  }
  return out;
}

// A TCP port on 127.0.0.1 that nothing listens on (bound, then released).
int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

// The lines of the output that carry a hint (check's "-> ...", the CLI's
// "hint: ...").
std::string HintLines(const std::string& text) {
  std::string hints;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (line.find("-> ") != std::string::npos || line.find("hint: ") != std::string::npos) {
      hints += line + "\n";
    }
    start = end + 1;
  }
  return hints;
}

struct BadCase {
  std::string name;
  std::vector<std::string> commands;  // run each: "check", "migrate"
  std::vector<std::string> args;      // after the command
  int exit_code;
  std::vector<std::string> message;  // words the output must hold
  std::vector<std::string> hint;     // words a hint line must hold
  // Extra arguments for migrate (filters, --dir is added).
  std::vector<std::string> migrate_only = {};
};

class BadInputTest : public testing::SourceAndTargetTest {
 protected:
  void SetUp() override {
    testing::SourceAndTargetOptions options;
    options.logical_source = true;
    options.source.ssl_ca_signed = true;
    options.source.hba_lines = {"host all md5user 127.0.0.1/32 md5",
                                "host all scramuser 127.0.0.1/32 scram-sha-256",
                                "host all rejected 127.0.0.1/32 reject"};
    options.target.major = testing::HavePgMajor(17) ? 17 : 15;
    ASSERT_NO_FATAL_FAILURE(StartServers(options));
    Result<std::string> built = source_->Sql(R"sql(
      SET password_encryption = 'md5';
      CREATE ROLE md5user LOGIN SUPERUSER PASSWORD 'right-md5-password';
      RESET password_encryption;
      CREATE ROLE scramuser LOGIN SUPERUSER PASSWORD 'right-scram-password';
      CREATE ROLE rejected LOGIN SUPERUSER;
      CREATE ROLE reader LOGIN;
      CREATE DATABASE shop;
      \c shop
      CREATE TABLE public.items (id int PRIMARY KEY, label text);
      INSERT INTO public.items SELECT g, 'item ' || g FROM generate_series(1, 100) g;
      CREATE TABLE public.secret (id int PRIMARY KEY, code text);
      INSERT INTO public.secret VALUES (1, 'only for the owner');
      GRANT SELECT ON public.items TO reader;
    )sql");
    ASSERT_TRUE(built.ok()) << built.status().ToString();
    built = target_->Sql(R"sql(
      CREATE ROLE creator LOGIN;
      CREATE DATABASE busy;
      CREATE DATABASE locked;
      REVOKE CREATE, TEMPORARY ON DATABASE locked FROM PUBLIC;
      \c busy
      CREATE TABLE public.mine (x int);
      INSERT INTO public.mine VALUES (42);
    )sql");
    ASSERT_TRUE(built.ok()) << built.status().ToString();
    // A CA that signed nothing the servers use.
    wrong_ca_ = source_->base_dir() + "/wrong-ca.crt";
    Result<ProcessResult> ca =
        RunProcess({"openssl", "req", "-new", "-x509", "-days", "1", "-nodes", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-subj", "/CN=wrong-ca", "-keyout",
                    source_->base_dir() + "/wrong-ca.key", "-out", wrong_ca_});
    ASSERT_TRUE(ca.ok() && ca->ok()) << (ca.ok() ? ca->err : ca.status().ToString());
  }

  std::string Source(const std::string& db = "shop", const std::string& user = "") const {
    return source_->ConnString(db, user);
  }
  std::string Target(const std::string& db = "postgres", const std::string& user = "") const {
    return target_->ConnString(db, user);
  }

  // Runs every command of every case; each must fail as described and leave
  // both servers as they were.
  void RunCases(const std::vector<BadCase>& cases) {
    const std::string source_before = Snapshot(*source_);
    const std::string target_before = Snapshot(*target_);
    ASSERT_EQ(source_before.find("cannot connect"), std::string::npos) << source_before;
    for (const auto& c : cases) {
      for (const auto& command : c.commands) {
        SCOPED_TRACE(c.name + " (" + command + ")");
        std::vector<std::string> args = {command};
        args.insert(args.end(), c.args.begin(), c.args.end());
        if (command == "migrate") {
          args.insert(args.end(), c.migrate_only.begin(), c.migrate_only.end());
          args.insert(args.end(), {"--dir", dir_ + "-" + std::to_string(++runs_), "--quiet"});
        }
        const auto started = std::chrono::steady_clock::now();
        ProcessResult r = RunCli(args, Isolated());
        const auto seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        const std::string output = r.out + r.err;
        EXPECT_EQ(r.exit_code, c.exit_code) << output;
        for (const auto& word : c.message) {
          EXPECT_NE(output.find(word), std::string::npos) << "missing \"" << word << "\" in\n"
                                                          << output;
        }
        const std::string hints = HintLines(output);
        for (const auto& word : c.hint) {
          EXPECT_NE(hints.find(word), std::string::npos) << "no hint with \"" << word << "\" in\n"
                                                         << output;
        }
        EXPECT_LT(seconds, 20) << "a bad input is reported promptly";
        EXPECT_EQ(Snapshot(*source_), source_before) << "the source was touched";
        EXPECT_EQ(Snapshot(*target_), target_before) << "the target was touched";
      }
    }
  }

  std::string wrong_ca_;
  int runs_ = 0;
};

TEST_F(BadInputTest, ConnectionFailuresAreClearAndTouchNothing) {
  const std::vector<std::string> both = {"check", "migrate"};
  const std::string src_host = fmt::format("host=127.0.0.1 port={} dbname=shop", source_->port());
  const std::vector<BadCase> cases = {
      {"unknown URI parameter",
       both,
       {"--source",
        fmt::format("postgresql://postgres@127.0.0.1:{}/shop?colour=blue", source_->port()),
        "--target", Target()},
       2,
       {"invalid connection string", "colour"},
       {"postgresql://user@host"}},
      {"unterminated quote",
       both,
       {"--source", "host='127.0.0.1 password=Hidden-Pw", "--target", Target()},
       2,
       {"invalid connection string"},
       {"key=value"}},
      {"missing = after a keyword",
       both,
       {"--source", Source(), "--target", "host"},
       2,
       {"invalid connection string", "host"},
       {"key=value"}},
      {"port out of range",
       both,
       {"--source", "postgresql://postgres@127.0.0.1:99999/shop", "--target", Target(),
        "--connect-timeout", "5"},
       1,
       {"invalid port number"},
       {"port"}},
      {"unknown host",
       both,
       {"--source", "host=no-such-host.invalid user=postgres dbname=shop", "--target", Target()},
       1,
       {"could not be resolved"},
       {"host name"}},
      {"closed port",
       both,
       {"--source", fmt::format("host=127.0.0.1 port={} user=postgres dbname=shop", ClosedPort()),
        "--target", Target(), "--connect-timeout", "2"},
       1,
       {"nothing accepts connections"},
       {"port", "listen_addresses"}},
      {"wrong password, md5",
       both,
       {"--source", src_host + " user=md5user password=wrong-password", "--target", Target()},
       1,
       {"rejected the password"},
       {"password"}},
      {"wrong password, scram",
       both,
       {"--source", src_host + " user=scramuser password=wrong-password", "--target", Target()},
       1,
       {"rejected the password"},
       {"password"}},
      {"no password for a scram role",
       both,
       {"--source", src_host + " user=scramuser", "--target", Target()},
       1,
       {"asks for a password"},
       {"pgpass"}},
      {"pg_hba reject",
       both,
       {"--source", src_host + " user=rejected", "--target", Target()},
       1,
       {"rejects this client"},
       {"pg_hba.conf"}},
      {"sslmode=require on a server without SSL",
       both,
       {"--source", Source(), "--target", Target() + " sslmode=require"},
       1,
       {"does not accept SSL"},
       {"sslmode=disable", "ssl = on"}},
      {"verify-full with the wrong CA",
       both,
       {"--source", Source() + " sslmode=verify-full sslrootcert=" + wrong_ca_, "--target",
        Target()},
       1,
       {"not signed by"},
       {"sslrootcert"}},
      {"verify-full with a CA file that does not exist",
       both,
       {"--source", Source() + " sslmode=verify-full sslrootcert=" + wrong_ca_ + ".missing",
        "--target", Target()},
       1,
       {"cannot read the CA file"},
       {"sslrootcert"}},
      {"verify-full with a host name not in the certificate",
       both,
       {"--source",
        fmt::format("host=wrong.example hostaddr=127.0.0.1 port={} user=postgres dbname=shop "
                    "sslmode=verify-full sslrootcert={}",
                    source_->port(), source_->ssl_ca_path()),
        "--target", Target()},
       1,
       {"does not match host name", "wrong.example"},
       {"host name"}},
      {"the same server under two names",
       both,
       {"--source", Source(), "--target",
        fmt::format("host=localhost port={} user=postgres", source_->port())},
       1,
       {"same server"},
       {"--target"}},
  };
  RunCases(cases);
}

TEST_F(BadInputTest, OlderTargetMajorIsRefused) {
  if (target_->major() <= source_->major()) GTEST_SKIP() << "needs PostgreSQL 17";
  // The newer server as the source: 17 -> 15.
  ASSERT_TRUE(target_->Sql("CREATE DATABASE newer").ok());
  RunCases({{"source 17 -> target 15",
             {"check", "migrate"},
             {"--source", Target("newer"), "--target", Source("postgres")},
             1,
             {"older than the source"},
             {"PostgreSQL 17 or newer"}}});
}

TEST_F(BadInputTest, SelectionsThatMatchNothingMoveNothing) {
  const std::vector<BadCase> cases = {
      {"--databases naming no database",
       {"check", "migrate"},
       {"--source", Source("postgres"), "--target", Target(), "--databases", "shpo"},
       1,
       {"no database to move matches shpo"},
       {"--databases"}},
      {"--exclude-database leaving nothing",
       {"check", "migrate"},
       {"--source", fmt::format("host=127.0.0.1 port={} user=postgres", source_->port()),
        "--target", Target(), "--exclude-database", "*"},
       1,
       {"no database to move"},
       {"--exclude-database"}},
      {"a source database that does not exist",
       {"check", "migrate"},
       {"--source", Source("nosuchdb"), "--target", Target()},
       1,
       {"does not exist"},
       {"dbname"}},
      {"--include-table matching nothing",
       {"migrate"},
       {"--source", Source(), "--target", Target()},
       1,
       {"public.nosuch"},
       {},
       {"--include-table", "public.nosuch"}},
      {"--include-schema matching nothing",
       {"migrate"},
       {"--source", Source(), "--target", Target()},
       1,
       {"nosuch"},
       {},
       {"--include-schema", "nosuch"}},
  };
  RunCases(cases);
}

TEST_F(BadInputTest, ConflictingOptionsAreUsageErrors) {
  const std::vector<std::string> servers = {"--source", Source(), "--target", Target()};
  auto with = [&servers](std::vector<std::string> extra) {
    std::vector<std::string> args = servers;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  const std::vector<BadCase> cases = {
      {"--resume with --databases",
       {"migrate"},
       with({"--resume", "--databases", "shop"}),
       2,
       {"--resume"},
       {}},
      {"--resume with filters",
       {"migrate"},
       with({"--resume", "--exclude-table", "public.x"}),
       2,
       {"--resume"},
       {}},
      {"--resume of a directory with no run",
       {"migrate"},
       with({"--resume"}),
       2,
       {"no migration"},
       {}},
      {"--no-role-passwords without --roles",
       {"migrate"},
       with({"--no-role-passwords"}),
       2,
       {"--no-role-passwords", "--roles"},
       {}},
      {"--replica-identity-full with --method copy",
       {"migrate"},
       with({"--replica-identity-full", "--method", "copy"}),
       2,
       {"--replica-identity-full", "copy"},
       {}},
      {"--slice-size that is not a size",
       {"migrate"},
       with({"--slice-size", "big"}),
       2,
       {"--slice-size"},
       {}},
      {"--jobs 0", {"check", "migrate"}, with({"--jobs", "0"}), 2, {"--jobs"}, {}},
      {"--method unknown", {"check", "migrate"}, with({"--method", "fast"}), 2, {"--method"}, {}},
      {"no target", {"check", "migrate"}, {"--source", Source()}, 2, {"--target"}, {}},
  };
  RunCases(cases);
}

TEST_F(BadInputTest, TargetsThatCannotTakeTheData) {
  const std::vector<BadCase> cases = {
      {"a target database that holds data",
       {"check", "migrate"},
       {"--source", Source(), "--target", Target("busy")},
       1,
       {"already holds user data", "public.mine"},
       {"empty database"}},
      {"a target user without CREATEDB",
       {"check", "migrate"},
       {"--source", Source(), "--target", Target("fresh", "creator")},
       1,
       {"may not create databases"},
       {"CREATEDB"}},
      {"a target database without CREATE for the user",
       {"check", "migrate"},
       {"--source", Source(), "--target", Target("locked", "creator")},
       1,
       {"locked", "CREATE"},
       {"GRANT CREATE"}},
      {"a source table the user may not read",
       {"check", "migrate"},
       {"--source", Source("shop", "reader"), "--target", Target()},
       1,
       {"public.secret"},
       {"GRANT SELECT"}},
  };
  RunCases(cases);
  EXPECT_EQ(*target_->Sql("SELECT x FROM public.mine", "busy"), "42");
}

// Names that are only unusual must work, whole cluster or one database.
class UnusualDatabaseNamesTest : public testing::SourceAndTargetTest {};

TEST_F(UnusualDatabaseNamesTest, QuotesSpacesAndNonAsciiMigrateAndVerify) {
  ASSERT_NO_FATAL_FAILURE(StartServers());
  const std::vector<std::string> names = {"with space", "quo\"te's", "Ünïcødé-数据库"};
  for (const auto& name : names) {
    std::string ident = "\"";
    for (char c : name) ident += c == '"' ? std::string("\"\"") : std::string(1, c);
    ident += "\"";
    ASSERT_TRUE(source_->Sql("CREATE DATABASE " + ident).ok()) << name;
    Result<std::string> filled = source_->Sql(
        "CREATE TABLE public.t (id int PRIMARY KEY, v text); INSERT INTO public.t SELECT g, "
        "md5(g::text) FROM generate_series(1, 50) g; CREATE SEQUENCE public.s; "
        "SELECT setval('public.s', 7);",
        name);
    ASSERT_TRUE(filled.ok()) << filled.status().ToString();
  }
  // The whole cluster.
  const std::string dir = source_->base_dir() + "/work";
  ProcessResult all = RunCli(
      {"migrate", "--source", fmt::format("host=127.0.0.1 port={} user=postgres", source_->port()),
       "--target", target_->ConnString(), "--dir", dir, "--quiet"},
      Isolated());
  EXPECT_EQ(all.exit_code, 0) << all.out << all.err;
  for (const auto& name : names) {
    SCOPED_TRACE(name);
    Result<std::string> rows = target_->Sql("SELECT count(*), max(v) FROM public.t", name);
    ASSERT_TRUE(rows.ok()) << rows.status().ToString();
    EXPECT_EQ(*rows, *source_->Sql("SELECT count(*), max(v) FROM public.t", name));
    EXPECT_EQ(*target_->Sql("SELECT last_value FROM public.s", name), "7");
    ProcessResult verified = RunCli(
        {"verify", "--source", source_->ConnString(name), "--target", target_->ConnString(name)},
        Isolated());
    EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
  }
  // One database, named in a URI (percent-encoded), into a renamed target.
  const std::string& one = names[2];
  ProcessResult single = RunCli({"migrate", "--source", source_->Uri(one), "--target",
                                 target_->Uri("kopie " + one), "--dir", dir + "-one", "--quiet"},
                                Isolated());
  EXPECT_EQ(single.exit_code, 0) << single.out << single.err;
  EXPECT_EQ(*target_->Sql("SELECT count(*) FROM public.t", "kopie " + one), "50");
  ProcessResult verified =
      RunCli({"verify", "--source", source_->Uri(one), "--target", target_->Uri("kopie " + one)},
             Isolated());
  EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
}

}  // namespace
}  // namespace pgcourier

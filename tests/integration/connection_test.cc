// The libpq core against real servers: statements, errors as values,
// deadlines and cancellation, COPY streams, and translated connection
// failures.
#include "pg/connection.h"

#include <gtest/gtest.h>

#include <thread>

#include "pg/copy.h"
#include "pg_cluster.h"

namespace pgcourier {
namespace {

using testing::PgCluster;
using testing::PgClusterOptions;
using testing::StartClusterOrFail;

ConnectOptions Quick(std::chrono::milliseconds total = std::chrono::seconds(5)) {
  ConnectOptions o;
  o.total_timeout = total;
  o.attempt_timeout = total;
  return o;
}

std::unique_ptr<Connection> ConnectOrDie(const std::string& conninfo,
                                         const ConnectOptions& options = Quick()) {
  Result<ConnInfo> info = ConnInfo::Parse(conninfo);
  EXPECT_TRUE(info.ok()) << info.status().ToString();
  if (!info.ok()) return nullptr;
  Result<std::unique_ptr<Connection>> conn = Connection::Connect(*info, options);
  EXPECT_TRUE(conn.ok()) << conn.status().ToString();
  return conn.ok() ? std::move(*conn) : nullptr;
}

Status ConnectStatus(const std::string& conninfo, const ConnectOptions& options = Quick()) {
  Result<ConnInfo> info = ConnInfo::Parse(conninfo);
  if (!info.ok()) return info.status();
  return Connection::Connect(*info, options).status();
}

class ConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = StartClusterOrFail({});
    ASSERT_NE(cluster_, nullptr);
  }
  std::unique_ptr<PgCluster> cluster_;
};

TEST_F(ConnectionTest, RunsStatementsAndParameters) {
  auto conn = ConnectOrDie(cluster_->ConnString());
  ASSERT_NE(conn, nullptr);
  Result<QueryResult> r =
      conn->ExecParams("SELECT $1::int + 1, $2::text IS NULL", {"41", std::nullopt});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->GetInt(0, 0), 42);
  EXPECT_TRUE(r->GetBool(0, 1));
  EXPECT_EQ(conn->server_version() / 10000, cluster_->major());
}

TEST_F(ConnectionTest, SearchPathIsEmptyOnEverySession) {
  auto conn = ConnectOrDie(cluster_->ConnString());
  ASSERT_NE(conn, nullptr);
  Result<QueryResult> r = conn->Exec("SHOW search_path");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->GetString(0, 0).empty() || r->GetString(0, 0) == "\"\"") << r->GetString(0, 0);
  // An unqualified user table is not found; catalogs still are.
  ASSERT_TRUE(conn->Run("CREATE TABLE public.t (id int)").ok());
  Status s = conn->Run("SELECT * FROM t");
  EXPECT_EQ(s.sqlstate(), "42P01");
}

TEST_F(ConnectionTest, ServerErrorsCarrySqlstateAndHint) {
  auto conn = ConnectOrDie(cluster_->ConnString());
  ASSERT_NE(conn, nullptr);
  Status s = conn->Run("SELECT * FROM public.no_such_table");
  EXPECT_EQ(s.code(), StatusCode::kServerError);
  EXPECT_EQ(s.sqlstate(), "42P01");
  EXPECT_NE(s.message().find("no_such_table"), std::string::npos);
  EXPECT_FALSE(s.retryable());
  // The connection stays usable after an error.
  EXPECT_TRUE(conn->Run("SELECT 1").ok());
}

// A role made for an application cuts statements after 100 ms and sessions idle
// in a transaction after 50 ms: a session of pgcourier turns both off as it
// connects. One that keeps them (timeouts_off = false) sees the server's
// statement timeout as the server's error, with its reason, never as the
// user's Ctrl-C.
TEST_F(ConnectionTest, TheRolesTimeoutsAreOffAndAServerCancelIsAServerError) {
  Result<std::string> made = cluster_->Sql(
      "CREATE ROLE app LOGIN; ALTER ROLE app SET statement_timeout = '100ms'; "
      "ALTER ROLE app SET idle_in_transaction_session_timeout = '50ms'");
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  auto conn = ConnectOrDie(cluster_->ConnString("postgres", "app"));
  ASSERT_NE(conn, nullptr);
  EXPECT_TRUE(conn->Run("BEGIN; SELECT pg_catalog.pg_sleep(0.3)").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(conn->Run("COMMIT").ok());

  ConnectOptions kept = Quick();
  kept.timeouts_off = false;
  auto cut = ConnectOrDie(cluster_->ConnString("postgres", "app"), kept);
  ASSERT_NE(cut, nullptr);
  Status s = cut->Run("SELECT pg_catalog.pg_sleep(0.3)");
  EXPECT_EQ(s.code(), StatusCode::kServerError) << s.ToString();
  EXPECT_EQ(s.sqlstate(), "57014");
  EXPECT_NE(s.message().find("statement timeout"), std::string::npos) << s.ToString();
}

TEST_F(ConnectionTest, DeadlineCancelsTheStatementAndKeepsTheConnection) {
  auto conn = ConnectOrDie(cluster_->ConnString());
  ASSERT_NE(conn, nullptr);
  auto start = std::chrono::steady_clock::now();
  Status s = conn->Run("SELECT pg_sleep(60)", Deadline::After(std::chrono::milliseconds(300)));
  EXPECT_EQ(s.code(), StatusCode::kTimeout) << s.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  Result<QueryResult> r = conn->Exec("SELECT 7");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->GetInt(0, 0), 7);
}

TEST_F(ConnectionTest, CancelTokenStopsAWaitFromAnotherThread) {
  CancelToken token;
  ConnectOptions options = Quick();
  options.cancel = &token;
  auto conn = ConnectOrDie(cluster_->ConnString(), options);
  ASSERT_NE(conn, nullptr);
  std::thread canceller([&token] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    token.Cancel();
  });
  auto start = std::chrono::steady_clock::now();
  Status s = conn->Run("SELECT pg_sleep(60)");
  canceller.join();
  EXPECT_EQ(s.code(), StatusCode::kCancelled) << s.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  // The server-side statement was cancelled too.
  auto other = ConnectOrDie(cluster_->ConnString());
  ASSERT_NE(other, nullptr);
  Result<QueryResult> active = other->Exec(
      "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' AND state = "
      "'active'");
  ASSERT_TRUE(active.ok());
  EXPECT_EQ(active->GetInt(0, 0), 0);
}

TEST_F(ConnectionTest, LostConnectionIsRetryable) {
  auto conn = ConnectOrDie(cluster_->ConnString());
  auto killer = ConnectOrDie(cluster_->ConnString());
  ASSERT_NE(conn, nullptr);
  ASSERT_NE(killer, nullptr);
  Result<QueryResult> pid = conn->Exec("SELECT pg_backend_pid()");
  ASSERT_TRUE(pid.ok());
  ASSERT_TRUE(
      killer->ExecParams("SELECT pg_terminate_backend($1::int)", {pid->GetString(0, 0)}).ok());
  Status s = conn->Run("SELECT 1");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.retryable()) << s.ToString();
}

TEST_F(ConnectionTest, CopyStreamsBetweenTwoServers) {
  PgClusterOptions target_options;
  target_options.major = testing::HavePgMajor(17) ? 17 : 15;
  auto target = StartClusterOrFail(target_options);
  ASSERT_NE(target, nullptr);
  ASSERT_TRUE(cluster_
                  ->Sql(R"sql(
    CREATE TABLE public.items (id int PRIMARY KEY, name text, data bytea, tags text[]);
    INSERT INTO public.items
      SELECT g, E'name\t' || g || E'\n"quoted" \\ back', decode(md5(g::text), 'hex'),
             ARRAY['a', NULL, 'c,d']
        FROM generate_series(1, 5000) g;
    INSERT INTO public.items VALUES (0, NULL, NULL, NULL);)sql")
                  .ok());
  ASSERT_TRUE(target
                  ->Sql("CREATE TABLE public.items (id int PRIMARY KEY, name text, data bytea, "
                        "tags text[])")
                  .ok());
  auto src = ConnectOrDie(cluster_->ConnString());
  auto dst = ConnectOrDie(target->ConnString());
  ASSERT_NE(src, nullptr);
  ASSERT_NE(dst, nullptr);

  Result<CopyOutStream> out = CopyOutStream::Start(*src, "COPY public.items TO STDOUT");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  Result<CopyInStream> in = CopyInStream::Start(*dst, "COPY public.items FROM STDIN");
  ASSERT_TRUE(in.ok()) << in.status().ToString();
  std::string_view chunk;
  for (;;) {
    Result<bool> more = out->Next(&chunk);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!*more) break;
    ASSERT_TRUE(in->Write(chunk).ok());
  }
  Result<int64_t> stored = in->Finish();
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  EXPECT_EQ(*stored, 5001);
  EXPECT_EQ(out->rows(), 5001);

  const std::string digest = "SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM public.items t";
  Result<std::string> source_digest = cluster_->Sql(digest);
  Result<std::string> target_digest = target->Sql(digest);
  ASSERT_TRUE(source_digest.ok());
  ASSERT_TRUE(target_digest.ok());
  EXPECT_EQ(*source_digest, *target_digest);
}

TEST_F(ConnectionTest, CopyInWithoutFinishStoresNothing) {
  ASSERT_TRUE(cluster_->Sql("CREATE TABLE public.t (id int)").ok());
  auto conn = ConnectOrDie(cluster_->ConnString());
  ASSERT_NE(conn, nullptr);
  {
    Result<CopyInStream> in = CopyInStream::Start(*conn, "COPY public.t FROM STDIN");
    ASSERT_TRUE(in.ok());
    ASSERT_TRUE(in->Write("1\n2\n3\n").ok());
  }  // destroyed without Finish(): aborted
  EXPECT_EQ(*cluster_->Sql("SELECT count(*) FROM public.t"), "0");
  EXPECT_TRUE(conn->Run("SELECT 1").ok()) << "the connection is usable after the abort";
}

TEST_F(ConnectionTest, CopyOutErrorIsReported) {
  auto conn = ConnectOrDie(cluster_->ConnString());
  ASSERT_NE(conn, nullptr);
  Result<CopyOutStream> out = CopyOutStream::Start(
      *conn, "COPY (SELECT 1 / (g - 3) FROM generate_series(1, 5) g) TO STDOUT");
  ASSERT_TRUE(out.ok());
  std::string_view chunk;
  Status error;
  for (;;) {
    Result<bool> more = out->Next(&chunk);
    if (!more.ok()) {
      error = more.status();
      break;
    }
    if (!*more) break;
  }
  EXPECT_EQ(error.sqlstate(), "22012") << error.ToString();
}

TEST_F(ConnectionTest, RefusedConnectionRetriesForABoundedTime) {
  int port = cluster_->port();
  ASSERT_TRUE(cluster_->Stop().ok());
  auto start = std::chrono::steady_clock::now();
  Status s = ConnectStatus("host=127.0.0.1 port=" + std::to_string(port) + " user=postgres",
                           Quick(std::chrono::milliseconds(1500)));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(s.code(), StatusCode::kConnectionFailed) << s.ToString();
  EXPECT_NE(s.message().find("nothing accepts connections"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("attempts"), std::string::npos) << s.message();
  EXPECT_GE(took, std::chrono::milliseconds(1000));
  EXPECT_LT(took, std::chrono::seconds(15));
}

TEST_F(ConnectionTest, ServerThatWakesUpLateIsReached) {
  ASSERT_TRUE(cluster_->Stop().ok());
  std::thread waker([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    EXPECT_TRUE(cluster_->Restart().ok());
  });
  Result<ConnInfo> info = ConnInfo::Parse(cluster_->ConnString());
  ASSERT_TRUE(info.ok());
  Result<std::unique_ptr<Connection>> conn =
      Connection::Connect(*info, Quick(std::chrono::seconds(60)));
  waker.join();
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  EXPECT_TRUE((*conn)->Run("SELECT 1").ok());
}

TEST(ConnectFailureTest, WrongPasswordFailsAtOnceWithAFix) {
  PgClusterOptions options;
  options.hba_lines = {"host all app 127.0.0.1/32 scram-sha-256"};
  auto cluster = StartClusterOrFail(options);
  ASSERT_NE(cluster, nullptr);
  ASSERT_TRUE(cluster->Sql("CREATE ROLE app LOGIN PASSWORD 'right-password'").ok());
  auto start = std::chrono::steady_clock::now();
  Status s = ConnectStatus(cluster->ConnString("postgres", "app", "wrong-password"),
                           Quick(std::chrono::seconds(20)));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_EQ(s.sqlstate(), "28P01");
  EXPECT_NE(s.hint().find(".pgpass"), std::string::npos);
  EXPECT_EQ(s.message().find("wrong-password"), std::string::npos) << "no secret in messages";
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5)) << "not retried";
  EXPECT_TRUE(ConnectStatus(cluster->ConnString("postgres", "app", "right-password")).ok());
}

TEST(ConnectFailureTest, SslRequiredOnAServerWithoutSsl) {
  auto cluster = StartClusterOrFail({});
  ASSERT_NE(cluster, nullptr);
  Status s = ConnectStatus(cluster->ConnString() + " sslmode=require");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("does not accept SSL"), std::string::npos) << s.message();
  EXPECT_NE(s.hint().find("sslmode"), std::string::npos);
}

TEST(ConnectFailureTest, SslServerGivesAnEncryptedConnection) {
  PgClusterOptions options;
  options.ssl = true;
  auto cluster = StartClusterOrFail(options);
  ASSERT_NE(cluster, nullptr);
  auto conn = ConnectOrDie(cluster->ConnString() + " sslmode=require");
  ASSERT_NE(conn, nullptr);
  EXPECT_TRUE(conn->ssl_in_use());
}

TEST(ConnectFailureTest, NoHbaEntryAndMissingDatabase) {
  PgClusterOptions options;
  options.hba_lines = {"host all intruder 127.0.0.1/32 reject"};
  auto cluster = StartClusterOrFail(options);
  ASSERT_NE(cluster, nullptr);
  ASSERT_TRUE(cluster->Sql("CREATE ROLE intruder LOGIN").ok());
  Status rejected = ConnectStatus(cluster->ConnString("postgres", "intruder"));
  EXPECT_EQ(rejected.code(), StatusCode::kInvalidArgument) << rejected.ToString();
  EXPECT_NE(rejected.hint().find("pg_hba.conf"), std::string::npos) << rejected.ToString();
  Status missing = ConnectStatus(cluster->ConnString("no_such_db"));
  EXPECT_EQ(missing.sqlstate(), "3D000") << missing.ToString();
  EXPECT_FALSE(missing.retryable());
}

TEST(ConnectFailureTest, FullServerSaysSoAndIsRetryable) {
  PgClusterOptions options;
  options.settings = {"max_connections = 3", "superuser_reserved_connections = 0"};
  auto cluster = StartClusterOrFail(options);
  ASSERT_NE(cluster, nullptr);
  std::vector<std::unique_ptr<Connection>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(ConnectOrDie(cluster->ConnString()));
    ASSERT_NE(held.back(), nullptr);
  }
  Status s = ConnectStatus(cluster->ConnString(), Quick(std::chrono::milliseconds(500)));
  EXPECT_EQ(s.sqlstate(), "53300") << s.ToString();
  EXPECT_TRUE(s.retryable());
  EXPECT_NE(s.hint().find("--jobs"), std::string::npos);
}

TEST(ConnectFailureTest, UnknownHost) {
  Status s = ConnectStatus("host=no-such-host.invalid port=5432 user=x connect_timeout=5");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("could not be resolved"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace pgcourier

// Self-test of the PostgreSQL test harness (tests/support/pg_cluster.h).
#include "pg_cluster.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include "system_identifier.h"

namespace pgcourier::testing {
namespace {

namespace fs = std::filesystem;

TEST(PgClusterTest, AppliesSettingsBeforeFirstStart) {
  std::string data_dir;
  std::string base_dir;
  {
    PgClusterOptions options;
    options.major = 15;
    options.settings = {"wal_level = logical", "max_replication_slots = 7"};
    auto cluster = StartClusterOrFail(options);
    ASSERT_NE(cluster, nullptr);
    data_dir = cluster->data_dir();
    base_dir = cluster->base_dir();
    EXPECT_TRUE(fs::is_directory(data_dir));
    EXPECT_EQ(cluster->major(), 15);
    EXPECT_EQ(cluster->host(), "127.0.0.1");
    EXPECT_GT(cluster->port(), 0);

    auto wal_level = cluster->Sql("SHOW wal_level");
    ASSERT_TRUE(wal_level.ok()) << wal_level.status().ToString();
    EXPECT_EQ(*wal_level, "logical");
    auto slots = cluster->Sql("SHOW max_replication_slots");
    ASSERT_TRUE(slots.ok()) << slots.status().ToString();
    EXPECT_EQ(*slots, "7");
    auto major = cluster->Sql("SELECT current_setting('server_version_num')::int / 10000");
    ASSERT_TRUE(major.ok()) << major.status().ToString();
    EXPECT_EQ(*major, "15");
    auto encoding = cluster->Sql("SHOW server_encoding");
    ASSERT_TRUE(encoding.ok()) << encoding.status().ToString();
    EXPECT_EQ(*encoding, "UTF8");
  }
  if (!::testing::Test::HasFailure()) {
    EXPECT_FALSE(fs::exists(data_dir)) << data_dir << " should be removed after a passing test";
    EXPECT_FALSE(fs::exists(base_dir)) << base_dir << " should be removed after a passing test";
  }
}

TEST(PgClusterTest, SqlRunsMultipleStatementsAndReturnsRows) {
  auto cluster = StartClusterOrFail({});
  ASSERT_NE(cluster, nullptr);
  // CREATE DATABASE cannot run inside a transaction block: each statement must
  // run on its own.
  auto created = cluster->Sql(
      "CREATE DATABASE app;\n"
      "CREATE ROLE reader LOGIN;\n");
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(*created, "");
  auto filled = cluster->Sql(
      "CREATE TABLE t (id int, name text);\n"
      "INSERT INTO t VALUES (1, 'one'), (2, 'two');\n"
      "GRANT SELECT ON t TO reader;\n"
      "SELECT id, name FROM t ORDER BY id;",
      "app");
  ASSERT_TRUE(filled.ok()) << filled.status().ToString();
  EXPECT_EQ(*filled, "1|one\n2|two");
  auto as_reader = cluster->Sql("SELECT current_user, count(*) FROM t", "app", "reader");
  ASSERT_TRUE(as_reader.ok()) << as_reader.status().ToString();
  EXPECT_EQ(*as_reader, "reader|2");
  auto utf8 = cluster->Sql("SELECT 'Grüße ✓'");
  ASSERT_TRUE(utf8.ok()) << utf8.status().ToString();
  EXPECT_EQ(*utf8, "Grüße ✓");
}

TEST(PgClusterTest, SqlReturnsErrorOnBadSql) {
  auto cluster = StartClusterOrFail({});
  ASSERT_NE(cluster, nullptr);
  auto bad = cluster->Sql("SELEC 1");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("syntax error"), std::string::npos)
      << bad.status().ToString();

  // ON_ERROR_STOP: nothing after the failing statement runs.
  auto partial = cluster->Sql(
      "CREATE TABLE before_error (id int);\n"
      "SELECT * FROM missing_table;\n"
      "CREATE TABLE after_error (id int);\n");
  ASSERT_FALSE(partial.ok());
  EXPECT_NE(partial.status().message().find("missing_table"), std::string::npos)
      << partial.status().ToString();
  auto tables = cluster->Sql(
      "SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class "
      "WHERE relname IN ('before_error', 'after_error')");
  ASSERT_TRUE(tables.ok()) << tables.status().ToString();
  EXPECT_EQ(*tables, "before_error");

  auto no_db = cluster->Sql("SELECT 1", "no_such_database");
  ASSERT_FALSE(no_db.ok());
  EXPECT_NE(no_db.status().message().find("no_such_database"), std::string::npos)
      << no_db.status().ToString();
}

TEST(PgClusterTest, TwoClustersRunAtOnce) {
  auto first = StartClusterOrFail({});
  ASSERT_NE(first, nullptr);
  PgClusterOptions second_options;
  second_options.superuser = "admin";
  auto second = StartClusterOrFail(second_options);
  ASSERT_NE(second, nullptr);
  EXPECT_NE(first->port(), second->port());
  EXPECT_NE(first->data_dir(), second->data_dir());
  EXPECT_NE(first->socket_dir(), second->socket_dir());

  ASSERT_TRUE(first->Sql("CREATE TABLE only_in_first (id int)").ok());
  auto in_second = second->Sql("SELECT count(*) FROM pg_class WHERE relname = 'only_in_first'");
  ASSERT_TRUE(in_second.ok()) << in_second.status().ToString();
  EXPECT_EQ(*in_second, "0");
  auto user = second->Sql("SELECT current_user");
  ASSERT_TRUE(user.ok()) << user.status().ToString();
  EXPECT_EQ(*user, "admin");
  auto port = second->Sql("SHOW port");
  ASSERT_TRUE(port.ok()) << port.status().ToString();
  EXPECT_EQ(*port, std::to_string(second->port()));
}

TEST(PgClusterTest, ConnStringAndUri) {
  auto cluster = StartClusterOrFail({});
  ASSERT_NE(cluster, nullptr);
  std::string port = std::to_string(cluster->port());
  EXPECT_EQ(cluster->ConnString(),
            "host=127.0.0.1 port=" + port + " user=postgres dbname=postgres");
  EXPECT_EQ(cluster->ConnString("my db", "bob", "it's"),
            "host=127.0.0.1 port=" + port + " user=bob dbname='my db' password='it\\'s'");
  EXPECT_EQ(cluster->Uri(), "postgresql://postgres@127.0.0.1:" + port + "/postgres");
  EXPECT_EQ(cluster->Uri("my db", "bob", "p@ss"),
            "postgresql://bob:p%40ss@127.0.0.1:" + port + "/my%20db");
}

TEST(PgClusterTest, HbaLinesComeFirstAndPasswordsWork) {
  PgClusterOptions options;
  options.hba_lines = {"host all secure 127.0.0.1/32 scram-sha-256"};
  auto cluster = StartClusterOrFail(options);
  ASSERT_NE(cluster, nullptr);
  ASSERT_TRUE(cluster->Sql("CREATE ROLE secure LOGIN PASSWORD 'sekrit'").ok());

  SqlOptions wrong;
  wrong.user = "secure";
  wrong.password = "wrong";
  auto denied = cluster->Sql("SELECT 1", wrong);
  ASSERT_FALSE(denied.ok());
  EXPECT_NE(denied.status().message().find("password authentication failed"), std::string::npos)
      << denied.status().ToString();

  SqlOptions right = wrong;
  right.password = "sekrit";
  auto allowed = cluster->Sql("SELECT current_user", right);
  ASSERT_TRUE(allowed.ok()) << allowed.status().ToString();
  EXPECT_EQ(*allowed, "secure");
}

TEST(PgClusterTest, RestartAppliesNewSettingsOnSamePort) {
  auto cluster = StartClusterOrFail({});
  ASSERT_NE(cluster, nullptr);
  int port = cluster->port();
  auto before = cluster->Sql("SHOW max_connections");
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_NE(*before, "42");

  ASSERT_TRUE(cluster->AppendSettings({"max_connections = 42"}).ok());
  Status restarted = cluster->Restart();
  ASSERT_TRUE(restarted.ok()) << restarted.ToString();
  EXPECT_EQ(cluster->port(), port);
  EXPECT_TRUE(cluster->running());
  auto after = cluster->Sql("SHOW max_connections");
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(*after, "42");

  // Stop, then Restart starts it again.
  Status stopped = cluster->Stop();
  ASSERT_TRUE(stopped.ok()) << stopped.ToString();
  EXPECT_FALSE(cluster->running());
  EXPECT_FALSE(cluster->Sql("SELECT 1").ok());
  EXPECT_TRUE(cluster->Stop().ok()) << "stopping a stopped cluster is ok";
  restarted = cluster->Restart();
  ASSERT_TRUE(restarted.ok()) << restarted.ToString();
  auto again = cluster->Sql("SELECT 1");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, "1");
}

TEST(PgClusterTest, BadSettingFailsStartWithLog) {
  PgClusterOptions options;
  options.settings = {"no_such_setting_at_all = 1"};
  auto cluster = PgCluster::Start(options);
  ASSERT_FALSE(cluster.ok());
  EXPECT_NE(cluster.status().message().find("no_such_setting_at_all"), std::string::npos)
      << cluster.status().ToString();
}

TEST(PgClusterTest, MissingMajorIsNotFound) {
  PgClusterOptions options;
  options.major = 9;  // never installed
  auto cluster = PgCluster::Start(options);
  ASSERT_FALSE(cluster.ok());
  EXPECT_EQ(cluster.status().code(), StatusCode::kNotFound) << cluster.status().ToString();
}

TEST(PgClusterTest, Crc32cIsCastagnolis) {
  const std::string check = "123456789";
  EXPECT_EQ(Crc32c(reinterpret_cast<const unsigned char*>(check.data()), check.size()),
            0xE3069283U);
}

TEST(PgClusterTest, AvailableMajorsIncludePg15) {
  auto majors = AvailablePgMajors();
  EXPECT_NE(std::find(majors.begin(), majors.end(), 15), majors.end());
  EXPECT_TRUE(std::is_sorted(majors.begin(), majors.end()));
  EXPECT_FALSE(PgBinDir(15).empty());
  EXPECT_TRUE(HavePgMajor(15));
  EXPECT_FALSE(HavePgMajor(9));
}

// Every installed major, e.g. Installed/PgClusterMajorTest.StartsAndReportsItsMajor/PG15.
class PgClusterMajorTest : public ::testing::TestWithParam<int> {};

TEST_P(PgClusterMajorTest, StartsAndReportsItsMajor) {
  PgClusterOptions options;
  options.major = GetParam();
  auto cluster = StartClusterOrFail(options);
  ASSERT_NE(cluster, nullptr);
  EXPECT_EQ(cluster->major(), GetParam());
  auto major = cluster->Sql("SELECT current_setting('server_version_num')::int / 10000");
  ASSERT_TRUE(major.ok()) << major.status().ToString();
  EXPECT_EQ(*major, std::to_string(GetParam()));
}

TEST_P(PgClusterMajorTest, SslConnectionsWork) {
  PgClusterOptions options;
  options.major = GetParam();
  options.ssl = true;
  auto cluster = StartClusterOrFail(options);
  ASSERT_NE(cluster, nullptr);
  EXPECT_TRUE(std::filesystem::exists(cluster->data_dir() + "/server.key"));

  SqlOptions with_ssl;
  with_ssl.extra_conninfo = "sslmode=require";
  auto ssl = cluster->Sql("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", with_ssl);
  ASSERT_TRUE(ssl.ok()) << ssl.status().ToString();
  EXPECT_EQ(*ssl, "t");

  SqlOptions without_ssl;
  without_ssl.extra_conninfo = "sslmode=disable";
  auto plain =
      cluster->Sql("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", without_ssl);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(*plain, "f");
}

// Clusters are copies of one template; each has a system identifier of its
// own, as after initdb, which the server accepts after a crash too (it then
// reads its WAL from the checkpoint on).
TEST_P(PgClusterMajorTest, EachClusterHasItsOwnSystemIdentifier) {
  PgClusterOptions options;
  options.major = GetParam();
  auto first = StartClusterOrFail(options);
  ASSERT_NE(first, nullptr);
  auto second = StartClusterOrFail(options);
  ASSERT_NE(second, nullptr);
  const std::string query = "SELECT system_identifier FROM pg_control_system()";
  auto first_id = first->Sql(query);
  ASSERT_TRUE(first_id.ok()) << first_id.status().ToString();
  auto second_id = second->Sql(query);
  ASSERT_TRUE(second_id.ok()) << second_id.status().ToString();
  EXPECT_NE(*first_id, *second_id);

  ASSERT_TRUE(first->Kill().ok());
  auto in_file = ReadSystemIdentifier(first->data_dir());
  ASSERT_TRUE(in_file.ok()) << in_file.status().ToString();
  EXPECT_EQ(std::to_string(*in_file), *first_id);
  Status restarted = first->Restart();
  ASSERT_TRUE(restarted.ok()) << restarted.ToString();
  auto after_crash = first->Sql(query);
  ASSERT_TRUE(after_crash.ok()) << after_crash.status().ToString();
  EXPECT_EQ(*after_crash, *first_id);
}

INSTANTIATE_TEST_SUITE_P(Installed, PgClusterMajorTest, ::testing::ValuesIn(AvailablePgMajors()),
                         [](const ::testing::TestParamInfo<int>& param_info) {
                           return "PG" + std::to_string(param_info.param);
                         });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(PgClusterMajorTest);

}  // namespace
}  // namespace pgcourier::testing

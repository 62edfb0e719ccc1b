// Connection poolers between pgcourier and a server, with a real PgBouncer
// (tests/support/pgbouncer.h): found before anything is touched, refused in
// transaction mode (by check and by verify) and with a pool of one, allowed in session mode, where
// nothing pgcourier sets stays on the pooler's server sessions.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_runner.h"
#include "pg/connection.h"
#include "pg/conninfo.h"
#include "pgbouncer.h"
#include "two_servers.h"

namespace pgcourier {
namespace {

using testing::PgBouncer;
using testing::PgBouncerOptions;
using testing::RunCli;

// An application's session: it sets nothing of its own.
std::unique_ptr<Connection> AppSession(const std::string& conninfo) {
  Result<ConnInfo> info = ConnInfo::Parse(conninfo);
  EXPECT_TRUE(info.ok()) << info.status().ToString();
  if (!info.ok()) return nullptr;
  ConnectOptions bare;
  bare.secure_search_path = false;
  bare.pin_formats = false;
  bare.timeouts_off = false;
  bare.application_name = "app";
  Result<std::unique_ptr<Connection>> conn = Connection::Connect(*info, bare);
  EXPECT_TRUE(conn.ok()) << conn.status().ToString();
  return conn.ok() ? std::move(*conn) : nullptr;
}

// The settings pgcourier's sessions make, and pg_dump's and pg_restore's
// (which set search_path, the timeouts and row_security themselves).
const std::vector<std::string> kOurs = {"DateStyle", "IntervalStyle",      "extra_float_digits",
                                        "TimeZone",  "synchronous_commit", "maintenance_work_mem"};
const std::vector<std::string> kShared = {"search_path", "lock_timeout", "statement_timeout",
                                          "row_security"};

// What an application sees of `names` on `sessions` server sessions of the
// pooler at once (in session mode each client keeps the one it got), as
// "name=value" lines; `direct` instead: the server's own, once.
std::vector<std::string> AppSees(const std::string& conninfo, int sessions,
                                 const std::vector<std::string>& names) {
  std::vector<std::unique_ptr<Connection>> clients;
  std::vector<std::string> seen;
  for (int i = 0; i < sessions; ++i) {
    clients.push_back(AppSession(conninfo));
    if (clients.back() == nullptr) return seen;
    for (const std::string& name : names) {
      Result<QueryResult> shown = clients.back()->Exec("SHOW " + name);
      EXPECT_TRUE(shown.ok()) << shown.status().ToString();
      if (shown.ok()) seen.push_back(name + "=" + shown->GetString(0, 0));
    }
  }
  return seen;
}

std::vector<std::string> Repeated(const std::vector<std::string>& lines, int times) {
  std::vector<std::string> out;
  for (int i = 0; i < times; ++i) out.insert(out.end(), lines.begin(), lines.end());
  return out;
}

const nlohmann::json* FindItem(const nlohmann::json& report, const std::string& code) {
  for (const auto& item : report["checks"]) {
    if (item["code"] == code) return &item;
  }
  return nullptr;
}

class PoolerTest : public testing::SourceAndTargetTest {
 protected:
  void SetUp() override {
    if (!PgBouncer::Installed()) {
      GTEST_SKIP() << "pgbouncer is not installed (" << PgBouncer::BinaryPath() << ")";
    }
    testing::SourceAndTargetOptions options;
    options.logical_source = true;
    options.database = "shop";
    options.database_sql =
        "CREATE TABLE public.items (id int PRIMARY KEY, name text);"
        "INSERT INTO public.items SELECT g, 'item ' || g FROM generate_series(1, 500) g";
    ASSERT_NO_FATAL_FAILURE(StartServers(options));
    // There already (empty): PgBouncer retries a server login that failed
    // (a database not there yet) only after server_login_retry.
    ASSERT_TRUE(target_->Sql("CREATE DATABASE shop").ok());
  }

  std::unique_ptr<PgBouncer> StartPooler(int port, const std::string& mode, int pool_size) {
    PgBouncerOptions options;
    options.server_port = port;
    options.pool_mode = mode;
    options.default_pool_size = pool_size;
    Result<std::unique_ptr<PgBouncer>> pooler = PgBouncer::Start(options);
    EXPECT_TRUE(pooler.ok()) << pooler.status().ToString();
    return pooler.ok() ? std::move(*pooler) : nullptr;
  }

  nlohmann::json Check(const std::string& source, const std::string& target, int expected_exit) {
    ProcessResult r =
        RunCli({"check", "--source", source, "--target", target, "--json", "--no-schema-trial"});
    EXPECT_EQ(r.exit_code, expected_exit) << r.out << r.err;
    nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out << r.err;
    return j;
  }
};

TEST_F(PoolerTest, TransactionModeAndAFullPoolFailCheckAndVerifySessionModeLeavesNothingBehind) {
  std::vector<std::string> all = kOurs;
  all.insert(all.end(), kShared.begin(), kShared.end());
  const std::vector<std::string> defaults = AppSees(target_->ConnString("postgres"), 1, all);
  ASSERT_EQ(defaults.size(), all.size());
  const std::vector<std::string> our_defaults(defaults.begin(), defaults.begin() + kOurs.size());
  const std::string source = source_->ConnString("shop");

  {
    // Transaction mode in front of the target: refused before any session
    // sets anything there, with the direct connection as the fix.
    auto pooler = StartPooler(target_->port(), "transaction", 2);
    ASSERT_NE(pooler, nullptr);
    nlohmann::json j = Check(source, pooler->ConnString("shop", "postgres"), 1);
    const nlohmann::json* item = FindItem(j, "target.pooler");
    ASSERT_NE(item, nullptr) << j.dump(2);
    EXPECT_EQ((*item)["status"], "fail") << j.dump(2);
    EXPECT_NE((*item)["detail"].get<std::string>().find("transaction"), std::string::npos);
    EXPECT_NE((*item)["hint"].get<std::string>().find("connect to the server directly"),
              std::string::npos);
    EXPECT_EQ(FindItem(j, "target.connect"), nullptr) << "the target was used: " << j.dump(2);
    // verify (as cutover, cleanup and status) refuses it too, with check's
    // words, before a session of its own sets anything through it.
    ProcessResult verified =
        RunCli({"verify", "--source", source, "--target", pooler->ConnString("shop", "postgres")});
    EXPECT_EQ(verified.exit_code, 1) << verified.out << verified.err;
    EXPECT_NE(verified.err.find("the target is reached through a connection pooler in "
                                "transaction or statement mode"),
              std::string::npos)
        << verified.err;
    EXPECT_NE(verified.err.find("hint: connect to the server directly"), std::string::npos)
        << verified.err;
    EXPECT_EQ(AppSees(pooler->ConnString("postgres", "postgres"), 2, all), Repeated(defaults, 2));
    EXPECT_EQ(AppSees(pooler->ConnString("shop", "postgres"), 2, all), Repeated(defaults, 2));
  }
  {
    // Session mode with a pool of one: pgcourier would wait for itself.
    auto pooler = StartPooler(target_->port(), "session", 1);
    ASSERT_NE(pooler, nullptr);
    nlohmann::json j = Check(source, pooler->ConnString("shop", "postgres"), 1);
    const nlohmann::json* item = FindItem(j, "target.pooler");
    ASSERT_NE(item, nullptr) << j.dump(2);
    EXPECT_EQ((*item)["status"], "fail") << j.dump(2);
    EXPECT_NE((*item)["hint"].get<std::string>().find("pool size"), std::string::npos);
  }
  // Session mode on both sides, without a reset query: check (auto) and
  // migrate work, replication is not chosen, and the pooler's server
  // sessions keep nothing pgcourier set.
  const int pool = 8;
  auto source_pooler = StartPooler(source_->port(), "session", pool);
  auto target_pooler = StartPooler(target_->port(), "session", pool);
  ASSERT_NE(source_pooler, nullptr);
  ASSERT_NE(target_pooler, nullptr);
  const std::string pooled_source = source_pooler->ConnString("shop", "postgres");
  const std::string pooled_target = target_pooler->ConnString("shop", "postgres");
  nlohmann::json j = Check(pooled_source, pooled_target, 0);
  for (const char* code : {"source.pooler", "target.pooler"}) {
    const nlohmann::json* item = FindItem(j, code);
    ASSERT_NE(item, nullptr) << code << j.dump(2);
    EXPECT_EQ((*item)["status"], "warn") << j.dump(2);
  }
  ASSERT_EQ(j["databases"].size(), 1u);
  EXPECT_EQ(j["databases"][0]["method"], "copy");
  EXPECT_NE(j["databases"][0]["reason"].get<std::string>().find("pooler"), std::string::npos);
  // The application's own database and the maintenance database: two pools.
  const std::string target_app = target_pooler->ConnString("postgres", "postgres");
  EXPECT_EQ(AppSees(pooled_target, pool, all), Repeated(defaults, pool));
  EXPECT_EQ(AppSees(target_app, pool, all), Repeated(defaults, pool));

  ProcessResult migrated =
      RunCli({"migrate", "--source", pooled_source, "--target", pooled_target, "--dir", dir_,
              "--method", "copy", "--jobs", "1", "--no-schema-trial"});
  ASSERT_EQ(migrated.exit_code, 0) << migrated.out << migrated.err;
  Result<std::string> rows = target_->Sql("SELECT count(*) FROM public.items", "shop");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(*rows, "500");
  // pg_restore's archive sets search_path and the timeouts on its own
  // session (a reset query such as PgBouncer's default DISCARD ALL clears
  // them); pgcourier's settings are gone.
  EXPECT_EQ(AppSees(pooled_target, pool, kOurs), Repeated(our_defaults, pool));
  EXPECT_EQ(AppSees(target_app, pool, kOurs), Repeated(our_defaults, pool));
}

}  // namespace
}  // namespace pgcourier

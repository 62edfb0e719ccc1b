// `pgcourier status --json` read from another process while a real
// `migrate` runs, after it ends, and after it fails.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli_runner.h"
#include "pg_cluster.h"
#include "two_servers.h"
#include "util/process.h"

namespace pgcourier {
namespace {

nlohmann::json Status(const std::string& dir, int* exit_code = nullptr) {
  Result<ProcessResult> ran = testing::TryRunCli({"status", "--dir", dir, "--json", "--tables"});
  EXPECT_TRUE(ran.ok()) << ran.status().ToString();
  if (!ran.ok()) return nullptr;
  if (exit_code != nullptr) *exit_code = ran->exit_code;
  return nlohmann::json::parse(ran->out, nullptr, false);
}

// One table whose COPY into the target takes a few seconds (its CHECK
// sleeps on one row), and one that the target refuses when `refuse_port`
// is its port.
std::string Database(int refuse_port) {
  return fmt::format(R"sql(
    CREATE FUNCTION public.pause_on(id int) RETURNS boolean LANGUAGE plpgsql AS $$
    BEGIN
      IF id = 500 THEN PERFORM pg_sleep(3); END IF;
      IF inet_server_port() = {} THEN RAISE EXCEPTION 'refused on the target'; END IF;
      RETURN true;
    END $$;
    CREATE TABLE public.items (id int PRIMARY KEY, payload text, CHECK (public.pause_on(id)));
    INSERT INTO public.items SELECT g, repeat('x', 100) FROM generate_series(1, 1000) g;
  )sql",
                     refuse_port);
}

class StatusLiveTest : public testing::SourceAndTargetTest {};

TEST_F(StatusLiveTest, WhileRunningAndAfterTheEnd) {
  testing::SourceAndTargetOptions options;
  options.database = "slow";
  ASSERT_NO_FATAL_FAILURE(StartServers(options));
  ASSERT_TRUE(source_->Sql(Database(0), "slow").ok());
  const std::string dir = source_->base_dir() + "/work";
  testing::BackgroundRun run({"migrate", "--source", source_->ConnString("slow"), "--target",
                              target_->ConnString("postgres"), "--dir", dir, "--quiet"});
  bool seen_copying = false;
  while (!run.ended() && !seen_copying) {
    nlohmann::json s = Status(dir);
    if (s.is_object() && s.value("state", "") == "running" && s["databases"].size() == 1 &&
        s["databases"][0].value("status", "") == "copying") {
      seen_copying = true;
      EXPECT_EQ(s["format"], "pgcourier.status/1");
      EXPECT_EQ(s["databases"][0]["dbname"], "slow");
      EXPECT_EQ(s["databases"][0]["method"], "copy");
      EXPECT_TRUE(s["databases"][0]["error"].is_null());
      EXPECT_EQ(s["databases"][0]["progress"]["tables_total"], 1);
      EXPECT_EQ(s["run"]["source"].get<std::string>().find("password"), std::string::npos);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const Result<ProcessResult>& migrated = run.Join();
  EXPECT_TRUE(seen_copying) << "status never showed the copy running";
  ASSERT_TRUE(migrated.ok());
  EXPECT_EQ(migrated->exit_code, 0) << migrated->err;
  int code = -1;
  nlohmann::json after = Status(dir, &code);
  ASSERT_TRUE(after.is_object());
  EXPECT_EQ(code, 0);
  EXPECT_EQ(after["state"], "done");
  EXPECT_EQ(after["databases"][0]["status"], "done");
  EXPECT_EQ(after["databases"][0]["progress"]["tables_done"], 1);
  EXPECT_EQ(after["databases"][0]["consistent"], true);
}

TEST_F(StatusLiveTest, AfterAFailureWithTheError) {
  testing::SourceAndTargetOptions options;
  options.database = "slow";
  ASSERT_NO_FATAL_FAILURE(StartServers(options));
  ASSERT_TRUE(source_->Sql(Database(target_->port()), "slow").ok());
  const std::string dir = source_->base_dir() + "/work";
  Result<ProcessResult> migrated =
      testing::TryRunCli({"migrate", "--source", source_->ConnString("slow"), "--target",
                          target_->ConnString("postgres"), "--dir", dir, "--quiet"});
  ASSERT_TRUE(migrated.ok());
  EXPECT_EQ(migrated->exit_code, 1) << migrated->err;
  int code = -1;
  nlohmann::json s = Status(dir, &code);
  ASSERT_TRUE(s.is_object());
  EXPECT_EQ(code, 1);
  EXPECT_EQ(s["state"], "failed");
  const auto& db = s["databases"][0];
  EXPECT_EQ(db["status"], "failed");
  ASSERT_TRUE(db["error"].is_string());
  EXPECT_NE(db["error"].get<std::string>().find("refused on the target"), std::string::npos)
      << db["error"];
  bool failed_step = false;
  for (const auto& t : db["tables"]) {
    if (t.value("state", "") == "failed" && t.value("object", "") == "public.items") {
      failed_step = true;
    }
  }
  EXPECT_TRUE(failed_step) << db["tables"].dump();
}

}  // namespace
}  // namespace pgcourier

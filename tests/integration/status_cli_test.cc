// `pgcourier status` as a user runs it, on a work directory filled through
// the catalog's API: the JSON format, the text, exit statuses, --watch.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli_runner.h"
#include "state/store.h"
#include "state_names.h"
#include "util/process.h"

namespace pgcourier {
namespace {

using testing::RunCli;

class StatusCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "pgc-statuscli-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    base_ = pattern;
    dir_ = base_ + "/work";
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(base_, ec);
  }

  // A run with two databases, one done, one failed; left open (live) or
  // finished with `state`.
  std::unique_ptr<StateStore> Fill() {
    Result<std::unique_ptr<StateStore>> store = StateStore::OpenForRun(dir_);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    if (!store.ok()) return nullptr;
    StoredRun run;
    run.id = "abcdef0123456789";
    run.source = "postgresql://app@127.0.0.1:5432";
    run.target = "postgresql://postgres@127.0.0.1:5433";
    EXPECT_TRUE((*store)->BeginRun(run).ok());
    StoredDatabase shop;
    shop.name = "shop";
    shop.target_name = "shop";
    shop.method = Method::kCopy;
    shop.state = DatabaseState::kDone;
    shop.tables_total = shop.tables_done = 5;
    shop.indexes_total = shop.indexes_done = 7;
    shop.bytes_total = shop.bytes_done = 1 << 20;
    EXPECT_TRUE((*store)->PutDatabase(shop).ok());
    StoredDatabase blog;
    blog.name = "blog";
    blog.target_name = "neondb";
    blog.method = Method::kCopy;
    blog.state = DatabaseState::kFailed;
    blog.error = "permission denied to create extension \"plv8\"";
    blog.hint = "ask the provider";
    EXPECT_TRUE((*store)->PutDatabase(blog).ok());
    StoredStep step;
    step.database = "shop";
    step.kind = StepKind::kCopy;
    step.object = "public.orders";
    step.state = StepState::kDone;
    step.rows = 42;
    EXPECT_TRUE((*store)->PutStep(step).ok());
    return std::move(*store);
  }

  std::string base_;
  std::string dir_;
};

TEST_F(StatusCliTest, JsonOfAFinishedRun) {
  {
    auto store = Fill();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->FinishRun(RunState::kFailed, "1 of 2 databases failed").ok());
  }
  ProcessResult r = RunCli({"status", "--dir", dir_, "--json"});
  EXPECT_EQ(r.exit_code, 1) << "a failed run exits 1\n" << r.out << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["format"], "pgcourier.status/1");
  EXPECT_EQ(j["state"], "failed");
  EXPECT_EQ(j["run"]["id"], "abcdef0123456789");
  EXPECT_EQ(j["run"]["source"], "postgresql://app@127.0.0.1:5432");
  EXPECT_EQ(j["run"]["error"], "1 of 2 databases failed");
  EXPECT_FALSE(j["run"]["finished_at"].is_null());
  EXPECT_EQ(j["run"]["pid"], ::getpid());
  ASSERT_EQ(j["databases"].size(), 2u);
  EXPECT_EQ(j["databases"][0]["dbname"], "shop");
  EXPECT_EQ(j["databases"][0]["status"], "done");
  EXPECT_EQ(j["databases"][0]["progress"]["tables_done"], 5);
  EXPECT_EQ(j["databases"][0]["progress"]["bytes_total"], 1 << 20);
  EXPECT_FALSE(j["databases"][0].contains("tables"));
  EXPECT_EQ(j["databases"][1]["dbname"], "blog");
  EXPECT_EQ(j["databases"][1]["target_dbname"], "neondb");
  EXPECT_EQ(j["databases"][1]["status"], "failed");
  EXPECT_EQ(j["databases"][1]["error"], "permission denied to create extension \"plv8\"");

  ProcessResult tables = RunCli({"status", "--dir", dir_, "--json", "--tables"});
  nlohmann::json t = nlohmann::json::parse(tables.out, nullptr, false);
  ASSERT_FALSE(t.is_discarded()) << tables.out;
  ASSERT_EQ(t["databases"][0]["tables"].size(), 1u) << tables.out;
  EXPECT_EQ(t["databases"][0]["tables"][0]["object"], "public.orders");
  EXPECT_EQ(t["databases"][0]["tables"][0]["rows"], 42);
}

TEST_F(StatusCliTest, TextAndExitStatuses) {
  {
    auto store = Fill();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->FinishRun(RunState::kDone, "").ok());
    StoredDatabase blog;
    blog.name = "blog";
    blog.target_name = "neondb";
    blog.method = Method::kCopy;
    blog.state = DatabaseState::kDone;
    ASSERT_TRUE(store->PutDatabase(blog).ok());
  }
  ProcessResult r = RunCli({"status", "--dir", dir_});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out.rfind("DONE  migration abcdef0123456789", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("blog      neondb"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("5/5"), std::string::npos) << r.out;

  ProcessResult steps = RunCli({"status", "--dir", dir_, "--tables"});
  EXPECT_EQ(steps.exit_code, 0) << steps.out << steps.err;
  EXPECT_NE(steps.out.find("public.orders"), std::string::npos) << steps.out;
}

TEST_F(StatusCliTest, InterruptedRunExitsOne) {
  {
    auto store = Fill();
    ASSERT_NE(store, nullptr);
  }  // closed while "running": as if the process had died
  ProcessResult r = RunCli({"status", "--dir", dir_});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(r.out.rfind("INTERRUPTED", 0), 0u) << r.out;
}

TEST_F(StatusCliTest, MissingWorkDirectoryIsAUsageError) {
  ProcessResult r = RunCli({"status", "--dir", dir_});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find(dir_), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("hint: run pgcourier migrate --dir " + dir_ + " first"), std::string::npos)
      << r.err;
  ASSERT_TRUE(std::filesystem::create_directories(dir_));
  ProcessResult empty_dir = RunCli({"status", "--dir", dir_, "--json"});
  EXPECT_EQ(empty_dir.exit_code, 2) << empty_dir.out << empty_dir.err;
  EXPECT_NE(empty_dir.err.find("pgcourier.db"), std::string::npos) << empty_dir.err;
  EXPECT_TRUE(empty_dir.out.empty()) << empty_dir.out;

  EXPECT_EQ(RunCli({"status", "--dir", dir_, "--watch", "0"}).exit_code, 2);
  EXPECT_EQ(RunCli({"status", "--dir", dir_, "--watch", "often"}).exit_code, 2);
}

TEST_F(StatusCliTest, WatchRedrawsUntilTheRunEnds) {
  auto store = Fill();
  ASSERT_NE(store, nullptr);
  testing::BackgroundRun watcher({"status", "--dir", dir_, "--json", "--watch", "0.2"});
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_TRUE(store->FinishRun(RunState::kDone, "").ok());
  StoredDatabase blog;
  blog.name = "blog";
  blog.target_name = "neondb";
  blog.state = DatabaseState::kDone;
  ASSERT_TRUE(store->PutDatabase(blog).ok());
  store.reset();  // the process lets go of the directory: the watch ends
  ProcessResult r = watcher.Wait();
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;

  // Not a terminal: frames separated by a blank line.
  std::vector<nlohmann::json> frames;
  size_t start = 0;
  while (start < r.out.size()) {
    size_t end = r.out.find("\n\n", start);
    if (end == std::string::npos) end = r.out.size();
    nlohmann::json frame = nlohmann::json::parse(r.out.substr(start, end - start), nullptr, false);
    EXPECT_FALSE(frame.is_discarded()) << r.out.substr(start, end - start);
    frames.push_back(frame);
    start = end + 2;
  }
  ASSERT_GE(frames.size(), 3u) << r.out;
  EXPECT_EQ(frames.front()["state"], "running");
  EXPECT_EQ(frames.back()["state"], "done");
}

TEST_F(StatusCliTest, WatchOfAnEndedRunShowsItOnce) {
  {
    auto store = Fill();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->FinishRun(RunState::kCancelled, "").ok());
  }
  auto started = std::chrono::steady_clock::now();
  ProcessResult r = RunCli({"status", "--dir", dir_, "--watch"});
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(r.out.rfind("CANCELLED", 0), 0u) << r.out;
  EXPECT_EQ(r.out.find("CANCELLED", 1), std::string::npos) << "one frame: " << r.out;
}

}  // namespace
}  // namespace pgcourier

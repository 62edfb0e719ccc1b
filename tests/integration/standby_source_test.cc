// A hot standby as the source: logical replication needs the primary (the
// publication is written in the catalog, which a standby cannot), so
// `check --method replication` refuses it and `--method auto` copies from
// it, saying why; the copy reads the standby alone, at its exported
// snapshot, and ends verified.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli_runner.h"
#include "pg_cluster.h"
#include "two_servers.h"
#include "util/process.h"

namespace pgcourier {
namespace {

using testing::PgCluster;
using testing::RunCli;

constexpr const char* kShop = R"sql(
  CREATE TABLE public.items (id int PRIMARY KEY, name text NOT NULL);
  INSERT INTO public.items SELECT g, 'item ' || g FROM generate_series(1, 20000) g;
  CREATE TABLE public.notes (v text);
  INSERT INTO public.notes SELECT repeat(md5(g::text), 50) FROM generate_series(1, 500) g;
  CREATE SEQUENCE public.tickets;
  SELECT setval('public.tickets', 42);
  CREATE UNLOGGED TABLE public.scratch (v int);
  INSERT INTO public.scratch VALUES (1);
)sql";

// Per table: row count and a checksum of the rows' text.
std::string Fingerprint(const PgCluster& cluster) {
  Result<std::string> sums = cluster.Sql(
      "SELECT (SELECT count(*) || ':' || sum(hashtext(t::text)) FROM public.items t) || ' ' || "
      "(SELECT count(*) || ':' || sum(hashtext(t::text)) FROM public.notes t) || ' ' || "
      "(SELECT last_value FROM public.tickets)",
      "shop");
  return sums.ok() ? *sums : sums.status().ToString();
}

const nlohmann::json* FindCheck(const nlohmann::json& report, const std::string& code,
                                const std::string& object) {
  for (const auto& item : report["checks"]) {
    if (item["code"] == code && item["object"] == object) return &item;
  }
  return nullptr;
}

class StandbySourceTest : public testing::SourceAndTargetTest {};

TEST_F(StandbySourceTest, ReplicationNeedsThePrimaryAndAutoCopiesFromTheStandby) {
  testing::SourceAndTargetOptions options;
  options.logical_source =
      true;  // the standby inherits wal_level = logical: only it stands in the way
  options.database = "shop";
  options.database_sql = kShop;
  ASSERT_NO_FATAL_FAILURE(StartServers(options));
  Result<std::unique_ptr<PgCluster>> standby =
      PgCluster::StartStandby(*source_, {"hot_standby_feedback = on"});
  ASSERT_TRUE(standby.ok()) << standby.status().ToString();
  const std::string expected = Fingerprint(*source_);
  // The standby has replayed the load (bounded).
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (Fingerprint(**standby) != expected && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(Fingerprint(**standby), expected);
  ASSERT_EQ(*(*standby)->Sql("SELECT pg_is_in_recovery()"), "t");
  const std::string from = (*standby)->ConnString("shop");
  const std::string to = target_->ConnString("postgres");

  // Replication asked for: refused, naming the fix.
  ProcessResult checked =
      RunCli({"check", "--source", from, "--target", to, "--method", "replication", "--json"});
  EXPECT_EQ(checked.exit_code, 1) << checked.out << checked.err;
  nlohmann::json report = nlohmann::json::parse(checked.out, nullptr, false);
  ASSERT_FALSE(report.is_discarded()) << checked.out;
  const nlohmann::json* refused = FindCheck(report, "replication.standby", "source");
  ASSERT_NE(refused, nullptr) << checked.out;
  EXPECT_EQ((*refused)["status"], "fail");
  EXPECT_NE((*refused)["hint"].get<std::string>().find("connect to the primary, or use --method "
                                                       "copy"),
            std::string::npos)
      << refused->dump();
  const nlohmann::json* copy_ok = FindCheck(report, "source.standby", "source");
  ASSERT_NE(copy_ok, nullptr) << checked.out;
  EXPECT_EQ((*copy_ok)["status"], "pass") << copy_ok->dump();
  // An unlogged table cannot be read on a standby: said before the move.
  const nlohmann::json* unlogged = FindCheck(report, "source.standby", "shop");
  ASSERT_NE(unlogged, nullptr) << checked.out;
  EXPECT_EQ((*unlogged)["status"], "fail");
  EXPECT_NE((*unlogged)["detail"].get<std::string>().find("public.scratch"), std::string::npos);

  // Auto: copies from the standby (the unlogged table's rows left out), and
  // says why.
  ProcessResult moved =
      RunCli({"migrate", "--source", from, "--target", to, "--dir", dir_, "--method", "auto",
              "--jobs", "2", "--exclude-table-data", "public.scratch"});
  ASSERT_EQ(moved.exit_code, 0) << moved.out << moved.err;
  EXPECT_EQ(Fingerprint(*target_), expected);
  ProcessResult status = RunCli({"status", "--dir", dir_, "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.out << status.err;
  nlohmann::json view = nlohmann::json::parse(status.out, nullptr, false);
  ASSERT_FALSE(view.is_discarded()) << status.out;
  ASSERT_EQ(view["databases"].size(), 1U) << status.out;
  EXPECT_EQ(view["databases"][0]["status"], "done") << status.out;
  EXPECT_EQ(view["databases"][0]["method"], "copy") << status.out;
  EXPECT_NE(view["databases"][0]["method_reason"].get<std::string>().find(
                "the source is a standby (in recovery): logical replication needs the primary"),
            std::string::npos)
      << status.out;
  // Nothing of pgcourier's on the primary (the standby cannot take any).
  EXPECT_EQ(*source_->Sql("SELECT count(*) FROM pg_publication", "shop"), "0");
  EXPECT_EQ(*source_->Sql("SELECT count(*) FROM pg_replication_slots"), "0");
}

}  // namespace
}  // namespace pgcourier

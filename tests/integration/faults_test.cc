// Network faults between pgcourier and its servers, made by TCP proxies
// (tests/support/tcp_proxy.h) that the source and target connection strings
// point at: connections cut in the middle of a COPY or an index build,
// stalled for a while or for good, refused at start, and cut under a
// running subscription. Every run ends (no hang); a fault either heals by
// bounded retries or fails the run with an error naming the phase and the
// table, and `migrate --resume` then ends verified, every table equal to
// the source's (count and md5 of its rows in key order). Runs the real
// binary, as a user would.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cli_runner.h"
#include "pg_cluster.h"
#include "state/store.h"
#include "state_names.h"
#include "tcp_proxy.h"
#include "two_servers.h"
#include "util/process.h"

namespace pgcourier {
namespace {

using testing::BackgroundRun;
using testing::CliOptions;
using testing::PgCluster;
using testing::TcpProxy;

// `big` (about 20 MB of COPY text) takes seconds to copy through a proxy
// limited to kCopyRate, so that a fault lands in the middle of it, and is
// larger than what socket buffers hold, so that a silent target blocks
// pgcourier while the source still has rows to send.
constexpr const char* kShop = R"sql(
  CREATE TABLE public.big (id int PRIMARY KEY, payload text NOT NULL);
  INSERT INTO public.big SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 200000) g;
  CREATE TABLE public.small (id int PRIMARY KEY, label text);
  INSERT INTO public.small SELECT g, 'item ' || g FROM generate_series(1, 1000) g;
)sql";
constexpr int64_t kCopyRate = 2 << 20;  // bytes per second and connection
// Bytes through the proxy that only the COPY of `big` reaches: the checks,
// pg_dump and the rest read far less.
constexpr int64_t kCopyUnderWay = 2 << 20;
const std::vector<std::string> kTables = {"public.big", "public.small"};

// A table's row count and the md5 of its rows in key order.
std::string Digest(const PgCluster& cluster, const std::string& table) {
  Result<std::string> out = cluster.Sql(
      fmt::format("SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, ',' ORDER BY "
                  "t.id)), '-') FROM {} t",
                  table),
      "shop");
  return out.ok() ? *out : out.status().ToString();
}

class FaultsTest : public testing::SourceAndTargetTest {
 protected:
  // Servers, the shop database, and a proxy in front of each server.
  void StartServersAndProxies(bool logical = false) {
    testing::SourceAndTargetOptions options;
    if (logical) {
      options.logical_source = true;
      // The apply worker starts again 1 s after its connection is lost
      // (5 s by default), to keep the test short.
      options.target.settings = {"wal_retrieve_retry_interval = '1s'"};
    }
    options.database = "shop";
    options.database_sql = kShop;
    ASSERT_NO_FATAL_FAILURE(StartServers(options));
    Result<std::unique_ptr<TcpProxy>> source_proxy = TcpProxy::Start(source_->port());
    ASSERT_TRUE(source_proxy.ok()) << source_proxy.status().ToString();
    source_proxy_ = std::move(*source_proxy);
    Result<std::unique_ptr<TcpProxy>> target_proxy = TcpProxy::Start(target_->port());
    ASSERT_TRUE(target_proxy.ok()) << target_proxy.status().ToString();
    target_proxy_ = std::move(*target_proxy);
  }

  std::string SourceConn() const {
    return fmt::format("host=127.0.0.1 port={} user=postgres dbname=shop", source_proxy_->port());
  }
  std::string TargetConn() const {
    return fmt::format("host=127.0.0.1 port={} user=postgres dbname=postgres",
                       target_proxy_->port());
  }

  std::vector<std::string> MigrateArgs(const std::string& method = "copy",
                                       const std::string& connect_timeout = "5") const {
    return {"migrate",  "--method",          method,         "--source", SourceConn(),
            "--target", TargetConn(),        "--dir",        dir_,       "--jobs",
            "2",        "--connect-timeout", connect_timeout};
  }
  std::vector<std::string> ResumeArgs() const { return {"migrate", "--resume", "--dir", dir_}; }
  // The hang detector: a run is killed past `timeout` (signal != 0).
  static CliOptions Bounded(std::chrono::seconds timeout = std::chrono::seconds(120)) {
    return testing::WithTimeout(timeout);
  }

  std::optional<StoredDatabase> StoredShop() const {
    Result<std::unique_ptr<StateStore>> store = StateStore::OpenReadOnly(dir_);
    if (!store.ok()) return std::nullopt;
    Result<std::optional<StoredDatabase>> db = (*store)->Database("shop");
    return db.ok() ? *db : std::nullopt;
  }
  std::vector<StoredStep> StoredSteps() const {
    Result<std::unique_ptr<StateStore>> store = StateStore::OpenReadOnly(dir_);
    if (!store.ok()) return {};
    Result<std::vector<StoredStep>> steps = (*store)->Steps("shop");
    return steps.ok() ? *steps : std::vector<StoredStep>();
  }
  // The most attempts any step of `kind` on `object` took.
  int Attempts(const std::string& kind, const std::string& object) const {
    int attempts = 0;
    for (const auto& step : StoredSteps()) {
      if (step.kind == kind && step.object == object) attempts = std::max(attempts, step.attempts);
    }
    return attempts;
  }

  bool StepFailed(const std::string& kind, const std::string& object) const {
    for (const auto& step : StoredSteps()) {
      if (step.kind == kind && step.object == object && step.state == "failed") return true;
    }
    return false;
  }

  // A run that ended on its own (not killed as hung), failed, and said
  // every one of `phrases` (on standard output or error).
  static void ExpectFailedSaying(const ProcessResult& run,
                                 const std::vector<std::string>& phrases) {
    EXPECT_EQ(run.signal, 0) << "killed: it hung\n" << run.err;
    EXPECT_NE(run.exit_code, 0) << run.out << run.err;
    const std::string said = run.out + run.err;
    for (const auto& phrase : phrases) {
      EXPECT_NE(said.find(phrase), std::string::npos) << phrase << " not in:\n" << said;
    }
  }
  // The store's record of the failure: the database failed in the data
  // phase, and the copy of `table` is the step that failed.
  void ExpectRecordedCopyFailure(const std::string& table) const {
    std::optional<StoredDatabase> db = StoredShop();
    ASSERT_TRUE(db.has_value());
    EXPECT_EQ(db->state, "failed");
    EXPECT_EQ(db->error.rfind("data: ", 0), 0u) << db->error;
    EXPECT_TRUE(StepFailed("copy", table));
  }

  // `migrate --resume` through the (healthy again) proxies ends verified.
  void ResumeAndExpectVerified() {
    ProcessResult resumed = BackgroundRun(ResumeArgs(), Bounded()).Wait();
    EXPECT_EQ(resumed.exit_code, 0) << resumed.out << resumed.err;
    ExpectVerified();
  }

  // The store says done and every table equals the source's.
  void ExpectVerified() {
    std::optional<StoredDatabase> db = StoredShop();
    ASSERT_TRUE(db.has_value());
    EXPECT_EQ(db->state, "done") << db->error;
    for (const auto& table : kTables) {
      EXPECT_EQ(Digest(*target_, table), Digest(*source_, table)) << table;
    }
    EXPECT_EQ(
        *target_->Sql("SELECT count(*) FROM pg_namespace WHERE nspname = '_pgcourier'", "shop"),
        "0")
        << "progress marks left";
  }

  // Waits until the COPY of `big` is under way through `proxy`.
  static bool CopyUnderWay(const TcpProxy& proxy, bool to_server) {
    return proxy.WaitUntil(
        [to_server](const TcpProxy::Counters& c) {
          return (to_server ? c.bytes_to_server : c.bytes_to_client) > kCopyUnderWay;
        },
        std::chrono::seconds(60));
  }

  std::unique_ptr<TcpProxy> source_proxy_;
  std::unique_ptr<TcpProxy> target_proxy_;
};

// The source's connections (the snapshot's among them) are reset while
// `big` streams: the copy cannot go on at its snapshot, so the run fails
// naming the table; the resume copies it again at a new snapshot.
TEST_F(FaultsTest, SourceCutMidCopyFailsNamingTheTableAndResumes) {
  ASSERT_NO_FATAL_FAILURE(StartServersAndProxies());
  source_proxy_->SetRateLimit(kCopyRate);
  BackgroundRun run(MigrateArgs(), Bounded());
  ASSERT_TRUE(CopyUnderWay(*source_proxy_, false)) << "the copy never got under way";
  source_proxy_->CutAll();
  source_proxy_->SetRateLimit(0);
  ProcessResult failed = run.Wait();
  ExpectFailedSaying(failed, {"copying public.big: connection lost during COPY",
                              "trying again (attempt 2 of 3)", "migrate --resume"});
  ExpectRecordedCopyFailure("public.big");
  EXPECT_GE(source_proxy_->counters().cut, 2) << "the copy's and the snapshot's connections";
  ResumeAndExpectVerified();
}

// The target's connections are reset while `big` streams: the copy is
// tried again on new connections (its COPY had not committed) and the run
// ends verified without a resume.
TEST_F(FaultsTest, TargetCutMidCopyIsRetried) {
  ASSERT_NO_FATAL_FAILURE(StartServersAndProxies());
  target_proxy_->SetRateLimit(kCopyRate);
  BackgroundRun run(MigrateArgs(), Bounded());
  ASSERT_TRUE(CopyUnderWay(*target_proxy_, true)) << "the copy never got under way";
  target_proxy_->CutAll();
  target_proxy_->SetRateLimit(0);
  ProcessResult ran = run.Wait();
  EXPECT_EQ(ran.exit_code, 0) << ran.out << ran.err;
  EXPECT_NE(ran.err.find("trying again (attempt 2 of 3)"), std::string::npos) << ran.err;
  EXPECT_EQ(Attempts("copy", "public.big"), 2);
  ExpectVerified();
}

// The target's connections are reset while an index build runs (its
// expression sleeps on one row): the build is tried again, and the index
// is there once.
TEST_F(FaultsTest, TargetCutMidIndexBuildIsRetried) {
  ASSERT_NO_FATAL_FAILURE(StartServersAndProxies());
  Result<std::string> slow = source_->Sql(R"sql(
    CREATE FUNCTION public.slow(id int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
    BEGIN
      IF id = 1 THEN PERFORM pg_catalog.pg_sleep(2); END IF;
      RETURN id;
    END $$;
    CREATE INDEX small_slow ON public.small (public.slow(id));
  )sql",
                                          "shop");
  ASSERT_TRUE(slow.ok()) << slow.status().ToString();
  BackgroundRun run(MigrateArgs(), Bounded());
  bool building = false;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!building && !run.ended() && std::chrono::steady_clock::now() < until) {
    Result<std::string> active = target_->Sql(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = 'shop' AND state = 'active' "
        "AND query LIKE '%CREATE INDEX small_slow%' AND pid <> pg_backend_pid()");
    building = active.ok() && *active != "0";
    if (!building) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(building) << "the index build was never seen";
  target_proxy_->CutAll();
  ProcessResult ran = run.Wait();
  EXPECT_EQ(ran.exit_code, 0) << ran.out << ran.err;
  EXPECT_EQ(Attempts("index", "public.small_slow"), 2);
  ExpectVerified();
  EXPECT_EQ(*target_->Sql("SELECT count(*) FROM pg_indexes WHERE indexname = 'small_slow'", "shop"),
            "1");
}

// Both servers go silent for a few seconds in the middle of the copy, then
// the bytes flow again: nothing gives up, the run ends verified. The target
// is a few milliseconds away meanwhile (latency each way).
TEST_F(FaultsTest, StallMidCopyThenFlowAgainEndsVerified) {
  ASSERT_NO_FATAL_FAILURE(StartServersAndProxies());
  source_proxy_->SetRateLimit(kCopyRate);
  target_proxy_->SetDelay(std::chrono::milliseconds(5));
  BackgroundRun run(MigrateArgs(), Bounded());
  ASSERT_TRUE(CopyUnderWay(*source_proxy_, false)) << "the copy never got under way";
  source_proxy_->Stall(true);
  target_proxy_->Stall(true);
  const int64_t held = source_proxy_->bytes_forwarded() + target_proxy_->bytes_forwarded();
  std::this_thread::sleep_for(std::chrono::seconds(4));
  EXPECT_EQ(source_proxy_->bytes_forwarded() + target_proxy_->bytes_forwarded(), held)
      << "nothing moves while stalled";
  EXPECT_FALSE(run.ended());
  source_proxy_->Stall(false);
  target_proxy_->Stall(false);
  source_proxy_->SetRateLimit(0);
  ProcessResult ran = run.Wait();
  EXPECT_EQ(ran.exit_code, 0) << ran.out << ran.err;
  EXPECT_EQ(Attempts("copy", "public.big"), 1) << "a short stall is waited out, not retried";
  ExpectVerified();
}

// A serverless source asleep at first: connections are refused for 3.5 s;
// pgcourier tries again with backoff and gets through.
TEST_F(FaultsTest, SleepingSourceIsWaitedFor) {
  ASSERT_NO_FATAL_FAILURE(StartServersAndProxies());
  // Tries at 0, 0.25, 0.75, 1.75 and 3.75 s (backoff doubling from 250 ms):
  // the fifth gets through.
  source_proxy_->RefuseFor(std::chrono::milliseconds(3500));
  // A connect timeout longer than the sleep; the debug log shows the tries.
  std::vector<std::string> args = MigrateArgs("copy", "20");
  args.insert(args.begin(), {"--log-level", "debug"});
  BackgroundRun run(args, Bounded());
  ProcessResult ran = run.Wait();
  EXPECT_EQ(ran.exit_code, 0) << ran.out << ran.err;
  EXPECT_GE(run.seconds(), 3.5);
  EXPECT_NE(ran.err.find("refused"), std::string::npos) << ran.err;
  EXPECT_NE(ran.err.find("retrying in"), std::string::npos) << ran.err;
  ExpectVerified();
}

// The subscription's connection (from the target server to the source,
// through the proxy since the source string names it) is reset while
// replication runs: the apply worker connects again, and cutover gets
// every row written before and after the cut.
TEST_F(FaultsTest, ReplicationCutDuringSyncLosesNothing) {
  ASSERT_NO_FATAL_FAILURE(StartServersAndProxies(/*logical=*/true));
  ProcessResult migrated = BackgroundRun(MigrateArgs("replication"), Bounded()).Wait();
  ASSERT_EQ(migrated.exit_code, 0) << migrated.out << migrated.err;
  std::optional<StoredDatabase> db = StoredShop();
  ASSERT_TRUE(db.has_value());
  ASSERT_EQ(db->state, "syncing") << db->error;

  // The walsender serving the subscription, once there is one.
  auto walsender = [this](const std::string& other_than) {
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (;;) {
      Result<std::string> pid = source_->Sql(
          "SELECT coalesce(max(active_pid), 0) FROM pg_replication_slots "
          "WHERE slot_name LIKE 'pgcourier%'");
      if (pid.ok() && *pid != "0" && *pid != other_than) return *pid;
      if (std::chrono::steady_clock::now() >= until) return std::string();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  };
  const std::string first = walsender("");
  ASSERT_FALSE(first.empty()) << "the subscription never connected";
  ASSERT_TRUE(
      source_
          ->Sql(
              "INSERT INTO public.big SELECT g, 'before the cut' FROM generate_series(-100, -1) g",
              "shop")
          .ok());
  const int64_t accepted = source_proxy_->connections_accepted();
  source_proxy_->CutAll();
  ASSERT_TRUE(source_
                  ->Sql("INSERT INTO public.big SELECT g, 'after the cut' FROM "
                        "generate_series(1000001, 1000100) g; UPDATE public.small SET label = 'x' "
                        "WHERE id <= 10",
                        "shop")
                  .ok());
  // The apply worker comes back through the proxy, to a new walsender.
  EXPECT_GE(source_proxy_->counters().cut, 1);
  EXPECT_FALSE(walsender(first).empty()) << "the subscription never reconnected";
  EXPECT_GT(source_proxy_->connections_accepted(), accepted);

  ProcessResult cut =
      BackgroundRun({"cutover", "--dir", dir_, "--timeout", "60"}, Bounded()).Wait();
  EXPECT_EQ(cut.exit_code, 0) << cut.out << cut.err;
  for (const auto& table : kTables) {
    EXPECT_EQ(Digest(*target_, table), Digest(*source_, table)) << table;
  }
  EXPECT_EQ(*target_->Sql("SELECT count(*) FROM public.big WHERE payload LIKE '%the cut'", "shop"),
            "200");
  EXPECT_EQ(*source_->Sql("SELECT count(*) FROM pg_replication_slots"), "0");
}

// Both servers go silent for good in the middle of the copy (a black hole:
// the connections stay open, nothing is forwarded). With a stall limit of
// 3 s the copy gives up, its retries cannot connect (3 s connect timeout),
// and the run fails naming the table instead of waiting forever; once the
// network is back, the resume ends verified.
TEST_F(FaultsTest, BlackholeMidCopyFailsNamingTheTableAndResumes) {
  ASSERT_NO_FATAL_FAILURE(StartServersAndProxies());
  // The target is the slow side, so pgcourier waits on it when the network
  // goes silent, with rows of the source still coming.
  target_proxy_->SetRateLimit(kCopyRate);
  CliOptions options = Bounded(std::chrono::seconds(60));
  options.env["PGCOURIER_STALL_TIMEOUT"] = "3";
  // The debug log says what was given up.
  std::vector<std::string> args = MigrateArgs("copy", "3");
  args.insert(args.begin(), {"--log-level", "debug"});
  BackgroundRun run(args, options);
  ASSERT_TRUE(CopyUnderWay(*target_proxy_, true)) << "the copy never got under way";
  source_proxy_->Stall(true);
  target_proxy_->Stall(true);
  ProcessResult failed = run.Wait();
  ExpectFailedSaying(failed, {"copying public.big: the connection to",
                              "stalled: nothing sent or received for 3 s during COPY",
                              "trying again (attempt 3 of 3)",
                              // The target's stall was seen first, while the
                              // source's COPY still streamed: the request to
                              // cancel it was not answered either.
                              "unanswered after 5 s; the connection is given up"});
  EXPECT_LT(run.seconds(), 45) << "bounded by the stall limit and the connect timeout";
  ExpectRecordedCopyFailure("public.big");

  source_proxy_->Stall(false);
  target_proxy_->Stall(false);
  target_proxy_->SetRateLimit(0);
  ResumeAndExpectVerified();
}

}  // namespace
}  // namespace pgcourier

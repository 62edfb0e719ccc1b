// `pgcourier status --serve` against real migrations, read as its users read
// it: the page rendered by a real browser (Debian's chromium, headless), the
// metrics by a strict parser of the exposition format, /api/status against
// `status --json`. One pair of servers carries a copy seen running and then
// finished, a failed copy with its hint, and a replicating database.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli_runner.h"
#include "pg_cluster.h"
#include "prometheus_text.h"
#include "two_servers.h"
#include "util/process.h"

namespace pgcourier {
namespace {

using Clock = std::chrono::steady_clock;

// A port nothing listens on now (the kernel's pick, released at once).
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string ChromiumPath() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "";
}

// A `status --serve` on a free loopback port, read every 0.3 s.
class Served {
 public:
  Served(const std::string& dir, const std::string& token = "")
      : port_(FreePort()),
        run_({"status", "--serve", "--dir", dir, "--listen", fmt::format("127.0.0.1:{}", port_),
              "--watch", "0.3", "--rate-sample", "0"},
             Options(token)),
        client_("127.0.0.1", port_) {
    client_.set_read_timeout(std::chrono::seconds(10));
    if (!token.empty()) client_.set_bearer_token_auth(token.c_str());
  }
  ~Served() {
    if (!run_.ended()) run_.Kill();
  }

  // Waits until it answers.
  bool Ready() {
    for (auto end = Clock::now() + std::chrono::seconds(30); Clock::now() < end;) {
      if (run_.ended()) return false;
      if (auto r = client_.Get("/api/status"); r && r->status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  std::string Get(const std::string& path, int* status = nullptr) {
    auto r = client_.Get(path.c_str());
    if (status != nullptr) *status = r ? r->status : -1;
    return r ? r->body : "";
  }
  // Waits until /api/status says `state` (the poller read it).
  bool WaitState(const std::string& state) {
    for (auto end = Clock::now() + std::chrono::seconds(60); Clock::now() < end;) {
      nlohmann::json s = nlohmann::json::parse(Get("/api/status"), nullptr, false);
      if (s.is_object() && s.value("state", "") == state) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  // Ctrl-C: the server ends cleanly.
  ProcessResult Stop() {
    ::kill(run_.pid(), SIGINT);
    return run_.Wait();
  }
  int port() const { return port_; }
  std::string Url(const std::string& query = "") const {
    return fmt::format("http://127.0.0.1:{}/{}", port_, query);
  }

 private:
  static testing::CliOptions Options(const std::string& token) {
    testing::CliOptions options;
    if (!token.empty()) options.env["PGCOURIER_SERVE_TOKEN"] = token;
    options.timeout = std::chrono::minutes(4);
    return options;
  }
  int port_;
  testing::BackgroundRun run_;
  httplib::Client client_;
};

// The page as the browser leaves it after its script ran (for 4 s of
// virtual time), and its screenshot in `png`: one browser run for both.
std::string RenderPage(const std::string& url, const std::string& png) {
  const std::string profile = png + ".profile";
  ProcessOptions options;
  options.timeout = std::chrono::seconds(120);
  Result<ProcessResult> run = RunProcess(
      {ChromiumPath(), "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
       "--disable-extensions", "--disable-background-networking", "--disable-component-update",
       "--user-data-dir=" + profile, "--virtual-time-budget=4000", "--hide-scrollbars",
       "--window-size=1100,900", "--screenshot=" + png, "--dump-dom", url},
      options);
  std::filesystem::remove_all(profile);
  EXPECT_TRUE(run.ok() && run->ok()) << (run.ok() ? run->err : run.status().ToString());
  EXPECT_TRUE(std::filesystem::exists(png)) << "no screenshot of " << url;
  return run.ok() ? run->out : "";
}

// The text of the first element with data-field="field" inside the section
// of database `db` (or in the whole page when `db` is empty).
std::string Field(const std::string& dom, const std::string& db, const std::string& field) {
  size_t from = 0;
  size_t until = dom.size();
  if (!db.empty()) {
    from = dom.find(fmt::format("data-db=\"{}\"", db));
    if (from == std::string::npos) return "<no section for " + db + ">";
    until = dom.find("data-db=", from + 1);
  }
  const size_t at = dom.find(fmt::format("data-field=\"{}\"", field), from);
  if (at == std::string::npos || at > until) return "<no " + field + ">";
  const size_t open = dom.find('>', at);
  const size_t close = dom.find('<', open);
  return dom.substr(open + 1, close - open - 1);
}

// The data-value attribute of that element.
std::string FieldValue(const std::string& dom, const std::string& db, const std::string& field) {
  const size_t from = dom.find(fmt::format("data-db=\"{}\"", db));
  const size_t at = dom.find(fmt::format("data-field=\"{}\"", field), from);
  const size_t v = dom.find("data-value=\"", at);
  if (from == std::string::npos || at == std::string::npos || v == std::string::npos) return "";
  const size_t end = dom.find('"', v + 12);
  return dom.substr(v + 12, end - v - 12);
}

testing::PromExposition Metrics(Served& served) {
  return testing::ParsePrometheusText(served.Get("/metrics"));
}

double Metric(const testing::PromExposition& e, const std::string& name,
              const std::map<std::string, std::string>& labels) {
  const testing::PromSample* s = e.Find(name, labels);
  EXPECT_NE(s, nullptr) << name;
  return s == nullptr ? -1 : s->value;
}

// /api/status is exactly `status --json`.
void ExpectSameAsStatusJson(Served& served, const std::string& dir) {
  Result<ProcessResult> cli = testing::TryRunCli({"status", "--dir", dir, "--json"});
  ASSERT_TRUE(cli.ok());
  EXPECT_EQ(nlohmann::json::parse(served.Get("/api/status"), nullptr, false),
            nlohmann::json::parse(cli->out, nullptr, false));
}

class StatusServeTest : public testing::SourceAndTargetTest {
 protected:
  // A page rendered, kept in the source's directory (kept when the test
  // fails) and, with PGCOURIER_SCREENSHOT_DIR, copied there.
  std::string Render(Served& served, const std::string& name, const std::string& query = "") {
    const std::string png = source_->base_dir() + "/page-" + name + ".png";
    std::string dom = RenderPage(served.Url(query), png);
    if (const char* keep = std::getenv("PGCOURIER_SCREENSHOT_DIR"); keep != nullptr) {
      std::filesystem::copy_file(png, std::string(keep) + "/page-" + name + ".png",
                                 std::filesystem::copy_options::overwrite_existing);
    }
    shots_ += "\n  " + name + ": " + png;
    return dom;
  }
  void TearDown() override {
    if (HasFailure()) std::fprintf(stderr, "screenshots of the page:%s\n", shots_.c_str());
    testing::SourceAndTargetTest::TearDown();
  }
  std::string shots_;
};

// The copy of items stops at row 500 on the target until the file
// serve_gate exists in the target's data directory; rows of "bad" are
// refused there with a hint.
std::string Databases(int target_port) {
  return fmt::format(R"sql(
    CREATE FUNCTION public.gate(id int) RETURNS boolean LANGUAGE plpgsql AS $$
    BEGIN
      IF inet_server_port() = {0} AND id = 500 THEN
        FOR i IN 1..600 LOOP
          EXIT WHEN (pg_stat_file('serve_gate', true)).size IS NOT NULL;
          PERFORM pg_sleep(0.1);
        END LOOP;
      END IF;
      RETURN true;
    END $$;
    CREATE TABLE public.items (id int PRIMARY KEY, payload text, CHECK (public.gate(id)));
    INSERT INTO public.items SELECT g, repeat('x', 100) FROM generate_series(1, 1000) g;
    ANALYZE public.items;
    CREATE DATABASE bad;
    CREATE DATABASE live;
  )sql",
                     target_port);
}

std::string BadDatabase(int target_port) {
  return fmt::format(R"sql(
    CREATE FUNCTION public.refuse() RETURNS boolean LANGUAGE plpgsql AS $$
    BEGIN
      IF inet_server_port() = {} THEN
        RAISE EXCEPTION 'refused on the target' USING HINT = 'let the rows in';
      END IF;
      RETURN true;
    END $$;
    CREATE TABLE public.orders (id int PRIMARY KEY, CHECK (public.refuse()));
    INSERT INTO public.orders SELECT generate_series(1, 10);
  )sql",
                     target_port);
}

TEST_F(StatusServeTest, PageMetricsAndApiForRunningDoneFailedAndReplicating) {
#ifdef PGCOURIER_SANITIZED_BUILD
  // Four browser launches, each about 10 s of waiting: the regular build
  // runs this test; the sanitizer build's time goes to the moves.
  GTEST_SKIP() << "the status page's browser test runs in the regular build only";
#endif
  if (ChromiumPath().empty()) {
    GTEST_SKIP() << "chromium is not installed (scripts/setup.sh installs it): the status page "
                    "needs a real browser to be tested";
  }
  testing::SourceAndTargetOptions options;
  options.logical_source = true;
  options.database = "shop";
  ASSERT_NO_FATAL_FAILURE(StartServers(options));
  ASSERT_TRUE(source_->Sql(Databases(target_->port()), "shop").ok());
  ASSERT_TRUE(source_->Sql(BadDatabase(target_->port()), "bad").ok());
  ASSERT_TRUE(source_
                  ->Sql("CREATE TABLE public.events (id int PRIMARY KEY, at timestamptz);"
                        "INSERT INTO public.events SELECT g, now() FROM generate_series(1, 50) g;",
                        "live")
                  .ok());
  const std::string target = target_->ConnString("postgres");

  // A copy held at row 500: running.
  const std::string copy_dir = dir_ + "-copy";
  testing::BackgroundRun migrate({"migrate", "--source", source_->ConnString("shop"), "--target",
                                  target, "--dir", copy_dir, "--method", "copy", "--quiet"});
  for (auto end = Clock::now() + std::chrono::seconds(60); Clock::now() < end;) {
    Result<ProcessResult> s = testing::TryRunCli({"status", "--dir", copy_dir, "--json"});
    nlohmann::json j = s.ok() ? nlohmann::json::parse(s->out, nullptr, false) : nullptr;
    if (j.is_object() && !j["databases"].empty() && j["databases"][0]["status"] == "copying") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  {
    Served served(copy_dir);
    ASSERT_TRUE(served.Ready());
    ASSERT_TRUE(served.WaitState("running"));
    const std::string dom = Render(served, "running");
    EXPECT_EQ(Field(dom, "", "overall"), "running") << dom;
    EXPECT_EQ(Field(dom, "shop", "state"), "copying");
    EXPECT_EQ(Field(dom, "shop", "method"), "copy");
    EXPECT_EQ(Field(dom, "shop", "phase"), "data: copying 1 table");
    EXPECT_EQ(FieldValue(dom, "shop", "tables-done"), "0");
    // The table's bars: rows and bytes against the totals its planning
    // estimated (ANALYZE made reltuples exact).
    EXPECT_EQ(Field(dom, "shop", "table-rows"), "0 of 1,000 (estimated)");
    EXPECT_NE(Field(dom, "shop", "table-bytes").find(" (estimated)"), std::string::npos)
        << Field(dom, "shop", "table-bytes");
    EXPECT_EQ(Field(dom, "shop", "rows-done"), "0 copied of 1,000 (estimated)");
    const nlohmann::json sizes = nlohmann::json::parse(served.Get("/api/status?tables=1"), nullptr,
                                                       false)["databases"][0]["table_sizes"];
    ASSERT_EQ(sizes.size(), 1u) << sizes;
    EXPECT_EQ(sizes[0]["table"], "public.items");
    EXPECT_EQ(sizes[0]["expected_rows"], 1000);
    EXPECT_GT(sizes[0]["expected_bytes"].get<int64_t>(), 100000);
    const testing::PromExposition m = Metrics(served);
    ASSERT_EQ(m.error, "");
    EXPECT_EQ(Metric(m, "pgcourier_run_live", {}), 1);
    EXPECT_EQ(Metric(m, "pgcourier_database_state", {{"database", "shop"}, {"state", "copying"}}),
              1);
    EXPECT_EQ(Metric(m, "pgcourier_planned_tables", {{"database", "shop"}}), 1);

    // Let it finish: the same page shows it done.
    std::ofstream(target_->data_dir() + "/serve_gate") << "go\n";
    const Result<ProcessResult>& migrated = migrate.Join();
    ASSERT_TRUE(migrated.ok());
    ASSERT_EQ(migrated->exit_code, 0) << migrated->err;
    ASSERT_TRUE(served.WaitState("done"));
    const std::string done = Render(served, "done");
    EXPECT_EQ(Field(done, "", "overall"), "done");
    EXPECT_EQ(Field(done, "shop", "state"), "done");
    EXPECT_EQ(FieldValue(done, "shop", "tables-done"), "1");
    EXPECT_EQ(FieldValue(done, "shop", "rows-done"), "1000");
    EXPECT_EQ(Field(done, "shop", "table-rows"), "1,000");  // what was copied, whole
    EXPECT_EQ(Field(done, "shop", "error"), "<no error>");
    const testing::PromExposition m2 = Metrics(served);
    ASSERT_EQ(m2.error, "");
    EXPECT_EQ(Metric(m2, "pgcourier_copied_rows_total", {{"database", "shop"}}), 1000);
    EXPECT_EQ(Metric(m2, "pgcourier_tables_copied_total", {{"database", "shop"}}), 1);
    EXPECT_GT(Metric(m2, "pgcourier_copied_bytes_total", {{"database", "shop"}}), 0);
    EXPECT_EQ(Metric(m2, "pgcourier_database_state", {{"database", "shop"}, {"state", "done"}}), 1);
    EXPECT_EQ(Metric(m2, "pgcourier_run_live", {}), 0);
    ExpectSameAsStatusJson(served, copy_dir);
    const ProcessResult stopped = served.Stop();
    EXPECT_EQ(stopped.exit_code, 0) << stopped.err;
  }

  // A failed copy, served with a token.
  const std::string bad_dir = dir_ + "-bad";
  Result<ProcessResult> failed =
      testing::TryRunCli({"migrate", "--source", source_->ConnString("bad"), "--target", target,
                          "--dir", bad_dir, "--quiet"});
  ASSERT_TRUE(failed.ok());
  ASSERT_EQ(failed->exit_code, 1) << failed->err;
  {
    Served served(bad_dir, "s3cret-token");
    ASSERT_TRUE(served.Ready());
    int code = 0;
    httplib::Client anonymous("127.0.0.1", served.port());
    auto refused = anonymous.Get("/api/status");
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 401);
    EXPECT_EQ(anonymous.Get("/metrics?token=wrong")->status, 401);
    EXPECT_EQ(anonymous.Get("/metrics?token=s3cret-token")->status, 200);
    served.Get("/api/status", &code);
    EXPECT_EQ(code, 200);
    const std::string dom = Render(served, "failed", "?token=s3cret-token");
    EXPECT_EQ(Field(dom, "", "overall"), "failed");
    EXPECT_EQ(Field(dom, "bad", "state"), "failed");
    EXPECT_NE(Field(dom, "bad", "error").find("refused on the target"), std::string::npos)
        << Field(dom, "bad", "error");
    EXPECT_EQ(Field(dom, "bad", "hint"), "let the rows in");  // the server's HINT
    EXPECT_NE(Field(dom, "", "next-command").find("pgcourier migrate --resume --dir"),
              std::string::npos);
    const testing::PromExposition m = Metrics(served);
    ASSERT_EQ(m.error, "");
    EXPECT_EQ(Metric(m, "pgcourier_database_state", {{"database", "bad"}, {"state", "failed"}}), 1);
    ExpectSameAsStatusJson(served, bad_dir);
  }

  // A replicating database.
  const std::string live_dir = dir_ + "-live";
  Result<ProcessResult> replicating =
      testing::TryRunCli({"migrate", "--source", source_->ConnString("live"), "--target", target,
                          "--dir", live_dir, "--method", "replication", "--quiet"});
  ASSERT_TRUE(replicating.ok());
  ASSERT_EQ(replicating->exit_code, 0) << replicating->err;
  {
    Served served(live_dir);
    ASSERT_TRUE(served.Ready());
    ASSERT_TRUE(
        source_
            ->Sql("INSERT INTO public.events SELECT g, now() FROM generate_series(51, 500) g",
                  "live")
            .ok());
    std::this_thread::sleep_for(std::chrono::seconds(1));  // a few samples for the charts
    const std::string dom = Render(served, "replicating");
    EXPECT_EQ(Field(dom, "live", "state"), "syncing");
    EXPECT_EQ(Field(dom, "live", "method"), "replication");
    EXPECT_NE(FieldValue(dom, "live", "lag-bytes"), "");
    EXPECT_NE(FieldValue(dom, "live", "lag-bytes"), "-1");
    EXPECT_NE(FieldValue(dom, "live", "retained-wal"), "-1");
    EXPECT_NE(dom.find("data-field=\"chart-wal\""), std::string::npos);
    EXPECT_NE(Field(dom, "", "next-command").find("pgcourier cutover --dir"), std::string::npos);
    const testing::PromExposition m = Metrics(served);
    ASSERT_EQ(m.error, "");
    EXPECT_EQ(Metric(m, "pgcourier_database_state", {{"database", "live"}, {"state", "syncing"}}),
              1);
    EXPECT_GE(Metric(m, "pgcourier_replication_lag_bytes", {{"database", "live"}}), 0);
    EXPECT_GE(Metric(m, "pgcourier_replication_retained_wal_bytes", {{"database", "live"}}), 0);
    EXPECT_EQ(Metric(m, "pgcourier_replication_broken", {{"database", "live"}}), 0);
  }
  EXPECT_TRUE(testing::TryRunCli({"cleanup", "--dir", live_dir}).ok());
}

}  // namespace
}  // namespace pgcourier

// The pieces of `status --serve` that need no server: the Prometheus text
// (read back with a strict parser), the listen address, the history ring.
#include <gtest/gtest.h>

#include "migrate/cutover.h"
#include "prometheus_text.h"
#include "serve/history.h"
#include "serve/metrics.h"
#include "serve/status_server.h"

namespace pgcourier {
namespace {

using testing::ParsePrometheusText;
using testing::PromExposition;

StatusView TwoDatabases() {
  StatusView view;
  view.live = true;
  StoredRun run;
  run.id = "a1b2";
  run.source = "host=src dbname=postgres";
  run.target = "host=dst dbname=postgres";
  view.run = run;
  StoredDatabase copy;
  copy.name = "we\"ird\\name\nx";  // every character the label escapes
  copy.target_name = copy.name;
  copy.state = DatabaseState::kCopying;
  copy.tables_total = 10;
  copy.tables_done = 4;
  copy.indexes_total = 7;
  copy.indexes_done = 2;
  copy.bytes_total = 5000;
  copy.bytes_done = 1234;
  copy.rows_done = 99;
  StoredDatabase repl;
  repl.name = "shop";
  repl.target_name = "shop";
  repl.method = Method::kReplication;
  repl.state = DatabaseState::kSyncing;
  view.databases = {copy, repl};
  ReplicationView r;
  r.lag.lag_bytes = 4096;
  r.lag.lag_seconds = 0.5;
  r.lag.retained_bytes = 1 << 20;
  ReplicationHealth health;
  health.errors = ErrorCounts{3, 1};
  r.health = health;
  r.in_sync = true;
  view.replication["shop"] = r;
  StoredStep stop;
  stop.object = std::string(kCutoverPhasePrefix) + "catching up";
  stop.part = kCutoverWindowPart;
  stop.seconds = 1.5;
  StoredStep after = stop;
  after.object = std::string(kCutoverPhasePrefix) + "verification";
  after.part = "after the switch";
  after.seconds = 9;
  StoredStep stop2 = stop;
  stop2.object = std::string(kCutoverPhasePrefix) + "switch";
  stop2.seconds = 0.25;
  view.cutover_phases["shop"] = {stop, after, stop2};
  return view;
}

double Value(const PromExposition& e, const std::string& name,
             const std::map<std::string, std::string>& labels = {}) {
  const testing::PromSample* s = e.Find(name, labels);
  EXPECT_NE(s, nullptr) << name;
  return s == nullptr ? -1 : s->value;
}

TEST(ServeMetricsTest, ParsesAndCarriesEveryNumber) {
  const std::string text = PrometheusText(TwoDatabases(), 1700000000.5, true);
  const PromExposition e = ParsePrometheusText(text);
  ASSERT_EQ(e.error, "") << text;
  const std::string odd = "we\"ird\\name\nx";
  EXPECT_EQ(Value(e, "pgcourier_status_read_ok"), 1);
  EXPECT_EQ(Value(e, "pgcourier_status_read_timestamp_seconds"), 1700000000.5);
  EXPECT_EQ(Value(e, "pgcourier_run_info", {{"run_id", "a1b2"}, {"state", "running"}}), 1);
  EXPECT_EQ(Value(e, "pgcourier_run_live"), 1);
  EXPECT_EQ(Value(e, "pgcourier_database_state", {{"database", odd}, {"state", "copying"}}), 1);
  EXPECT_EQ(Value(e, "pgcourier_database_state", {{"database", odd}, {"state", "done"}}), 0);
  EXPECT_EQ(Value(e, "pgcourier_database_state", {{"database", "shop"}, {"state", "syncing"}}), 1);
  EXPECT_EQ(Value(e, "pgcourier_copied_bytes_total", {{"database", odd}}), 1234);
  EXPECT_EQ(Value(e, "pgcourier_planned_bytes", {{"database", odd}}), 5000);
  EXPECT_EQ(Value(e, "pgcourier_copied_rows_total", {{"database", odd}}), 99);
  EXPECT_EQ(Value(e, "pgcourier_tables_copied_total", {{"database", odd}}), 4);
  EXPECT_EQ(Value(e, "pgcourier_planned_tables", {{"database", odd}}), 10);
  EXPECT_EQ(Value(e, "pgcourier_indexes_built_total", {{"database", odd}}), 2);
  EXPECT_EQ(Value(e, "pgcourier_planned_indexes", {{"database", odd}}), 7);
  EXPECT_EQ(Value(e, "pgcourier_replication_lag_bytes", {{"database", "shop"}}), 4096);
  EXPECT_EQ(Value(e, "pgcourier_replication_lag_seconds", {{"database", "shop"}}), 0.5);
  EXPECT_EQ(Value(e, "pgcourier_replication_retained_wal_bytes", {{"database", "shop"}}), 1 << 20);
  EXPECT_EQ(Value(e, "pgcourier_replication_apply_errors_total", {{"database", "shop"}}), 3);
  EXPECT_EQ(Value(e, "pgcourier_replication_sync_errors_total", {{"database", "shop"}}), 1);
  EXPECT_EQ(Value(e, "pgcourier_replication_in_sync", {{"database", "shop"}}), 1);
  EXPECT_EQ(Value(e, "pgcourier_replication_broken", {{"database", "shop"}}), 0);
  // The window only: catching up and the switch, not the verification after it.
  EXPECT_EQ(Value(e, "pgcourier_cutover_write_stop_seconds", {{"database", "shop"}}), 1.75);
  // Not replicating: no replication series for it.
  EXPECT_EQ(e.Find("pgcourier_replication_lag_bytes", {{"database", odd}}), nullptr);
  // Each family says what it is.
  for (const auto& [name, family] : e.families) {
    EXPECT_FALSE(family.help.empty()) << name;
    EXPECT_FALSE(family.type.empty()) << name;
  }
  // Nothing of the connection strings: only the run's id names the run.
  EXPECT_EQ(text.find("host="), std::string::npos);
}

TEST(ServeMetricsTest, UnknownReplicationValuesAreLeftOut) {
  StatusView view = TwoDatabases();
  view.replication["shop"].lag.lag_bytes = -1;
  view.replication["shop"].health.reset();
  const PromExposition e = ParsePrometheusText(PrometheusText(view, 1, false));
  ASSERT_EQ(e.error, "");
  EXPECT_EQ(e.Find("pgcourier_replication_lag_bytes", {{"database", "shop"}}), nullptr);
  EXPECT_EQ(e.Find("pgcourier_replication_apply_errors_total", {{"database", "shop"}}), nullptr);
  EXPECT_EQ(Value(e, "pgcourier_status_read_ok"), 0);
}

// The parser the metrics are checked with refuses what a scraper refuses.
TEST(ServeMetricsTest, TheParserIsStrict) {
  const char* bad[] = {
      "x 1\n",                                            // no TYPE
      "# TYPE x gauge\nx{a=\"1\"} 1\nx{a=\"1\"} 2\n",     // series repeated
      "# TYPE x counter\nx 1\n",                          // counter without _total
      "# TYPE x gauge\nx{a=\"\\t\"} 1\n",                 // invalid escape
      "# TYPE x gauge\nx{a=\"1} 1\n",                     // unterminated
      "# TYPE x gauge\nx one\n",                          // not a number
      "# TYPE x gauge\n# TYPE y gauge\ny 1\nx 1\ny 2\n",  // y's samples apart
      "# TYPE x gauge\nx 1",                              // no final newline
      "# TYPE 1x gauge\n",                                // invalid name
  };
  for (const char* text : bad) {
    EXPECT_NE(ParsePrometheusText(text).error, "") << text;
  }
  const PromExposition ok = ParsePrometheusText(
      "# HELP x_total a\n# TYPE x_total counter\nx_total{a=\"q\\\"\\\\\\n\",b=\"\"} 1.5e3 123\n");
  ASSERT_EQ(ok.error, "");
  EXPECT_EQ(ok.Find("x_total", {{"a", "q\"\\\n"}, {"b", ""}})->value, 1500);
}

TEST(ServeListenTest, AddressForms) {
  Result<ListenAddress> a = ParseListenAddress("127.0.0.1:8080");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 8080);
  a = ParseListenAddress("[::1]:0");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->Display(), "[::1]:0");
  a = ParseListenAddress(":9187");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  for (const char* bad : {"8080", "::1:80", "host:", "host:80x", "host:70000", "[::1]80"}) {
    Result<ListenAddress> b = ParseListenAddress(bad);
    ASSERT_FALSE(b.ok()) << bad;
    EXPECT_EQ(b.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(b.status().hint(), "");
  }
}

TEST(ServeListenTest, NonLoopbackWithoutATokenIsRefused) {
  CancelToken cancel;
  bool listened = false;
  ServeOptions options;
  options.dir = "/nonexistent";
  options.listen = "0.0.0.0:0";
  Status s = ServeStatus(options, cancel, [&](const std::string&) { listened = true; });
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("without a token"), std::string::npos) << s.message();
  EXPECT_NE(s.hint().find("PGCOURIER_SERVE_TOKEN"), std::string::npos);
  EXPECT_FALSE(listened);
}

TEST(ServeHistoryTest, KeepsTheLatestSamples) {
  StatusHistory history(3);
  StatusView view = TwoDatabases();
  for (int i = 0; i < 5; ++i) {
    view.databases[1].bytes_done = i;
    history.Add(view, i);
  }
  const nlohmann::json j = history.Json();
  ASSERT_EQ(j.size(), 3u);
  EXPECT_EQ(j[0]["at"], 2);
  EXPECT_EQ(j[2]["databases"]["shop"]["bytes_done"], 4);
  EXPECT_EQ(j[2]["databases"]["shop"]["retained_wal_bytes"], 1 << 20);
  EXPECT_TRUE(j[2]["databases"]["we\"ird\\name\nx"]["lag_bytes"].is_null());
}

}  // namespace
}  // namespace pgcourier

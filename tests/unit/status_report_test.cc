// `pgcourier status` rendering: the overall state, the text table and the
// pgcourier.status/1 JSON of hand-made views.
#include "report/status_report.h"

#include <gtest/gtest.h>

#include <sstream>

#include "migrate/cutover.h"

namespace pgcourier {
namespace {

StatusView Sample() {
  StatusView view;
  StoredRun run;
  run.id = "feedc0de12345678";
  run.source = "postgresql://app@src.example:5432";
  run.target = "postgresql://admin@dst.example:5432";
  run.state = RunState::kRunning;
  run.started_at = "2024-05-01T10:00:00Z";
  run.updated_at = "2024-05-01T10:05:00Z";
  run.pid = 4242;
  run.resumes = 1;
  view.run = run;
  view.live = false;

  StoredDatabase shop;
  shop.name = "shop";
  shop.target_name = "shop";
  shop.method = Method::kCopy;
  shop.state = DatabaseState::kCopying;
  shop.tables_total = 10;
  shop.tables_done = 3;
  shop.indexes_total = 12;
  shop.indexes_done = 1;
  shop.bytes_total = int64_t{4} << 30;
  shop.bytes_done = int64_t{3} << 29;  // 1.5 GB
  shop.rows_done = 5000;
  shop.consistent = false;
  shop.started_at = "2024-05-01T10:00:01Z";
  view.databases.push_back(shop);

  StoredDatabase blog;
  blog.name = "blog";
  blog.target_name = "neondb";
  blog.method = Method::kCopy;
  blog.method_reason = "wal_level is replica";
  blog.state = DatabaseState::kFailed;
  blog.error = "pg_restore: error: could not execute query:\nERROR: extension \"postgis\"";
  blog.hint = "install postgis on the target";
  blog.tables_total = 4;
  view.databases.push_back(blog);

  StoredStep phase;
  phase.database = "shop";
  phase.kind = StepKind::kPhase;
  phase.object = "pre-data";
  phase.state = StepState::kDone;
  phase.seconds = 1.3;
  phase.attempts = 1;
  StoredStep copy;
  copy.database = "shop";
  copy.kind = StepKind::kCopy;
  copy.object = "public.orders";
  copy.part = "[blocks 0..1024)";
  copy.state = StepState::kFailed;
  copy.rows = 1234;
  copy.bytes = 2048;
  copy.seconds = 3.5;
  copy.attempts = 3;
  copy.error = "connection lost";
  view.steps["shop"] = {phase, copy};
  return view;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

const std::string* LineStartingWith(const std::vector<std::string>& lines,
                                    const std::string& prefix) {
  for (const auto& line : lines) {
    if (line.rfind(prefix, 0) == 0) return &line;
  }
  return nullptr;
}

TEST(StatusReportTest, OverallState) {
  StatusView view;
  EXPECT_EQ(OverallState(view), "empty");
  view = Sample();
  EXPECT_EQ(OverallState(view), "interrupted") << "running, but no process holds the directory";
  view.live = true;
  EXPECT_EQ(OverallState(view), "running");
  view.run->state = RunState::kCancelled;
  EXPECT_EQ(OverallState(view), "cancelled");
  view.run->state = RunState::kDone;
  EXPECT_EQ(OverallState(view), "failed") << "a database failed";
  view.databases[1].state = DatabaseState::kDone;
  EXPECT_EQ(OverallState(view), "done");
  view.run->state = RunState::kFailed;
  EXPECT_EQ(OverallState(view), "failed");
}

TEST(StatusReportTest, TextHeaderAndAlignedRows) {
  const std::string text = RenderStatusText(Sample(), false);
  const auto lines = Lines(text);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0],
            "INTERRUPTED  migration feedc0de12345678  postgresql://app@src.example:5432 -> "
            "postgresql://admin@dst.example:5432")
      << text;
  EXPECT_NE(text.find("pid 4242"), std::string::npos) << text;
  EXPECT_NE(text.find("resumed 1 time"), std::string::npos) << text;
  EXPECT_NE(text.find("is gone without finishing"), std::string::npos) << text;

  const std::string* header = LineStartingWith(lines, "DATABASE");
  const std::string* shop = LineStartingWith(lines, "shop ");
  const std::string* blog = LineStartingWith(lines, "blog ");
  ASSERT_TRUE(header && shop && blog) << text;
  // Columns line up: each starts at the same offset in every row.
  for (const char* column : {"TARGET", "METHOD", "STATE", "TABLES", "INDEXES", "BYTES"}) {
    size_t at = header->find(column);
    ASSERT_NE(at, std::string::npos) << column;
    EXPECT_NE(shop->at(at), ' ') << column << "\n" << text;
    EXPECT_EQ(shop->at(at - 1), ' ') << column << "\n" << text;
    EXPECT_NE(blog->at(at), ' ') << column << "\n" << text;
  }
  EXPECT_EQ(shop->substr(header->find("TARGET"), 4), "shop");
  EXPECT_EQ(blog->substr(header->find("TARGET"), 6), "neondb");
  EXPECT_EQ(shop->substr(header->find("STATE"), 7), "copying");
  EXPECT_EQ(shop->substr(header->find("TABLES"), 4), "3/10");
  EXPECT_EQ(shop->substr(header->find("INDEXES"), 4), "1/12");
  EXPECT_NE(shop->find("1.5 GB / 4.0 GB"), std::string::npos) << *shop;
  EXPECT_EQ(blog->substr(header->find("STATE"), 6), "failed");
  // The error, on one line, in the row.
  EXPECT_NE(blog->find("could not execute query: ERROR: extension \"postgis\""), std::string::npos)
      << *blog;
  EXPECT_NE(text.find("    hint: install postgis on the target"), std::string::npos) << text;
  EXPECT_NE(text.find("copied at more than one snapshot; verify compares with the source as it "
                      "is now"),
            std::string::npos)
      << text;
  // The note belongs to shop (the inconsistent one): it comes right after its row.
  size_t shop_at = text.find(*shop);
  size_t note_at = text.find("note: copied at more than one snapshot");
  size_t blog_at = text.find(*blog);
  EXPECT_LT(shop_at, note_at);
  EXPECT_LT(note_at, blog_at);
  EXPECT_EQ(text.find("KIND"), std::string::npos) << "no steps without --tables";
}

// The subscription's options and the last cutover's phases, under the
// database's row and in the JSON.
TEST(StatusReportTest, SubscriptionOptionsAndLastCutover) {
  StatusView view = Sample();
  view.subscription_options["shop"] = "binary = true, streaming = parallel";
  StoredStep phase;
  phase.kind = StepKind::kPhase;
  phase.object = "cutover: catching up";
  phase.part = kCutoverWindowPart;
  phase.seconds = 1.3;
  StoredStep verification = phase;
  verification.object = "cutover: verification";
  verification.part = kCutoverAfterPart;
  verification.seconds = 9.5;
  view.cutover_phases["shop"] = {phase, verification};
  const std::string text = RenderStatusText(view, false);
  EXPECT_NE(text.find("    subscription: binary = true, streaming = parallel\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("    last cutover: writes stopped 1.3 s (catching up 1.3 s); after the "
                      "switch: verification 9.5 s\n"),
            std::string::npos)
      << text;
  nlohmann::json json = StatusJson(view, false);
  EXPECT_EQ(json["databases"][0]["subscription_options"], "binary = true, streaming = parallel");
  EXPECT_EQ(json["databases"][0]["cutover"]["window"][0],
            nlohmann::json({{"phase", "catching up"}, {"seconds", 1.3}}));
  EXPECT_EQ(json["databases"][0]["cutover"]["after_switch"][0]["phase"], "verification");
  EXPECT_TRUE(json["databases"][1]["cutover"].is_null());
}

TEST(StatusReportTest, TextWithSteps) {
  const std::string text = RenderStatusText(Sample(), true);
  EXPECT_NE(text.find("shop: 2 steps"), std::string::npos) << text;
  EXPECT_NE(text.find("blog: 0 steps"), std::string::npos) << text;
  const auto lines = Lines(text);
  const std::string* copy = LineStartingWith(lines, "  copy ");
  ASSERT_NE(copy, nullptr) << text;
  EXPECT_NE(copy->find("public.orders"), std::string::npos);
  EXPECT_NE(copy->find("[blocks 0..1024)"), std::string::npos);
  EXPECT_NE(copy->find("1234"), std::string::npos);
  EXPECT_NE(copy->find("2.0 kB"), std::string::npos) << *copy;
  EXPECT_NE(copy->find("3.5"), std::string::npos);
  EXPECT_NE(copy->find("connection lost"), std::string::npos);
  const std::string* phase = LineStartingWith(lines, "  phase ");
  ASSERT_NE(phase, nullptr) << text;
  EXPECT_NE(phase->find("pre-data"), std::string::npos);
}

TEST(StatusReportTest, TextOfEmptyAndFinishedRuns) {
  StatusView empty;
  EXPECT_NE(RenderStatusText(empty, false).find("EMPTY"), std::string::npos);
  StatusView done = Sample();
  done.run->state = RunState::kDone;
  done.run->finished_at = "2024-05-01T12:00:00Z";
  done.databases.pop_back();
  std::string text = RenderStatusText(done, false);
  EXPECT_EQ(text.rfind("DONE  migration", 0), 0u) << text;
  EXPECT_NE(text.find("finished 2024-05-01T12:00:00Z"), std::string::npos) << text;
  EXPECT_EQ(text.find("is gone"), std::string::npos) << text;
}

TEST(StatusReportTest, Json) {
  nlohmann::json j = StatusJson(Sample(), false);
  EXPECT_EQ(j["format"], "pgcourier.status/1");
  EXPECT_EQ(j["state"], "interrupted");
  const auto& run = j["run"];
  EXPECT_EQ(run["id"], "feedc0de12345678");
  EXPECT_EQ(run["source"], "postgresql://app@src.example:5432");
  EXPECT_EQ(run["target"], "postgresql://admin@dst.example:5432");
  EXPECT_EQ(run["started_at"], "2024-05-01T10:00:00Z");
  EXPECT_EQ(run["updated_at"], "2024-05-01T10:05:00Z");
  EXPECT_TRUE(run["finished_at"].is_null());
  EXPECT_EQ(run["pid"], 4242);
  EXPECT_EQ(run["resumes"], 1);
  EXPECT_TRUE(run["error"].is_null());

  ASSERT_EQ(j["databases"].size(), 2u);
  const auto& shop = j["databases"][0];
  EXPECT_EQ(shop["dbname"], "shop");
  EXPECT_EQ(shop["target_dbname"], "shop");
  EXPECT_EQ(shop["method"], "copy");
  EXPECT_TRUE(shop["method_reason"].is_null());
  EXPECT_EQ(shop["status"], "copying");
  EXPECT_TRUE(shop["error"].is_null());
  EXPECT_EQ(shop["consistent"], false);
  EXPECT_EQ(shop["progress"]["tables_done"], 3);
  EXPECT_EQ(shop["progress"]["tables_total"], 10);
  EXPECT_EQ(shop["progress"]["indexes_done"], 1);
  EXPECT_EQ(shop["progress"]["indexes_total"], 12);
  EXPECT_EQ(shop["progress"]["bytes_done"], int64_t{3} << 29);
  EXPECT_EQ(shop["progress"]["bytes_total"], int64_t{4} << 30);
  EXPECT_EQ(shop["progress"]["rows_done"], 5000);
  EXPECT_EQ(shop["started_at"], "2024-05-01T10:00:01Z");
  EXPECT_TRUE(shop["finished_at"].is_null());
  EXPECT_FALSE(shop.contains("tables"));

  const auto& blog = j["databases"][1];
  EXPECT_EQ(blog["dbname"], "blog");
  EXPECT_EQ(blog["target_dbname"], "neondb");
  EXPECT_EQ(blog["status"], "failed");
  EXPECT_EQ(blog["method_reason"], "wal_level is replica");
  EXPECT_EQ(blog["error"],
            "pg_restore: error: could not execute query:\nERROR: extension \"postgis\"");
  EXPECT_EQ(blog["hint"], "install postgis on the target");
  EXPECT_EQ(blog["consistent"], true);
}

TEST(StatusReportTest, JsonWithTables) {
  StatusView view = Sample();
  view.table_sizes["shop"] = {{"public.orders", 1200, 98304}, {"public.fresh", -1, 8192}};
  nlohmann::json j = StatusJson(view, true);
  const auto& tables = j["databases"][0]["tables"];
  ASSERT_EQ(tables.size(), 2u);
  EXPECT_EQ(tables[0]["kind"], "phase");
  EXPECT_TRUE(tables[0]["part"].is_null());
  const auto& copy = tables[1];
  EXPECT_EQ(copy["object"], "public.orders");
  EXPECT_EQ(copy["part"], "[blocks 0..1024)");
  EXPECT_EQ(copy["kind"], "copy");
  EXPECT_EQ(copy["state"], "failed");
  EXPECT_EQ(copy["rows"], 1234);
  EXPECT_EQ(copy["bytes"], 2048);
  EXPECT_DOUBLE_EQ(copy["seconds"].get<double>(), 3.5);
  EXPECT_EQ(copy["attempts"], 3);
  EXPECT_EQ(copy["error"], "connection lost");
  ASSERT_TRUE(j["databases"][1]["tables"].is_array());
  EXPECT_TRUE(j["databases"][1]["tables"].empty());
  // Each table's expected size; no estimate of rows is null; a database
  // without sizes (an older run's) has none.
  const auto& sizes = j["databases"][0]["table_sizes"];
  ASSERT_EQ(sizes.size(), 2u);
  EXPECT_EQ(sizes[0],
            nlohmann::json(
                {{"table", "public.orders"}, {"expected_rows", 1200}, {"expected_bytes", 98304}}));
  EXPECT_TRUE(sizes[1]["expected_rows"].is_null());
  EXPECT_EQ(sizes[1]["expected_bytes"], 8192);
  EXPECT_TRUE(j["databases"][1]["table_sizes"].empty());
  EXPECT_FALSE(StatusJson(view, false)["databases"][0].contains("table_sizes"));

  StatusView empty;
  nlohmann::json e = StatusJson(empty, true);
  EXPECT_EQ(e["state"], "empty");
  EXPECT_TRUE(e["run"].is_null());
  EXPECT_TRUE(e["databases"].is_array());
}

}  // namespace
}  // namespace pgcourier

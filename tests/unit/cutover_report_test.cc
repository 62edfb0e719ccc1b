// `pgcourier cutover` and `pgcourier cleanup` rendering: the text lines and
// the pgcourier.cutover/1 and pgcourier.cleanup/1 JSON of hand-made outcomes.
#include "report/cutover_report.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "report/verify_report.h"

namespace pgcourier {
namespace {

DatabaseVerification Verified() {
  DatabaseVerification v;
  v.source_database = "shop";
  v.target_database = "shop";
  TableVerification t;
  t.schema = "public";
  t.name = "orders";
  t.source_rows = t.target_rows = 3;
  t.source_checksum = t.target_checksum = "42";
  v.tables.push_back(t);
  return v;
}

CutoverDatabase Done() {
  CutoverDatabase db;
  db.name = "shop";
  db.target_name = "shop";
  db.state = CutoverState::kDone;
  db.switched = true;
  db.writes_stopped_seconds = 1.3;
  db.window = {{"stopping writes", 0.1}, {"catching up", 0.45}, {"switch", 0.76}};
  db.after = {{"removing replication", 0.2}, {"verification", 9.5}};
  db.undo = "ALTER DATABASE shop RESET default_transaction_read_only";
  db.tables_recopied = 2;
  db.append_only = {
      {"public.history", false, "no update or delete on the source since the copy"},
      {"public.log", true, "3 row(s) updated or deleted on the source since the copy"}};
  db.sequences = 3;
  db.removed = {"subscription pgcourier_sub (target)", "slot pgcourier_slot (source)"};
  db.verification = Verified();
  return db;
}

CutoverDatabase Failed() {
  CutoverDatabase db;
  db.name = "blog";
  db.target_name = "neondb";
  db.state = CutoverState::kFailed;
  db.error = "the target did not catch up within 300 s";
  db.hint = "run pgcourier cutover again";
  return db;
}

std::set<std::string> Keys(const nlohmann::json& object) {
  std::set<std::string> keys;
  for (const auto& item : object.items()) keys.insert(item.key());
  return keys;
}

TEST(CutoverReportTest, TextOfADoneDatabase) {
  CutoverOutcome outcome;
  outcome.databases.push_back(Done());
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(RenderCutoverText(outcome),
            "\n"
            "shop: done\n"
            "  writes stopped for 1.3 s (stopping writes 0.1 s, catching up 0.5 s, switch 0.8 s); "
            "3 sequence(s) synced, 2 table(s) copied again\n"
            "  public.history (inserts and truncates replicated): not copied again: no update or "
            "delete on the source since the copy\n"
            "  public.log (inserts and truncates replicated): copied again: 3 row(s) updated or "
            "deleted on the source since the copy\n"
            "  after the switch moment: removing replication 0.2 s, verification 9.5 s\n"
            "  removed subscription pgcourier_sub (target)\n"
            "  removed slot pgcourier_slot (source)\n"
            "  verified at the switch moment:\n" +
                RenderVerifyDatabaseText(*outcome.databases[0].verification) +
                "  the source is read-only; to undo: ALTER DATABASE shop RESET "
                "default_transaction_read_only\n"
                "\n"
                "DONE: the target has everything, verified at the switch moment; point the "
                "application at it.\n");
  EXPECT_EQ(RenderVerifyDatabaseText(*outcome.databases[0].verification),
            "  shop: 1 table, 0 sequences, 0 object kinds verified: OK\n");
}

TEST(CutoverReportTest, TextOfAFailedDatabase) {
  CutoverOutcome outcome;
  outcome.databases.push_back(Failed());
  CutoverDatabase skipped;
  skipped.name = "logs";
  skipped.target_name = "logs";
  skipped.state = CutoverState::kSkipped;
  outcome.databases.push_back(skipped);
  ASSERT_FALSE(outcome.ok());
  // Only a database that switched tells how long writes stopped and what was
  // removed; one that stopped before names the phases it went through.
  outcome.databases[0].removed = {"slot pgcourier_slot (source)"};
  outcome.databases[0].window = {{"stopping writes", 0.1}, {"catching up", 300.0}};
  outcome.databases[0].undo = "ALTER DATABASE blog RESET default_transaction_read_only";
  EXPECT_EQ(RenderCutoverText(outcome),
            "\n"
            "blog: failed\n"
            "  error: the target did not catch up within 300 s\n"
            "  -> run pgcourier cutover again\n"
            "  before it stopped: stopping writes 0.1 s, catching up 300.0 s\n"
            "  the source is read-only; to undo: ALTER DATABASE blog RESET "
            "default_transaction_read_only\n"
            "\n"
            "logs: skipped\n"
            "\n"
            "INCOMPLETE: see above; replication of the others goes on.\n");
}

// Switched, then the verification at the switch moment found differences:
// said loudly, never "replication goes on".
TEST(CutoverReportTest, TextOfASwitchedDatabaseThatDiffers) {
  CutoverOutcome outcome;
  outcome.databases.push_back(Done());
  CutoverDatabase& db = outcome.databases[0];
  db.state = CutoverState::kFailed;
  db.error = "NOT VERIFIED: ...";
  db.verification->tables[0].target_rows = 2;
  const std::string text = RenderCutoverText(outcome);
  EXPECT_NE(text.find("  VERIFICATION AT THE SWITCH MOMENT FOUND DIFFERENCES:\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\nNOT VERIFIED: shop switched to the target, but its verification at the "
                      "switch moment failed"),
            std::string::npos)
      << text;
}

TEST(CutoverReportTest, TextWithoutDatabasesIsIncomplete) {
  EXPECT_EQ(RenderCutoverText(CutoverOutcome()),
            "\nINCOMPLETE: see above; replication of the others goes on.\n");
}

TEST(CutoverReportTest, Json) {
  CutoverOutcome outcome;
  outcome.databases.push_back(Done());
  outcome.databases.push_back(Failed());
  nlohmann::json j = CutoverToJson(outcome);
  EXPECT_EQ(Keys(j), (std::set<std::string>{"format", "ok", "databases"}));
  EXPECT_EQ(j["format"], "pgcourier.cutover/1");
  EXPECT_EQ(j["ok"], false);
  ASSERT_TRUE(j["databases"].is_array());
  ASSERT_EQ(j["databases"].size(), 2u);

  const std::set<std::string> keys = {"dbname",        "target_dbname",
                                      "status",        "error",
                                      "hint",          "switched",
                                      "window",        "after_switch",
                                      "undo",          "tables_recopied",
                                      "sequences",     "removed",
                                      "verification",  "writes_stopped_seconds",
                                      "rollback_kept", "rollback_options",
                                      "append_only"};
  const nlohmann::json& done = j["databases"][0];
  EXPECT_EQ(Keys(done), keys);
  EXPECT_EQ(done["dbname"], "shop");
  EXPECT_EQ(done["target_dbname"], "shop");
  EXPECT_EQ(done["status"], "done");
  EXPECT_TRUE(done["error"].is_null());
  EXPECT_TRUE(done["hint"].is_null());
  EXPECT_EQ(done["writes_stopped_seconds"], 1.3);
  EXPECT_EQ(done["switched"], true);
  EXPECT_EQ(done["window"][1], nlohmann::json({{"phase", "catching up"}, {"seconds", 0.45}}));
  EXPECT_EQ(done["after_switch"][1], nlohmann::json({{"phase", "verification"}, {"seconds", 9.5}}));
  EXPECT_EQ(done["undo"], "ALTER DATABASE shop RESET default_transaction_read_only");
  EXPECT_EQ(done["tables_recopied"], 2);
  EXPECT_EQ(done["append_only"][1],
            nlohmann::json({{"table", "public.log"},
                            {"recopied", true},
                            {"why", "3 row(s) updated or deleted on the source since the copy"}}));
  EXPECT_EQ(done["sequences"], 3);
  EXPECT_EQ(done["removed"], nlohmann::json({"subscription pgcourier_sub (target)",
                                             "slot pgcourier_slot (source)"}));
  EXPECT_EQ(done["verification"], VerifyToJson({Verified()})["databases"][0]);
  EXPECT_EQ(done["verification"]["source_database"], "shop");

  const nlohmann::json& failed = j["databases"][1];
  EXPECT_EQ(Keys(failed), keys);
  EXPECT_EQ(failed["dbname"], "blog");
  EXPECT_EQ(failed["target_dbname"], "neondb");
  EXPECT_EQ(failed["status"], "failed");
  EXPECT_EQ(failed["error"], "the target did not catch up within 300 s");
  EXPECT_EQ(failed["hint"], "run pgcourier cutover again");
  EXPECT_TRUE(failed["undo"].is_null());
  EXPECT_TRUE(failed["removed"].is_array());
  EXPECT_TRUE(failed["removed"].empty());
  EXPECT_TRUE(failed["verification"].is_null());

  outcome.databases.pop_back();
  EXPECT_EQ(CutoverToJson(outcome)["ok"], true);
}

TEST(CutoverReportTest, JsonAsPrinted) {
  CutoverOutcome outcome;
  outcome.databases.push_back(Failed());
  EXPECT_EQ(CutoverToJson(outcome).dump(2),
            R"({
  "databases": [
    {
      "after_switch": [],
      "append_only": [],
      "dbname": "blog",
      "error": "the target did not catch up within 300 s",
      "hint": "run pgcourier cutover again",
      "removed": [],
      "rollback_kept": false,
      "rollback_options": null,
      "sequences": 0,
      "status": "failed",
      "switched": false,
      "tables_recopied": 0,
      "target_dbname": "neondb",
      "undo": null,
      "verification": null,
      "window": [],
      "writes_stopped_seconds": 0.0
    }
  ],
  "format": "pgcourier.cutover/1",
  "ok": false
})");
}

// A cutover that kept a way back says so; a rollback is said with the
// roles the other way round, in its own JSON format.
TEST(CutoverReportTest, WayBackAndRollback) {
  CutoverOutcome outcome;
  outcome.databases.push_back(Done());
  outcome.databases[0].rollback_kept = true;
  outcome.databases[0].rollback_options = "binary = true, streaming = on";
  const std::string cut = RenderCutoverText(outcome);
  EXPECT_NE(cut.find("  way back kept: the old source follows the target (binary = true, "
                     "streaming = on); pgcourier rollback switches back, pgcourier cleanup "
                     "removes it\n"),
            std::string::npos)
      << cut;
  EXPECT_EQ(CutoverToJson(outcome)["databases"][0]["rollback_options"],
            "binary = true, streaming = on");

  outcome.databases[0].rollback_kept = false;
  outcome.databases[0].undo = "ALTER DATABASE shop RESET default_transaction_read_only";
  const std::string back = RenderRollbackText(outcome);
  EXPECT_NE(back.find("copied back"), std::string::npos) << back;
  EXPECT_NE(back.find("  the target is read-only; to undo: ALTER DATABASE shop"), std::string::npos)
      << back;
  EXPECT_NE(back.find("\nDONE: the old source has everything"), std::string::npos) << back;
  EXPECT_EQ(RollbackToJson(outcome)["format"], "pgcourier.rollback/1");
  outcome.databases.push_back(Failed());
  EXPECT_NE(RenderRollbackText(outcome).find("INCOMPLETE: see above; the target stays the primary"),
            std::string::npos);
}

CleanupOutcome SampleCleanup() {
  CleanupOutcome outcome;
  outcome.removed = {"subscription pgcourier_sub (target)", "slot pgcourier_slot (source)"};
  outcome.undone = {"REPLICA IDENTITY FULL on public.events"};
  outcome.problems = {"publication pgcourier_pub (source): connection refused"};
  return outcome;
}

TEST(CleanupReportTest, Text) {
  EXPECT_EQ(RenderCleanupText(SampleCleanup()),
            "removed subscription pgcourier_sub (target)\n"
            "removed slot pgcourier_slot (source)\n"
            "undone REPLICA IDENTITY FULL on public.events\n"
            "NOT REMOVED: publication pgcourier_pub (source): connection refused\n");
  EXPECT_EQ(RenderCleanupText(CleanupOutcome()),
            "nothing to remove: no replication object or change of this migration remains\n");
}

TEST(CleanupReportTest, Json) {
  nlohmann::json j = CleanupToJson(SampleCleanup());
  EXPECT_EQ(Keys(j), (std::set<std::string>{"format", "ok", "removed", "undone", "problems"}));
  EXPECT_EQ(j["format"], "pgcourier.cleanup/1");
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["removed"], nlohmann::json({"subscription pgcourier_sub (target)",
                                          "slot pgcourier_slot (source)"}));
  EXPECT_EQ(j["undone"], nlohmann::json({"REPLICA IDENTITY FULL on public.events"}));
  EXPECT_EQ(j["problems"],
            nlohmann::json({"publication pgcourier_pub (source): connection refused"}));

  EXPECT_EQ(CleanupToJson(CleanupOutcome()).dump(2),
            R"({
  "format": "pgcourier.cleanup/1",
  "ok": true,
  "problems": [],
  "removed": [],
  "undone": []
})");
}

}  // namespace
}  // namespace pgcourier

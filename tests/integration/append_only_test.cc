// Tables without replica identity while a database replicates: they are
// published for inserts and truncates only, so their UPDATE and DELETE keep
// working on the source, their inserts reach the target through the
// subscription, and cutover copies again only a table that saw an update or
// delete since the copy (the source's statistics say so once writes have
// stopped). A TRUNCATE ... CASCADE on the source that reaches such a table
// (a foreign key to a published table) is replicated to both tables.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "cli_runner.h"
#include "migrate/migration.h"
#include "pg_cluster.h"
#include "state_names.h"
#include "two_servers.h"
#include "util/process.h"

namespace pgcourier {
namespace {

using testing::RunCli;

// parent has a key; log, notes and child have none (child references
// parent).
constexpr const char* kSchema = R"sql(
  CREATE TABLE public.parent (id int PRIMARY KEY, v text);
  INSERT INTO public.parent SELECT g, 'p' || g FROM generate_series(1, 50) g;
  CREATE TABLE public.log (at int, what text);
  INSERT INTO public.log SELECT g, 'l' || g FROM generate_series(1, 50) g;
  CREATE TABLE public.notes (n int, body text);
  INSERT INTO public.notes SELECT g, 'n' || g FROM generate_series(1, 50) g;
  CREATE TABLE public.child (parent_id int REFERENCES public.parent (id), note text);
  INSERT INTO public.child SELECT g, 'c' || g FROM generate_series(1, 50) g;
)sql";

class AppendOnlyTest : public testing::SourceAndTargetTest {
 protected:
  void SetUp() override {
    testing::SourceAndTargetOptions options;
    options.logical_source = true;
    options.database = "shop";
    options.database_sql = kSchema;
    ASSERT_NO_FATAL_FAILURE(StartServers(options));
  }

  void Migrate() {
    MigrateOptions options;
    options.check.source = source_->ConnString("shop");
    options.check.target = target_->ConnString("postgres");
    options.check.method = Method::kReplication;
    options.check.jobs = 2;
    options.check.connect_timeout = std::chrono::seconds(10);
    options.work_dir = dir_;
    Result<MigrationOutcome> migrated = pgcourier::Migrate(options);
    ASSERT_TRUE(migrated.ok()) << migrated.status().ToString();
    ASSERT_EQ(migrated->databases.at(0).state, "syncing") << migrated->databases.at(0).error;
  }

  std::string OnSource(const std::string& sql) {
    Result<std::string> out = source_->Sql(sql, "shop");
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out.ok() ? *out : "";
  }
  std::string OnTarget(const std::string& sql) {
    Result<std::string> out = target_->Sql(sql, "shop");
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out.ok() ? *out : "";
  }

  // True once `sql` reads `want` on the target (at most about 30 s).
  bool TargetReaches(const std::string& sql, const std::string& want) {
    for (int i = 0; i < 300; ++i) {
      Result<std::string> out = target_->Sql(sql, "shop");
      if (out.ok() && *out == want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  // A table's rows in a fixed order, as text.
  static std::string Rows(const std::string& table) {
    return fmt::format(
        "SELECT count(*) || ':' || coalesce(string_agg(t::text, ',' ORDER BY t::text), "
        "'') FROM {} t",
        table);
  }

  // `pgcourier cutover --stop-source-writes --json`: the database's entry.
  nlohmann::json CutOver() {
    ProcessResult cut =
        RunCli({"cutover", "--dir", dir_, "--stop-source-writes", "--timeout", "60", "--json"});
    EXPECT_EQ(cut.exit_code, 0) << cut.out << cut.err;
    nlohmann::json json = nlohmann::json::parse(cut.out, nullptr, false);
    if (json.is_discarded() || !json["databases"].is_array() || json["databases"].empty()) {
      ADD_FAILURE() << cut.out << cut.err;
      return nlohmann::json::object();
    }
    return json["databases"][0];
  }

  // The append_only entry of `table` in a cutover's entry.
  static nlohmann::json AppendOnly(const nlohmann::json& db, const std::string& table) {
    for (const auto& t : db["append_only"]) {
      if (t["table"] == table) return t;
    }
    ADD_FAILURE() << table << " is not among " << db["append_only"].dump();
    return nlohmann::json::object();
  }
};

// Inserts on a key-less table arrive through the subscription and it is not
// copied again; a key-less table that saw an UPDATE and a DELETE (which
// succeed on the source) is copied again, and its rows on the target match.
TEST_F(AppendOnlyTest, InsertsArriveWithoutACopyAndAnUpdateMeansACopyAtCutover) {
  ASSERT_NO_FATAL_FAILURE(Migrate());
  EXPECT_EQ(OnSource("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM "
                     "pg_publication_tables WHERE pubname LIKE '%_append'"),
            "child,log,notes");
  for (int i = 0; i < 5; ++i) {
    OnSource(fmt::format("INSERT INTO public.log SELECT g, 'new' FROM generate_series({}, {}) g",
                         100 + i * 10, 109 + i * 10));
  }
  EXPECT_TRUE(TargetReaches("SELECT count(*) FROM public.log", "100"))
      << "the inserts never arrived through the subscription";
  // The application's UPDATE and DELETE on a key-less table work.
  Result<std::string> updated = source_->Sql(
      "UPDATE public.notes SET body = body || '!' WHERE n <= 10; "
      "DELETE FROM public.notes WHERE n = 50; INSERT INTO public.notes VALUES (51, 'n51')",
      "shop");
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();

  const nlohmann::json db = CutOver();
  EXPECT_EQ(db["status"], "done") << db.dump(2);
  EXPECT_EQ(db["tables_recopied"], 1) << db.dump(2);
  EXPECT_EQ(db["append_only"].size(), 3u) << db.dump(2);
  EXPECT_EQ(AppendOnly(db, "public.log")["recopied"], false) << db.dump(2);
  EXPECT_EQ(AppendOnly(db, "public.child")["recopied"], false) << db.dump(2);
  const nlohmann::json notes = AppendOnly(db, "public.notes");
  EXPECT_EQ(notes["recopied"], true) << db.dump(2);
  EXPECT_NE(notes["why"].get<std::string>().find("updated or deleted on the source"),
            std::string::npos)
      << notes.dump();
  std::vector<std::string> window;
  for (const auto& p : db["window"]) window.push_back(p["phase"]);
  EXPECT_EQ(window,
            (std::vector<std::string>{"stopping writes", "catching up", "write counters",
                                      "snapshot", "sequences", "unreplicated copy", "switch"}));
  EXPECT_EQ(db["verification"]["ok"], true) << db["verification"].dump(2);
  for (const char* table : {"public.log", "public.notes", "public.child", "public.parent"}) {
    EXPECT_EQ(OnTarget(Rows(table)), OnSource(Rows(table))) << table;
  }
  EXPECT_EQ(OnTarget("SELECT count(*) FROM public.notes WHERE body LIKE '%!'"), "10");
  EXPECT_EQ(OnSource("SELECT count(*) FROM pg_publication"), "0");
}

// TRUNCATE parent CASCADE on the source also empties child (key-less, with
// a foreign key to parent): both are published for truncates, so the target
// truncates both in one statement; the replication stays healthy and the
// rows written after it arrive. Cutover copies child again (its storage
// changed) and verifies.
TEST_F(AppendOnlyTest, TruncateCascadeReachingAKeylessTableReplicates) {
  ASSERT_NO_FATAL_FAILURE(Migrate());
  ASSERT_TRUE(source_
                  ->Sql("TRUNCATE public.parent CASCADE; "
                        "INSERT INTO public.parent VALUES (7, 'again'); "
                        "INSERT INTO public.child VALUES (7, 'again')",
                        "shop")
                  .ok());
  EXPECT_TRUE(
      TargetReaches("SELECT (SELECT count(*) FROM public.parent) || ',' || "
                    "(SELECT count(*) FROM public.child)",
                    "1,1"))
      << OnTarget("SELECT count(*) FROM public.child");
  ProcessResult status = RunCli({"status", "--json", "--dir", dir_});
  EXPECT_EQ(status.exit_code, 0) << status.out << status.err;
  nlohmann::json view = nlohmann::json::parse(status.out, nullptr, false);
  ASSERT_FALSE(view.is_discarded()) << status.out;
  const nlohmann::json& rep = view["databases"][0]["replication"];
  EXPECT_EQ(rep["broken"], false) << rep.dump(2);
  EXPECT_TRUE(rep["error"].is_null()) << rep.dump(2);

  const nlohmann::json db = CutOver();
  EXPECT_EQ(db["status"], "done") << db.dump(2);
  // A TRUNCATE gives the table new storage on the source, which the write
  // counters cannot tell from a rewrite: it is copied again all the same.
  const nlohmann::json child = AppendOnly(db, "public.child");
  EXPECT_EQ(child["recopied"], true) << db.dump(2);
  EXPECT_NE(child["why"].get<std::string>().find("rewritten"), std::string::npos) << child.dump();
  EXPECT_EQ(db["verification"]["ok"], true) << db["verification"].dump(2);
  EXPECT_EQ(OnTarget(Rows("public.child")), "1:(7,again)");
  EXPECT_EQ(OnTarget(Rows("public.parent")), "1:(7,again)");
}

}  // namespace
}  // namespace pgcourier

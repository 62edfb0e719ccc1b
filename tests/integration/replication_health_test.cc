// A replication that breaks is said, and never cut over: schema changes on
// the source while a database replicates (a new column, a new partition)
// make `status` say broken with the exact DDL and exit 1, `cutover` refuse
// before it touches the source, and `sync-schema --apply` repair it (the
// rows written meanwhile arrive). A slot the source invalidated
// (max_slot_wal_keep_size) is broken, on a 13 source without error counters.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "cli_runner.h"
#include "migrate/migration.h"
#include "pg/connection.h"
#include "pg/conninfo.h"
#include "pg_cluster.h"
#include "state_names.h"
#include "two_servers.h"
#include "util/process.h"

namespace pgcourier {
namespace {

using testing::RunCli;

constexpr const char* kSchema = R"sql(
  CREATE TABLE public.t (id int PRIMARY KEY, v text);
  INSERT INTO public.t SELECT g, 'v' || g FROM generate_series(1, 100) g;
  CREATE TABLE public.m (id int NOT NULL, at date NOT NULL, PRIMARY KEY (id, at))
    PARTITION BY RANGE (at);
  CREATE TABLE public.m_2024 PARTITION OF public.m
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
  INSERT INTO public.m SELECT g, '2024-06-01' FROM generate_series(1, 10) g;
)sql";

// The source database's own settings (ALTER DATABASE shop SET ...).
constexpr const char* kShopSettings =
    "SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase "
    "WHERE d.datname = 'shop'";

class ReplicationHealthTest : public testing::SourceAndTargetTest {
 protected:
  void Start(int source_major, std::vector<std::string> source_settings = {}) {
    testing::SourceAndTargetOptions options;
    options.logical_source = true;
    options.source.major = source_major;
    options.source.settings = std::move(source_settings);
    options.database = "shop";
    options.database_sql = kSchema;
    ASSERT_NO_FATAL_FAILURE(StartServers(options));
  }

  void Migrate() {
    ASSERT_NO_FATAL_FAILURE(
        testing::StartReplicating(MigrationOptions("shop", Method::kReplication)));
  }

  // `pgcourier status --json` until `done` says so (at most about 60 s);
  // the last one.
  nlohmann::json StatusUntil(const std::function<bool(const nlohmann::json&)>& done,
                             int* exit_code = nullptr) {
    nlohmann::json last;
    for (int i = 0; i < 120; ++i) {
      ProcessResult r = RunCli({"status", "--json", "--dir", dir_});
      last = nlohmann::json::parse(r.out, nullptr, false);
      if (exit_code != nullptr) *exit_code = r.exit_code;
      if (!last.is_discarded() && last["databases"].size() == 1 &&
          last["databases"][0]["replication"].is_object() &&
          done(last["databases"][0]["replication"])) {
        return last["databases"][0]["replication"];
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    ADD_FAILURE() << "status never got there; last: " << last.dump(2);
    return last;
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

  // Cutover with --stop-source-writes refuses, and the source stays
  // writable (its database settings untouched).
  void ExpectCutoverRefusedBeforeTheSource(const std::string& why) {
    ProcessResult cut =
        RunCli({"cutover", "--dir", dir_, "--stop-source-writes", "--timeout", "5", "--quiet"});
    EXPECT_EQ(cut.exit_code, 1) << cut.out << cut.err;
    EXPECT_NE(cut.out.find("is broken"), std::string::npos) << cut.out;
    EXPECT_NE(cut.out.find(why), std::string::npos) << cut.out;
    Result<std::string> settings = source_->Sql(kShopSettings, "postgres");
    EXPECT_TRUE(settings.ok() && *settings == "0") << "the source database's settings changed";
    EXPECT_EQ(OnSource("SHOW default_transaction_read_only"), "off");
  }
};

TEST_F(ReplicationHealthTest, SchemaChangesBreakStatusAndCutoverUntilSyncSchemaApplies) {
  ASSERT_NO_FATAL_FAILURE(Start(15));
  ASSERT_NO_FATAL_FAILURE(Migrate());
  StatusUntil([](const nlohmann::json& rep) { return rep["in_sync"] == true; });

  // A column and a partition added on the source, and rows in both.
  OnSource(
      "ALTER TABLE public.t ADD COLUMN note text NOT NULL DEFAULT 'x'; "
      "INSERT INTO public.t VALUES (101, 'new', 'hello'); "
      "CREATE TABLE public.m_2025 PARTITION OF public.m "
      "FOR VALUES FROM ('2025-01-01') TO ('2026-01-01'); "
      "INSERT INTO public.m VALUES (1, '2025-03-01')");
  int exit_code = 0;
  // Broken, and the apply worker's failures counted (15+).
  nlohmann::json r = StatusUntil(
      [](const nlohmann::json& rep) {
        return rep["broken"] == true && rep["health"].is_object() &&
               rep["health"]["errors"].is_object() &&
               rep["health"]["errors"]["apply_since_baseline"].get<int64_t>() > 0;
      },
      &exit_code);
  EXPECT_EQ(exit_code, 1);
  EXPECT_EQ(r["in_sync"], false);
  const std::string error = r["error"].is_string() ? r["error"].get<std::string>() : "";
  const std::string hint = r["hint"].is_string() ? r["hint"].get<std::string>() : "";
  EXPECT_NE(error.find("the column note (text) of public.t is on the source"), std::string::npos)
      << error;
  EXPECT_NE(error.find("keep failing"), std::string::npos) << error;
  EXPECT_NE(hint.find("ALTER TABLE \"public\".\"t\" ADD COLUMN \"note\" text DEFAULT "
                      "'x'::text NOT NULL;"),
            std::string::npos)
      << hint;
  EXPECT_NE(hint.find("CREATE TABLE \"public\".\"m_2025\" PARTITION OF \"public\".\"m\" FOR "
                      "VALUES FROM ('2025-01-01') TO ('2026-01-01');"),
            std::string::npos)
      << hint;
  EXPECT_NE(hint.find("ADD TABLE ONLY \"public\".\"m_2025\""), std::string::npos) << hint;

  ASSERT_NO_FATAL_FAILURE(ExpectCutoverRefusedBeforeTheSource("the column note"));

  // Printed only, then applied.
  ProcessResult shown = RunCli({"sync-schema", "--dir", dir_});
  EXPECT_EQ(shown.exit_code, 1) << shown.out << shown.err;
  EXPECT_NE(shown.out.find("2 difference(s)"), std::string::npos) << shown.out;
  EXPECT_EQ(OnTarget("SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.t'::regclass "
                     "AND attname = 'note'"),
            "0");
  ProcessResult applied = RunCli({"sync-schema", "--dir", dir_, "--apply"});
  EXPECT_EQ(applied.exit_code, 0) << applied.out << applied.err;
  StatusUntil([](const nlohmann::json& rep) { return rep["in_sync"] == true; }, &exit_code);
  EXPECT_EQ(exit_code, 0);
  EXPECT_EQ(OnTarget("SELECT note FROM public.t WHERE id = 101"), "hello");
  EXPECT_EQ(OnTarget("SELECT count(*) FROM public.m_2025"), "1");

  // A cutover already waiting for the target (held back by a lock there)
  // when the replication breaks: the wait ends and the source is writable
  // again.
  Result<std::unique_ptr<Connection>> locker =
      Connection::Connect(*ConnInfo::Parse(target_->ConnString("shop")), {});
  ASSERT_TRUE(locker.ok()) << locker.status().ToString();
  ASSERT_TRUE((*locker)->Run("BEGIN; LOCK TABLE public.t IN ACCESS EXCLUSIVE MODE").ok());
  OnSource("INSERT INTO public.t VALUES (102, 'behind', 'b')");
  testing::BackgroundRun cut(
      {"cutover", "--dir", dir_, "--stop-source-writes", "--timeout", "120", "--quiet"});
  bool read_only = false;
  for (int i = 0; i < 600 && !read_only; ++i) {
    Result<std::string> settings = source_->Sql(kShopSettings, "postgres");
    read_only = settings.ok() && *settings == "1";
    if (!read_only) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(read_only) << "cutover never made the source read-only";
  OnSource("SET default_transaction_read_only = off; ALTER TABLE public.t ADD COLUMN late int");
  ProcessResult ended = cut.Wait();
  EXPECT_EQ(ended.exit_code, 1) << ended.out << ended.err;
  EXPECT_NE(ended.out.find("the column late"), std::string::npos) << ended.out;
  Result<std::string> after = source_->Sql(kShopSettings, "postgres");
  EXPECT_TRUE(after.ok() && *after == "0") << "the source was left read-only";
  EXPECT_EQ(OnSource("SHOW default_transaction_read_only"), "off");
  EXPECT_TRUE((*locker)->Run("ROLLBACK").ok());
}

TEST_F(ReplicationHealthTest, ALostSlotIsBrokenAndCutoverRefuses) {
  // A 13 source: no error counters there, the slot's wal_status says it.
  ASSERT_NO_FATAL_FAILURE(Start(13, {"max_slot_wal_keep_size = 32MB"}));
  ASSERT_NO_FATAL_FAILURE(Migrate());
  StatusUntil([](const nlohmann::json& rep) { return rep["in_sync"] == true; });

  ProcessResult check = RunCli({"check", "--source", source_->ConnString("shop"), "--target",
                                target_->ConnString("postgres"), "--json"});
  EXPECT_NE(check.out.find("replication.slot_wal_limit"), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("max_slot_wal_keep_size is 32.0 MB"), std::string::npos) << check.out;
  // The WAL the slot would keep during a copy, from the source's WAL rate
  // (the replication writes little: a pass).
  EXPECT_NE(check.out.find("replication.wal_retention"), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("the slot will retain about"), std::string::npos) << check.out;

  // The slot falls behind past the limit; a checkpoint removes its WAL.
  Result<std::string> sub = target_->Sql("SELECT subname FROM pg_subscription", "shop");
  ASSERT_TRUE(sub.ok());
  ASSERT_TRUE(target_->Sql("ALTER SUBSCRIPTION " + *sub + " DISABLE", "shop").ok());
  OnSource(
      "DO $$ BEGIN FOR i IN 1..6 LOOP INSERT INTO public.t VALUES (1000 + i, 'w'); "
      "PERFORM pg_switch_wal(); END LOOP; END $$");
  OnSource("CHECKPOINT");
  ASSERT_TRUE(target_->Sql("ALTER SUBSCRIPTION " + *sub + " ENABLE", "shop").ok());

  int exit_code = 0;
  nlohmann::json r =
      StatusUntil([](const nlohmann::json& rep) { return rep["broken"] == true; }, &exit_code);
  EXPECT_EQ(exit_code, 1);
  EXPECT_EQ(r["in_sync"], false);
  const std::string error = r["error"].is_string() ? r["error"].get<std::string>() : "";
  EXPECT_NE(error.find("wal_status lost"), std::string::npos) << r.dump(2);
  EXPECT_NE(r["hint"].dump().find("pgcourier cleanup"), std::string::npos) << r.dump(2);
  ASSERT_NO_FATAL_FAILURE(ExpectCutoverRefusedBeforeTheSource("wal_status lost"));
}

}  // namespace
}  // namespace pgcourier

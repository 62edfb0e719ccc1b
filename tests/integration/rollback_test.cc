// The way back against real servers: a replicating migration, cutover
// --keep-rollback (the old source follows the new primary), writes on the
// new primary, `pgcourier rollback` (the old source has them all and takes
// writes again), then cleanup leaves nothing of pgcourier on either side.
// And a cutover --keep-rollback that cannot work is refused before the
// source is touched.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "cli_runner.h"
#include "migrate/cleanup.h"
#include "migrate/cutover.h"
#include "migrate/migration.h"
#include "migrate/run_status.h"
#include "pg_cluster.h"
#include "report/status_report.h"
#include "state_names.h"
#include "two_servers.h"

namespace pgcourier {
namespace {

using testing::PgCluster;
using testing::RunCli;

constexpr const char* kShop = R"sql(
  CREATE TABLE public.accounts (id bigserial PRIMARY KEY, balance int NOT NULL, note text);
  INSERT INTO public.accounts (balance, note) SELECT g, 'n' || g FROM generate_series(1, 1000) g;
  CREATE TABLE public.no_pk (v text);
  INSERT INTO public.no_pk SELECT 'row ' || g FROM generate_series(1, 100) g;
  CREATE SEQUENCE public.tickets;
)sql";

// Per table: row count and a checksum of the rows' text.
std::string Fingerprint(const PgCluster& cluster) {
  std::string out;
  for (const char* table : {"public.accounts", "public.no_pk"}) {
    Result<std::string> one = cluster.Sql(
        fmt::format("SELECT count(*) || ':' || coalesce(sum(hashtext(t::text)), 0) FROM {} t",
                    table),
        "shop");
    out += std::string(table) + " " + (one.ok() ? *one : one.status().ToString()) + "; ";
  }
  return out;
}

// What pgcourier may leave on a server, in one line: slots, publications,
// subscriptions (the shop database's), its progress schema.
std::string PgcourierObjects(const PgCluster& cluster) {
  Result<std::string> found = cluster.Sql(
      "SELECT (SELECT count(*) FROM pg_replication_slots) || ' slots, ' || "
      "(SELECT count(*) FROM pg_publication) || ' publications, ' || "
      "(SELECT count(*) FROM pg_subscription) || ' subscriptions, ' || "
      "(SELECT count(*) FROM pg_namespace WHERE nspname = '_pgcourier') || ' schemas'",
      "shop");
  return found.ok() ? *found : found.status().ToString();
}

class RollbackTest : public testing::SourceAndTargetTest {
 protected:
  // Source 15 (its pg_dump), target 17: the old source subscribes to a
  // newer server on the way back. Both ready for logical replication.
  void Start(const testing::LoginRole& source_role = {}) {
    if (testing::PgBinDir(17).empty()) GTEST_SKIP() << "no PostgreSQL 17 here";
    testing::SourceAndTargetOptions options;
    options.logical_source = true;
    options.target.major = 17;
    options.target.settings = testing::LogicalReplicationSettings();
    options.source_role = source_role;
    if (source_role.name.empty()) {
      options.database = "shop";
      options.database_sql = kShop;
    }
    ASSERT_NO_FATAL_FAILURE(StartServers(options));
  }

  MigrateOptions Options(const std::string& source_user = "",
                         const std::string& password = "") const {
    MigrateOptions options;
    options.check.source = source_->ConnString("shop", source_user, password);
    options.check.target = target_->ConnString("postgres");
    options.check.method = Method::kReplication;
    options.check.jobs = 2;
    options.check.connect_timeout = std::chrono::seconds(10);
    options.work_dir = dir_;
    return options;
  }

  std::string OnSource(const std::string& sql, const std::string& db = "shop") {
    Result<std::string> out = source_->Sql(sql, db);
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out.ok() ? *out : "";
  }
  std::string OnTarget(const std::string& sql, const std::string& db = "shop") {
    Result<std::string> out = target_->Sql(sql, db);
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out.ok() ? *out : "";
  }
};

TEST_F(RollbackTest, TheOldSourceFollowsAndRollbackLosesNoWriteOfTheNewPrimary) {
  ASSERT_NO_FATAL_FAILURE(Start());
  Result<MigrationOutcome> migrated = Migrate(Options());
  ASSERT_TRUE(migrated.ok()) << migrated.status().ToString();
  ASSERT_EQ(migrated->databases.at(0).state, "syncing") << migrated->databases.at(0).error;
  ASSERT_TRUE(source_->Sql("SELECT nextval('public.tickets')", "shop").ok());

  CutoverOptions cut;
  cut.work_dir = dir_;
  cut.stop_source_writes = true;
  cut.keep_rollback = true;
  cut.timeout = std::chrono::seconds(60);
  cut.connect_timeout = std::chrono::seconds(10);
  Result<CutoverOutcome> cutover = Cutover(cut);
  ASSERT_TRUE(cutover.ok()) << cutover.status().ToString();
  const CutoverDatabase& switched = cutover->databases.at(0);
  ASSERT_EQ(switched.state, "done") << switched.error;
  EXPECT_TRUE(switched.rollback_kept);
  EXPECT_EQ(switched.rollback_options, "binary = true, streaming = on");
  std::vector<std::string> window;
  std::vector<std::string> after;
  for (const auto& p : switched.window) window.push_back(p.name);
  for (const auto& p : switched.after) after.push_back(p.name);
  EXPECT_EQ(window, (std::vector<std::string>{"stopping writes", "catching up", "write counters",
                                              "snapshot", "sequences", "unreplicated copy",
                                              "way back publication", "switch"}));
  EXPECT_EQ(after, (std::vector<std::string>{"removing replication", "way back subscription",
                                             "verification"}));
  // The way back: publication and slot on the target, subscription on the
  // old source, which stays read-only for the applications.
  EXPECT_EQ(PgcourierObjects(*target_), "1 slots, 1 publications, 0 subscriptions, 0 schemas");
  EXPECT_EQ(PgcourierObjects(*source_), "0 slots, 0 publications, 1 subscriptions, 0 schemas");
  EXPECT_FALSE(source_->Sql("INSERT INTO public.no_pk VALUES ('refused')", "shop").ok());
  EXPECT_EQ(OnTarget("SELECT count(*) FROM pg_publication_tables WHERE tablename = 'no_pk'"), "0")
      << "a table without replica identity is never published (its UPDATEs would fail)";

  // The applications write to the new primary: inserts, updates, deletes,
  // a table the way back does not carry, sequences.
  ASSERT_TRUE(target_
                  ->Sql("INSERT INTO public.accounts (balance, note) SELECT g, 'new ' || g FROM "
                        "generate_series(1, 50) g; "
                        "UPDATE public.accounts SET balance = -1, note = 'updated' WHERE id <= 10; "
                        "DELETE FROM public.accounts WHERE id BETWEEN 11 AND 20; "
                        "UPDATE public.no_pk SET v = v || '!' WHERE v = 'row 7'; "
                        "INSERT INTO public.no_pk VALUES ('on the target'); "
                        "SELECT nextval('public.tickets'), nextval('public.tickets');",
                        "shop")
                  .ok());

  // status shows the way back, and that it works.
  bool in_sync = false;
  for (int i = 0; i < 100 && !in_sync; ++i) {
    Result<StatusView> view = ReadStatus(dir_, false);
    ASSERT_TRUE(view.ok()) << view.status().ToString();
    ReadReplication(*view, std::chrono::seconds(5));
    ASSERT_EQ(view->way_back.count("shop"), 1u);
    const ReplicationView& r = view->way_back.at("shop");
    EXPECT_FALSE(r.broken) << r.error;
    in_sync = r.in_sync;
    if (in_sync) {
      EXPECT_FALSE(AnyReplicationBroken(*view));
      nlohmann::json json = StatusJson(*view, false);
      EXPECT_EQ(json["databases"][0]["way_back"]["state"], "following");
      EXPECT_EQ(json["databases"][0]["way_back"]["replication"]["in_sync"], true);
      EXPECT_NE(RenderStatusText(*view, false).find("way back: in sync"), std::string::npos)
          << RenderStatusText(*view, false);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  EXPECT_TRUE(in_sync);

  ProcessResult back = RunCli({"rollback", "--dir", dir_, "--timeout", "60", "--json"});
  ASSERT_EQ(back.exit_code, 0) << back.out << back.err;
  nlohmann::json json = nlohmann::json::parse(back.out, nullptr, false);
  ASSERT_FALSE(json.is_discarded()) << back.out;
  EXPECT_EQ(json["format"], "pgcourier.rollback/1");
  const nlohmann::json& db = json["databases"][0];
  EXPECT_EQ(db["status"], "done") << db.dump(2);
  EXPECT_EQ(db["switched"], true);
  EXPECT_EQ(db["verification"]["ok"], true) << db["verification"].dump(2);
  EXPECT_EQ(db["tables_recopied"], 1) << "public.no_pk, which the way back does not carry";
  EXPECT_EQ(db["append_only"], nlohmann::json::array())
      << "the way back publishes no table for inserts only: public.no_pk is copied back whole";
  std::vector<std::string> phases;
  for (const auto& p : db["window"]) phases.push_back(p["phase"].get<std::string>());
  EXPECT_EQ(phases,
            (std::vector<std::string>{"stopping writes", "catching up", "snapshot", "sequences",
                                      "unreplicated copy", "switch", "opening writes"}));
  EXPECT_GT(db["writes_stopped_seconds"].get<double>(), 0);
  ASSERT_EQ(db["removed"].size(), 3u) << db["removed"].dump();
  const std::string subscription = db["removed"][0].get<std::string>();
  EXPECT_EQ(subscription.rfind("way back subscription pgcourier_", 0), 0u) << subscription;
  EXPECT_TRUE(subscription.ends_with("_back (source)")) << subscription;

  // The old source has every write of the new primary, and takes writes
  // again; the target is read-only for new sessions.
  EXPECT_EQ(Fingerprint(*source_), Fingerprint(*target_));
  EXPECT_EQ(OnSource("SELECT count(*) FROM public.accounts WHERE note = 'updated'"), "10");
  EXPECT_EQ(OnSource("SELECT count(*) FROM public.accounts WHERE id BETWEEN 11 AND 20"), "0");
  EXPECT_EQ(OnSource("SELECT count(*) FROM public.no_pk WHERE v = 'on the target'"), "1");
  EXPECT_EQ(OnSource("SELECT last_value FROM public.tickets"), "3");
  EXPECT_EQ(OnSource("SELECT last_value FROM public.accounts_id_seq"),
            OnTarget("SELECT last_value FROM public.accounts_id_seq"));
  EXPECT_TRUE(source_->Sql("INSERT INTO public.accounts (balance) VALUES (7)", "shop").ok());
  EXPECT_FALSE(target_->Sql("INSERT INTO public.no_pk VALUES ('refused')", "shop").ok());
  // The way back is gone with the rollback; a second one has nothing to do.
  EXPECT_EQ(PgcourierObjects(*target_), "0 slots, 0 publications, 0 subscriptions, 0 schemas");
  EXPECT_EQ(PgcourierObjects(*source_), "0 slots, 0 publications, 0 subscriptions, 0 schemas");
  ProcessResult again = RunCli({"rollback", "--dir", dir_, "--timeout", "5"});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("has a way back the old source follows"), std::string::npos)
      << again.out << again.err;

  // cleanup undoes the target's read-only setting; nothing is left.
  CleanupOptions clean;
  clean.work_dir = dir_;
  Result<CleanupOutcome> cleaned = Cleanup(clean);
  ASSERT_TRUE(cleaned.ok()) << cleaned.status().ToString();
  EXPECT_TRUE(cleaned->ok());
  EXPECT_TRUE(target_->Sql("INSERT INTO public.no_pk VALUES ('writable')", "shop").ok());
  EXPECT_EQ(PgcourierObjects(*target_), "0 slots, 0 publications, 0 subscriptions, 0 schemas");
  EXPECT_EQ(PgcourierObjects(*source_), "0 slots, 0 publications, 0 subscriptions, 0 schemas");
  cleaned = Cleanup(clean);
  ASSERT_TRUE(cleaned.ok());
  EXPECT_TRUE(cleaned->removed.empty()) << "idempotent";
  EXPECT_TRUE(cleaned->undone.empty());
}

// A cutover left with its way back in place (the old source following):
// cleanup removes it on both sides, and again.
TEST_F(RollbackTest, CleanupRemovesTheWayBack) {
  ASSERT_NO_FATAL_FAILURE(Start());
  Result<MigrationOutcome> migrated = Migrate(Options());
  ASSERT_TRUE(migrated.ok()) << migrated.status().ToString();
  ASSERT_EQ(migrated->databases.at(0).state, "syncing") << migrated->databases.at(0).error;
  ProcessResult cut = RunCli({"cutover", "--dir", dir_, "--stop-source-writes", "--keep-rollback",
                              "--timeout", "60", "--quiet"});
  ASSERT_EQ(cut.exit_code, 0) << cut.out << cut.err;
  EXPECT_NE(cut.out.find("way back kept: the old source follows the target"), std::string::npos)
      << cut.out;
  CleanupOptions clean;
  clean.work_dir = dir_;
  Result<CleanupOutcome> cleaned = Cleanup(clean);
  ASSERT_TRUE(cleaned.ok()) << cleaned.status().ToString();
  EXPECT_TRUE(cleaned->ok()) << cleaned->problems.at(0);
  EXPECT_EQ(cleaned->removed.size(), 3u) << "subscription, slot, publication";
  EXPECT_EQ(PgcourierObjects(*target_), "0 slots, 0 publications, 0 subscriptions, 0 schemas");
  EXPECT_EQ(PgcourierObjects(*source_), "0 slots, 0 publications, 0 subscriptions, 0 schemas");
  EXPECT_TRUE(source_->Sql("INSERT INTO public.no_pk VALUES ('writable')", "shop").ok());
  cleaned = Cleanup(clean);
  ASSERT_TRUE(cleaned.ok());
  EXPECT_TRUE(cleaned->removed.empty()) << "idempotent";
  ProcessResult back = RunCli({"rollback", "--dir", dir_, "--timeout", "5"});
  EXPECT_NE(back.exit_code, 0) << "nothing to roll back once the way back is removed";
}

// A source user who may not create a subscription (PostgreSQL 15, no
// superuser): cutover --keep-rollback is refused before the source is
// touched, saying why and what to do; the replication goes on.
TEST_F(RollbackTest, RefusedWhenTheSourceUserMayNotSubscribe) {
  ASSERT_NO_FATAL_FAILURE(Start({"app", "app-secret", "REPLICATION"}));
  ASSERT_TRUE(source_->Sql("CREATE DATABASE shop OWNER app").ok());
  ASSERT_TRUE(source_->Sql(std::string("SET ROLE app; ") + kShop, "shop").ok());
  MigrateOptions options = Options("app", "app-secret");
  Result<MigrationOutcome> migrated = Migrate(options);
  ASSERT_TRUE(migrated.ok()) << migrated.status().ToString();
  ASSERT_EQ(migrated->databases.at(0).state, "syncing") << migrated->databases.at(0).error;

  CutoverOptions cut;
  cut.work_dir = dir_;
  cut.source = options.check.source;
  cut.stop_source_writes = true;
  cut.keep_rollback = true;
  cut.timeout = std::chrono::seconds(60);
  Result<CutoverOutcome> cutover = Cutover(cut);
  ASSERT_TRUE(cutover.ok()) << cutover.status().ToString();
  const CutoverDatabase& refused = cutover->databases.at(0);
  EXPECT_EQ(refused.state, "failed");
  EXPECT_FALSE(refused.switched);
  EXPECT_TRUE(refused.window.empty()) << "refused before the window";
  EXPECT_NE(refused.error.find("the source user app may not create a subscription"),
            std::string::npos)
      << refused.error;
  EXPECT_NE(refused.hint.find("pg_create_subscription"), std::string::npos) << refused.hint;
  EXPECT_NE(refused.hint.find("without --keep-rollback"), std::string::npos) << refused.hint;
  // The source untouched and writable, the replication still there.
  EXPECT_TRUE(
      source_->Sql("SET ROLE app; INSERT INTO public.no_pk VALUES ('still writable')", "shop")
          .ok());
  // Two publications: the move's, and its append-only one (public.no_pk).
  EXPECT_EQ(PgcourierObjects(*source_), "1 slots, 2 publications, 0 subscriptions, 0 schemas");
  EXPECT_EQ(PgcourierObjects(*target_), "0 slots, 0 publications, 1 subscriptions, 0 schemas");
  Result<StatusView> view = ReadStatus(dir_, false);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->databases.at(0).state, "syncing");
  EXPECT_EQ(view->rollbacks.count("shop"), 0u);

  // Without --stop-source-writes it is refused as bad input.
  cut.stop_source_writes = false;
  Result<CutoverOutcome> without = Cutover(cut);
  ASSERT_FALSE(without.ok());
  EXPECT_EQ(without.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(without.status().message().find("--keep-rollback needs --stop-source-writes"),
            std::string::npos);
}

}  // namespace
}  // namespace pgcourier

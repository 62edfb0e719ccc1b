// Replication for users who may neither publish the tables (not their owner)
// nor create subscriptions (no superuser, PostgreSQL 15: no
// pg_create_subscription), as on Aiven: pgcourier goes through the
// aiven_extras extension, installing it where the server offers it and
// removing what it installed at cutover or cleanup, never what it found.
//
// The extension here is a stand-in (tests/fixtures/aiven_extras) with
// Aiven's documented function signatures and behaviour, installed into the
// test server's extension directory.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "migrate/migration.h"
#include "pg_cluster.h"
#include "state/store.h"

namespace pgcourier {
namespace {

using testing::PgCluster;
using testing::PgClusterOptions;
using testing::StartClusterOrFail;

// Copies the stand-in into the server's extension directory (SHAREDIR from
// the pg_config view). False, with `why`, when that is not writable.
bool InstallStandIn(const PgCluster& cluster, std::string& why) {
  Result<std::string> share = cluster.Sql("SELECT setting FROM pg_config WHERE name = 'SHAREDIR'");
  if (!share.ok()) {
    why = share.status().ToString();
    return false;
  }
  const std::filesystem::path from =
      std::filesystem::path(PGCOURIER_SOURCE_DIR) / "tests" / "fixtures" / "aiven_extras";
  const std::filesystem::path to = std::filesystem::path(*share) / "extension";
  for (const char* file : {"aiven_extras.control", "aiven_extras--1.0.sql"}) {
    std::error_code ec;
    std::filesystem::copy_file(from / file, to / file,
                               std::filesystem::copy_options::overwrite_existing, ec);
    if (ec) {
      why = fmt::format("cannot install the aiven_extras stand-in into {}: {}", to.string(),
                        ec.message());
      return false;
    }
  }
  return true;
}

class AivenExtrasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PgClusterOptions source_options;
    source_options.settings = {"wal_level = logical", "max_replication_slots = 10",
                               "max_wal_senders = 10"};
    source_options.hba_lines = {"host all mover 127.0.0.1/32 scram-sha-256",
                                "host replication mover 127.0.0.1/32 scram-sha-256"};
    PgClusterOptions target_options;
    target_options.hba_lines = {"host all mover 127.0.0.1/32 scram-sha-256"};
    source_ = StartClusterOrFail(source_options);
    target_ = StartClusterOrFail(target_options);
    ASSERT_NE(source_, nullptr);
    ASSERT_NE(target_, nullptr);
    std::string why;
    if (!InstallStandIn(*source_, why) || !InstallStandIn(*target_, why)) GTEST_SKIP() << why;
    // The tables belong to the application's role; the migration's user may
    // read them and replicate, nothing more.
    ASSERT_TRUE(source_
                    ->Sql("CREATE ROLE app NOLOGIN; "
                          "CREATE ROLE mover LOGIN REPLICATION PASSWORD 'mover-source'; "
                          "CREATE DATABASE shop; GRANT CREATE ON DATABASE shop TO mover;")
                    .ok());
    Result<std::string> built = source_->Sql(
        "GRANT CREATE ON SCHEMA public TO app; SET ROLE app; "
        "CREATE TABLE public.items (id int PRIMARY KEY, v text); "
        "INSERT INTO public.items SELECT g, 'v' || g FROM generate_series(1, 2000) g; "
        "CREATE TABLE public.notes (v text); "
        "INSERT INTO public.notes SELECT 'n' || g FROM generate_series(1, 100) g; "
        "GRANT SELECT ON ALL TABLES IN SCHEMA public TO mover;",
        "shop");
    ASSERT_TRUE(built.ok()) << built.status().ToString();
    ASSERT_TRUE(target_->Sql("CREATE ROLE mover LOGIN CREATEDB PASSWORD 'mover-target'").ok());
    dir_ = source_->base_dir() + "/work";
  }

  MigrateOptions Options() const {
    MigrateOptions options;
    options.check.source = source_->ConnString("shop", "mover", "mover-source");
    options.check.target = target_->ConnString("postgres", "mover", "mover-target");
    options.check.method = Method::kReplication;
    options.check.jobs = 2;
    options.check.connect_timeout = std::chrono::seconds(10);
    options.work_dir = dir_;
    return options;
  }

  // Migrates and expects replication running through aiven_extras on both
  // sides.
  void MigrateThroughExtras() {
    Result<MigrationOutcome> migrated = Migrate(Options());
    ASSERT_TRUE(migrated.ok()) << migrated.status().ToString();
    std::string failed;
    for (const auto& item : migrated->check.items) {
      if (item.status == CheckStatus::kFail) failed += item.code + ": " + item.detail + "; ";
    }
    ASSERT_TRUE(migrated->checks_passed) << failed;
    ASSERT_EQ(migrated->databases.at(0).state, "syncing") << migrated->databases.at(0).error;
    // The publication is the user's (made through the extension), the
    // subscription the extension's superuser's.
    EXPECT_EQ(*source_->Sql("SELECT pubowner::regrole FROM pg_publication", "shop"), "mover");
    EXPECT_EQ(*source_->Sql("SELECT count(*) FROM pg_publication_tables", "shop"), "1")
        << "items only: notes has no replica identity";
    EXPECT_EQ(*target_->Sql("SELECT subowner::regrole FROM pg_subscription"), "postgres");
    EXPECT_EQ(
        *target_->Sql("SELECT count(*) FROM pg_extension WHERE extname = 'aiven_extras'", "shop"),
        "1");
    ASSERT_TRUE(source_->Sql("INSERT INTO public.items VALUES (2001, 'late')", "shop").ok());
  }

  std::string Changes() {
    Result<std::unique_ptr<StateStore>> store = StateStore::OpenReadOnly(dir_);
    if (!store.ok()) return store.status().ToString();
    Result<std::vector<StoredChange>> changes = (*store)->Changes("shop");
    if (!changes.ok()) return changes.status().ToString();
    std::string out;
    for (const auto& c : *changes) out += c.side + " " + c.object + " " + c.state + "; ";
    return out;
  }

  std::unique_ptr<PgCluster> source_;
  std::unique_ptr<PgCluster> target_;
  std::string dir_;
};

TEST_F(AivenExtrasTest, CutoverThroughTheExtensionRemovesWhatItInstalled) {
  MigrateThroughExtras();
  if (HasFatalFailure()) return;
  EXPECT_EQ(Changes(), "source extension aiven_extras made; target extension aiven_extras made; ");
  CutoverOptions cut;
  cut.work_dir = dir_;
  cut.source = Options().check.source;
  cut.target = target_->ConnString("postgres", "mover", "mover-target");
  cut.timeout = std::chrono::seconds(60);
  cut.connect_timeout = std::chrono::seconds(10);
  Result<CutoverOutcome> cutover = Cutover(cut);
  ASSERT_TRUE(cutover.ok()) << cutover.status().ToString();
  ASSERT_EQ(cutover->databases.at(0).state, "done") << cutover->databases.at(0).error;
  EXPECT_EQ(*target_->Sql("SELECT count(*), max(id) FROM public.items", "shop"), "2001|2001");
  EXPECT_EQ(*target_->Sql("SELECT count(*) FROM public.notes", "shop"), "100");
  // Nothing of the replication, and not the extension pgcourier installed.
  EXPECT_EQ(*target_->Sql("SELECT count(*) FROM pg_subscription"), "0");
  EXPECT_EQ(*source_->Sql("SELECT count(*) FROM pg_replication_slots"), "0");
  EXPECT_EQ(*source_->Sql("SELECT count(*) FROM pg_publication", "shop"), "0");
  EXPECT_EQ(
      *source_->Sql("SELECT count(*) FROM pg_extension WHERE extname = 'aiven_extras'", "shop"),
      "0");
  EXPECT_EQ(
      *target_->Sql("SELECT count(*) FROM pg_extension WHERE extname = 'aiven_extras'", "shop"),
      "0");
  EXPECT_EQ(Changes(),
            "source extension aiven_extras undone; target extension aiven_extras undone; ");
}

TEST_F(AivenExtrasTest, CleanupKeepsTheExtensionItFound) {
  // The source already had aiven_extras: pgcourier uses it and leaves it.
  ASSERT_TRUE(source_->Sql("CREATE EXTENSION aiven_extras", "shop").ok());
  MigrateThroughExtras();
  if (HasFatalFailure()) return;
  EXPECT_EQ(Changes(), "target extension aiven_extras made; ");
  CleanupOptions clean;
  clean.work_dir = dir_;
  clean.source = Options().check.source;
  clean.target = Options().check.target;
  clean.connect_timeout = std::chrono::seconds(10);
  Result<CleanupOutcome> cleaned = Cleanup(clean);
  ASSERT_TRUE(cleaned.ok()) << cleaned.status().ToString();
  std::string problems;
  for (const auto& p : cleaned->problems) problems += p + "; ";
  EXPECT_TRUE(cleaned->ok()) << problems;
  EXPECT_EQ(cleaned->removed.size(), 3u);
  EXPECT_EQ(cleaned->undone.size(), 1u);
  EXPECT_EQ(*target_->Sql("SELECT count(*) FROM pg_subscription"), "0");
  EXPECT_EQ(*source_->Sql("SELECT count(*) FROM pg_replication_slots"), "0");
  EXPECT_EQ(*source_->Sql("SELECT count(*) FROM pg_publication", "shop"), "0");
  EXPECT_EQ(
      *source_->Sql("SELECT count(*) FROM pg_extension WHERE extname = 'aiven_extras'", "shop"),
      "1")
      << "found there, so kept";
  EXPECT_EQ(
      *target_->Sql("SELECT count(*) FROM pg_extension WHERE extname = 'aiven_extras'", "shop"),
      "0");
  // Again: nothing left to do.
  cleaned = Cleanup(clean);
  ASSERT_TRUE(cleaned.ok());
  EXPECT_TRUE(cleaned->removed.empty());
  EXPECT_TRUE(cleaned->undone.empty());
}

}  // namespace
}  // namespace pgcourier

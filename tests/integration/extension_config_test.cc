// Extensions' configuration tables (pg_extension_config_dump) against real
// extensions from Debian on 15 -> 15: PostGIS's spatial_ref_sys, pg_partman's
// part_config and pg_cron's cron.job move with the extension's filter, are
// compared (the verification fails when a configuration row differs on the
// target), and copying them again never doubles them.
#include "copy/extension_config.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "copy/progress_marks.h"
#include "migrate/migration.h"
#include "pg/connection.h"
#include "pg_cluster.h"
#include "state_names.h"
#include "two_servers.h"
#include "verify/verifier.h"

namespace pgcourier {
namespace {

using testing::PgCluster;

// Whether the server binaries of 15 have `extension` installed.
bool HaveExtension(const std::string& extension) {
  return std::filesystem::exists("/usr/share/postgresql/15/extension/" + extension + ".control");
}

class ExtensionConfigTest : public testing::SourceAndTargetTest {
 protected:
  // Starts both servers with `settings`, and the database "app" on the
  // source made by `sql`.
  void Start(const std::string& sql, const std::vector<std::string>& settings = {}) {
    testing::SourceAndTargetOptions options;
    options.source.settings = settings;
    options.target.settings = settings;
    options.database = "app";
    options.database_sql = sql;
    ASSERT_NO_FATAL_FAILURE(StartServers(options));
  }

  MigrateOptions Options() const { return MigrationOptions("app", Method::kCopy); }

  // Migrates "app"; the configuration table `table` was compared and
  // matched, with `rows` rows selected by its extension's condition.
  void MigrateAndExpectCompared(const std::string& table, int64_t rows) {
    Result<MigrationOutcome> migrated = Migrate(Options());
    ASSERT_TRUE(migrated.ok()) << migrated.status().ToString();
    ASSERT_EQ(migrated->databases.size(), 1u);
    const DatabaseOutcome& db = migrated->databases[0];
    std::string differences;
    if (db.verification) {
      for (const auto& t : db.verification->tables) {
        if (!t.match()) differences += " " + t.schema + "." + t.name + " " + t.error;
      }
      for (const auto& k : db.verification->schema) {
        for (const auto& m : k.missing_on_target) differences += " missing " + m;
        for (const auto& m : k.extra_on_target) differences += " extra " + m;
      }
    }
    ASSERT_EQ(db.state, "done") << db.error << differences;
    ASSERT_TRUE(db.verification.has_value());
    const TableVerification* found = Compared(*db.verification, table);
    ASSERT_NE(found, nullptr) << table << " was not compared";
    EXPECT_FALSE(found->extension.empty());
    EXPECT_TRUE(found->match()) << found->error;
    EXPECT_EQ(found->source_rows, rows);
    EXPECT_EQ(found->target_rows, rows);
  }

  static const TableVerification* Compared(const DatabaseVerification& v,
                                           const std::string& table) {
    for (const auto& t : v.tables) {
      if (t.schema + "." + t.name == table) return &t;
    }
    return nullptr;
  }

  // Verifies "app" on both sides now.
  DatabaseVerification VerifyNow() {
    VerifyOptions options;
    options.connect_timeout = std::chrono::seconds(10);
    Result<DatabaseVerification> verified =
        VerifyDatabase(*ConnInfo::Parse(source_->ConnString("app")),
                       *ConnInfo::Parse(target_->ConnString("app")), options);
    EXPECT_TRUE(verified.ok()) << verified.status().ToString();
    return verified.ok() ? *verified : DatabaseVerification{};
  }

  // After `change` on the target, the verification finds `table` differing.
  void ExpectChangeOnTargetFound(const std::string& change, const std::string& table) {
    ASSERT_TRUE(VerifyNow().ok());
    ASSERT_TRUE(target_->Sql(change, "app").ok());
    DatabaseVerification after = VerifyNow();
    EXPECT_FALSE(after.ok());
    const TableVerification* found = Compared(after, table);
    ASSERT_NE(found, nullptr);
    EXPECT_FALSE(found->match());
  }

  std::string OnTarget(const std::string& sql) {
    Result<std::string> out = target_->Sql(sql, "app");
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out.ok() ? *out : "";
  }
};

TEST_F(ExtensionConfigTest, PostgisCustomSpatialReferencesMoveAndAreCompared) {
  if (!HaveExtension("postgis")) GTEST_SKIP() << "postgresql-15-postgis-3 is not installed";
  ASSERT_NO_FATAL_FAILURE(Start(R"sql(
    CREATE EXTENSION postgis;
    INSERT INTO public.spatial_ref_sys (srid, auth_name, auth_srid, srtext, proj4text)
      VALUES (990001, 'app', 990001, 'LOCAL_CS["app grid"]', '+proj=longlat +datum=WGS84'),
             (990002, 'app', 990002, 'LOCAL_CS["app grid 2"]', '+proj=longlat +datum=WGS84');
    CREATE TABLE public.places (id int PRIMARY KEY, name text,
                                geom public.geometry(Point, 990001));
    INSERT INTO public.places
      SELECT g, 'p' || g, public.ST_SetSRID(public.ST_MakePoint(g, g * 2), 990001)
      FROM generate_series(1, 200) g;
  )sql"));
  // The extension's own rows (thousands) are outside its condition.
  ASSERT_NO_FATAL_FAILURE(MigrateAndExpectCompared("public.spatial_ref_sys", 2));
  EXPECT_EQ(OnTarget("SELECT srtext FROM public.spatial_ref_sys WHERE srid = 990001"),
            "LOCAL_CS[\"app grid\"]");
  EXPECT_EQ(OnTarget("SELECT count(*) FROM public.places WHERE public.ST_SRID(geom) = 990001"),
            "200");
  // Copied again (as a resumed move whose copy did not commit would), the
  // selected rows are replaced, never doubled, and the extension's own kept.
  const std::string all_rows = OnTarget("SELECT count(*) FROM public.spatial_ref_sys");
  Result<std::unique_ptr<Connection>> source =
      Connection::Connect(*ConnInfo::Parse(source_->ConnString("app")), {});
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  Result<std::unique_ptr<Connection>> target =
      Connection::Connect(*ConnInfo::Parse(target_->ConnString("app")), {});
  ASSERT_TRUE(target.ok()) << target.status().ToString();
  Result<std::vector<ExtensionConfigTable>> tables = ReadExtensionConfig(**source, {}, {});
  ASSERT_TRUE(tables.ok()) << tables.status().ToString();
  ASSERT_TRUE((*source)->Run("BEGIN ISOLATION LEVEL REPEATABLE READ").ok());
  for (int round = 0; round < 2; ++round) {
    Result<ExtensionConfigCopied> copied =
        CopyExtensionConfig(**source, **target, *tables, std::nullopt);
    ASSERT_TRUE(copied.ok()) << copied.status().ToString();
    EXPECT_EQ(copied->rows, 2);
  }
  ASSERT_TRUE((*source)->Run("COMMIT").ok());
  EXPECT_EQ(OnTarget("SELECT count(*) FROM public.spatial_ref_sys"), all_rows);
  ExpectChangeOnTargetFound(
      "UPDATE public.spatial_ref_sys SET proj4text = '+proj=merc' WHERE srid = 990002",
      "public.spatial_ref_sys");
}

TEST_F(ExtensionConfigTest, PartmanPartConfigMovesAndIsCompared) {
  if (!HaveExtension("pg_partman")) GTEST_SKIP() << "postgresql-15-partman is not installed";
  ASSERT_NO_FATAL_FAILURE(Start(R"sql(
    CREATE SCHEMA partman;
    CREATE EXTENSION pg_partman SCHEMA partman;
    CREATE TABLE public.events (id bigint NOT NULL, at timestamptz NOT NULL, what text)
      PARTITION BY RANGE (at);
    SELECT partman.create_parent('public.events', 'at', 'native', 'daily', p_premake := 2);
    UPDATE partman.part_config SET retention = '30 days', retention_keep_table = false
      WHERE parent_table = 'public.events';
    INSERT INTO public.events VALUES (1, now(), 'first');
  )sql"));
  ASSERT_NO_FATAL_FAILURE(MigrateAndExpectCompared("partman.part_config", 1));
  EXPECT_EQ(OnTarget("SELECT retention || ' ' || partition_interval FROM partman.part_config "
                     "WHERE parent_table = 'public.events'"),
            "30 days 1 day");
  ExpectChangeOnTargetFound("UPDATE partman.part_config SET premake = 9", "partman.part_config");
}

TEST_F(ExtensionConfigTest, CronJobsMoveWhereTheTargetRunsPgCron) {
  if (!HaveExtension("pg_cron")) GTEST_SKIP() << "postgresql-15-cron is not installed";
  ASSERT_NO_FATAL_FAILURE(
      Start(R"sql(
    CREATE EXTENSION pg_cron;
    SELECT cron.schedule('nightly-vacuum', '0 3 * * *', 'VACUUM');
    SELECT cron.schedule('hourly-report', '0 * * * *', 'SELECT 1');
    SELECT cron.unschedule('hourly-report');
    SELECT cron.schedule('weekly', '0 4 * * 0', 'SELECT 2');
  )sql",
            {"shared_preload_libraries = 'pg_cron'", "cron.database_name = 'app'"}));
  ASSERT_NO_FATAL_FAILURE(MigrateAndExpectCompared("cron.job", 2));
  EXPECT_EQ(OnTarget("SELECT string_agg(jobid || ' ' || jobname || ' ' || schedule, ', ' "
                     "ORDER BY jobid) FROM cron.job"),
            "1 nightly-vacuum 0 3 * * *, 3 weekly 0 4 * * 0");
  ExpectChangeOnTargetFound("UPDATE cron.job SET schedule = '0 2 * * *' WHERE jobid = 1",
                            "cron.job");
  // Its sequence moved too: a job scheduled now gets the next id.
  EXPECT_EQ(OnTarget("SELECT cron.schedule('later', '0 5 * * *', 'SELECT 3')"), "4");
}

}  // namespace
}  // namespace pgcourier

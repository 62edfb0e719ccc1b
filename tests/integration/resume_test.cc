// pgcourier killed with SIGKILL at several points of a migration, then
// `migrate --resume`: every table ends equal to the source's (count and
// checksum), no row twice, no progress marks left, and the work directory
// says done. Runs the real binary, as a user would.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <random>

#include "cli_runner.h"
#include "pg/connection.h"
#include "pg_cluster.h"
#include "state/store.h"
#include "state_names.h"
#include "two_servers.h"
#include "util/process.h"
#include "watch_helpers.h"

namespace pgcourier {
namespace {

using testing::BackgroundRun;
using testing::PgCluster;
using testing::TryRunCli;

// A database with one table big enough to be sliced, an index that takes
// seconds to build (its expression sleeps on one row), foreign keys
// (validated by the post-data restore), a sequence and a large object.
constexpr const char* kShop = R"sql(
  CREATE FUNCTION public.slow(id int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
  BEGIN
    IF id = 1 THEN PERFORM pg_catalog.pg_sleep(2); END IF;
    RETURN id;
  END $$;
  CREATE TABLE public.customers (id int PRIMARY KEY, name text NOT NULL);
  INSERT INTO public.customers SELECT g, 'customer ' || g FROM generate_series(1, 2000) g;
  CREATE TABLE public.events (id bigserial PRIMARY KEY, customer int NOT NULL
                                REFERENCES public.customers, payload text);
  INSERT INTO public.events (customer, payload)
    SELECT 1 + g % 2000, repeat(md5(g::text), 6) FROM generate_series(1, 200000) g;
  CREATE INDEX events_customer ON public.events (customer);
  CREATE TABLE public.items (id int PRIMARY KEY, label text);
  INSERT INTO public.items SELECT g, 'item ' || g FROM generate_series(1, 1000) g;
  CREATE INDEX items_slow ON public.items (public.slow(id));
  CREATE TABLE public.no_key (v text);
  INSERT INTO public.no_key SELECT 'row ' || g FROM generate_series(1, 5000) g;
  SELECT pg_catalog.lo_from_bytea(0, 'a large object');
)sql";

// The fingerprint of a database: per table its row count and the sum of a
// hash of every row's text; rows that appear twice change both.
std::string Fingerprint(const PgCluster& cluster, const std::string& db) {
  Result<std::string> out = cluster.Sql(
      "SELECT string_agg(format('%s %s', c.oid::regclass, "
      "(xpath('/row/c/text()', query_to_xml(format('SELECT count(*) || '':'' || "
      "coalesce(sum(hashtext(t::text)), 0) AS c FROM ONLY %s t', c.oid::regclass), "
      "false, true, '')))[1]::text), ', ' ORDER BY c.oid::regclass::text) "
      "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE c.relkind = 'r' AND n.nspname = 'public'",
      db);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  return out.ok() ? *out : "";
}

class ResumeTest : public testing::SourceAndTargetTest {
 protected:
  void SetUp() override {
    testing::SourceAndTargetOptions options;
    options.database = "shop";
    options.database_sql = kShop;
    ASSERT_NO_FATAL_FAILURE(StartServers(options));
  }

  std::vector<std::string> MigrateArgs() const {
    // The whole cluster when there are other databases than shop.
    std::string source = cluster_
                             ? fmt::format("host=127.0.0.1 port={} user=postgres", source_->port())
                             : source_->ConnString("shop");
    return {"migrate", "--source", source,   "--target", target_->ConnString("postgres"),
            "--dir",   dir_,       "--jobs", "2",        "--slice-size",
            "4MB",     "--quiet"};
  }

  // Runs `migrate` and kills it with SIGKILL as soon as `when` holds
  // (polled on a connection to the target); returns whether it was killed
  // there (false: it ended first).
  bool MigrateAndKill(const std::function<bool(Connection&)>& when) {
    BackgroundRun run(MigrateArgs());
    std::unique_ptr<Connection> probe;
    const bool killed = run.KillWhen(
        [&] {
          if (!probe) {
            Result<std::unique_ptr<Connection>> c =
                Connection::Connect(*ConnInfo::Parse(target_->ConnString("postgres")), {});
            if (c.ok()) probe = std::move(*c);
          }
          return probe && when(*probe);
        },
        std::chrono::milliseconds(5));
    const Result<ProcessResult>& ran = run.Join();
    EXPECT_TRUE(ran.ok()) << ran.status().ToString();
    if (killed && ran.ok()) {
      EXPECT_EQ(ran->signal, SIGKILL) << ran->err;
    }
    return killed;
  }

  // Resumes and checks the end state. A run killed before it recorded
  // anything (during its checks, which touch nothing) has nothing to resume:
  // it is started again.
  void ResumeAndCheck() {
    bool recorded = false;
    {
      Result<std::unique_ptr<StateStore>> store = StateStore::OpenReadOnly(dir_);
      if (store.ok()) {
        Result<std::optional<StoredRun>> run = (*store)->Run();
        recorded = run.ok() && run->has_value();
      }
    }
    std::vector<std::string> args = {"migrate", "--resume", "--dir", dir_, "--quiet"};
    if (!recorded) {
      EXPECT_EQ(*target_->Sql("SELECT count(*) FROM pg_database WHERE datname = 'shop'"), "0")
          << "a run that recorded nothing touched nothing";
      args = MigrateArgs();
    }
    Result<ProcessResult> resumed = TryRunCli(args);
    ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
    EXPECT_EQ(resumed->exit_code, 0) << resumed->out << resumed->err;
    EXPECT_EQ(Fingerprint(*target_, "shop"), Fingerprint(*source_, "shop"));
    if (cluster_) {
      for (const char* db : {"alpha", "beta"}) {
        EXPECT_EQ(Fingerprint(*target_, db), Fingerprint(*source_, db)) << db;
      }
    }
    EXPECT_EQ(*target_->Sql("SELECT count(*) = count(DISTINCT id) FROM public.events", "shop"),
              "t");
    EXPECT_EQ(*target_->Sql("SELECT count(*) FROM pg_largeobject_metadata", "shop"), "1");
    EXPECT_EQ(*target_->Sql("SELECT last_value FROM public.events_id_seq", "shop"), "200000");
    EXPECT_EQ(
        *target_->Sql("SELECT count(*) FROM pg_namespace WHERE nspname = '_pgcourier'", "shop"),
        "0")
        << "no progress marks left";
    EXPECT_EQ(*target_->Sql("SELECT count(*) FROM pg_constraint WHERE contype = 'f'", "shop"), "1");
    EXPECT_EQ(*target_->Sql("SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'", "shop"),
              "5");
    Result<std::unique_ptr<StateStore>> store = StateStore::OpenReadOnly(dir_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    Result<std::optional<StoredRun>> run = (*store)->Run();
    ASSERT_TRUE(run.ok() && run->has_value());
    EXPECT_EQ((*run)->state, "done");
    if (recorded) {
      EXPECT_GE((*run)->resumes, 1);
    }
    // A finished migration is never run again into the same target.
    Result<ProcessResult> again = TryRunCli(MigrateArgs());
    ASSERT_TRUE(again.ok());
    EXPECT_NE(again->exit_code, 0);
    EXPECT_NE(again->err.find("finished"), std::string::npos) << again->err;
  }

  static bool Active(Connection& conn, const std::string& like) {
    Result<QueryResult> r = conn.ExecParams(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = 'shop' AND state = 'active' "
        "AND query LIKE $1",
        {like});
    return r.ok() && r->GetInt(0, 0) > 0;
  }

  bool cluster_ = false;  // move every database, not shop alone
};

TEST_F(ResumeTest, KilledDuringTheSchema) {
  ASSERT_TRUE(MigrateAndKill([this](Connection&) {
    Result<std::unique_ptr<StateStore>> store = StateStore::OpenReadOnly(dir_);
    if (!store.ok()) return false;
    Result<std::vector<StoredDatabase>> dbs = (*store)->Databases();
    return dbs.ok() && !dbs->empty() && (*dbs)[0].state == "schema";
  })) << "the schema phase was never seen";
  ResumeAndCheck();
}

TEST_F(ResumeTest, KilledInTheMiddleOfASlicedTable) {
  // Killed once some slices of public.events are committed and others not.
  std::unique_ptr<Connection> shop;
  ASSERT_TRUE(MigrateAndKill([&](Connection&) {
    return testing::PartlyCopied(shop, target_->ConnString("shop"), R"("public"."events")");
  })) << "a partly copied table was never seen";
  shop.reset();
  // The interrupted run's slices are on the target...
  EXPECT_NE(*target_->Sql("SELECT count(*) FROM public.events", "shop"), "0");
  ResumeAndCheck();
}

TEST_F(ResumeTest, KilledDuringAnIndexBuild) {
  ASSERT_TRUE(MigrateAndKill([](Connection& conn) { return Active(conn, "%items_slow%"); }))
      << "the index build was never seen";
  ResumeAndCheck();
}

TEST_F(ResumeTest, KilledDuringPostData) {
  ASSERT_TRUE(MigrateAndKill([](Connection& conn) { return Active(conn, "%FOREIGN KEY%"); }))
      << "the post-data restore was never seen";
  ResumeAndCheck();
}

TEST_F(ResumeTest, ClusterKilledAtRandomMomentsAlwaysEndsVerified) {
  // Three databases (and postgres), moved as a cluster.
  for (const char* db : {"alpha", "beta"}) {
    ASSERT_TRUE(source_->Sql(fmt::format("CREATE DATABASE {}", db)).ok());
    ASSERT_TRUE(source_
                    ->Sql("CREATE TABLE public.t (id int PRIMARY KEY, v text); INSERT INTO "
                          "public.t SELECT g, md5(g::text) FROM generate_series(1, 50000) g;",
                          db)
                    .ok());
  }
  cluster_ = true;
  std::mt19937 random(std::random_device{}());
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(fmt::format("round {}", round));
    if (round > 0) {
      std::filesystem::remove_all(dir_);
      for (const char* db : {"shop", "alpha", "beta"}) {
        ASSERT_TRUE(target_->Sql(fmt::format("DROP DATABASE IF EXISTS {} WITH (FORCE)", db)).ok());
      }
    }
    const auto delay = std::chrono::milliseconds(200 + random() % 4000);
    const auto started = std::chrono::steady_clock::now();
    bool killed = MigrateAndKill(
        [&](Connection&) { return std::chrono::steady_clock::now() - started >= delay; });
    if (!killed) continue;  // it finished first: nothing to resume
    ResumeAndCheck();
  }
}

}  // namespace
}  // namespace pgcourier

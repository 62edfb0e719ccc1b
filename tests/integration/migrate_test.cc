// `migrate` (copy method) against real servers: the demo shop moves on 15 -> 15
// and 15 -> 17, the fidelity corpus moves exactly on every pair of the
// version matrix (version_pairs.h), and bad input leaves the target
// untouched.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <thread>

#include "migrate/migration.h"
#include "pg/conninfo.h"
#include "pg_cluster.h"
#include "state/store.h"
#include "state_names.h"
#include "two_servers.h"
#include "util/process.h"
#include "verify/verifier.h"
#include "version_pairs.h"

namespace pgcourier {
namespace {

using testing::PgCluster;

const std::string kSourceDir = PGCOURIER_SOURCE_DIR;

std::string ClusterConn(const PgCluster& c, const std::string& db = "") {
  std::string conn = fmt::format("host=127.0.0.1 port={} user=postgres", c.port());
  return db.empty() ? conn : conn + " dbname=" + db;
}

MigrateOptions Options(const std::string& source, const std::string& target,
                       const std::string& work_dir) {
  MigrateOptions options;
  options.check.source = source;
  options.check.target = target;
  options.check.method = Method::kCopy;
  options.check.jobs = 2;
  options.check.connect_timeout = std::chrono::seconds(5);
  options.work_dir = work_dir;
  return options;
}

std::string Describe(const MigrationOutcome& outcome) {
  std::string out;
  for (const auto& item : outcome.check.items) {
    if (item.status != CheckStatus::kPass) {
      out += fmt::format("{} {} [{}] {}\n", CheckStatusName(item.status), item.code, item.object,
                         item.detail);
    }
  }
  for (const auto& db : outcome.databases) {
    out += fmt::format("{}: {} {}\n", db.name, db.state, db.error);
    if (db.verification) {
      for (const auto& t : db.verification->tables) {
        if (!t.match()) {
          out += fmt::format("  table {}.{}: rows {}/{} {}\n", t.schema, t.name, t.source_rows,
                             t.target_rows, t.error);
        }
      }
      for (const auto& s : db.verification->sequences) {
        if (!s.match()) out += fmt::format("  sequence {}.{}\n", s.schema, s.name);
      }
      for (const auto& k : db.verification->schema) {
        for (const auto& m : k.missing_on_target) out += "  missing " + k.kind + " " + m + "\n";
        for (const auto& m : k.extra_on_target) out += "  extra " + k.kind + " " + m + "\n";
      }
    }
  }
  return out;
}

// `pg_dump --schema-only` of a database, without the lines that differ from
// run to run (\restrict keys) or by design (comments with the dump's origin).
std::string SchemaDump(const PgCluster& cluster, const std::string& db) {
  ProcessOptions options;
  options.unset_env = {"PGDATABASE", "PGHOST", "PGPORT", "PGUSER"};
  Result<ProcessResult> ran =
      RunProcess({testing::PgBinDir(15) + "/pg_dump", "--schema-only", "--no-owner",
                  "--no-privileges", "--dbname=" + ClusterConn(cluster, db)},
                 options);
  EXPECT_TRUE(ran.ok() && ran->ok()) << (ran.ok() ? ran->err : ran.status().ToString());
  if (!ran.ok()) return "";
  static const std::regex kVolatile(R"(^(\\restrict|\\unrestrict|-- Dumped).*$)",
                                    std::regex::multiline);
  return std::regex_replace(ran->out, kVolatile, "");
}

// `diff -u` of two texts, for failure messages.
std::string Diff(const std::string& a, const std::string& b, const std::string& dir) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/a.sql") << a;
  std::ofstream(dir + "/b.sql") << b;
  Result<ProcessResult> diff = RunProcess({"diff", "-u", dir + "/a.sql", dir + "/b.sql"});
  return diff.ok() ? diff->out.substr(0, 6000) : diff.status().ToString();
}

class MigrateDemoTest : public testing::VersionPairTest {};

TEST_P(MigrateDemoTest, DemoShopMovesAndVerifies) {
  ASSERT_TRUE(source_->Sql("CREATE DATABASE shop").ok());
  ASSERT_TRUE(source_->Sql("\\i " + kSourceDir + "/demo/shop.sql", "shop").ok());

  std::vector<ProgressEvent> events;
  MigrateOptions options = Options(ClusterConn(*source_, "shop"), ClusterConn(*target_), dir_);
  options.on_progress = [&events](const ProgressEvent& e) { events.push_back(e); };
  Result<MigrationOutcome> outcome = Migrate(options);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  ASSERT_TRUE(outcome->ok()) << Describe(*outcome);
  ASSERT_EQ(outcome->databases.size(), 1u);
  const DatabaseOutcome& db = outcome->databases[0];
  EXPECT_EQ(db.state, "done");
  ASSERT_TRUE(db.verification.has_value());
  EXPECT_TRUE(db.verification->ok());
  EXPECT_EQ(db.verification->tables.size(), 5u);
  EXPECT_FALSE(events.empty());

  // The rows are there, sequences continue where the source's are, and the
  // constraints and triggers work.
  EXPECT_EQ(*target_->Sql("SELECT count(*) FROM public.order_items", "shop"), "15044");
  EXPECT_EQ(*target_->Sql("SELECT last_value FROM public.orders_id_seq", "shop"),
            *source_->Sql("SELECT last_value FROM public.orders_id_seq", "shop"));
  EXPECT_FALSE(target_
                   ->Sql("INSERT INTO public.order_items (order_id, product_id, quantity, "
                         "unit_price) VALUES (-1, 1, 1, 1)",
                         "shop")
                   .ok())
      << "foreign keys are in place";
  // The work directory's store records the outcome.
  Result<std::unique_ptr<StateStore>> store = StateStore::OpenReadOnly(dir_);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Result<std::optional<StoredRun>> run = (*store)->Run();
  ASSERT_TRUE(run.ok() && run->has_value());
  EXPECT_EQ((*run)->state, "done");
  EXPECT_EQ((*run)->id, outcome->run_id);
  Result<std::vector<StoredDatabase>> dbs = (*store)->Databases();
  ASSERT_TRUE(dbs.ok());
  ASSERT_EQ(dbs->size(), 1u);
  EXPECT_EQ((*dbs)[0].state, "done");
  EXPECT_EQ((*dbs)[0].tables_done, (*dbs)[0].tables_total);
  EXPECT_TRUE((*dbs)[0].consistent);
  // No progress marks are left on the target.
  EXPECT_EQ(*target_->Sql("SELECT count(*) FROM pg_namespace WHERE nspname = '_pgcourier'", "shop"),
            "0");
}

INSTANTIATE_TEST_SUITE_P(Versions, MigrateDemoTest, ::testing::ValuesIn(testing::TargetMajors()),
                         testing::VersionPairName);

// Every pair of the version matrix.
class MigrateTest : public testing::MatrixPairTest {};

TEST_P(MigrateTest, FidelityCorpusMovesExactly) {
  ASSERT_TRUE(source_->Sql("CREATE DATABASE fid").ok());
  Result<std::string> loaded =
      source_->Sql("\\i " + kSourceDir + "/tests/fixtures/fidelity.sql", "fid");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();

  Result<MigrationOutcome> outcome =
      Migrate(Options(ClusterConn(*source_, "fid"), ClusterConn(*target_), dir_));
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_TRUE(outcome->ok()) << Describe(*outcome);
  // pg_dump 15 reads only servers up to 15, and two majors dump differently:
  // compare the dumps where both sides are the same major up to 15;
  // elsewhere the built-in schema verification above covers it.
  if (GetParam().source == GetParam().target && GetParam().target <= 15) {
    std::string source_schema = SchemaDump(*source_, "fid");
    std::string target_schema = SchemaDump(*target_, "fid");
    EXPECT_FALSE(source_schema.empty());
    EXPECT_TRUE(source_schema == target_schema) << Diff(source_schema, target_schema, dir_);
  }
  // Large objects with their contents.
  EXPECT_EQ(*target_->Sql("SELECT count(*) FROM pg_largeobject_metadata", "fid"),
            *source_->Sql("SELECT count(*) FROM pg_largeobject_metadata", "fid"));
}

INSTANTIATE_TEST_SUITE_P(Versions, MigrateTest, ::testing::ValuesIn(testing::MatrixPairs()),
                         testing::MatrixPairName);

// The objects that 13 and 18 spell differently (a procedure's IN arguments,
// the names 18 gives the clones of a partitioned table's foreign key) compare
// equal, and each one missing on the target is still a difference.
class MigrateSpellingTest : public testing::SourceAndTargetTest {};

TEST_F(MigrateSpellingTest, VersionSpellingIsNoDifferenceButMissingObjectsAre) {
  if (!testing::HavePgMajor(13) || !testing::HavePgMajor(18)) {
    GTEST_SKIP() << "needs PostgreSQL 13 and 18 server binaries (scripts/setup.sh)";
  }
  testing::SourceAndTargetOptions servers;
  servers.source.major = 13;
  servers.target.major = 18;
  servers.database = "fid";
  ASSERT_NO_FATAL_FAILURE(StartServers(servers));
  Result<std::string> loaded =
      source_->Sql("\\i " + kSourceDir + "/tests/fixtures/fidelity.sql", "fid");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  // The spellings differ indeed.
  const std::string procedure_args =
      "SELECT pg_get_function_identity_arguments('sales.transfer_credit'::regproc)";
  EXPECT_EQ(*source_->Sql(procedure_args, "fid"),
            "from_id integer, to_id integer, INOUT amount numeric");

  Result<MigrationOutcome> outcome =
      Migrate(Options(ClusterConn(*source_, "fid"), ClusterConn(*target_, "fid"), dir_));
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  ASSERT_TRUE(outcome->ok()) << Describe(*outcome);
  EXPECT_EQ(*target_->Sql(procedure_args, "fid"),
            "IN from_id integer, IN to_id integer, INOUT amount numeric");
  EXPECT_NE(*target_->Sql("SELECT count(*) FROM pg_constraint "
                          "WHERE conname LIKE 'event\\_refs\\_event\\_fk\\_%'",
                          "fid"),
            "0")
      << "18 names the clones itself";

  auto verify = [&]() {
    Result<ConnInfo> s = ConnInfo::Parse(ClusterConn(*source_, "fid"));
    Result<ConnInfo> t = ConnInfo::Parse(ClusterConn(*target_, "fid"));
    EXPECT_TRUE(s.ok() && t.ok());
    VerifyOptions options;
    options.connect_timeout = std::chrono::seconds(5);
    Result<DatabaseVerification> v = VerifyDatabase(*s, *t, options);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    std::vector<std::string> missing;
    std::vector<std::string> extra;
    if (v.ok()) {
      for (const auto& kind : v->schema) {
        for (const auto& m : kind.missing_on_target) missing.push_back(kind.kind + " " + m);
        for (const auto& m : kind.extra_on_target) extra.push_back(kind.kind + " " + m);
      }
    }
    return std::make_pair(missing, extra);
  };
  using Names = std::vector<std::string>;
  EXPECT_EQ(verify(), std::make_pair(Names{}, Names{}));

  ASSERT_TRUE(target_->Sql("DROP PROCEDURE sales.transfer_credit", "fid").ok());
  EXPECT_EQ(verify(), std::make_pair(Names{"function sales.transfer_credit(from_id integer, "
                                           "to_id integer, INOUT amount numeric)"},
                                     Names{}));
  ASSERT_TRUE(target_
                  ->Sql("CREATE PROCEDURE sales.transfer_credit(IN from_id integer, IN to_id "
                        "integer, INOUT amount numeric) LANGUAGE sql AS 'SELECT 1'",
                        "fid")
                  .ok());
  EXPECT_EQ(verify(), std::make_pair(Names{}, Names{}));

  ASSERT_TRUE(
      target_->Sql("ALTER TABLE public.event_refs DROP CONSTRAINT event_refs_event_fk", "fid")
          .ok());
  EXPECT_EQ(verify(),
            std::make_pair(Names{"constraint public.event_refs.event_refs_event_fk (f)"}, Names{}));
}

class MigrateRefusalTest : public testing::SourceAndTargetTest {};

TEST_F(MigrateRefusalTest, TargetWithDataIsNeverTouched) {
  ASSERT_NO_FATAL_FAILURE(StartServers());
  ASSERT_TRUE(source_
                  ->Sql("CREATE DATABASE shop; \\c shop\nCREATE TABLE public.t (id int "
                        "PRIMARY KEY); INSERT INTO public.t VALUES (1);")
                  .ok());
  ASSERT_TRUE(target_
                  ->Sql("CREATE DATABASE shop; \\c shop\nCREATE TABLE public.mine (x int); "
                        "INSERT INTO public.mine VALUES (42);")
                  .ok());
  Result<MigrationOutcome> outcome =
      Migrate(Options(ClusterConn(*source_, "shop"), ClusterConn(*target_), dir_));
  ASSERT_TRUE(outcome.ok());
  EXPECT_FALSE(outcome->ok());
  EXPECT_FALSE(outcome->checks_passed);
  EXPECT_TRUE(outcome->databases.empty());
  EXPECT_EQ(*target_->Sql("SELECT x FROM public.mine", "shop"), "42");
  EXPECT_FALSE(target_->Sql("SELECT 1 FROM public.t", "shop").ok()) << "nothing was restored";
}

class MigrateSliceTest : public testing::SourceAndTargetTest {};

TEST_F(MigrateSliceTest, LargeTablesAreCopiedInSlicesExactly) {
  ASSERT_NO_FATAL_FAILURE(StartServers());
  ASSERT_TRUE(source_
                  ->Sql(R"sql(
    CREATE DATABASE big;
    \c big
    CREATE TABLE public.wide_keys (id bigint PRIMARY KEY, v text);
    INSERT INTO public.wide_keys SELECT g * 92233720368547, repeat('v', 50)
      FROM generate_series(-50000, 50000) g;
    INSERT INTO public.wide_keys VALUES (-9223372036854775808, 'min'), (9223372036854775807, 'max');
    CREATE TABLE public.by_unique (k int NOT NULL UNIQUE, v text);
    CREATE INDEX by_unique_v ON public.by_unique (v);
    INSERT INTO public.by_unique SELECT g, md5(g::text) FROM generate_series(1, 60000) g;
    CREATE TABLE public.no_key (v text);
    INSERT INTO public.no_key SELECT repeat('n', 80) FROM generate_series(1, 60000);)sql")
                  .ok());
  MigrateOptions options = Options(ClusterConn(*source_, "big"), ClusterConn(*target_), dir_);
  options.split_bytes = 256 * 1024;
  std::vector<std::string> slices;
  options.on_progress = [&slices](const ProgressEvent& e) {
    if (e.message.find("index") != std::string::npos) slices.push_back(e.message);
  };
  Result<MigrationOutcome> outcome = Migrate(options);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  ASSERT_TRUE(outcome->ok()) << Describe(*outcome);
  EXPECT_EQ(*target_->Sql("SELECT count(*), min(id), max(id) FROM public.wide_keys", "big"),
            "100003|-9223372036854775808|9223372036854775807");
  // Constraints pgcourier built itself are real constraints.
  EXPECT_EQ(*target_->Sql("SELECT count(*) FROM pg_constraint WHERE conrelid IN "
                          "('public.wide_keys'::regclass, 'public.by_unique'::regclass)",
                          "big"),
            "2");
  EXPECT_FALSE(target_->Sql("INSERT INTO public.by_unique VALUES (1, 'dup')", "big").ok());
  EXPECT_GE(slices.size(), 3u) << "index builds are reported";
}

// A table whose COPY on the target takes a few seconds: its CHECK calls a
// function that sleeps on one row. The function is part of the schema, so
// the target gets it too, which gives tests a window in which the COPY runs.
constexpr const char* kSlowTable = R"sql(
  CREATE DATABASE slow;
  \c slow
  CREATE FUNCTION public.pause_on(id int, target int) RETURNS boolean LANGUAGE plpgsql AS $$
  BEGIN
    IF id = target THEN PERFORM pg_sleep(2); END IF;
    RETURN true;
  END $$;
  CREATE TABLE public.items (id int PRIMARY KEY, payload text,
                             CHECK (public.pause_on(id, 500)));
  INSERT INTO public.items SELECT g, repeat('x', 100) FROM generate_series(1, 1000) g;
  CREATE TABLE public.small (id int PRIMARY KEY);
  INSERT INTO public.small SELECT generate_series(1, 10);
)sql";

// Calls `action(pid)` once for the first target backend seen running the
// COPY into public.items, polling every 20 ms for at most 30 s.
void OnceCopyRuns(const PgCluster& target, const std::function<void(const std::string&)>& action) {
  for (int i = 0; i < 1500; ++i) {
    Result<std::string> pid = target.Sql(
        "SELECT pid FROM pg_stat_activity WHERE query LIKE '%COPY \"public\".\"items\"%FROM "
        "STDIN%' "
        "AND state = 'active' AND pid <> pg_backend_pid() LIMIT 1");
    if (pid.ok() && !pid->empty()) {
      action(*pid);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "the COPY into public.items was never seen running";
}

class MigrateInterruptionTest : public testing::SourceAndTargetTest {};

TEST_F(MigrateInterruptionTest, LostConnectionMidTableIsRetriedExactly) {
  ASSERT_NO_FATAL_FAILURE(StartServers());
  ASSERT_TRUE(source_->Sql(kSlowTable).ok());
  std::thread killer([this] {
    OnceCopyRuns(*target_, [this](const std::string& pid) {
      EXPECT_TRUE(target_->Sql("SELECT pg_terminate_backend(" + pid + ")").ok());
    });
  });
  Result<MigrationOutcome> outcome =
      Migrate(Options(ClusterConn(*source_, "slow"), ClusterConn(*target_), dir_));
  killer.join();
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  ASSERT_TRUE(outcome->ok()) << Describe(*outcome);
  const DatabaseOutcome& db = outcome->databases[0];
  auto items = std::find_if(db.tables.begin(), db.tables.end(),
                            [](const TableOutcome& t) { return t.table == "public.items"; });
  ASSERT_NE(items, db.tables.end());
  EXPECT_EQ(items->attempts, 2) << "copied again after the connection was lost";
  EXPECT_EQ(items->rows, 1000);
  EXPECT_EQ(*target_->Sql("SELECT count(*), count(DISTINCT id) FROM public.items", "slow"),
            "1000|1000");
}

TEST_F(MigrateInterruptionTest, CancelStopsPromptlyAndRecordsIt) {
  ASSERT_NO_FATAL_FAILURE(StartServers());
  ASSERT_TRUE(source_->Sql(kSlowTable).ok());
  CancelToken cancel;
  MigrateOptions options = Options(ClusterConn(*source_, "slow"), ClusterConn(*target_), dir_);
  options.check.cancel = &cancel;
  std::thread interrupter([this, &cancel] {
    OnceCopyRuns(*target_, [&cancel](const std::string&) { cancel.Cancel(); });
  });
  auto started = std::chrono::steady_clock::now();
  Result<MigrationOutcome> outcome = Migrate(options);
  interrupter.join();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30));
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_FALSE(outcome->ok());
  ASSERT_EQ(outcome->databases.size(), 1u);
  EXPECT_EQ(outcome->databases[0].state, "cancelled") << outcome->databases[0].error;
  // Nothing half-copied is committed, and the store says incomplete.
  EXPECT_EQ(*target_->Sql("SELECT count(*) FROM public.items", "slow"), "0");
  Result<std::unique_ptr<StateStore>> store = StateStore::OpenReadOnly(dir_);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Result<std::vector<StoredDatabase>> dbs = (*store)->Databases();
  ASSERT_TRUE(dbs.ok());
  ASSERT_EQ(dbs->size(), 1u);
  EXPECT_EQ((*dbs)[0].state, "cancelled");
  Result<std::optional<StoredRun>> run = (*store)->Run();
  ASSERT_TRUE(run.ok() && run->has_value());
  EXPECT_EQ((*run)->state, "cancelled");
}

}  // namespace
}  // namespace pgcourier

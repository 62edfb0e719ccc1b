// Partition trees hash partitioned on a key whose hash differs between
// servers: an enum (hashed by its labels' OIDs, which differ on the target),
// a custom operator class, and a hash level under a range root. Their rows
// are loaded through the topmost root, so each lands where the target's own
// hash puts it; verification compares each tree whole. Copied, killed and
// resumed, and replicated with writes going on: always exact.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "cli_runner.h"
#include "migrate/cutover.h"
#include "migrate/migration.h"
#include "pg/connection.h"
#include "pg_cluster.h"
#include "source_writer.h"
#include "state_names.h"
#include "two_servers.h"
#include "version_pairs.h"
#include "watch_helpers.h"

namespace pgcourier {
namespace {

using testing::PgCluster;
using testing::RunCli;

// Labels made and dropped first: the source's enum OIDs are then far from
// the ones the target gives the same labels, so rows hash elsewhere there.
constexpr const char* kMood = R"sql(
  CREATE TYPE public.burn AS ENUM ('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l',
                                   'm', 'n', 'o', 'p', 'q', 'r', 's', 't', 'u', 'v', 'w');
  DROP TYPE public.burn;
  CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy', 'ecstatic', 'bored', 'angry', 'calm');
)sql";

constexpr const char* kTrees = R"sql(
  CREATE TABLE public.hashed_enum (id int, m public.mood, v text, PRIMARY KEY (id, m))
    PARTITION BY HASH (m);
  CREATE TABLE public.hashed_enum_0 PARTITION OF public.hashed_enum
    FOR VALUES WITH (MODULUS 4, REMAINDER 0);
  CREATE TABLE public.hashed_enum_1 PARTITION OF public.hashed_enum
    FOR VALUES WITH (MODULUS 4, REMAINDER 1);
  CREATE TABLE public.hashed_enum_2 PARTITION OF public.hashed_enum
    FOR VALUES WITH (MODULUS 4, REMAINDER 2);
  CREATE TABLE public.hashed_enum_3 PARTITION OF public.hashed_enum
    FOR VALUES WITH (MODULUS 4, REMAINDER 3);
  INSERT INTO public.hashed_enum
    SELECT g, (pg_catalog.enum_range(NULL::public.mood))[1 + g % 7], 'row ' || g
      FROM generate_series(1, 700) g;

  -- Range at the top, hash on the enum one level down.
  CREATE TABLE public.nested (id int, m public.mood, v text, PRIMARY KEY (id, m))
    PARTITION BY RANGE (id);
  CREATE TABLE public.nested_low PARTITION OF public.nested FOR VALUES FROM (0) TO (1000)
    PARTITION BY HASH (m);
  CREATE TABLE public.nested_low_0 PARTITION OF public.nested_low
    FOR VALUES WITH (MODULUS 3, REMAINDER 0);
  CREATE TABLE public.nested_low_1 PARTITION OF public.nested_low
    FOR VALUES WITH (MODULUS 3, REMAINDER 1);
  CREATE TABLE public.nested_low_2 PARTITION OF public.nested_low
    FOR VALUES WITH (MODULUS 3, REMAINDER 2);
  CREATE TABLE public.nested_high PARTITION OF public.nested FOR VALUES FROM (1000) TO (2000);
  INSERT INTO public.nested
    SELECT g, (pg_catalog.enum_range(NULL::public.mood))[1 + g % 7], 'n' || g
      FROM generate_series(0, 1999, 5) g;

  -- A hash operator class of the user's own.
  CREATE FUNCTION public.my_int_hash(int4, int8) RETURNS int8
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT $1::int8 * 7 + $2 $$;
  CREATE OPERATOR CLASS public.my_int_ops FOR TYPE int4 USING hash AS
    OPERATOR 1 =, FUNCTION 2 public.my_int_hash(int4, int8);
  CREATE TABLE public.custom_hash (id int, v text) PARTITION BY HASH (id public.my_int_ops);
  CREATE TABLE public.custom_hash_0 PARTITION OF public.custom_hash
    FOR VALUES WITH (MODULUS 3, REMAINDER 0);
  CREATE TABLE public.custom_hash_1 PARTITION OF public.custom_hash
    FOR VALUES WITH (MODULUS 3, REMAINDER 1);
  CREATE TABLE public.custom_hash_2 PARTITION OF public.custom_hash
    FOR VALUES WITH (MODULUS 3, REMAINDER 2);
  INSERT INTO public.custom_hash SELECT g, 'c' || g FROM generate_series(1, 300) g;

  -- Hashed on a built-in type: copied partition to partition as before.
  CREATE TABLE public.plain_hash (id int PRIMARY KEY, v text) PARTITION BY HASH (id);
  CREATE TABLE public.plain_hash_0 PARTITION OF public.plain_hash
    FOR VALUES WITH (MODULUS 2, REMAINDER 0);
  CREATE TABLE public.plain_hash_1 PARTITION OF public.plain_hash
    FOR VALUES WITH (MODULUS 2, REMAINDER 1);
  INSERT INTO public.plain_hash SELECT g, 'p' || g FROM generate_series(1, 200) g;
)sql";

// A tree's rows, read at its root: count and a checksum of every row.
std::string TreeFingerprint(const PgCluster& cluster, const std::string& db,
                            const std::string& root) {
  Result<std::string> out = cluster.Sql(
      "SELECT count(*) || ':' || coalesce(sum(hashtext(t::text)), 0) FROM " + root + " t", db);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  return out.ok() ? *out : "";
}

// Which partition holds each row.
std::string Placement(const PgCluster& cluster, const std::string& db, const std::string& root) {
  Result<std::string> out = cluster.Sql(
      "SELECT string_agg(t::text || ' ' || tableoid::regclass, ', ' ORDER BY t::text) FROM " +
          root + " t",
      db);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  return out.ok() ? *out : "";
}

constexpr const char* kRoots[] = {"public.hashed_enum", "public.nested", "public.custom_hash",
                                  "public.plain_hash"};

class PartitionRootTest : public testing::VersionPairTest {};

TEST_P(PartitionRootTest, HashTreesLoadThroughTheirRootAndVerifyWhole) {
  ASSERT_TRUE(source_->Sql("CREATE DATABASE shop").ok());
  ASSERT_TRUE(source_->Sql(std::string(kMood) + kTrees, "shop").ok());

  ProcessResult migrated =
      RunCli({"migrate", "--source", source_->ConnString("shop"), "--target",
              target_->ConnString("postgres"), "--dir", dir_, "--method", "copy", "--jobs", "2"});
  ASSERT_EQ(migrated.exit_code, 0) << migrated.out << migrated.err;
  const std::string said = migrated.out + migrated.err;
  for (const char* root : {"public.hashed_enum", "public.nested", "public.custom_hash"}) {
    EXPECT_NE(said.find(std::string("loaded through the root ") + root), std::string::npos)
        << root << "\n"
        << said;
  }
  EXPECT_NE(said.find("public.nested_low is hash partitioned on type public.mood"),
            std::string::npos)
      << said;
  EXPECT_NE(said.find("operator class public.my_int_ops"), std::string::npos) << said;
  EXPECT_EQ(said.find("loaded through the root public.plain_hash"), std::string::npos) << said;

  for (const char* root : kRoots) {
    EXPECT_EQ(TreeFingerprint(*target_, "shop", root), TreeFingerprint(*source_, "shop", root))
        << root;
  }
  // The enum's rows sit in other partitions on the target: a copy partition
  // to partition could not have loaded them.
  EXPECT_NE(Placement(*target_, "shop", "public.hashed_enum"),
            Placement(*source_, "shop", "public.hashed_enum"));
  EXPECT_EQ(Placement(*target_, "shop", "public.plain_hash"),
            Placement(*source_, "shop", "public.plain_hash"));
  // The leaves' own indexes were restored: the primary key is enforced.
  EXPECT_FALSE(target_->Sql("INSERT INTO public.hashed_enum VALUES (1, 'ok', 'x')", "shop").ok());

  // The verification on its own compares each such tree whole, and says so.
  ProcessResult verified = RunCli({"verify", "--source", source_->ConnString("shop"), "--target",
                                   target_->ConnString("shop"), "--json"});
  EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
  nlohmann::json report = nlohmann::json::parse(verified.out, nullptr, false);
  ASSERT_FALSE(report.is_discarded()) << verified.out;
  std::map<std::string, nlohmann::json> tables;
  for (const auto& t : report["databases"][0]["tables"]) {
    tables[t["schema"].get<std::string>() + "." + t["name"].get<std::string>()] = t;
  }
  for (const char* root : {"public.hashed_enum", "public.nested", "public.custom_hash"}) {
    ASSERT_EQ(tables.count(root), 1u) << root << verified.out;
    EXPECT_TRUE(tables[root]["partition_tree"].get<bool>()) << root;
    EXPECT_TRUE(tables[root]["match"].get<bool>()) << root;
  }
  EXPECT_EQ(tables[std::string("public.hashed_enum")]["source_rows"], 700);
  EXPECT_EQ(tables.count("public.hashed_enum_0"), 0u) << "its partitions are not compared alone";
  EXPECT_EQ(tables.count("public.nested_high"), 0u);
  EXPECT_EQ(tables.count("public.plain_hash_0"), 1u) << "other partitions are compared alone";
  ProcessResult text = RunCli({"verify", "--source", source_->ConnString("shop"), "--target",
                               target_->ConnString("shop"), "--all"});
  EXPECT_NE(text.out.find("whole partition tree, compared at its root"), std::string::npos)
      << text.out;

  // A row missing from one target partition is found by the comparison.
  ASSERT_TRUE(target_->Sql("DELETE FROM public.hashed_enum WHERE id = 7", "shop").ok());
  ProcessResult differs = RunCli(
      {"verify", "--source", source_->ConnString("shop"), "--target", target_->ConnString("shop")});
  EXPECT_NE(differs.exit_code, 0) << differs.out;
  EXPECT_NE(differs.out.find("public.hashed_enum"), std::string::npos) << differs.out;
}

INSTANTIATE_TEST_SUITE_P(Versions, PartitionRootTest, ::testing::ValuesIn(testing::TargetMajors()),
                         testing::VersionPairName);

// A tree large enough that its partitions commit one after another.
constexpr const char* kBigTree = R"sql(
  CREATE TABLE public.big_tree (id int, m public.mood, payload text, PRIMARY KEY (id, m))
    PARTITION BY HASH (m);
  CREATE TABLE public.big_tree_0 PARTITION OF public.big_tree FOR VALUES WITH (MODULUS 6, REMAINDER 0);
  CREATE TABLE public.big_tree_1 PARTITION OF public.big_tree FOR VALUES WITH (MODULUS 6, REMAINDER 1);
  CREATE TABLE public.big_tree_2 PARTITION OF public.big_tree FOR VALUES WITH (MODULUS 6, REMAINDER 2);
  CREATE TABLE public.big_tree_3 PARTITION OF public.big_tree FOR VALUES WITH (MODULUS 6, REMAINDER 3);
  CREATE TABLE public.big_tree_4 PARTITION OF public.big_tree FOR VALUES WITH (MODULUS 6, REMAINDER 4);
  CREATE TABLE public.big_tree_5 PARTITION OF public.big_tree FOR VALUES WITH (MODULUS 6, REMAINDER 5);
  INSERT INTO public.big_tree
    SELECT g, (pg_catalog.enum_range(NULL::public.mood))[1 + g % 7], repeat(md5(g::text), 4)
      FROM generate_series(1, 300000) g;
)sql";

class PartitionRootResumeTest : public testing::SourceAndTargetTest {
 protected:
  void SetUp() override {
    testing::SourceAndTargetOptions options;
    options.database = "shop";
    options.database_sql = std::string(kMood) + kTrees + kBigTree;
    ASSERT_NO_FATAL_FAILURE(StartServers(options));
  }
};

TEST_F(PartitionRootResumeTest, KilledMidTreeThenResumedEndsExact) {
  const std::vector<std::string> args = {"migrate",
                                         "--source",
                                         source_->ConnString("shop"),
                                         "--target",
                                         target_->ConnString("postgres"),
                                         "--dir",
                                         dir_,
                                         "--jobs",
                                         "2",
                                         "--method",
                                         "copy",
                                         "--quiet"};
  std::unique_ptr<Connection> shop;
  bool killed = false;
  {
    testing::BackgroundRun run(args);
    // Killed once some of big_tree's partitions are committed and others not.
    killed = run.KillWhen(
        [&] {
          return testing::PartlyCopied(shop, target_->ConnString("shop"), R"("public"."big_tree")");
        },
        std::chrono::milliseconds(2));
    const Result<ProcessResult>& ran = run.Join();
    ASSERT_TRUE(ran.ok()) << ran.status().ToString();
    if (killed) {
      EXPECT_EQ(ran->signal, SIGKILL) << ran->err;
    }
  }
  shop.reset();
  ASSERT_TRUE(killed) << "a partly copied tree was never seen";
  // Rows of the committed partitions are on the target, spread over its
  // partitions.
  EXPECT_NE(*target_->Sql("SELECT count(*) FROM public.big_tree", "shop"), "0");

  ProcessResult resumed = RunCli({"migrate", "--resume", "--dir", dir_});
  EXPECT_EQ(resumed.exit_code, 0) << resumed.out << resumed.err;
  EXPECT_NE(resumed.err.find("public.big_tree: partly copied by the interrupted run"),
            std::string::npos)
      << resumed.err;
  for (const char* root : {"public.big_tree", "public.hashed_enum", "public.nested"}) {
    EXPECT_EQ(TreeFingerprint(*target_, "shop", root), TreeFingerprint(*source_, "shop", root))
        << root;
  }
  EXPECT_EQ(*target_->Sql("SELECT count(*) FROM public.big_tree", "shop"), "300000");
  EXPECT_EQ(*target_->Sql("SELECT count(*) FROM pg_namespace WHERE nspname = '_pgcourier'", "shop"),
            "0")
      << "no progress marks left";
}

// Replication: writes to an enum hash tree (inserts, updates that move a row
// to another partition, deletes) while the bulk copy runs and while
// replication follows, then cutover: the target equals the source.
constexpr const char* kReplicated = R"sql(
  CREATE TABLE public.no_key_tree (id int, m public.mood) PARTITION BY HASH (m);
  CREATE TABLE public.no_key_tree_0 PARTITION OF public.no_key_tree
    FOR VALUES WITH (MODULUS 2, REMAINDER 0);
  CREATE TABLE public.no_key_tree_1 PARTITION OF public.no_key_tree
    FOR VALUES WITH (MODULUS 2, REMAINDER 1);
  INSERT INTO public.no_key_tree
    SELECT g, (pg_catalog.enum_range(NULL::public.mood))[1 + g % 7] FROM generate_series(1, 300) g;
)sql";

class PartitionRootReplicationTest : public testing::SourceAndTargetFixture<::testing::Test> {
 protected:
  void SetUp() override {
    testing::SourceAndTargetOptions options;
    options.logical_source = true;
    options.database = "shop";
    options.database_sql = std::string(kMood) + kTrees + kReplicated;
    ASSERT_NO_FATAL_FAILURE(StartServers(options));
  }
  void StartWriter() {
    auto random = std::make_shared<std::mt19937>(7);
    writer_ =
        std::make_unique<testing::SourceWriter>(source_->ConnString("shop"), [random](int round) {
          const int id = 1 + static_cast<int>((*random)() % 700);
          return fmt::format(
              "BEGIN; INSERT INTO public.hashed_enum VALUES ({0} + 1000, "
              "(pg_catalog.enum_range(NULL::public.mood))[1 + {0} % 7], 'written'); "
              "UPDATE public.hashed_enum SET m = (pg_catalog.enum_range(NULL::public.mood))"
              "[1 + (m::text = 'sad')::int], v = v || 'u' WHERE id = {1}; "
              "DELETE FROM public.hashed_enum WHERE id = {2}; "
              "UPDATE public.nested SET v = v || 'u' WHERE id = {3}; "
              "INSERT INTO public.no_key_tree VALUES ({0}, 'calm'); COMMIT;",
              round, id, (id + 350) % 700, (id * 5) % 2000);
        });  // until cutover stops writes
  }

  std::unique_ptr<testing::SourceWriter> writer_;
};

TEST_F(PartitionRootReplicationTest, WritesWhileSyncingArriveThroughTheRoot) {
  StartWriter();
  writer_->WaitForWrites(20);
  ASSERT_NO_FATAL_FAILURE(
      testing::StartReplicating(MigrationOptions("shop", Method::kReplication)));
  EXPECT_EQ(*source_->Sql("SELECT bool_and(pubviaroot) FROM pg_publication", "shop"), "t");
  writer_->WaitForWrites(writer_->writes() + 100);

  CutoverOptions cut;
  cut.work_dir = dir_;
  cut.stop_source_writes = true;
  cut.timeout = std::chrono::seconds(60);
  cut.connect_timeout = std::chrono::seconds(10);
  Result<CutoverOutcome> cutover = Cutover(cut);
  ASSERT_TRUE(cutover.ok()) << cutover.status().ToString();
  writer_->Stop();
  ASSERT_EQ(cutover->databases.size(), 1u);
  const CutoverDatabase& done = cutover->databases[0];
  std::string differences;
  if (done.verification) {
    for (const auto& t : done.verification->tables) {
      if (!t.match()) differences += " table " + t.name + " " + t.error;
    }
  }
  ASSERT_EQ(done.state, "done") << done.error << differences;
  // Without a key, both are replicated for inserts and truncates through
  // their root: no_key_tree's inserts arrived so, and neither saw an update
  // or delete, so neither is copied again.
  EXPECT_EQ(done.tables_recopied, 0);
  ASSERT_EQ(done.append_only.size(), 2u);
  for (const auto& t : done.append_only) EXPECT_FALSE(t.recopied) << t.table << ": " << t.why;
  for (const char* root :
       {"public.hashed_enum", "public.nested", "public.custom_hash", "public.no_key_tree"}) {
    EXPECT_EQ(TreeFingerprint(*target_, "shop", root), TreeFingerprint(*source_, "shop", root))
        << root;
  }
  EXPECT_EQ(*target_->Sql("SELECT count(*) FROM public.hashed_enum WHERE v = 'written'", "shop"),
            *source_->Sql("SELECT count(*) FROM public.hashed_enum WHERE v = 'written'", "shop"));
}

}  // namespace
}  // namespace pgcourier

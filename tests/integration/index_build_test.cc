// The index builds of one table run at once: a table's primary key is built
// while another of its indexes is still being built, and its ALTER TABLE
// waits for that build without losing its own. Runs the real binary.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "cli_runner.h"
#include "pg/connection.h"
#include "pg_cluster.h"
#include "two_servers.h"

namespace pgcourier {
namespace {

using testing::BackgroundRun;

// A table too big to be copied with its indexes in one task (over 16 MB),
// with a primary key and an index whose build waits on the row id = 1 for
// as long as a session named "index gate" is connected to the server. The
// gated index's name sorts first: its build is submitted first.
constexpr const char* kShop = R"sql(
  CREATE FUNCTION public.gated(id bigint) RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $$
  BEGIN
    IF id = 1 THEN
      LOOP
        PERFORM pg_catalog.pg_stat_clear_snapshot();
        EXIT WHEN NOT EXISTS (SELECT FROM pg_catalog.pg_stat_activity
                              WHERE application_name = 'index gate');
        PERFORM pg_catalog.pg_sleep(0.05);
      END LOOP;
    END IF;
    RETURN id;
  END $$;
  CREATE TABLE public.events (id bigint PRIMARY KEY, payload text NOT NULL);
  INSERT INTO public.events SELECT g, repeat(md5(g::text), 6) FROM generate_series(1, 200000) g;
  CREATE INDEX events_a_gated ON public.events (public.gated(id));
)sql";

class IndexBuildTest : public testing::SourceAndTargetTest {
 protected:
  void SetUp() override {
    testing::SourceAndTargetOptions options;
    options.database = "shop";
    options.database_sql = kShop;
    ASSERT_NO_FATAL_FAILURE(StartServers(options));
  }
};

TEST_F(IndexBuildTest, ThePrimaryKeyIsBuiltWhileAnotherIndexOfItsTableIs) {
  // The gate is closed from before the run until both builds were seen
  // holding their SHARE lock at once.
  ConnectOptions gate_options;
  gate_options.application_name = "index gate";
  Result<std::unique_ptr<Connection>> gate =
      Connection::Connect(*ConnInfo::Parse(target_->ConnString("postgres")), gate_options);
  ASSERT_TRUE(gate.ok()) << gate.status().ToString();
  Result<std::unique_ptr<Connection>> probe =
      Connection::Connect(*ConnInfo::Parse(target_->ConnString("postgres")), {});
  ASSERT_TRUE(probe.ok()) << probe.status().ToString();

  BackgroundRun run({"migrate", "--source", source_->ConnString("shop"), "--target",
                     target_->ConnString("postgres"), "--dir", dir_, "--jobs", "2", "--quiet"});
  // Two of pgcourier's sessions holding a SHARE lock (CREATE INDEX's) in
  // the target's shop at once: the gated build and the primary key's, whose
  // index is built and whose ALTER TABLE waits. Serialized builds never
  // show two. The limit only ends a run that would never show them.
  bool both = false;
  const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (!both && !run.ended() && std::chrono::steady_clock::now() < limit) {
    Result<QueryResult> holders = (*probe)->Exec(
        "SELECT count(DISTINCT l.pid) FROM pg_catalog.pg_locks l "
        "JOIN pg_catalog.pg_database d ON d.oid = l.database "
        "JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid "
        "WHERE d.datname = 'shop' AND l.locktype = 'relation' AND l.granted "
        "AND l.mode = 'ShareLock' AND a.application_name = 'pgcourier'");
    ASSERT_TRUE(holders.ok()) << holders.status().ToString();
    both = holders->GetInt(0, 0) >= 2;
    if (!both) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  gate->reset();
  const Result<ProcessResult>& ran = run.Join();
  ASSERT_TRUE(ran.ok()) << ran.status().ToString();
  EXPECT_EQ(ran->exit_code, 0) << ran->out << ran->err;
  EXPECT_TRUE(both) << "the primary key was not built beside the other index of its table";
  EXPECT_EQ(*target_->Sql("SELECT count(*) FROM pg_constraint WHERE contype = 'p' "
                          "AND conrelid = 'public.events'::regclass",
                          "shop"),
            "1");
  EXPECT_EQ(*target_->Sql("SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'", "shop"),
            "2");
  EXPECT_EQ(*target_->Sql("SELECT count(*) FROM public.events", "shop"), "200000");
  EXPECT_EQ(*target_->Sql("SELECT count(*) FROM pg_namespace WHERE nspname = '_pgcourier'", "shop"),
            "0")
      << "no progress marks left";
}

// Two builds that alter one table (a primary key and a unique constraint),
// the table's only work left, run one at a time: side by side, each would
// hold its SHARE lock waiting for the other's to go, a deadlock the server
// ends by failing one (then tried again).
TEST_F(IndexBuildTest, TwoConstraintsOfOneTableAreBuiltWithoutADeadlock) {
  ASSERT_TRUE(source_
                  ->Sql("DROP TABLE public.events; "
                        "CREATE TABLE public.pairs (id bigint PRIMARY KEY, "
                        "code bigint NOT NULL UNIQUE, payload text NOT NULL); "
                        "INSERT INTO public.pairs SELECT g, -g, repeat(md5(g::text), 6) "
                        "FROM generate_series(1, 200000) g",
                        "shop")
                  .ok());
  ProcessResult ran =
      testing::RunCli({"migrate", "--source", source_->ConnString("shop"), "--target",
                       target_->ConnString("postgres"), "--dir", dir_, "--jobs", "2"});
  EXPECT_EQ(ran.exit_code, 0) << ran.out << ran.err;
  EXPECT_EQ(ran.err.find("trying again"), std::string::npos) << ran.err;
  EXPECT_EQ(ran.err.find("deadlock"), std::string::npos) << ran.err;
  EXPECT_EQ(*target_->Sql("SELECT count(*) FROM pg_constraint WHERE contype IN ('p', 'u') "
                          "AND conrelid = 'public.pairs'::regclass",
                          "shop"),
            "2");
}

}  // namespace
}  // namespace pgcourier

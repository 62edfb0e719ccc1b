// One migration at a time per target database (schema/target_claim.h): a
// second run into a database another run is writing stops at once, says
// so, and touches nothing.
#include "schema/target_claim.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "cli_runner.h"
#include "pg/connection.h"
#include "pg/conninfo.h"
#include "two_servers.h"

namespace pgcourier {
namespace {

using testing::BackgroundRun;
using testing::RunCli;

std::unique_ptr<Connection> Open(const std::string& conninfo) {
  Result<ConnInfo> info = ConnInfo::Parse(conninfo);
  EXPECT_TRUE(info.ok());
  if (!info.ok()) return nullptr;
  Result<std::unique_ptr<Connection>> conn = Connection::Connect(*info, ConnectOptions{});
  EXPECT_TRUE(conn.ok()) << conn.status().ToString();
  return conn.ok() ? std::move(*conn) : nullptr;
}

class TargetClaimTest : public testing::SourceAndTargetTest {
 protected:
  void SetUp() override {
    testing::SourceAndTargetOptions options;
    options.database = "shop";
    options.database_sql =
        "CREATE TABLE public.items (id int PRIMARY KEY);"
        "INSERT INTO public.items SELECT generate_series(1, 100)";
    ASSERT_NO_FATAL_FAILURE(StartServers(options));
  }
};

TEST_F(TargetClaimTest, ASecondMigrationIntoADatabaseBeingWrittenStopsAtOnce) {
  // The first run waits on the source's table (after claiming the target
  // database, before writing there) for as long as the test holds this lock.
  auto blocker = Open(source_->ConnString("shop"));
  ASSERT_NE(blocker, nullptr);
  ASSERT_TRUE(blocker->Run("BEGIN; LOCK TABLE public.items IN ACCESS EXCLUSIVE MODE").ok());
  const std::string source = source_->ConnString("shop");
  const std::string target = target_->ConnString("shop");
  BackgroundRun first({"migrate", "--source", source, "--target", target, "--dir", dir_, "--method",
                       "copy", "--no-schema-trial"});

  auto watcher = Open(target_->ConnString("postgres"));
  ASSERT_NE(watcher, nullptr);
  std::optional<ClaimHolder> holder;
  for (int i = 0; i < 1500 && !holder && !first.ended(); ++i) {
    Result<std::optional<ClaimHolder>> found = FindTargetClaim(*watcher, "shop");
    ASSERT_TRUE(found.ok()) << found.status().ToString();
    holder = *found;
    if (!holder) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(holder.has_value()) << "the first run never claimed the target database";
  EXPECT_EQ(holder->application, "pgcourier");

  // The second run, into the same database: refused by its check, before
  // anything is written, naming the first run's session.
  ProcessResult second = RunCli({"migrate", "--source", source, "--target", target, "--dir",
                                 dir_ + "-second", "--method", "copy", "--no-schema-trial"});
  EXPECT_EQ(second.exit_code, 1) << second.out << second.err;
  const std::string said = second.out + second.err;
  EXPECT_NE(said.find("another migration is writing database shop"), std::string::npos) << said;
  EXPECT_NE(said.find("pid " + std::to_string(holder->pid)), std::string::npos) << said;
  EXPECT_EQ(said.find("encoding"), std::string::npos) << said;

  // A claim taken between the second run's check and its first write fails
  // the same way; another database is free.
  auto late = Open(target_->ConnString("postgres"));
  ASSERT_NE(late, nullptr);
  Status taken = TakeTargetClaim(*late, "shop");
  EXPECT_NE(taken.message().find("another migration is writing database shop"), std::string::npos)
      << taken.ToString();
  EXPECT_TRUE(TakeTargetClaim(*late, "other").ok());

  // The first run goes on once the source's table is free.
  ASSERT_TRUE(blocker->Run("ROLLBACK").ok());
  ProcessResult done = first.Wait();
  EXPECT_EQ(done.exit_code, 0) << done.out << done.err;
  Result<std::string> rows = target_->Sql("SELECT count(*) FROM public.items", "shop");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(*rows, "100");
}

}  // namespace
}  // namespace pgcourier

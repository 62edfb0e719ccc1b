// The sessions a migration opens, counted on both servers while it runs:
// never more than `check` budgets (MigrationSessions), also with several
// databases in flight that share the run's job pool.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "migrate/migration.h"
#include "pg/connection.h"
#include "preflight/check.h"
#include "state_names.h"
#include "two_servers.h"

namespace pgcourier {
namespace {

// Sessions of pgcourier and the tools it runs (client backends only: a
// walsender or an apply worker is not a connection slot's user).
constexpr const char* kCountSql =
    "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE backend_type = 'client backend' "
    "AND application_name IN ('pgcourier', 'pg_dump', 'pg_restore')";

class SessionsTest : public testing::SourceAndTargetTest {};

TEST_F(SessionsTest, SeveralDatabasesInFlightStayWithinTheBudget) {
  ASSERT_NO_FATAL_FAILURE(StartServers());
  constexpr int kDatabases = 3;
  constexpr int kJobs = 2;
  for (int d = 0; d < kDatabases; ++d) {
    std::string sql = fmt::format("CREATE DATABASE db{};", d);
    ASSERT_TRUE(source_->Sql(sql).ok());
    std::string tables;
    for (int t = 0; t < 6; ++t) {
      tables += fmt::format(
          "CREATE TABLE public.t{0} (id int PRIMARY KEY, v text); CREATE INDEX ON public.t{0} (v);"
          "INSERT INTO public.t{0} SELECT g, repeat(md5(g::text), 4) FROM "
          "generate_series(1, 30000) g;",
          t);
    }
    Result<std::string> made = source_->Sql(tables, fmt::format("db{}", d));
    ASSERT_TRUE(made.ok()) << made.status().ToString();
  }

  Result<ConnInfo> source_info = ConnInfo::Parse(source_->ConnString());
  Result<ConnInfo> target_info = ConnInfo::Parse(target_->ConnString());
  ASSERT_TRUE(source_info.ok() && target_info.ok());
  ConnectOptions watcher;
  watcher.application_name = "sessions-watcher";
  Result<std::unique_ptr<Connection>> on_source = Connection::Connect(*source_info, watcher);
  Result<std::unique_ptr<Connection>> on_target = Connection::Connect(*target_info, watcher);
  ASSERT_TRUE(on_source.ok() && on_target.ok());

  std::atomic<bool> running{true};
  int64_t source_peak = 0;
  int64_t target_peak = 0;
  std::thread watch([&] {
    while (running) {
      Result<QueryResult> s = (*on_source)->Exec(kCountSql);
      Result<QueryResult> t = (*on_target)->Exec(kCountSql);
      if (s.ok()) source_peak = std::max(source_peak, s->GetInt(0, 0));
      if (t.ok()) target_peak = std::max(target_peak, t->GetInt(0, 0));
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });

  MigrateOptions options;
  options.check.source = source_->ConnString();
  options.check.target = target_->ConnString();
  options.check.method = Method::kCopy;
  options.check.jobs = kJobs;
  options.check.include_databases = {"db*"};
  options.work_dir = dir_;
  Result<MigrationOutcome> outcome = Migrate(options);
  running = false;
  watch.join();
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  ASSERT_TRUE(outcome->ok());
  ASSERT_EQ(outcome->databases.size(), static_cast<size_t>(kDatabases));
  for (const auto& db : outcome->databases) EXPECT_EQ(db.state, "done") << db.name << db.error;

  const SessionBudget budget = MigrationSessions(kJobs, kDatabases);
  EXPECT_GT(source_peak, 0);
  EXPECT_GT(target_peak, 0);
  EXPECT_LE(source_peak, budget.source) << "sessions on the source at once";
  EXPECT_LE(target_peak, budget.target) << "sessions on the target at once";
  std::cerr << fmt::format("peak sessions: source {} of {}, target {} of {}\n", source_peak,
                           budget.source, target_peak, budget.target);
}

}  // namespace
}  // namespace pgcourier

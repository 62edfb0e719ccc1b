// Reading a recorded run: ReadStatus on a real catalog, and the overall state
// it implies as the run's process holds and lets go of the directory.
#include "migrate/run_status.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

#include "state/store.h"
#include "state_names.h"

namespace pgcourier {
namespace {

TEST(RunStatusTest, ReadStatusFromACatalog) {
  std::string pattern = (std::filesystem::temp_directory_path() / "pgc-status-XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  const std::string dir = pattern;

  Result<StatusView> missing = ReadStatus(dir + "/nope", false);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);

  {
    auto store = StateStore::OpenForRun(dir);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    StoredRun run;
    run.source = "host=a";
    run.target = "host=b";
    ASSERT_TRUE((*store)->BeginRun(run).ok());
    StoredDatabase db;
    db.name = "shop";
    db.target_name = "shop";
    db.state = DatabaseState::kCopying;
    ASSERT_TRUE((*store)->PutDatabase(db).ok());
    StoredStep step;
    step.database = "shop";
    step.kind = StepKind::kCopy;
    step.object = "public.t";
    ASSERT_TRUE((*store)->PutStep(step).ok());

    Result<StatusView> view = ReadStatus(dir, true);
    ASSERT_TRUE(view.ok()) << view.status().ToString();
    EXPECT_TRUE(view->live);
    EXPECT_EQ(OverallState(*view), "running");
    ASSERT_EQ(view->databases.size(), 1u);
    ASSERT_EQ(view->steps["shop"].size(), 1u);
    EXPECT_EQ(view->steps["shop"][0].object, "public.t");

    Result<StatusView> without = ReadStatus(dir, false);
    ASSERT_TRUE(without.ok());
    EXPECT_TRUE(without->steps.empty());
  }
  // The process let go without finishing the run.
  Result<StatusView> view = ReadStatus(dir, false);
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  EXPECT_FALSE(view->live);
  EXPECT_EQ(OverallState(*view), "interrupted");
  {
    auto store = StateStore::OpenForRun(dir);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->FinishRun(RunState::kDone, "").ok());
  }
  view = ReadStatus(dir, false);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(OverallState(*view), "done");
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace pgcourier

// The parts of migrate/ and copy/ that need no server: slice planning, the
// lock-conflict table, the recorded options' round trip, the job pool's
// order and the session pool's cap, what a standby's recovery conflict and
// an open transaction are said to be, the load sessions' maintenance_work_mem.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "catalog/open_transactions.h"
#include "copy/slice_plan.h"
#include "migrate/disk_full.h"
#include "migrate/lock_waits.h"
#include "migrate/recorded_run.h"
#include "migrate/session_pool.h"
#include "migrate/sessions.h"
#include "migrate/standby_source.h"
#include "migrate/work_pool.h"
#include "state_names.h"

namespace pgcourier {
namespace {

constexpr int64_t kMiB = int64_t{1} << 20;

TEST(OutOfSpaceTest, AFullDiskEndsWithFreeSpaceAndTheResumeHint) {
  const Status copy(StatusCode::kServerError,
                    "data: public.items: could not extend file \"base/16384/16385\": No space "
                    "left on device",
                    "", "53100");
  Status explained = ExplainOutOfSpace(copy, "/w/run");
  EXPECT_EQ(explained.message(), copy.message());
  EXPECT_EQ(explained.sqlstate(), "53100");
  EXPECT_NE(explained.hint().find("free space on the target"), std::string::npos)
      << explained.hint();
  EXPECT_NE(explained.hint().find("pgcourier migrate --resume --dir /w/run"), std::string::npos)
      << explained.hint();
  // pg_restore's words, without an SQLSTATE of its own.
  EXPECT_TRUE(IsOutOfSpace(Status(StatusCode::kIoError,
                                  "pg_restore: error: could not execute query: ERROR:  could "
                                  "not extend file: No space left on device")));
  EXPECT_TRUE(IsOutOfSpace(Status(StatusCode::kServerError, "out of memory", "", "53200")));
  // Not about space: too many connections, a lock timeout, a success.
  for (const Status& other :
       {Status(StatusCode::kConnectionFailed, "too many clients", "", "53300"),
        Status(StatusCode::kServerError, "lock timeout", "", "55P03"), Status::Ok()}) {
    EXPECT_FALSE(IsOutOfSpace(other)) << other.ToString();
    EXPECT_EQ(ExplainOutOfSpace(other, "/w").hint(), other.hint());
  }
}

TEST(SlicePlanTest, SliceBytesGrowsWithTheJobsShare) {
  EXPECT_EQ(SliceBytes(256 * kMiB, 100 * kMiB, 2), 256 * kMiB);
  // 16 GiB over 2 jobs: a quarter of a job's share is 2 GiB.
  EXPECT_EQ(SliceBytes(256 * kMiB, 16384 * kMiB, 2), 2048 * kMiB);
}

// A slice costs both servers more per row than a whole table's copy (no
// bulk-read ring on the source, no FREEZE on the target), so by default a
// table is cut only from 1.5 GB: pgbench_accounts at scale 100 (1.28 GB of
// 1.9 GB, 2 jobs) goes whole, a 4 GB table in 4 slices.
TEST(SlicePlanTest, ByDefaultOnlyTablesOfGigabytesAreSliced) {
  const int64_t split = MigrateOptions().split_bytes;
  EXPECT_EQ(split, 1024 * kMiB);
  EXPECT_EQ(SliceCount(1310 * kMiB, SliceBytes(split, 1925 * kMiB, 2)), 0);
  EXPECT_EQ(SliceCount(1536 * kMiB, SliceBytes(split, 1536 * kMiB, 2)), 0);
  EXPECT_EQ(SliceCount(4096 * kMiB, SliceBytes(split, 4096 * kMiB, 2)), 4);
}

// The slices of a table come in a multiple of the jobs, so the last ones
// run side by side: 3 GB at 1 GB slices over 2 jobs is 4 slices, not 3,
// the last of which would run alone.
TEST(SlicePlanTest, SlicesComeInMultiplesOfTheJobs) {
  EXPECT_EQ(SliceCount(3072 * kMiB, 1024 * kMiB, 2), 4);
  EXPECT_EQ(SliceCount(3072 * kMiB, 1024 * kMiB, 3), 3);
  EXPECT_EQ(SliceCount(5000 * kMiB, 1024 * kMiB, 4), 8);
  EXPECT_EQ(SliceCount(1536 * kMiB, 1024 * kMiB, 2), 0);  // whole, as before
  EXPECT_EQ(SliceCount(100000 * kMiB, 1 * kMiB, 3), 63);  // kMaxSlices, a multiple of 3
}

TEST(SlicePlanTest, SmallTablesAreCopiedWhole) {
  EXPECT_EQ(SliceCount(0, 256 * kMiB), 0);
  EXPECT_EQ(SliceCount(384 * kMiB, 256 * kMiB), 0);  // exactly 1.5 slices
  EXPECT_EQ(SliceCount(384 * kMiB + 1, 256 * kMiB), 2);
  EXPECT_EQ(SliceCount(1000 * kMiB, 256 * kMiB), 4);
  EXPECT_EQ(SliceCount(int64_t{1} << 40, 256 * kMiB), kMaxSlices);
  EXPECT_EQ(SliceCount(1000 * kMiB, 0), 0);
}

TEST(SlicePlanTest, BlockSlicesCoverEveryBlockOnce) {
  std::vector<Slice> slices = BlockSlices(1000, 3);
  ASSERT_EQ(slices.size(), 3U);
  EXPECT_EQ(slices[0].first, 0);
  EXPECT_EQ(slices[0].last, 333);
  EXPECT_EQ(slices[1].first, 333);
  EXPECT_EQ(slices[1].last, 666);
  EXPECT_EQ(slices[2].first, 666);
  EXPECT_EQ(slices[2].last, -1);  // open-ended: reads to the end
  for (const auto& s : slices) EXPECT_EQ(s.kind, Slice::Kind::kBlocks);
}

TEST(SlicePlanTest, TooFewBlocksMeanNoSlices) {
  EXPECT_TRUE(BlockSlices(1, 8).empty());
  EXPECT_TRUE(BlockSlices(0, 8).empty());
  EXPECT_EQ(BlockSlices(2, 8).size(), 2U);
}

TEST(SlicePlanTest, KeySlicesCoverTheRangeWithoutGaps) {
  std::vector<Slice> slices = KeySlices(1, 10, 3);
  ASSERT_EQ(slices.size(), 3U);
  EXPECT_EQ(slices.front().first, 1);
  EXPECT_EQ(slices.back().last, 10);
  for (size_t i = 1; i < slices.size(); ++i) {
    EXPECT_EQ(slices[i].first, slices[i - 1].last + 1);
  }
}

TEST(SlicePlanTest, KeySlicesOfTheWholeInt64Range) {
  const int64_t lo = std::numeric_limits<int64_t>::min();
  const int64_t hi = std::numeric_limits<int64_t>::max();
  std::vector<Slice> slices = KeySlices(lo, hi, 4);
  ASSERT_EQ(slices.size(), 4U);
  EXPECT_EQ(slices.front().first, lo);
  EXPECT_EQ(slices.back().last, hi);
  for (size_t i = 1; i < slices.size(); ++i) {
    EXPECT_EQ(slices[i].first, slices[i - 1].last + 1);
  }
}

TEST(SlicePlanTest, KeySlicesOfANarrowRange) {
  std::vector<Slice> slices = KeySlices(5, 6, 10);
  ASSERT_EQ(slices.size(), 2U);  // no more slices than keys
  EXPECT_EQ(slices[0].first, 5);
  EXPECT_EQ(slices[0].last, 5);
  EXPECT_EQ(slices[1].first, 6);
  EXPECT_EQ(slices[1].last, 6);
  EXPECT_TRUE(KeySlices(7, 6, 2).empty());
}

TEST(StandbyFailureTest, RecoveryConflictsNameTheStandbysSettingsAndResume) {
  const Status cancelled(StatusCode::kServerError,
                         "data: copying public.big: canceling statement due to conflict with "
                         "recovery",
                         "", "40001");
  const Status said = ExplainStandbyFailure(cancelled, true, "/w");
  EXPECT_NE(said.message().find("conflict with recovery (the source is a standby"),
            std::string::npos)
      << said.message();
  EXPECT_NE(said.hint().find("hot_standby_feedback = on"), std::string::npos);
  EXPECT_NE(said.hint().find("max_standby_streaming_delay = -1"), std::string::npos);
  EXPECT_NE(said.hint().find("pgcourier migrate --resume --dir /w"), std::string::npos);
  // The snapshot's holder ended by recovery: said only of a standby.
  const Status lost(StatusCode::kServerError, "importing the snapshot: invalid snapshot identifier",
                    "", "22023");
  EXPECT_NE(ExplainStandbyFailure(lost, true, "/w").hint().find("hot_standby_feedback"),
            std::string::npos);
  EXPECT_EQ(ExplainStandbyFailure(lost, false, "/w").hint(), "");
  const Status other(StatusCode::kServerError, "relation does not exist", "", "42P01");
  EXPECT_EQ(ExplainStandbyFailure(other, true, "/w").message(), other.message());
}

TEST(OpenTransactionsTest, DescribedWithPidAgeQueryAndHowToEndThem) {
  OpenTransaction t;
  t.pid = 1234;
  t.open_seconds = 130;
  t.state = "idle in transaction";
  t.user = "alice";
  t.application = "psql";
  t.query = "UPDATE t SET v = 1";
  EXPECT_EQ(DescribeOpenTransaction(t),
            "transaction pid 1234 open 2m10s (psql, user alice, idle in transaction): UPDATE t "
            "SET v = 1");
  OpenTransaction prepared;
  prepared.gid = "tx1";
  prepared.open_seconds = 7300;
  prepared.user = "bob";
  EXPECT_EQ(DescribeOpenTransaction(prepared), "prepared transaction 'tx1' open 2h01m (user bob)");
  EXPECT_EQ(EndTransactionsHint({t, prepared}),
            "pg_terminate_backend(1234), COMMIT or ROLLBACK PREPARED 'tx1'");
  EXPECT_EQ(FormatOpenTime(45), "45s");
}

TEST(LockWaitsTest, ConflictTableIsPostgresqls) {
  EXPECT_EQ(ConflictingLockModes("AccessShareLock"), "{AccessExclusiveLock}");
  EXPECT_EQ(ConflictingLockModes("RowExclusiveLock"),
            "{ShareLock,ShareRowExclusiveLock,ExclusiveLock,AccessExclusiveLock}");
  EXPECT_EQ(ConflictingLockModes("ShareUpdateExclusiveLock"),
            "{ShareUpdateExclusiveLock,ShareLock,ShareRowExclusiveLock,ExclusiveLock,"
            "AccessExclusiveLock}");
  EXPECT_EQ(ConflictingLockModes("ShareLock"),
            "{RowExclusiveLock,ShareUpdateExclusiveLock,ShareRowExclusiveLock,ExclusiveLock,"
            "AccessExclusiveLock}");
  EXPECT_EQ(ConflictingLockModes("AccessExclusiveLock"),
            "{AccessShareLock,RowShareLock,RowExclusiveLock,ShareUpdateExclusiveLock,ShareLock,"
            "ShareRowExclusiveLock,ExclusiveLock,AccessExclusiveLock}");
  EXPECT_EQ(ConflictingLockModes("NoSuchLock"), "{}");
}

TEST(LockWaitsTest, ConflictsAreSymmetric) {
  const std::vector<std::string> modes = {
      "AccessShareLock", "RowShareLock",          "RowExclusiveLock", "ShareUpdateExclusiveLock",
      "ShareLock",       "ShareRowExclusiveLock", "ExclusiveLock",    "AccessExclusiveLock"};
  auto conflicts = [](const std::string& a, const std::string& b) {
    const std::string list = ConflictingLockModes(a);
    return list.find("{" + b + ",") != std::string::npos ||
           list.find("," + b + ",") != std::string::npos ||
           list.find("," + b + "}") != std::string::npos || list == "{" + b + "}";
  };
  for (const auto& a : modes) {
    for (const auto& b : modes) EXPECT_EQ(conflicts(a, b), conflicts(b, a)) << a << " " << b;
  }
}

TEST(LockWaitsTest, HintNamesOnlyOtherSessions) {
  std::vector<LockHolder> holders = {{42, "AccessExclusiveLock", "public.t", "psql", false},
                                     {43, "ShareLock", "public.t", "pgcourier", true}};
  EXPECT_EQ(DescribeLockHolders(holders), "pid 42 (psql: AccessExclusiveLock on public.t)");
  const std::string hint = LockHint(holders, "/tmp/run");
  EXPECT_NE(hint.find("pid 42;"), std::string::npos) << hint;
  EXPECT_EQ(hint.find("43"), std::string::npos) << hint;
  EXPECT_NE(hint.find("--resume --dir /tmp/run"), std::string::npos) << hint;
}

TEST(LockWaitsTest, VerifyHintSaysWhatToRunAfter) {
  std::vector<LockHolder> holders = {{42, "AccessExclusiveLock", "public.t", "psql", false},
                                     {7, "AccessExclusiveLock", "public.u", "psql", false}};
  EXPECT_EQ(EndLockHoldersHint(holders, "run pgcourier verify again"),
            "end the session(s) holding the lock (pid 42, 7; pg_terminate_backend) or wait until "
            "they finish, then run pgcourier verify again; --lock-timeout sets how long pgcourier "
            "waits");
}

TEST(RecordedRunTest, OptionsRoundTrip) {
  MigrateOptions o;
  o.check.include_databases = {"shop*"};
  o.check.exclude_databases = {"shop_test"};
  o.check.pg_bindirs = {"/opt/pg/17/bin"};
  o.filter.include_schemas = {"app"};
  o.filter.exclude_schemas = {"tmp"};
  o.filter.include_tables = {"app.orders"};
  o.filter.exclude_tables = {"app.log"};
  o.filter.exclude_table_data = {"app.cache"};
  o.policy.preserve_owners = true;
  o.policy.preserve_acl = true;
  o.roles = true;
  o.role_options.copy_passwords = false;
  o.replica_identity_full = true;
  o.copy_as_text = true;
  o.split_bytes = 12345;
  MigrateOptions back;
  ASSERT_TRUE(OptionsFromJson(OptionsToJson(o).dump(), back).ok());
  EXPECT_EQ(back.check.include_databases, o.check.include_databases);
  EXPECT_EQ(back.check.exclude_databases, o.check.exclude_databases);
  EXPECT_EQ(back.check.pg_bindirs, o.check.pg_bindirs);
  EXPECT_EQ(back.filter.include_schemas, o.filter.include_schemas);
  EXPECT_EQ(back.filter.exclude_schemas, o.filter.exclude_schemas);
  EXPECT_EQ(back.filter.include_tables, o.filter.include_tables);
  EXPECT_EQ(back.filter.exclude_tables, o.filter.exclude_tables);
  EXPECT_EQ(back.filter.exclude_table_data, o.filter.exclude_table_data);
  EXPECT_TRUE(back.policy.preserve_owners);
  EXPECT_TRUE(back.policy.preserve_acl);
  EXPECT_TRUE(back.roles);
  EXPECT_FALSE(back.role_options.copy_passwords);
  EXPECT_TRUE(back.replica_identity_full);
  EXPECT_TRUE(back.copy_as_text);
  EXPECT_EQ(back.split_bytes, 12345);
}

TEST(RecordedRunTest, PgBindirsGivenAgainWin) {
  MigrateOptions o;
  o.check.pg_bindirs = {"/recorded"};
  MigrateOptions back;
  back.check.pg_bindirs = {"/given"};
  ASSERT_TRUE(OptionsFromJson(OptionsToJson(o).dump(), back).ok());
  EXPECT_EQ(back.check.pg_bindirs, std::vector<std::string>{"/given"});
}

TEST(RecordedRunTest, UnreadableOptionsAreAnError) {
  MigrateOptions back;
  Status s = OptionsFromJson("not json", back);
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(s.hint().empty());
  EXPECT_FALSE(OptionsFromJson("[1,2]", back).ok());
}

TEST(RecordedRunTest, PlannedDatabasesRoundTrip) {
  StoredDatabase a;
  a.name = "shop";
  a.target_name = "shop_new";
  a.method = Method::kReplication;
  a.method_reason = "wal_level is logical";
  a.bytes_total = 1 << 20;
  StoredDatabase b;
  b.name = "blog";
  b.target_name = "blog";
  b.method = Method::kCopy;
  nlohmann::json options = OptionsToJson(MigrateOptions());
  options["databases"] = PlannedDatabasesToJson({a, b});
  std::vector<StoredDatabase> back = PlannedDatabasesFromJson(options.dump());
  ASSERT_EQ(back.size(), 2U);
  EXPECT_EQ(back[0].name, "shop");
  EXPECT_EQ(back[0].target_name, "shop_new");
  EXPECT_EQ(back[0].method, "replication");
  EXPECT_EQ(back[0].method_reason, "wal_level is logical");
  EXPECT_EQ(back[0].bytes_total, 1 << 20);
  EXPECT_EQ(back[1].name, "blog");
  EXPECT_TRUE(PlannedDatabasesFromJson("{}").empty());
  EXPECT_TRUE(PlannedDatabasesFromJson("garbage").empty());
}

TEST(WorkPoolTest, RunsUrgentFirstThenHeaviestThenOldest) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::vector<std::string> order;
  {
    WorkPool pool(1);
    // Holds the only worker until everything else is queued.
    pool.Submit(WorkPool::kUrgent, 0, [&] {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return release; });
    });
    auto record = [&](const std::string& name) {
      return [&, name] {
        std::lock_guard<std::mutex> lock(mu);
        order.push_back(name);
      };
    };
    pool.Submit(WorkPool::kCompare, 100, record("compare"));
    pool.Submit(WorkPool::kCopy, 10, record("copy small"));
    pool.Submit(WorkPool::kCopy, 50, record("copy big"));
    pool.Submit(WorkPool::kCopy, 50, record("copy big, later"));
    pool.Submit(WorkPool::kUrgent, 1, record("index"));
    {
      std::lock_guard<std::mutex> lock(mu);
      release = true;
    }
    cv.notify_all();
  }  // the destructor runs what is queued
  EXPECT_EQ(order, (std::vector<std::string>{"index", "copy big", "copy big, later", "copy small",
                                             "compare"}));
}

TEST(WorkPoolTest, TaskGroupWaitsForTasksAddedByTasks) {
  WorkPool pool(2);
  TaskGroup group;
  std::atomic<int> ran{0};
  std::function<void(int)> spawn = [&](int depth) {
    group.Add();
    pool.Submit(WorkPool::kCopy, 0, [&, depth] {
      ++ran;
      if (depth < 3) {
        spawn(depth + 1);
        spawn(depth + 1);
      }
      group.Done();
    });
  };
  spawn(0);
  group.Wait();
  EXPECT_EQ(ran.load(), 15);
}

TEST(SessionPoolTest, ReusesSetsOfTheSameDatabase) {
  SessionPool pool(2);
  std::unique_ptr<WorkerSessions> a = pool.Take("shop");
  WorkerSessions* first = a.get();
  pool.GiveBack("shop", std::move(a));
  std::unique_ptr<WorkerSessions> again = pool.Take("shop");
  EXPECT_EQ(again.get(), first);
  EXPECT_EQ(pool.open(), 1U);
}

TEST(SessionPoolTest, NeverMoreSetsThanPlacesWhileIdleOnesCanClose) {
  SessionPool pool(2);
  std::unique_ptr<WorkerSessions> a = pool.Take("shop");
  std::unique_ptr<WorkerSessions> b = pool.Take("shop");
  pool.GiveBack("shop", std::move(a));
  pool.GiveBack("shop", std::move(b));
  // Another database: an idle set of the first one is closed for it.
  std::unique_ptr<WorkerSessions> c = pool.Take("blog");
  std::unique_ptr<WorkerSessions> d = pool.Take("blog");
  EXPECT_EQ(pool.open(), 2U);
  EXPECT_EQ(pool.peak(), 2U);
  pool.Discard(std::move(c));
  EXPECT_EQ(pool.open(), 1U);
  pool.GiveBack("blog", std::move(d));
  pool.Close("blog");
  EXPECT_EQ(pool.open(), 0U);
}

TEST(LoadMaintenanceWorkMemTest, TheJobsTogetherTakeNoMoreThanSharedBuffers) {
  // 512MB each where the target has room for it.
  EXPECT_EQ(LoadMaintenanceWorkMem(8192 * kMiB, 64 * kMiB, 4), 512 * kMiB);
  // shared_buffers / jobs below that, in whole MB.
  EXPECT_EQ(LoadMaintenanceWorkMem(512 * kMiB, 64 * kMiB, 2), 256 * kMiB);
  EXPECT_EQ(LoadMaintenanceWorkMem(1024 * kMiB, 64 * kMiB, 3), 341 * kMiB);
  // Never below the server's own setting: then none is sent.
  EXPECT_EQ(LoadMaintenanceWorkMem(128 * kMiB, 64 * kMiB, 2), std::nullopt);
  EXPECT_EQ(LoadMaintenanceWorkMem(8192 * kMiB, 1024 * kMiB, 2), std::nullopt);
  EXPECT_EQ(LoadMaintenanceWorkMem(512 * kMiB, 64 * kMiB, 0), 512 * kMiB);
}

}  // namespace
}  // namespace pgcourier

// The work directory's catalog: what is written is read back, from many
// threads at once; one run per directory, also after its process was killed;
// readers beside the writer; files it cannot read refused clearly.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "state/store.h"
#include "state_names.h"

namespace pgcourier {
namespace {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "pgc-state-XXXXXX").string();
    char* made = ::mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::unique_ptr<StateStore> OpenOrDie(const std::string& dir) {
  Result<std::unique_ptr<StateStore>> store = StateStore::OpenForRun(dir);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(*store) : nullptr;
}

StoredRun SampleRun() {
  StoredRun run;
  run.id = "0123456789abcdef";
  run.source = "postgresql://app@src.example:5432/shop";
  run.target = "postgresql://admin@dst.example:5432/shop";
  run.options_json = R"({"jobs":4})";
  run.pid = 4321;
  return run;
}

StoredDatabase SampleDatabase(const std::string& name) {
  StoredDatabase db;
  db.name = name;
  db.target_name = name + "_new";
  db.method = Method::kCopy;
  db.method_reason = "wal_level is replica";
  db.state = DatabaseState::kCopying;
  db.error = "";
  db.hint = "";
  db.created_target = true;
  db.consistent = false;
  db.snapshot = "00000003-0000001B-1";
  db.tables_total = 10;
  db.tables_done = 3;
  db.indexes_total = 12;
  db.indexes_done = 1;
  db.bytes_total = int64_t{5} << 32;  // beyond 32 bits
  db.bytes_done = 1536;
  db.rows_done = 777;
  db.started_at = "2024-05-01T10:00:00Z";
  return db;
}

int FileMode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 0777);
}

TEST(StateStoreTest, CreatesPrivateFilesAndRecordsOneRun) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/work/nested";
  auto store = OpenOrDie(dir);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->path(), dir + "/pgcourier.db");
  EXPECT_EQ(FileMode(dir + "/pgcourier.db"), 0600);
  EXPECT_EQ(FileMode(dir + "/lock"), 0600);
  EXPECT_EQ(FileMode(dir), 0700);

  Result<std::optional<StoredRun>> none = store->Run();
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_FALSE(none->has_value());

  ASSERT_TRUE(store->BeginRun(SampleRun()).ok());
  Result<std::optional<StoredRun>> run = store->Run();
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  ASSERT_TRUE(run->has_value());
  const StoredRun& r = **run;
  EXPECT_EQ(r.id, "0123456789abcdef");
  EXPECT_EQ(r.source, "postgresql://app@src.example:5432/shop");
  EXPECT_EQ(r.target, "postgresql://admin@dst.example:5432/shop");
  EXPECT_EQ(r.options_json, R"({"jobs":4})");
  EXPECT_EQ(r.state, "running");
  EXPECT_EQ(r.pid, 4321);
  EXPECT_EQ(r.resumes, 0);
  EXPECT_TRUE(r.finished_at.empty());
  // ISO 8601 UTC: 2024-05-01T10:00:00Z
  ASSERT_EQ(r.started_at.size(), 20u) << r.started_at;
  EXPECT_EQ(r.started_at[10], 'T');
  EXPECT_EQ(r.started_at.back(), 'Z');
  EXPECT_FALSE(r.updated_at.empty());

  Status again = store->BeginRun(SampleRun());
  EXPECT_EQ(again.code(), StatusCode::kFailedPrecondition) << again.ToString();
  EXPECT_NE(again.message().find("0123456789abcdef"), std::string::npos) << again.message();
}

TEST(StateStoreTest, BeginRunFillsIdAndPid) {
  TempDir tmp;
  auto store = OpenOrDie(tmp.path());
  ASSERT_NE(store, nullptr);
  StoredRun run;
  run.source = "host=a";
  run.target = "host=b";
  ASSERT_TRUE(store->BeginRun(run).ok());
  Result<std::optional<StoredRun>> read = store->Run();
  ASSERT_TRUE(read.ok() && read->has_value());
  EXPECT_EQ((*read)->id.size(), 16u);
  EXPECT_EQ((*read)->pid, ::getpid());
  EXPECT_EQ((*read)->options_json, "{}");
}

TEST(StateStoreTest, ResumeAndFinish) {
  TempDir tmp;
  auto store = OpenOrDie(tmp.path());
  ASSERT_NE(store, nullptr);
  EXPECT_FALSE(store->ResumeRun(1).ok()) << "nothing to resume";
  ASSERT_TRUE(store->BeginRun(SampleRun()).ok());
  ASSERT_TRUE(store->FinishRun(RunState::kFailed, "lost the source").ok());
  auto run = store->Run();
  ASSERT_TRUE(run.ok() && run->has_value());
  EXPECT_EQ((*run)->state, "failed");
  EXPECT_EQ((*run)->error, "lost the source");
  EXPECT_FALSE((*run)->finished_at.empty());

  ASSERT_TRUE(store->ResumeRun(9999).ok());
  run = store->Run();
  ASSERT_TRUE(run.ok() && run->has_value());
  EXPECT_EQ((*run)->state, "running");
  EXPECT_EQ((*run)->pid, 9999);
  EXPECT_EQ((*run)->resumes, 1);
  EXPECT_TRUE((*run)->error.empty());
  EXPECT_TRUE((*run)->finished_at.empty());
  ASSERT_TRUE(store->ResumeRun(10000).ok());
  EXPECT_EQ((*store->Run())->resumes, 2);
}

TEST(StateStoreTest, DatabasesRoundTripInOrderOfAddition) {
  TempDir tmp;
  auto store = OpenOrDie(tmp.path());
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->PutDatabase(SampleDatabase("zeta")).ok());
  ASSERT_TRUE(store->PutDatabase(SampleDatabase("alpha")).ok());
  StoredDatabase updated = SampleDatabase("zeta");
  updated.state = DatabaseState::kFailed;
  updated.error = "relation \"x\" does not exist";
  updated.hint = "drop it";
  updated.consistent = true;
  updated.finished_at = "2024-05-01T11:00:00Z";
  ASSERT_TRUE(store->PutDatabase(updated).ok());

  Result<std::vector<StoredDatabase>> all = store->Databases();
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name, "zeta") << "a replaced database keeps its place";
  EXPECT_EQ((*all)[1].name, "alpha");
  const StoredDatabase& z = (*all)[0];
  EXPECT_EQ(z.state, "failed");
  EXPECT_EQ(z.error, "relation \"x\" does not exist");
  EXPECT_EQ(z.hint, "drop it");
  EXPECT_TRUE(z.consistent);
  EXPECT_EQ(z.finished_at, "2024-05-01T11:00:00Z");

  Result<std::optional<StoredDatabase>> alpha = store->Database("alpha");
  ASSERT_TRUE(alpha.ok() && alpha->has_value());
  const StoredDatabase& a = **alpha;
  const StoredDatabase want = SampleDatabase("alpha");
  EXPECT_EQ(a.target_name, want.target_name);
  EXPECT_EQ(a.method, want.method);
  EXPECT_EQ(a.method_reason, want.method_reason);
  EXPECT_EQ(a.state, want.state);
  EXPECT_EQ(a.created_target, want.created_target);
  EXPECT_EQ(a.consistent, want.consistent);
  EXPECT_EQ(a.snapshot, want.snapshot);
  EXPECT_EQ(a.tables_total, want.tables_total);
  EXPECT_EQ(a.tables_done, want.tables_done);
  EXPECT_EQ(a.indexes_total, want.indexes_total);
  EXPECT_EQ(a.indexes_done, want.indexes_done);
  EXPECT_EQ(a.bytes_total, want.bytes_total);
  EXPECT_EQ(a.bytes_done, want.bytes_done);
  EXPECT_EQ(a.rows_done, want.rows_done);
  EXPECT_EQ(a.started_at, want.started_at);

  Result<std::optional<StoredDatabase>> missing = store->Database("nope");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
}

TEST(StateStoreTest, StepsKeyedByDatabaseKindObjectPart) {
  TempDir tmp;
  auto store = OpenOrDie(tmp.path());
  ASSERT_NE(store, nullptr);
  StoredStep copy;
  copy.database = "shop";
  copy.kind = StepKind::kCopy;
  copy.object = "public.orders";
  copy.part = "[blocks 0..1024)";
  copy.state = StepState::kRunning;
  StoredStep slice2 = copy;
  slice2.part = "[blocks 1024..2048)";
  StoredStep index;
  index.database = "shop";
  index.kind = StepKind::kIndex;
  index.object = "public.orders_pkey";
  StoredStep other = copy;
  other.database = "blog";
  ASSERT_TRUE(store->PutStep(copy).ok());
  ASSERT_TRUE(store->PutStep(slice2).ok());
  ASSERT_TRUE(store->PutStep(index).ok());
  ASSERT_TRUE(store->PutStep(other).ok());
  copy.state = StepState::kDone;
  copy.rows = 1000;
  copy.bytes = 65536;
  copy.seconds = 1.25;
  copy.attempts = 2;
  copy.error = "lost connection (retried)";
  copy.updated_at = "2024-05-01T10:00:05Z";
  ASSERT_TRUE(store->PutStep(copy).ok());

  Result<std::vector<StoredStep>> steps = store->Steps("shop");
  ASSERT_TRUE(steps.ok()) << steps.status().ToString();
  ASSERT_EQ(steps->size(), 3u);
  const StoredStep& s = (*steps)[0];
  EXPECT_EQ(s.database, "shop");
  EXPECT_EQ(s.kind, "copy");
  EXPECT_EQ(s.part, "[blocks 0..1024)");
  EXPECT_EQ(s.state, "done");
  EXPECT_EQ(s.rows, 1000);
  EXPECT_EQ(s.bytes, 65536);
  EXPECT_DOUBLE_EQ(s.seconds, 1.25);
  EXPECT_EQ(s.attempts, 2);
  EXPECT_EQ(s.error, "lost connection (retried)");
  EXPECT_EQ(s.updated_at, "2024-05-01T10:00:05Z");
  EXPECT_EQ((*steps)[1].part, "[blocks 1024..2048)");
  EXPECT_EQ((*steps)[2].kind, "index");
  EXPECT_EQ((*steps)[2].state, "pending");
  EXPECT_FALSE((*steps)[2].updated_at.empty()) << "stamped when not given";

  ASSERT_TRUE(store->ClearSteps("shop").ok());
  EXPECT_TRUE(store->Steps("shop")->empty());
  EXPECT_EQ(store->Steps("blog")->size(), 1u) << "other databases keep theirs";
}

TEST(StateStoreTest, ValuesAreNeverSql) {
  TempDir tmp;
  auto store = OpenOrDie(tmp.path());
  ASSERT_NE(store, nullptr);
  const std::string nasty = "x'); DROP TABLE steps; --\"?1 \xc3\xa9";
  StoredDatabase db = SampleDatabase(nasty);
  db.error = nasty;
  ASSERT_TRUE(store->PutDatabase(db).ok());
  StoredStep step;
  step.database = nasty;
  step.kind = StepKind::kCopy;
  step.object = nasty;
  ASSERT_TRUE(store->PutStep(step).ok());
  auto read = store->Database(nasty);
  ASSERT_TRUE(read.ok() && read->has_value());
  EXPECT_EQ((*read)->error, nasty);
  auto steps = store->Steps(nasty);
  ASSERT_TRUE(steps.ok());
  ASSERT_EQ(steps->size(), 1u);
  EXPECT_EQ((*steps)[0].object, nasty);
}

TEST(StateStoreTest, ManyWriterThreads) {
  TempDir tmp;
  auto store = OpenOrDie(tmp.path());
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->BeginRun(SampleRun()).ok());
  constexpr int kThreads = 8;
  constexpr int kStepsPerThread = 150;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      StoredDatabase db = SampleDatabase("db" + std::to_string(t));
      for (int i = 0; i < kStepsPerThread; ++i) {
        StoredStep step;
        step.database = db.name;
        step.kind = StepKind::kCopy;
        step.object = "public.t" + std::to_string(i);
        step.state = StepState::kDone;
        step.rows = i;
        if (!store->PutStep(step).ok()) ++failures;
        db.tables_done = i + 1;
        if (!store->PutDatabase(db).ok()) ++failures;
        if (!store->Steps(db.name).ok()) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  auto dbs = store->Databases();
  ASSERT_TRUE(dbs.ok());
  ASSERT_EQ(dbs->size(), static_cast<size_t>(kThreads));
  for (const auto& db : *dbs) {
    EXPECT_EQ(db.tables_done, kStepsPerThread) << db.name;
    auto steps = store->Steps(db.name);
    ASSERT_TRUE(steps.ok());
    ASSERT_EQ(steps->size(), static_cast<size_t>(kStepsPerThread)) << db.name;
    for (int i = 0; i < kStepsPerThread; ++i) EXPECT_EQ((*steps)[i].rows, i);
  }
}

TEST(StateStoreTest, OneRunPerDirectory) {
  TempDir tmp;
  EXPECT_FALSE(StateStore::RunIsLive(tmp.path())) << "no lock file yet";
  auto first = OpenOrDie(tmp.path());
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(first->PutDatabase(SampleDatabase("shop")).ok());
  EXPECT_TRUE(StateStore::RunIsLive(tmp.path()));

  Result<std::unique_ptr<StateStore>> second = StateStore::OpenForRun(tmp.path());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("is in use by another pgcourier"), std::string::npos)
      << second.status().message();
  EXPECT_NE(second.status().message().find("pid " + std::to_string(::getpid())), std::string::npos)
      << second.status().message();
  EXPECT_NE(second.status().message().find("started 20"), std::string::npos)
      << second.status().message();
  EXPECT_NE(second.status().hint().find("another --dir"), std::string::npos)
      << second.status().hint();

  first.reset();
  EXPECT_FALSE(StateStore::RunIsLive(tmp.path()));
  auto third = OpenOrDie(tmp.path());
  ASSERT_NE(third, nullptr);
  auto dbs = third->Databases();
  ASSERT_TRUE(dbs.ok());
  EXPECT_EQ(dbs->size(), 1u) << "the catalog outlives the process";
}

TEST(StateStoreTest, LockReleasedWhenHolderIsKilled) {
  TempDir tmp;
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(ready[0]);
    auto store = StateStore::OpenForRun(tmp.path());
    char byte = '0';
    if (store.ok()) {
      StoredRun run = SampleRun();
      run.pid = ::getpid();
      if ((*store)->BeginRun(run).ok()) byte = '1';
    }
    (void)!::write(ready[1], &byte, 1);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1);
  ::close(ready[0]);
  EXPECT_EQ(byte, '1') << "the child could not open the store";

  EXPECT_TRUE(StateStore::RunIsLive(tmp.path()));
  Result<std::unique_ptr<StateStore>> refused = StateStore::OpenForRun(tmp.path());
  EXPECT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("pid " + std::to_string(child)), std::string::npos)
      << refused.status().message();

  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int wstatus = 0;
  ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFSIGNALED(wstatus));

  EXPECT_FALSE(StateStore::RunIsLive(tmp.path()));
  auto store = OpenOrDie(tmp.path());
  ASSERT_NE(store, nullptr);
  auto run = store->Run();
  ASSERT_TRUE(run.ok() && run->has_value()) << "the killed run's record survives";
  EXPECT_EQ((*run)->pid, child);
  EXPECT_EQ((*run)->state, "running");
}

TEST(StateStoreTest, ReadOnlyBesideTheWriter) {
  TempDir tmp;
  auto writer = OpenOrDie(tmp.path());
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->BeginRun(SampleRun()).ok());
  ASSERT_TRUE(writer->PutDatabase(SampleDatabase("shop")).ok());

  Result<std::unique_ptr<StateStore>> reader = StateStore::OpenReadOnly(tmp.path());
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  auto run = (*reader)->Run();
  ASSERT_TRUE(run.ok() && run->has_value()) << run.status().ToString();
  EXPECT_EQ((*run)->id, "0123456789abcdef");

  StoredDatabase db = SampleDatabase("shop");
  db.tables_done = 9;
  ASSERT_TRUE(writer->PutDatabase(db).ok());
  auto seen = (*reader)->Database("shop");
  ASSERT_TRUE(seen.ok() && seen->has_value());
  EXPECT_EQ((*seen)->tables_done, 9) << "the reader sees what the writer committed";
  EXPECT_TRUE(StateStore::RunIsLive(tmp.path())) << "a reader takes no lock";

  EXPECT_FALSE((*reader)->PutDatabase(db).ok());
  EXPECT_FALSE((*reader)->PutStep(StoredStep{}).ok());
  EXPECT_FALSE((*reader)->FinishRun(RunState::kDone, "").ok());

  // After the writer closed (and SQLite removed its WAL), still readable.
  reader->reset();
  writer.reset();
  Result<std::unique_ptr<StateStore>> later = StateStore::OpenReadOnly(tmp.path());
  ASSERT_TRUE(later.ok()) << later.status().ToString();
  auto dbs = (*later)->Databases();
  ASSERT_TRUE(dbs.ok()) << dbs.status().ToString();
  ASSERT_EQ(dbs->size(), 1u);
  EXPECT_EQ((*dbs)[0].tables_done, 9);
}

TEST(StateStoreTest, ReadOnlyWithoutCatalogIsNotFound) {
  TempDir tmp;
  Result<std::unique_ptr<StateStore>> no_dir = StateStore::OpenReadOnly(tmp.path() + "/absent");
  ASSERT_FALSE(no_dir.ok());
  EXPECT_EQ(no_dir.status().code(), StatusCode::kNotFound);
  EXPECT_NE(no_dir.status().hint().find("pgcourier migrate --dir"), std::string::npos)
      << no_dir.status().hint();
  Result<std::unique_ptr<StateStore>> no_db = StateStore::OpenReadOnly(tmp.path());
  ASSERT_FALSE(no_db.ok());
  EXPECT_EQ(no_db.status().code(), StatusCode::kNotFound);
  EXPECT_NE(no_db.status().message().find("pgcourier.db"), std::string::npos);
}

TEST(StateStoreTest, NewerCatalogVersionRefused) {
  TempDir tmp;
  {
    auto store = OpenOrDie(tmp.path());
    ASSERT_NE(store, nullptr);
  }
  const std::string path = tmp.path() + "/pgcourier.db";
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    int version = -1;
    sqlite3_stmt* stmt = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
    version = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    EXPECT_EQ(version, StateStore::kSchemaVersion);
    ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  Result<std::unique_ptr<StateStore>> store = StateStore::OpenForRun(tmp.path());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("newer pgcourier"), std::string::npos)
      << store.status().message();
  EXPECT_NE(store.status().message().find("99"), std::string::npos);
  EXPECT_FALSE(StateStore::RunIsLive(tmp.path())) << "a refused open lets the lock go";

  Result<std::unique_ptr<StateStore>> reader = StateStore::OpenReadOnly(tmp.path());
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(reader.status().message().find("newer pgcourier"), std::string::npos);
}

TEST(StateStoreTest, ChangesAreRecordedOnceAndUndone) {
  TempDir tmp;
  auto store = OpenOrDie(tmp.path());
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->BeginRun(SampleRun()).ok());
  StoredChange identity{"shop",
                        Side::kSource,
                        "REPLICA IDENTITY FULL on public.t",
                        "ALTER TABLE ONLY public.t REPLICA IDENTITY DEFAULT",
                        ChangeState::kMade,
                        ""};
  StoredChange extension{"shop",
                         Side::kTarget,
                         "extension aiven_extras",
                         "DROP EXTENSION IF EXISTS aiven_extras",
                         ChangeState::kMade,
                         ""};
  ASSERT_TRUE(store->RecordChange(identity).ok());
  ASSERT_TRUE(store->RecordChange(extension).ok());
  ASSERT_TRUE(store->RecordChange(identity).ok()) << "made again by a resumed run: one record";
  ASSERT_TRUE(
      store->RecordChange({"other", Side::kSource, "x", "SELECT 1", ChangeState::kMade, ""}).ok());
  Result<std::vector<StoredChange>> changes = store->Changes("shop");
  ASSERT_TRUE(changes.ok()) << changes.status().ToString();
  ASSERT_EQ(changes->size(), 2u);
  EXPECT_EQ((*changes)[0].object, identity.object);
  EXPECT_EQ((*changes)[0].undo_sql, identity.undo_sql);
  EXPECT_EQ((*changes)[0].state, "made");
  EXPECT_FALSE((*changes)[0].made_at.empty());
  EXPECT_EQ((*changes)[1].side, "target");
  ASSERT_TRUE(store->MarkChangeUndone(identity).ok());
  store.reset();

  Result<std::unique_ptr<StateStore>> reader = StateStore::OpenReadOnly(tmp.path());
  ASSERT_TRUE(reader.ok());
  changes = (*reader)->Changes("shop");
  ASSERT_TRUE(changes.ok());
  ASSERT_EQ(changes->size(), 2u);
  EXPECT_EQ((*changes)[0].state, "undone");
  EXPECT_EQ((*changes)[1].state, "made");
  EXPECT_FALSE((*reader)->RecordChange(identity).ok()) << "read-only";
}

// The way back of cutover --keep-rollback: recorded, replaced as it moves
// on, read by another process; a version 3 catalog (before it) is upgraded
// and reads as having none.
TEST(StateStoreTest, WayBackIsRecordedAndAVersionThreeCatalogUpgraded) {
  TempDir tmp;
  {
    auto store = OpenOrDie(tmp.path());
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->BeginRun(SampleRun()).ok());
  }
  const std::string path = tmp.path() + "/pgcourier.db";
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "DROP TABLE rollbacks; DROP TABLE write_counters; "
                           "PRAGMA user_version = 3",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  {
    Result<std::unique_ptr<StateStore>> reader = StateStore::OpenReadOnly(tmp.path());
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    Result<std::optional<StoredRollback>> none = (*reader)->Rollback("shop");
    ASSERT_TRUE(none.ok()) << none.status().ToString();
    EXPECT_FALSE(none->has_value());
  }
  auto store = OpenOrDie(tmp.path());
  ASSERT_NE(store, nullptr);
  StoredRollback back{"shop", RollbackState::kPrepared, "pub_back", "slot_back", "sub_back", ""};
  ASSERT_TRUE(store->PutRollback(back).ok());
  back.state = RollbackState::kFollowing;
  ASSERT_TRUE(store->PutRollback(back).ok());
  Result<std::unique_ptr<StateStore>> reader = StateStore::OpenReadOnly(tmp.path());
  ASSERT_TRUE(reader.ok());
  Result<std::optional<StoredRollback>> read = (*reader)->Rollback("shop");
  ASSERT_TRUE(read.ok() && read->has_value()) << read.status().ToString();
  EXPECT_EQ((*read)->state, "following");
  EXPECT_EQ((*read)->publication, "pub_back");
  EXPECT_EQ((*read)->slot, "slot_back");
  EXPECT_EQ((*read)->subscription, "sub_back");
  EXPECT_FALSE((*read)->recorded_at.empty());
  Result<std::optional<StoredRollback>> other = (*reader)->Rollback("blog");
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_value());
  EXPECT_FALSE((*reader)->PutRollback(back).ok()) << "read-only";
}

TEST(StateStoreTest, VersionOneCatalogIsUpgraded) {
  TempDir tmp;
  {
    auto store = OpenOrDie(tmp.path());
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->BeginRun(SampleRun()).ok());
  }
  // As the first release left it: no changes table, version 1.
  const std::string path = tmp.path() + "/pgcourier.db";
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(
        sqlite3_exec(db, "DROP TABLE changes; PRAGMA user_version = 1", nullptr, nullptr, nullptr),
        SQLITE_OK);
    sqlite3_close(db);
  }
  {
    Result<std::unique_ptr<StateStore>> reader = StateStore::OpenReadOnly(tmp.path());
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    Result<std::vector<StoredChange>> none = (*reader)->Changes("shop");
    ASSERT_TRUE(none.ok()) << none.status().ToString();
    EXPECT_TRUE(none->empty());
  }
  auto store = OpenOrDie(tmp.path());
  ASSERT_NE(store, nullptr);
  Result<std::optional<StoredRun>> run = store->Run();
  ASSERT_TRUE(run.ok() && run->has_value()) << "the run survives the upgrade";
  ASSERT_TRUE(
      store->RecordChange({"shop", Side::kSource, "x", "SELECT 1", ChangeState::kMade, ""}).ok());
  Result<std::vector<StoredChange>> changes = store->Changes("shop");
  ASSERT_TRUE(changes.ok());
  EXPECT_EQ(changes->size(), 1u);
}

TEST(StateStoreTest, WriteCountersAreReplacedPerDatabase) {
  TempDir tmp;
  auto store = OpenOrDie(tmp.path());
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->BeginRun(SampleRun()).ok());
  ASSERT_TRUE(
      store
          ->PutWriteCounters("shop", {{"shop", "\"public\".\"log\"", "16384:16384", 7, "never"},
                                      {"shop", "\"public\".\"a\"", "16390:16391", 0, "never"}})
          .ok());
  ASSERT_TRUE(store->PutWriteCounters("blog", {{"blog", "\"public\".\"x\"", "1:1", 1, ""}}).ok());
  Result<std::vector<StoredWriteCounters>> shop = store->WriteCounters("shop");
  ASSERT_TRUE(shop.ok()) << shop.status().ToString();
  ASSERT_EQ(shop->size(), 2u);
  EXPECT_EQ((*shop)[0].table, "\"public\".\"a\"");
  EXPECT_EQ((*shop)[1].table, "\"public\".\"log\"");
  EXPECT_EQ((*shop)[1].relids, "16384:16384");
  EXPECT_EQ((*shop)[1].changes, 7);
  EXPECT_EQ((*shop)[1].stats_reset, "never");
  // A resumed database records its counters again: the old ones go.
  ASSERT_TRUE(store->PutWriteCounters("shop", {}).ok());
  shop = store->WriteCounters("shop");
  ASSERT_TRUE(shop.ok());
  EXPECT_TRUE(shop->empty());
  Result<std::vector<StoredWriteCounters>> blog = store->WriteCounters("blog");
  ASSERT_TRUE(blog.ok());
  EXPECT_EQ(blog->size(), 1u);
  store.reset();

  // A version 3 catalog (before the counters) reads none, and is upgraded.
  const std::string path = tmp.path() + "/pgcourier.db";
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "DROP TABLE write_counters; DROP TABLE rollbacks; "
                           "PRAGMA user_version = 3",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  {
    Result<std::unique_ptr<StateStore>> reader = StateStore::OpenReadOnly(tmp.path());
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    Result<std::vector<StoredWriteCounters>> none = (*reader)->WriteCounters("blog");
    ASSERT_TRUE(none.ok()) << none.status().ToString();
    EXPECT_TRUE(none->empty());
  }
  store = OpenOrDie(tmp.path());
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->PutWriteCounters("blog", {{"blog", "t", "1:1", 1, ""}}).ok());
  blog = store->WriteCounters("blog");
  ASSERT_TRUE(blog.ok());
  EXPECT_EQ(blog->size(), 1u);
}

// Two builds each numbered their addition catalog version 4: one added the
// rollbacks table, the other the write_counters table. A version 4 file of
// either kind reads (read-only, not upgraded) as having none of what it
// lacks, keeps what it holds, and is upgraded to the current version with
// both.
TEST(StateStoreTest, EitherKindOfVersionFourCatalogIsUpgraded) {
  for (const char* missing : {"rollbacks", "write_counters"}) {
    SCOPED_TRACE(missing);
    TempDir tmp;
    {
      auto store = OpenOrDie(tmp.path());
      ASSERT_NE(store, nullptr);
      ASSERT_TRUE(store->BeginRun(SampleRun()).ok());
      ASSERT_TRUE(
          store->PutRollback({"shop", RollbackState::kFollowing, "pub", "slot", "sub", ""}).ok());
      ASSERT_TRUE(store->PutWriteCounters("shop", {{"shop", "t", "1:1", 3, ""}}).ok());
    }
    const std::string path = tmp.path() + "/pgcourier.db";
    {
      sqlite3* db = nullptr;
      ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
      const std::string sql = std::string("DROP TABLE ") + missing + "; PRAGMA user_version = 4";
      ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
      sqlite3_close(db);
    }
    const bool kept_rollbacks = std::string(missing) != "rollbacks";
    {
      Result<std::unique_ptr<StateStore>> reader = StateStore::OpenReadOnly(tmp.path());
      ASSERT_TRUE(reader.ok()) << reader.status().ToString();
      Result<std::optional<StoredRollback>> back = (*reader)->Rollback("shop");
      ASSERT_TRUE(back.ok()) << back.status().ToString();
      EXPECT_EQ(back->has_value(), kept_rollbacks);
      Result<std::vector<StoredWriteCounters>> counters = (*reader)->WriteCounters("shop");
      ASSERT_TRUE(counters.ok()) << counters.status().ToString();
      EXPECT_EQ(counters->size(), kept_rollbacks ? 0u : 1u);
    }
    auto store = OpenOrDie(tmp.path());
    ASSERT_NE(store, nullptr);
    Result<std::optional<StoredRollback>> back = store->Rollback("shop");
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->has_value(), kept_rollbacks) << "what the file held survives the upgrade";
    Result<std::vector<StoredWriteCounters>> counters = store->WriteCounters("shop");
    ASSERT_TRUE(counters.ok()) << counters.status().ToString();
    EXPECT_EQ(counters->size(), kept_rollbacks ? 0u : 1u);
    ASSERT_TRUE(
        store->PutRollback({"blog", RollbackState::kPrepared, "pub", "slot", "sub", ""}).ok());
    ASSERT_TRUE(store->PutWriteCounters("blog", {{"blog", "t", "1:1", 1, ""}}).ok());
    back = store->Rollback("blog");
    ASSERT_TRUE(back.ok() && back->has_value());
    counters = store->WriteCounters("blog");
    ASSERT_TRUE(counters.ok());
    EXPECT_EQ(counters->size(), 1u);
    store.reset();
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
    EXPECT_EQ(sqlite3_column_int(stmt, 0), StateStore::kSchemaVersion);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
  }
}

// Version 6 keeps each table's expected size for the status page's bars:
// replaced per database; a version 5 catalog (an older run) reads none,
// read-only and not upgraded, and is upgraded when a run opens it.
TEST(StateStoreTest, TableSizesAreReplacedPerDatabaseAndAVersionFiveCatalogUpgraded) {
  TempDir tmp;
  auto store = OpenOrDie(tmp.path());
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->BeginRun(SampleRun()).ok());
  ASSERT_TRUE(
      store->PutTableSizes("shop", {{"public.orders", 1200, 98304}, {"public.new", -1, 8192}})
          .ok());
  ASSERT_TRUE(store->PutTableSizes("blog", {{"public.posts", 3, 8192}}).ok());
  Result<std::vector<StoredTableSize>> shop = store->TableSizes("shop");
  ASSERT_TRUE(shop.ok()) << shop.status().ToString();
  ASSERT_EQ(shop->size(), 2u);
  EXPECT_EQ((*shop)[0].table, "public.new");
  EXPECT_EQ((*shop)[0].expected_rows, -1);
  EXPECT_EQ((*shop)[1].table, "public.orders");
  EXPECT_EQ((*shop)[1].expected_rows, 1200);
  EXPECT_EQ((*shop)[1].expected_bytes, 98304);
  // A resumed database is planned again: its sizes replace the old ones.
  ASSERT_TRUE(store->PutTableSizes("shop", {{"public.orders", 1300, 106496}}).ok());
  shop = store->TableSizes("shop");
  ASSERT_TRUE(shop.ok());
  ASSERT_EQ(shop->size(), 1u);
  EXPECT_EQ((*shop)[0].expected_rows, 1300);
  Result<std::vector<StoredTableSize>> blog = store->TableSizes("blog");
  ASSERT_TRUE(blog.ok());
  EXPECT_EQ(blog->size(), 1u);
  store.reset();

  const std::string path = tmp.path() + "/pgcourier.db";
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "DROP TABLE table_sizes; PRAGMA user_version = 5", nullptr, nullptr,
                           nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  {
    Result<std::unique_ptr<StateStore>> reader = StateStore::OpenReadOnly(tmp.path());
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    Result<std::vector<StoredTableSize>> none = (*reader)->TableSizes("blog");
    ASSERT_TRUE(none.ok()) << none.status().ToString();
    EXPECT_TRUE(none->empty());
    Result<std::vector<StoredDatabase>> databases = (*reader)->Databases();
    EXPECT_TRUE(databases.ok()) << "the older run is still read";
  }
  store = OpenOrDie(tmp.path());
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->PutTableSizes("blog", {{"public.posts", 3, 8192}}).ok());
  blog = store->TableSizes("blog");
  ASSERT_TRUE(blog.ok());
  EXPECT_EQ(blog->size(), 1u);
}

TEST(StateStoreTest, ForeignFilesRefused) {
  TempDir tmp;
  {
    std::ofstream junk(tmp.path() + "/pgcourier.db");
    junk << std::string(4096, 'x');
  }
  Result<std::unique_ptr<StateStore>> store = StateStore::OpenForRun(tmp.path());
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("not a pgcourier catalog"), std::string::npos)
      << store.status().ToString();

  TempDir other;
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((other.path() + "/pgcourier.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE t (x int)", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  store = StateStore::OpenForRun(other.path());
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("not a pgcourier catalog"), std::string::npos)
      << store.status().ToString();
}

}  // namespace
}  // namespace pgcourier

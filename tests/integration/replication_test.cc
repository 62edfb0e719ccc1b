// The replication method against real servers: a writer keeps changing the
// source during the bulk copy and while replication runs; after `cutover`
// the target equals the source, sequences are at or past the source's, and
// no slot, publication or subscription is left on either side. `cleanup`
// removes everything at any time, and again.
#include "replication/replication.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "cli_runner.h"
#include "copy/progress_marks.h"
#include "migrate/cleanup.h"
#include "migrate/cutover.h"
#include "migrate/migration.h"
#include "migrate/run_status.h"
#include "pg/connection.h"
#include "pg_cluster.h"
#include "preflight/checker.h"
#include "report/status_report.h"
#include "source_writer.h"
#include "state/store.h"
#include "state_names.h"
#include "two_servers.h"
#include "util/process.h"
#include "version_pairs.h"

namespace pgcourier {
namespace {

using testing::BackgroundRun;
using testing::PgCluster;
using testing::RunCli;
using testing::StartClusterOrFail;

constexpr const char* kShop = R"sql(
  CREATE TABLE public.accounts (id bigserial PRIMARY KEY, balance int NOT NULL, note text);
  INSERT INTO public.accounts (balance, note)
    SELECT g, CASE WHEN g % 100 = 0 THEN repeat(md5(g::text), 400) ELSE 'n' || g END
    FROM generate_series(1, 60000) g;
  CREATE TABLE public.events (id int PRIMARY KEY, what text);
  INSERT INTO public.events SELECT g, 'e' || g FROM generate_series(1, 1000) g;
  CREATE TABLE public.no_pk (v text);
  INSERT INTO public.no_pk SELECT 'row ' || g FROM generate_series(1, 1000) g;
  CREATE SEQUENCE public.tickets;
  SELECT pg_catalog.lo_from_bytea(0, 'a large object');
)sql";

// Per table: row count and a checksum of the rows' text.
std::string Fingerprint(const PgCluster& cluster) {
  std::string out;
  for (const char* table : {"public.accounts", "public.events", "public.no_pk"}) {
    Result<std::string> one = cluster.Sql(
        fmt::format("SELECT count(*) || ':' || coalesce(sum(hashtext(t::text)), 0) FROM {} t",
                    table),
        "shop");
    out += std::string(table) + " " + (one.ok() ? *one : one.status().ToString()) + "; ";
  }
  return out;
}

class ReplicationTest : public testing::SourceAndTargetTest {
 protected:
  void SetUp() override {
    testing::SourceAndTargetOptions options;
    options.logical_source = true;
    options.database = "shop";
    options.database_sql = kShop;
    ASSERT_NO_FATAL_FAILURE(StartServers(options));
  }

  MigrateOptions Options() const {
    MigrateOptions options = MigrationOptions("shop", Method::kReplication);
    options.split_bytes = 1 << 20;  // accounts in slices
    return options;
  }

  // Changes the source until stopped: inserts, updates (of TOASTed rows
  // too), deletes, rows in the table without a key, sequence calls, and one
  // TRUNCATE of a published table.
  void StartWriter() {
    auto random = std::make_shared<std::mt19937>(42);
    writer_ = std::make_unique<testing::SourceWriter>(
        source_->ConnString("shop"),
        [random](int round) {
          const int id = 1 + static_cast<int>((*random)() % 60000);
          return fmt::format(
                     "BEGIN; INSERT INTO public.accounts (balance, note) VALUES ({0}, "
                     "repeat('w', {1})); UPDATE public.accounts SET balance = balance + 1, note = "
                     "note || 'u' WHERE id = {2}; UPDATE public.accounts SET note = "
                     "repeat(md5('{0}'), 300) WHERE id = {3}; DELETE FROM public.accounts WHERE "
                     "id = {4}; INSERT INTO public.no_pk VALUES ('written {0}'); SELECT "
                     "nextval('public.tickets'); COMMIT;",
                     round, round % 5000, id, (id / 100) * 100 + 100, id + 7) +
                 (round == 40 ? " TRUNCATE public.events; INSERT INTO public.events "
                                "SELECT g, 'after truncate' FROM generate_series(1, 10) g;"
                              : "");
        },
        [this](const Status&) {
          // Cutover stopped writes: this session was ended, and a new one is
          // read-only.
          Result<std::unique_ptr<Connection>> again =
              Connection::Connect(*ConnInfo::Parse(source_->ConnString("shop")), {});
          ASSERT_TRUE(again.ok()) << again.status().ToString();
          Status refused = (*again)->Run("INSERT INTO public.no_pk VALUES ('late')");
          EXPECT_NE(refused.ToString().find("read-only"), std::string::npos) << refused.ToString();
        });
  }
  void StopWriter() {
    if (writer_ != nullptr) writer_->Stop();
  }
  int writes() const { return writer_ != nullptr ? writer_->writes() : 0; }
  void TearDown() override { StopWriter(); }

  // The cutover phases recorded for shop in dir_, in order, comma-separated.
  std::string CutoverPhases() {
    Result<std::unique_ptr<StateStore>> store = StateStore::OpenReadOnly(dir_);
    if (!store.ok()) return store.status().ToString();
    Result<std::vector<StoredStep>> steps = (*store)->Steps("shop");
    if (!steps.ok()) return steps.status().ToString();
    std::string out;
    for (const auto& step : *steps) {
      if (!step.object.starts_with(kCutoverPhasePrefix)) continue;
      out += (out.empty() ? "" : ", ") + step.object;
    }
    return out;
  }

  // The id of the run recorded in dir_.
  std::string RunId() {
    Result<std::unique_ptr<StateStore>> store = StateStore::OpenReadOnly(dir_);
    if (!store.ok()) return "";
    Result<std::optional<StoredRun>> run = (*store)->Run();
    return run.ok() && run->has_value() ? (*run)->id : "";
  }
  std::string OnSource(const std::string& sql, const std::string& db = "shop") {
    Result<std::string> out = source_->Sql(sql, db);
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out.ok() ? *out : "";
  }
  std::string OnTarget(const std::string& sql, const std::string& db = "shop") {
    Result<std::string> out = target_->Sql(sql, db);
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out.ok() ? *out : "";
  }

  std::unique_ptr<testing::SourceWriter> writer_;
};

TEST_F(ReplicationTest, WritesDuringTheCopyAndSyncAllArriveAndCutoverLeavesNothing) {
  StartWriter();
  writer_->WaitForWrites(20);
  ASSERT_NO_FATAL_FAILURE(testing::StartReplicating(Options()));
  // Writes go on while replication runs.
  const int before = writes();
  writer_->WaitForWrites(before + 100);
  EXPECT_EQ(OnSource("SELECT count(*) FROM pg_replication_slots WHERE active", "postgres"), "1");

  // A second migrate in the same directory is refused and harms nothing.
  Result<MigrationOutcome> again = Migrate(Options());
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kFailedPrecondition);

  CutoverOptions cut;
  cut.work_dir = dir_;
  cut.stop_source_writes = true;
  cut.timeout = std::chrono::seconds(60);
  cut.connect_timeout = std::chrono::seconds(10);
  // Right after the switch moment, before the verification, an application
  // writes to the target: the verification compares the switch moment's
  // snapshots, so the row is no difference.
  cut.on_switched = [this](const std::string&) {
    EXPECT_TRUE(
        target_->Sql("INSERT INTO public.events VALUES (900000, 'after the switch')", "shop").ok());
  };
  Result<CutoverOutcome> cutover = Cutover(cut);
  ASSERT_TRUE(cutover.ok()) << cutover.status().ToString();
  StopWriter();
  ASSERT_EQ(cutover->databases.size(), 1u);
  const CutoverDatabase& done = cutover->databases[0];
  std::string cut_differences;
  if (done.verification) {
    for (const auto& t : done.verification->tables) {
      if (!t.match()) cut_differences += " table " + t.name + " " + t.error;
    }
    for (const auto& q : done.verification->sequences) {
      if (!q.match()) cut_differences += " sequence " + q.name + " " + q.error;
    }
    for (const auto& k : done.verification->schema) {
      if (!k.match()) cut_differences += " kind " + k.kind;
    }
  }
  ASSERT_EQ(done.state, "done") << done.error << cut_differences;
  EXPECT_TRUE(cutover->ok());
  EXPECT_GT(writes(), before + 100);
  EXPECT_FALSE(done.undo.empty());
  // public.no_pk has no key: its inserts were replicated, and it saw no
  // update or delete, so it is not copied again.
  EXPECT_EQ(done.tables_recopied, 0);
  ASSERT_EQ(done.append_only.size(), 1u);
  EXPECT_EQ(done.append_only[0].table, "public.no_pk");
  EXPECT_FALSE(done.append_only[0].recopied) << done.append_only[0].why;
  EXPECT_EQ(done.removed.size(), 4u);
  ASSERT_TRUE(done.verification.has_value());
  EXPECT_TRUE(done.verification->ok());
  // The write-stop window's phases, then what came after the switch.
  EXPECT_TRUE(done.switched);
  std::vector<std::string> window;
  std::vector<std::string> after;
  for (const auto& p : done.window) window.push_back(p.name);
  for (const auto& p : done.after) after.push_back(p.name);
  EXPECT_EQ(window,
            (std::vector<std::string>{"stopping writes", "catching up", "write counters",
                                      "snapshot", "sequences", "unreplicated copy", "switch"}));
  EXPECT_EQ(after, (std::vector<std::string>{"removing replication", "verification"}));
  EXPECT_GT(done.writes_stopped_seconds, 0);
  // status shows the subscription's options and the last cutover's phases.
  {
    Result<StatusView> view = ReadStatus(dir_, false);
    ASSERT_TRUE(view.ok()) << view.status().ToString();
    EXPECT_EQ(view->subscription_options["shop"], target_->major() >= 16
                                                      ? "binary = true, streaming = parallel"
                                                      : "binary = true, streaming = on");
    EXPECT_EQ(view->cutover_phases["shop"].size(), 9u);
  }
  // The application's row is there; without it, the two are equal.
  EXPECT_EQ(OnTarget("SELECT what FROM public.events WHERE id = 900000"), "after the switch");
  ASSERT_TRUE(target_->Sql("DELETE FROM public.events WHERE id = 900000", "shop").ok());

  // Equal, sequences at the source's, large object there.
  EXPECT_EQ(Fingerprint(*target_), Fingerprint(*source_));
  EXPECT_EQ(OnTarget("SELECT what FROM public.events ORDER BY id LIMIT 1"), "after truncate");
  EXPECT_EQ(OnTarget("SELECT last_value FROM public.tickets"),
            OnSource("SELECT last_value FROM public.tickets"));
  EXPECT_EQ(OnTarget("SELECT count(*) FROM pg_largeobject_metadata"), "1");
  // Nothing left of the replication on either side.
  EXPECT_EQ(OnSource("SELECT count(*) FROM pg_replication_slots", "postgres"), "0");
  EXPECT_EQ(OnSource("SELECT count(*) FROM pg_publication"), "0");
  EXPECT_EQ(OnTarget("SELECT count(*) FROM pg_subscription", "postgres"), "0");
  EXPECT_EQ(OnTarget("SELECT count(*) FROM pg_namespace WHERE nspname = '_pgcourier'"), "0");
  // The source is read-only for new sessions until the undo.
  EXPECT_FALSE(source_->Sql("INSERT INTO public.events VALUES (-1, 'x')", "shop").ok());

  // The run is done; cleanup finds no object to remove, and makes the
  // source writable again (the printed undo).
  Result<std::unique_ptr<StateStore>> store = StateStore::OpenReadOnly(dir_);
  ASSERT_TRUE(store.ok());
  Result<std::optional<StoredRun>> run = (*store)->Run();
  ASSERT_TRUE(run.ok() && run->has_value());
  EXPECT_EQ((*run)->state, "done");
  store->reset();
  CleanupOptions clean;
  clean.work_dir = dir_;
  Result<CleanupOutcome> cleaned = Cleanup(clean);
  ASSERT_TRUE(cleaned.ok()) << cleaned.status().ToString();
  EXPECT_TRUE(cleaned->removed.empty());
  ASSERT_EQ(cleaned->undone.size(), 1u);
  EXPECT_NE(cleaned->undone[0].find("default_transaction_read_only"), std::string::npos);
  EXPECT_TRUE(cleaned->ok());
  EXPECT_TRUE(source_->Sql("INSERT INTO public.events VALUES (-1, 'x')", "shop").ok());
}

// A difference the target has at the switch moment is caught by the
// verification after it: cutover says so loudly (exit status, NOT VERIFIED,
// what differs, what to do), and the database, whose target is now the
// primary, is never cut over again.
TEST_F(ReplicationTest, CutoverReportsADifferenceAtTheSwitchMoment) {
  ASSERT_NO_FATAL_FAILURE(testing::StartReplicating(Options()));
  // A row lost on the target behind replication's back: nothing restores it.
  ASSERT_TRUE(target_
                  ->Sql("SET session_replication_role = replica; "
                        "DELETE FROM public.events WHERE id = 7",
                        "shop")
                  .ok());
  ProcessResult cut =
      RunCli({"cutover", "--dir", dir_, "--stop-source-writes", "--timeout", "60", "--json"});
  EXPECT_EQ(cut.exit_code, 1) << cut.out << cut.err;
  nlohmann::json json = nlohmann::json::parse(cut.out, nullptr, false);
  ASSERT_FALSE(json.is_discarded()) << cut.out;
  EXPECT_EQ(json["ok"], false);
  const nlohmann::json& db = json["databases"][0];
  EXPECT_EQ(db["status"], "failed");
  EXPECT_EQ(db["switched"], true);
  EXPECT_EQ(db["window"].size(), 7u) << db.dump(2);
  EXPECT_EQ(db["after_switch"].back()["phase"], "verification") << db.dump(2);
  const std::string error = db["error"].is_string() ? db["error"].get<std::string>() : "";
  EXPECT_EQ(error.rfind("NOT VERIFIED: verified at the switch moment, the target differs", 0), 0u)
      << error;
  EXPECT_NE(error.find("\"public\".\"events\" (1000 rows on the source, 999 on the target)"),
            std::string::npos)
      << error;
  EXPECT_NE(db["hint"].get<std::string>().find("do not run cutover again"), std::string::npos);
  EXPECT_EQ(db["verification"]["ok"], false) << db["verification"].dump(2);
  // The replication is gone and the source stays read-only; the target is
  // the primary: a second cutover finds nothing to cut over.
  EXPECT_EQ(OnSource("SELECT count(*) FROM pg_replication_slots", "postgres"), "0");
  EXPECT_FALSE(source_->Sql("INSERT INTO public.events VALUES (-1, 'x')", "shop").ok());
  ProcessResult again = RunCli({"cutover", "--dir", dir_, "--timeout", "5"});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("is replicating"), std::string::npos) << again.out << again.err;
  EXPECT_EQ(OnTarget("SELECT count(*) FROM public.events"), "999");
}

TEST_F(ReplicationTest, CleanupRemovesEverythingAtAnyTimeAndAgain) {
  ASSERT_NO_FATAL_FAILURE(testing::StartReplicating(Options()));
  EXPECT_EQ(OnSource("SELECT count(*) FROM pg_replication_slots", "postgres"), "1");
  EXPECT_EQ(OnSource("SELECT count(*) FROM pg_publication"), "2");
  EXPECT_EQ(OnTarget("SELECT count(*) FROM pg_subscription", "postgres"), "1");
  // status shows the replication: every published table ready, in sync.
  bool in_sync = false;
  for (int i = 0; i < 300 && !in_sync; ++i) {
    Result<StatusView> view = ReadStatus(dir_, false);
    ASSERT_TRUE(view.ok()) << view.status().ToString();
    ReadReplication(*view, std::chrono::seconds(5));
    ASSERT_EQ(view->replication.count("shop"), 1u);
    const ReplicationView& r = view->replication.at("shop");
    EXPECT_TRUE(r.error.empty()) << r.error;
    EXPECT_EQ(r.lag.tables.size(), 3u) << "accounts, events and no_pk (inserts and truncates)";
    in_sync = r.in_sync;
    if (in_sync) {
      nlohmann::json json = StatusJson(*view, false);
      EXPECT_EQ(json["state"], "syncing");
      EXPECT_EQ(json["databases"][0]["status"], "syncing");
      EXPECT_EQ(json["databases"][0]["replication"]["in_sync"], true);
      EXPECT_GE(json["databases"][0]["replication"]["retained_wal_bytes"].get<int64_t>(), 0);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  EXPECT_TRUE(in_sync);
  // Tables without a replica identity are published for inserts and
  // truncates only: their UPDATE and DELETE keep working on the source.
  EXPECT_EQ(OnSource("SELECT string_agg(p.pubname, ',') FROM pg_publication_tables t "
                     "JOIN pg_publication p USING (pubname) WHERE t.tablename = 'no_pk' "
                     "AND p.pubinsert AND p.pubtruncate AND NOT p.pubupdate AND NOT p.pubdelete"),
            NamesFor(RunId(), 0).append_publication);
  EXPECT_TRUE(source_->Sql("UPDATE public.no_pk SET v = v || '!'", "shop").ok());
  EXPECT_TRUE(source_->Sql("DELETE FROM public.no_pk WHERE v = 'row 9!'", "shop").ok());

  // A cutover that stops writes and then times out (the target applies
  // nothing: a session holds the table there; the replication itself is
  // healthy, so waiting could help) leaves the source read-only; cleanup
  // still removes everything there and makes it writable again.
  Result<std::unique_ptr<Connection>> locker =
      Connection::Connect(*ConnInfo::Parse(target_->ConnString("shop")), {});
  ASSERT_TRUE(locker.ok()) << locker.status().ToString();
  ASSERT_TRUE((*locker)->Run("BEGIN; LOCK TABLE public.events IN ACCESS EXCLUSIVE MODE").ok());
  ASSERT_TRUE(source_->Sql("INSERT INTO public.events VALUES (-2, 'unapplied')", "shop").ok());
  CutoverOptions cut;
  cut.work_dir = dir_;
  cut.stop_source_writes = true;
  cut.timeout = std::chrono::seconds(2);
  Result<CutoverOutcome> cutover = Cutover(cut);
  ASSERT_TRUE(cutover.ok()) << cutover.status().ToString();
  EXPECT_EQ(cutover->databases.at(0).state, "failed");
  EXPECT_NE(cutover->databases.at(0).error.find("not yet up to"), std::string::npos)
      << cutover->databases.at(0).error;
  EXPECT_FALSE(source_->Sql("INSERT INTO public.events VALUES (-3, 'x')", "shop").ok());
  EXPECT_TRUE((*locker)->Run("ROLLBACK").ok());

  CleanupOptions clean;
  clean.work_dir = dir_;
  Result<CleanupOutcome> cleaned = Cleanup(clean);
  ASSERT_TRUE(cleaned.ok()) << cleaned.status().ToString();
  EXPECT_EQ(cleaned->removed.size(), 4u);
  EXPECT_EQ(cleaned->undone.size(), 1u);
  EXPECT_TRUE(cleaned->ok());
  EXPECT_TRUE(source_->Sql("INSERT INTO public.events VALUES (-3, 'x')", "shop").ok());
  EXPECT_EQ(OnSource("SELECT count(*) FROM pg_replication_slots", "postgres"), "0");
  EXPECT_EQ(OnSource("SELECT count(*) FROM pg_publication"), "0");
  EXPECT_EQ(OnTarget("SELECT count(*) FROM pg_subscription", "postgres"), "0");
  // The subscription's connection string (with the source's password, when
  // it has one) went with it.
  EXPECT_EQ(OnTarget("SELECT count(*) FROM pg_subscription", "postgres"), "0");
  cleaned = Cleanup(clean);
  ASSERT_TRUE(cleaned.ok());
  EXPECT_TRUE(cleaned->removed.empty()) << "idempotent";
  EXPECT_TRUE(cleaned->undone.empty());
}

// Nothing of pgcourier's own is left on the target after migrate, cutover
// or cleanup: no publication of a run (it would come in with the schema, as
// pg_dump dumps publications), no _pgcourier schema, no subscription; the
// user's own publication moves.
TEST_F(ReplicationTest, NothingOfPgcourierIsLeftOnTheTarget) {
  ASSERT_TRUE(source_->Sql("CREATE PUBLICATION shop_pub FOR TABLE public.events", "shop").ok());
  constexpr const char* kOwnPublications =
      "SELECT count(*) FROM pg_publication WHERE pubname ~ '^pgcourier_'";
  constexpr const char* kOwnSchema =
      "SELECT count(*) FROM pg_namespace WHERE nspname = '_pgcourier'";
  ASSERT_NO_FATAL_FAILURE(testing::StartReplicating(Options()));
  EXPECT_EQ(OnSource(kOwnPublications), "2");
  EXPECT_EQ(OnTarget(kOwnPublications), "0") << "the run's publications came in with the schema";
  EXPECT_EQ(OnTarget(kOwnSchema), "0");
  EXPECT_EQ(OnTarget("SELECT count(*) FROM pg_publication_tables WHERE pubname = 'shop_pub' "
                     "AND tablename = 'events'"),
            "1");
  EXPECT_EQ(OnTarget("SELECT count(*) FROM pg_subscription", "postgres"), "1");

  // One that an earlier version left on the target goes at cutover.
  const std::string publication = NamesFor(RunId(), 0).publication;
  ASSERT_TRUE(
      target_->Sql("CREATE PUBLICATION " + publication + " FOR TABLE public.events", "shop").ok());
  CutoverOptions cut;
  cut.work_dir = dir_;
  cut.timeout = std::chrono::seconds(60);
  cut.connect_timeout = std::chrono::seconds(10);
  Result<CutoverOutcome> cutover = Cutover(cut);
  ASSERT_TRUE(cutover.ok()) << cutover.status().ToString();
  ASSERT_EQ(cutover->databases.at(0).state, "done") << cutover->databases.at(0).error;
  EXPECT_EQ(OnTarget(kOwnPublications), "0");
  EXPECT_EQ(OnTarget(kOwnSchema), "0");
  EXPECT_EQ(OnTarget("SELECT count(*) FROM pg_subscription", "postgres"), "0");
  EXPECT_EQ(OnTarget("SELECT count(*) FROM pg_publication WHERE pubname = 'shop_pub'"), "1");
  EXPECT_EQ(OnSource(kOwnPublications), "0");

  // And at cleanup, with the progress marks of an interrupted cutover.
  ASSERT_TRUE(
      target_->Sql("CREATE PUBLICATION " + publication + " FOR TABLE public.events", "shop").ok());
  {
    Result<std::unique_ptr<Connection>> conn =
        Connection::Connect(*ConnInfo::Parse(target_->ConnString("shop")), {});
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    ASSERT_TRUE(CreateProgressMarks(**conn).ok());
  }
  CleanupOptions clean;
  clean.work_dir = dir_;
  Result<CleanupOutcome> cleaned = Cleanup(clean);
  ASSERT_TRUE(cleaned.ok()) << cleaned.status().ToString();
  EXPECT_TRUE(cleaned->ok());
  EXPECT_EQ(cleaned->removed.size(), 2u);
  EXPECT_EQ(OnTarget(kOwnPublications), "0");
  EXPECT_EQ(OnTarget(kOwnSchema), "0");
  EXPECT_EQ(OnTarget("SELECT count(*) FROM pg_publication WHERE pubname = 'shop_pub'"), "1");
}

TEST_F(ReplicationTest, ReplicaIdentityFullOnlyWhenAsked) {
  MigrateOptions options = Options();
  options.replica_identity_full = true;
  ASSERT_NO_FATAL_FAILURE(testing::StartReplicating(options));
  EXPECT_EQ(OnSource("SELECT relreplident FROM pg_class WHERE oid = 'public.no_pk'::regclass"),
            "f");
  EXPECT_EQ(OnSource("SELECT count(*) FROM pg_publication_tables WHERE tablename = 'no_pk'"), "1");
  // Its UPDATEs keep working on the source, and replicate.
  ASSERT_TRUE(source_->Sql("UPDATE public.no_pk SET v = v || '!' WHERE v = 'row 7'", "shop").ok());
  CutoverOptions cut;
  cut.work_dir = dir_;
  cut.timeout = std::chrono::seconds(60);
  Result<CutoverOutcome> cutover = Cutover(cut);
  ASSERT_TRUE(cutover.ok()) << cutover.status().ToString();
  ASSERT_EQ(cutover->databases.at(0).state, "done") << cutover->databases.at(0).error;
  EXPECT_EQ(cutover->databases.at(0).tables_recopied, 0);
  EXPECT_EQ(OnTarget("SELECT count(*) FROM public.no_pk WHERE v = 'row 7!'"), "1");
  EXPECT_EQ(Fingerprint(*target_), Fingerprint(*source_));
  // The source's table is as it was before the migration.
  EXPECT_EQ(OnSource("SELECT relreplident FROM pg_class WHERE oid = 'public.no_pk'::regclass"),
            "d");
  const std::vector<std::string>& removed = cutover->databases.at(0).removed;
  EXPECT_NE(std::find(removed.begin(), removed.end(),
                      "REPLICA IDENTITY FULL on public.no_pk (source, undone)"),
            removed.end());
}

TEST_F(ReplicationTest, MethodReplicationNeverFallsBackSilently) {
  // A source without wal_level = logical: --method replication fails the
  // checks with the reason; nothing is touched.
  auto plain = StartClusterOrFail({});
  ASSERT_NE(plain, nullptr);
  ASSERT_TRUE(plain->Sql("CREATE DATABASE shop").ok());
  MigrateOptions options = Options();
  options.check.source = plain->ConnString("shop");
  Result<MigrationOutcome> migrated = Migrate(options);
  ASSERT_TRUE(migrated.ok()) << migrated.status().ToString();
  EXPECT_FALSE(migrated->checks_passed);
  bool wal_level = false;
  for (const auto& item : migrated->check.items) {
    if (item.code.find("wal_level") != std::string::npos && item.status == CheckStatus::kFail) {
      wal_level = true;
    }
  }
  EXPECT_TRUE(wal_level);
  EXPECT_EQ(OnTarget("SELECT count(*) FROM pg_database WHERE datname = 'shop'", "postgres"), "0");
}

// A transaction holding a transaction id stays open on the source: the
// slot's creation waits for it. `check` warns about it; the wait is named in
// the progress (pid, age, query) and in status, and ends at --lock-timeout
// with the database failed naming it, and nothing of pgcourier's left on
// the source; once it has ended, --resume moves the database.
TEST_F(ReplicationTest, SlotWaitForAnOpenTransactionIsNamedBoundedAndResumed) {
  Result<std::unique_ptr<Connection>> held = Connection::Connect(
      *ConnInfo::Parse(source_->ConnString("shop") + " application_name=holder"), {});
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  Result<QueryResult> pid_row = (*held)->Exec("SELECT pg_backend_pid()");
  ASSERT_TRUE(pid_row.ok());
  const int64_t pid = pid_row->GetInt(0, 0);
  ASSERT_TRUE((*held)->Run("BEGIN").ok());
  ASSERT_TRUE((*held)->Run("UPDATE public.events SET what = 'held' WHERE id = 1").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));

  // check: a transaction open longer than the threshold (1 s here) is named.
  ::setenv("PGCOURIER_LONG_TRANSACTION_SECONDS", "1", 1);
  Result<CheckReport> checked = RunChecks(Options().check);
  ::unsetenv("PGCOURIER_LONG_TRANSACTION_SECONDS");
  ASSERT_TRUE(checked.ok()) << checked.status().ToString();
  bool warned = false;
  for (const auto& item : checked->items) {
    if (item.code != "replication.transactions") continue;
    warned = item.status == CheckStatus::kWarn &&
             item.detail.find(fmt::format("transaction pid {} open", pid)) != std::string::npos &&
             item.hint.find(fmt::format("pg_terminate_backend({})", pid)) != std::string::npos;
    EXPECT_TRUE(warned) << item.detail << " / " << item.hint;
  }
  EXPECT_TRUE(warned) << "no replication.transactions warning";

  MigrateOptions options = Options();
  options.lock_timeout = std::chrono::seconds(5);
  std::mutex mu;
  std::vector<std::string> lines;
  options.on_progress = [&](const ProgressEvent& e) {
    std::lock_guard<std::mutex> lock(mu);
    lines.push_back(e.message);
  };
  const std::string named = fmt::format("transaction pid {} open", pid);
  const auto started = std::chrono::steady_clock::now();
  std::optional<Result<MigrationOutcome>> outcome;
  std::atomic<bool> ended{false};
  std::thread migrating([&] {
    outcome.emplace(Migrate(options));
    ended = true;
  });
  // status says what the database waits for, while it waits.
  bool status_named = false;
  const auto until = started + std::chrono::seconds(60);
  while (!status_named && std::chrono::steady_clock::now() < until) {
    Result<StatusView> view = ReadStatus(dir_, false);
    if (view.ok() && !view->databases.empty()) {
      const std::string& hint = view->databases[0].hint;
      status_named = hint.find("for the replication slot") != std::string::npos &&
                     hint.find(named) != std::string::npos;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  while (!ended && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  const bool bounded = ended;
  if (!bounded) (void)(*held)->Run("ROLLBACK");  // lets an unbounded wait end
  migrating.join();
  ASSERT_TRUE(bounded) << "the slot's wait was not bounded by --lock-timeout";
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_TRUE(status_named) << "status never named the transaction the slot waited for";
  ASSERT_TRUE(outcome.has_value());
  const Result<MigrationOutcome>& failed = *outcome;
  ASSERT_TRUE(failed.ok()) << failed.status().ToString();
  ASSERT_EQ(failed->databases.size(), 1U);
  const DatabaseOutcome& db = failed->databases[0];
  EXPECT_EQ(db.state, DatabaseState::kFailed);
  EXPECT_LT(took, std::chrono::seconds(90)) << "the wait was not bounded";
  EXPECT_NE(db.error.find(named), std::string::npos) << db.error;
  EXPECT_NE(db.error.find("UPDATE public.events SET what = 'held'"), std::string::npos) << db.error;
  EXPECT_NE(db.error.find("waited 5s (--lock-timeout)"), std::string::npos) << db.error;
  EXPECT_NE(db.hint.find(fmt::format("pg_terminate_backend({})", pid)), std::string::npos)
      << db.hint;
  EXPECT_NE(db.hint.find("pgcourier migrate --resume --dir " + dir_), std::string::npos) << db.hint;
  bool progress_named = false;
  for (const auto& line : lines) {
    if (line.find("for the replication slot") != std::string::npos &&
        line.find(named) != std::string::npos) {
      progress_named = true;
    }
  }
  EXPECT_TRUE(progress_named) << "no progress line named the transaction while waiting";
  // Nothing of pgcourier's is left on the source.
  EXPECT_EQ(*source_->Sql("SELECT count(*) FROM pg_replication_slots"), "0");
  EXPECT_EQ(*source_->Sql("SELECT count(*) FROM pg_publication", "shop"), "0");

  ASSERT_TRUE((*held)->Run("ROLLBACK").ok());
  options.resume = true;
  options.on_progress = nullptr;
  Result<MigrationOutcome> resumed = Migrate(options);
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  ASSERT_EQ(resumed->databases.size(), 1U);
  EXPECT_EQ(resumed->databases[0].state, DatabaseState::kSyncing) << resumed->databases[0].error;
}

TEST_F(ReplicationTest, KilledDuringTheBulkCopyThenResumedAndCutOverLosesNothing) {
  // A table whose COPY into the target takes seconds (its CHECK sleeps on
  // one row there): the window to kill pgcourier in.
  ASSERT_TRUE(
      source_
          ->Sql(
              fmt::format("CREATE FUNCTION public.pause(id int) RETURNS boolean LANGUAGE "
                          "plpgsql AS $$ BEGIN IF id = 5 AND inet_server_port() = {} THEN "
                          "PERFORM pg_sleep(3); END IF; RETURN true; END $$; "
                          "CREATE TABLE public.slow (id int PRIMARY KEY CHECK (public.pause(id))); "
                          "INSERT INTO public.slow SELECT generate_series(1, 10);",
                          target_->port()),
              "shop")
          .ok());
  StartWriter();
  BackgroundRun migrate({"migrate", "--source", source_->ConnString("shop"), "--target",
                         target_->ConnString("postgres"), "--dir", dir_, "--method", "replication",
                         "--jobs", "2", "--quiet"});
  ASSERT_TRUE(migrate.KillWhen([this] {
    Result<std::string> copying = target_->Sql(
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%COPY \"public\".\"slow\"%' "
        "AND state = 'active' AND pid <> pg_backend_pid()");
    return copying.ok() && *copying != "0";
  })) << "the copy of public.slow was never seen";
  // The interrupted run's slot is there; the resumed run replaces it.
  EXPECT_EQ(OnSource("SELECT count(*) FROM pg_replication_slots", "postgres"), "1");
  ProcessResult resumed = RunCli({"migrate", "--resume", "--dir", dir_, "--quiet"});
  EXPECT_EQ(resumed.exit_code, 0) << resumed.out << resumed.err;
  EXPECT_EQ(OnSource("SELECT count(*) FROM pg_replication_slots", "postgres"), "1");
  EXPECT_EQ(OnSource("SELECT count(*) FROM pg_publication"), "2");
  ProcessResult cut = RunCli({"cutover", "--dir", dir_, "--stop-source-writes", "--timeout", "60"});
  StopWriter();
  EXPECT_EQ(cut.exit_code, 0) << cut.out << cut.err;
  EXPECT_EQ(Fingerprint(*target_), Fingerprint(*source_));
  EXPECT_EQ(OnTarget("SELECT count(*) FROM public.slow"), "10");
  EXPECT_EQ(OnSource("SELECT count(*) FROM pg_replication_slots", "postgres"), "0");
  EXPECT_EQ(OnSource("SELECT count(*) FROM pg_publication"), "0");
  EXPECT_EQ(OnTarget("SELECT count(*) FROM pg_subscription", "postgres"), "0");
}

TEST_F(ReplicationTest, CutoverKilledWhileWaitingIsRunAgain) {
  ASSERT_NO_FATAL_FAILURE(testing::StartReplicating(Options()));
  // The target applies nothing (a session holds the table there; the
  // replication itself is healthy, so waiting could help): cutover waits
  // for it, and is killed there.
  Result<std::unique_ptr<Connection>> locker =
      Connection::Connect(*ConnInfo::Parse(target_->ConnString("shop")), {});
  ASSERT_TRUE(locker.ok()) << locker.status().ToString();
  ASSERT_TRUE((*locker)->Run("BEGIN; LOCK TABLE public.events IN ACCESS EXCLUSIVE MODE").ok());
  ASSERT_TRUE(
      source_->Sql("INSERT INTO public.events VALUES (5000, 'during cutover')", "shop").ok());
  // A first attempt that stops the source's writes and gives up waiting:
  // its phase "stopping writes" is recorded.
  ProcessResult gave_up =
      RunCli({"cutover", "--dir", dir_, "--stop-source-writes", "--timeout", "1", "--quiet"});
  EXPECT_EQ(gave_up.exit_code, 1) << gave_up.out << gave_up.err;
  EXPECT_NE(CutoverPhases().find("stopping writes"), std::string::npos) << CutoverPhases();
  const auto started = std::chrono::steady_clock::now();
  BackgroundRun cutover({"cutover", "--dir", dir_, "--timeout", "120", "--quiet"});
  ASSERT_TRUE(cutover.KillWhen(
      [&] { return std::chrono::steady_clock::now() - started > std::chrono::seconds(2); }));
  EXPECT_TRUE((*locker)->Run("ROLLBACK").ok());
  ProcessResult cut = RunCli({"cutover", "--dir", dir_, "--timeout", "60", "--json"});
  EXPECT_EQ(cut.exit_code, 0) << cut.out << cut.err;
  // The phases recorded are this cutover's alone (it stopped no writes).
  EXPECT_EQ(CutoverPhases(),
            "cutover: catching up, cutover: write counters, cutover: snapshot, cutover: "
            "sequences, cutover: unreplicated copy, cutover: switch, cutover: removing "
            "replication, cutover: verification");
  EXPECT_EQ(OnTarget("SELECT what FROM public.events WHERE id = 5000"), "during cutover");
  EXPECT_EQ(Fingerprint(*target_), Fingerprint(*source_));
  EXPECT_EQ(OnSource("SELECT count(*) FROM pg_replication_slots", "postgres"), "0");
}

// Neither side a superuser: a source user with REPLICATION that owns its
// tables, and a PostgreSQL 17 target user with pg_create_subscription (whose
// subscription must authenticate with a password).
class ReplicationNonSuperuserTest : public testing::SourceAndTargetTest {};

TEST_F(ReplicationNonSuperuserTest, ReplicationAndPgCreateSubscription) {
  if (testing::PgBinDir(17).empty()) GTEST_SKIP() << "no PostgreSQL 17 here";
  testing::SourceAndTargetOptions servers;
  servers.logical_source = true;
  servers.source_role = {"app", "app-secret", "REPLICATION"};
  servers.target.major = 17;
  servers.target_role = {"mover", "mover-secret", "CREATEDB"};
  ASSERT_NO_FATAL_FAILURE(StartServers(servers));
  ASSERT_TRUE(source_->Sql("CREATE DATABASE shop OWNER app").ok());
  ASSERT_TRUE(
      source_
          ->Sql("SET ROLE app; CREATE TABLE public.items (id int PRIMARY KEY, v text); "
                "INSERT INTO public.items SELECT g, 'v' || g FROM generate_series(1, 500) g;",
                "shop")
          .ok());
  ASSERT_TRUE(target_->Sql("GRANT pg_create_subscription TO mover").ok());
  const std::string dir = source_->base_dir() + "/work";
  MigrateOptions options = MigrationOptions("shop", Method::kReplication);
  options.check.source = source_->ConnString("shop", "app", "app-secret");
  options.check.target = target_->ConnString("postgres", "mover", "mover-secret");
  options.work_dir = dir;
  ASSERT_NO_FATAL_FAILURE(testing::StartReplicating(options));
  ASSERT_TRUE(
      source_->Sql("SET ROLE app; INSERT INTO public.items VALUES (501, 'late')", "shop").ok());
  CutoverOptions cut;
  cut.work_dir = dir;
  cut.source = options.check.source;
  cut.target = options.check.target;
  cut.timeout = std::chrono::seconds(60);
  Result<CutoverOutcome> cutover = Cutover(cut);
  ASSERT_TRUE(cutover.ok()) << cutover.status().ToString();
  ASSERT_EQ(cutover->databases.at(0).state, "done") << cutover->databases.at(0).error;
  EXPECT_EQ(*target_->Sql("SELECT count(*), max(id) FROM public.items", "shop"), "501|501");
  EXPECT_EQ(*target_->Sql("SELECT count(*) FROM pg_subscription"), "0");
  EXPECT_EQ(*source_->Sql("SELECT count(*) FROM pg_replication_slots"), "0");
  // No password in the work directory's store.
  Result<std::unique_ptr<StateStore>> store = StateStore::OpenReadOnly(dir);
  ASSERT_TRUE(store.ok());
  Result<std::optional<StoredRun>> run = (*store)->Run();
  ASSERT_TRUE(run.ok() && run->has_value());
  EXPECT_EQ((*run)->source.find("app-secret"), std::string::npos);
  EXPECT_EQ((*run)->options_json.find("secret"), std::string::npos);
}

}  // namespace
}  // namespace pgcourier

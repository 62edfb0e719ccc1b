// What the servers and other sessions do to a running migration: the source
// or the target killed (pg_ctl stop -m immediate) in the middle of a copy and
// started again; roles whose settings would cut long statements and idle
// transactions; ACCESS EXCLUSIVE locks held by another session on a source
// table during the copy and on a target table during the index builds; and
// pgcourier itself killed at random moments, over and over. Every one ends
// with `migrate --resume` (when the run did not finish by itself) and both
// sides equal: per table the row count and the md5 of its rows in order, so a
// row copied twice or lost shows. Runs the real binary, as a user would.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli_runner.h"
#include "pg/connection.h"
#include "pg_cluster.h"
#include "state/store.h"
#include "state_names.h"
#include "two_servers.h"
#include "util/process.h"

namespace pgcourier {
namespace {

using Clock = std::chrono::steady_clock;
using testing::BackgroundRun;
using testing::PgCluster;
using testing::PgClusterOptions;
using testing::TryRunCli;

// A table large enough that its copy takes a while (about 35 MB, sliced at
// --slice-size 4MB), a small one with a key, one without a key, a sequence.
constexpr const char* kShop = R"sql(
  CREATE TABLE public.events (id bigserial PRIMARY KEY, customer int NOT NULL, payload text);
  INSERT INTO public.events (customer, payload)
    SELECT g % 2000, repeat(md5(g::text), 5) FROM generate_series(1, 150000) g;
  CREATE INDEX events_customer ON public.events (customer);
  CREATE TABLE public.small (id int PRIMARY KEY, label text);
  INSERT INTO public.small SELECT g, 'small ' || g FROM generate_series(1, 1000) g;
  CREATE TABLE public.no_key (v text);
  INSERT INTO public.no_key SELECT 'row ' || g FROM generate_series(1, 3000) g;
)sql";

// Connects without waiting long: the server may be down.
std::unique_ptr<Connection> TryConnect(const PgCluster& cluster, const std::string& db) {
  ConnectOptions options;
  options.total_timeout = std::chrono::seconds(2);
  Result<std::unique_ptr<Connection>> conn =
      Connection::Connect(*ConnInfo::Parse(cluster.ConnString(db)), options);
  return conn.ok() ? std::move(*conn) : nullptr;
}

// Polls `sql` (one boolean) on `db` until it is true; false at the timeout.
bool WaitUntil(const PgCluster& cluster, const std::string& db, const std::string& sql,
               std::chrono::seconds timeout = std::chrono::seconds(90)) {
  std::unique_ptr<Connection> conn;
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (!conn || conn->IsBad()) conn = TryConnect(cluster, db);
    if (conn) {
      Result<QueryResult> r = conn->Exec(sql);
      if (r.ok() && r->rows() == 1 && r->GetString(0, 0) == "t") return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

// A statement of pgcourier running on `db` (its text LIKE `like`).
std::string Running(const std::string& like) {
  return "SELECT count(*) > 0 FROM pg_stat_activity WHERE datname = current_database() AND "
         "state = 'active' AND pid <> pg_backend_pid() AND query LIKE '" +
         like + "'";
}

// Both servers, with an empty shop database on the source; `target`: the
// target's options.
testing::SourceAndTargetOptions Shop(const PgClusterOptions& target = {}) {
  testing::SourceAndTargetOptions options;
  options.target = target;
  options.database = "shop";
  return options;
}

class ServerFaultsTest : public testing::SourceAndTargetTest {
 protected:
  void Load(const std::string& sql) {
    Result<std::string> loaded = source_->Sql(sql, "shop");
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  }

  std::vector<std::string> MigrateArgs(const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> args = {
        "migrate",
        "--method",
        "copy",
        "--source",
        source_conn_.empty() ? source_->ConnString("shop") : source_conn_,
        "--target",
        target_->ConnString("postgres", target_user_),
        "--dir",
        dir_,
        "--jobs",
        jobs_,
        "--slice-size",
        slice_size_};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  // Per table of the source's public schema: rows and the md5 of the rows
  // in order, on each side.
  void ExpectSameData() {
    Result<std::string> tables = source_->Sql(
        "SELECT string_agg(quote_ident(relname), ' ' ORDER BY relname) FROM pg_class "
        "WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace",
        "shop");
    ASSERT_TRUE(tables.ok()) << tables.status().ToString();
    std::istringstream names(*tables);
    std::string table;
    int compared = 0;
    while (names >> table) {
      const std::string sql = fmt::format(
          "SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, E'\\n' ORDER BY "
          "t::text), '')) FROM public.{} t",
          table);
      Result<std::string> source = source_->Sql(sql, "shop");
      Result<std::string> target = target_->Sql(sql, "shop");
      ASSERT_TRUE(source.ok()) << source.status().ToString();
      ASSERT_TRUE(target.ok()) << table << ": " << target.status().ToString();
      EXPECT_EQ(*target, *source) << table;
      ++compared;
    }
    EXPECT_GE(compared, 3);
    const std::string indexes =
        "SELECT string_agg(indexname, ' ' ORDER BY indexname) FROM pg_indexes "
        "WHERE schemaname = 'public'";
    EXPECT_EQ(*target_->Sql(indexes, "shop"), *source_->Sql(indexes, "shop"));
    EXPECT_EQ(
        *target_->Sql("SELECT count(*) FROM pg_namespace WHERE nspname = '_pgcourier'", "shop"),
        "0")
        << "no progress marks left";
  }

  std::string RunState() const {
    Result<std::unique_ptr<StateStore>> store = StateStore::OpenReadOnly(dir_);
    if (!store.ok()) return "";
    Result<std::optional<StoredRun>> run = (*store)->Run();
    return run.ok() && run->has_value() ? Name((*run)->state) : "";
  }

  // A run that did not finish is resumed once, which must end verified.
  void ResumeIfNeededAndCheck(const ProcessResult& first) {
    if (first.exit_code != 0) {
      Result<ProcessResult> resumed = TryRunCli({"migrate", "--resume", "--dir", dir_, "--quiet"});
      ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
      ASSERT_EQ(resumed->exit_code, 0) << resumed->out << resumed->err;
    }
    EXPECT_EQ(RunState(), "done");
    ExpectSameData();
  }

  // Kills `server` as soon as `sql` holds on it (polled in `db`) while a
  // migration runs, starts it again `down` later, and returns the
  // migration's result.
  ProcessResult KillServerDuringMigration(PgCluster& server, const std::string& sql,
                                          std::chrono::seconds down) {
    BackgroundRun run(MigrateArgs({"--quiet"}));
    const bool seen = WaitUntil(server, "shop", sql);
    EXPECT_TRUE(seen) << "never saw: " << sql;
    if (seen) {
      EXPECT_FALSE(run.ended()) << "the migration ended before the kill";
      Status killed = server.Kill();
      EXPECT_TRUE(killed.ok()) << killed.ToString();
      std::this_thread::sleep_for(down);
      Status restarted = server.Restart();
      EXPECT_TRUE(restarted.ok()) << restarted.ToString();
    }
    const Result<ProcessResult>& ran = run.Join();
    EXPECT_TRUE(ran.ok()) << ran.status().ToString();
    if (!ran.ok()) return {};
    std::cout << "migrate exit " << ran->exit_code << "\n" << ran->out << ran->err << std::endl;
    return *ran;
  }

  std::string source_conn_;  // empty: the source's shop database as the superuser
  std::string target_user_;  // empty: the superuser
  std::string jobs_ = "2";
  std::string slice_size_ = "4MB";
};

// The source dies while a large table is being copied: the exported snapshot
// goes with it, so the run cannot finish; it must say where it stopped, and
// the resumed run (a new snapshot) ends verified.
TEST_F(ServerFaultsTest, SourceKilledMidCopyThenResumed) {
  ASSERT_NO_FATAL_FAILURE(StartServers(Shop()));
  ASSERT_NO_FATAL_FAILURE(Load(kShop));
  ProcessResult first = KillServerDuringMigration(*source_, Running("COPY %events%TO STDOUT%"),
                                                  std::chrono::seconds(3));
  ASSERT_FALSE(HasFailure());
  EXPECT_NE(first.exit_code, 0) << "the snapshot died with the source";
  const std::string said = first.out + first.err;
  EXPECT_NE(said.find("data"), std::string::npos) << "names the phase: " << said;
  EXPECT_NE(said.find("snapshot"), std::string::npos) << said;
  ResumeIfNeededAndCheck(first);
}

// The target dies while a large table is being loaded: the source's snapshot
// lives on, so the run rides it out (its copies retried once the target is
// back); the end is verified and no row is there twice.
TEST_F(ServerFaultsTest, TargetKilledMidCopyThenResumed) {
  ASSERT_NO_FATAL_FAILURE(StartServers(Shop()));
  ASSERT_NO_FATAL_FAILURE(Load(kShop));
  ProcessResult first = KillServerDuringMigration(*target_, Running("%COPY %events%FROM STDIN%"),
                                                  std::chrono::seconds(3));
  ASSERT_FALSE(HasFailure());
  // The copies are retried once it is back; the progress marks' schema was
  // committed durably, so the marks are there to read.
  EXPECT_EQ(first.exit_code, 0) << "the run did not ride out the target's restart";
  ResumeIfNeededAndCheck(first);
}

// The target dies just after tables were loaded and compared: the bulk load
// commits asynchronously, so the last commits before the crash can be lost
// although they were compared equal. A run that goes on must not call such a
// target verified.
TEST_F(ServerFaultsTest, TargetKilledRightAfterCommitsIsNeverCalledVerifiedWithLostRows) {
  // The WAL writer flushes asynchronous commits late: those of the last
  // moments before the kill are lost with it.
  PgClusterOptions lazy;
  lazy.settings = {"wal_writer_delay = '10s'", "wal_writer_flush_after = 0"};
  ASSERT_NO_FATAL_FAILURE(StartServers(Shop(lazy)));
  std::string sql;
  for (int i = 0; i < 40; ++i) {
    sql += fmt::format(
        "CREATE TABLE public.t{0} (id int PRIMARY KEY, v text); INSERT INTO public.t{0} "
        "SELECT g, md5(g::text) FROM generate_series(1, 2000) g;",
        i);
  }
  ASSERT_NO_FATAL_FAILURE(Load(sql));
  // The ANALYZE that follows a table's COMMIT (a small table's is sent in
  // one string with it: "COMMIT; ANALYZE ...; COPY ... TO STDOUT"): its copy
  // committed moments ago.
  ProcessResult first =
      KillServerDuringMigration(*target_, Running("%ANALYZE %"), std::chrono::seconds(2));
  ASSERT_FALSE(HasFailure());
  ResumeIfNeededAndCheck(first);
}

// Roles whose settings cut statements after 200 ms and sessions idle in a
// transaction after 500 ms (on both servers; on a 17 target, transactions
// after 1 s too):
// the snapshot's holder idles in its transaction for the whole move, the
// copies, index builds and comparisons take longer than that. pgcourier,
// pg_dump and pg_restore set their own timeouts, so the move succeeds.
class RoleTimeoutsTest : public ServerFaultsTest {
 protected:
  void MoveWithShortRoleTimeouts(int target_major) {
    PgClusterOptions target;
    target.major = target_major;
    ASSERT_NO_FATAL_FAILURE(StartServers(Shop(target)));
    // One index whose build sleeps (its expression sleeps on one row).
    ASSERT_NO_FATAL_FAILURE(Load(std::string(kShop) + R"sql(
      CREATE FUNCTION public.slow(id int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
      BEGIN
        IF id = 1 THEN PERFORM pg_catalog.pg_sleep(1); END IF;
        RETURN id;
      END $$;
      CREATE INDEX small_slow ON public.small (public.slow(id));
    )sql"));
    std::string settings =
        "CREATE ROLE mover LOGIN SUPERUSER; "
        "ALTER ROLE mover SET statement_timeout = '200ms'; "
        "ALTER ROLE mover SET idle_in_transaction_session_timeout = '500ms';";
    for (PgCluster* server : {source_.get(), target_.get()}) {
      std::string these = settings;
      if (server->major() >= 17) these += "ALTER ROLE mover SET transaction_timeout = '1s';";
      Result<std::string> made = server->Sql(these);
      ASSERT_TRUE(made.ok()) << made.status().ToString();
    }
    // The settings do apply to the role.
    Result<std::string> cut = source_->Sql("SELECT pg_sleep(0.5)", "shop", "mover");
    ASSERT_FALSE(cut.ok());
    EXPECT_NE(cut.status().message().find("statement timeout"), std::string::npos)
        << cut.status().ToString();
    source_conn_ = source_->ConnString("shop", "mover");
    target_user_ = "mover";
    // Whole tables: the copy of events takes one long statement.
    slice_size_ = "1GB";
    const auto started = Clock::now();
    Result<ProcessResult> ran = TryRunCli(MigrateArgs({"--quiet"}));
    ASSERT_TRUE(ran.ok()) << ran.status().ToString();
    EXPECT_EQ(ran->exit_code, 0) << ran->out << ran->err;
    EXPECT_GT(Clock::now() - started, std::chrono::seconds(1)) << "the move was too short to tell";
    EXPECT_EQ(RunState(), "done");
    ExpectSameData();
  }
};

TEST_F(RoleTimeoutsTest, ShortStatementAndIdleTimeoutsOfTheRolesDoNotCutTheMove) {
  MoveWithShortRoleTimeouts(15);
}

TEST_F(RoleTimeoutsTest, ShortTransactionTimeoutOfTheTargetRoleDoesNotCutTheMoveTo17) {
  if (!testing::HavePgMajor(17)) GTEST_SKIP() << "PostgreSQL 17 is not installed";
  MoveWithShortRoleTimeouts(17);
}

// Another session holds an ACCESS EXCLUSIVE lock (as ALTER TABLE or a
// LOCK TABLE in an open transaction does).
class LockTest : public ServerFaultsTest {
 protected:
  // Takes the lock in a transaction left open; returns the session's pid.
  int64_t LockTable(PgCluster& server, const std::string& table,
                    std::unique_ptr<Connection>& session) {
    // Named as a user's session would be (pgcourier's connections are
    // "pgcourier", which it takes for its own).
    Result<std::unique_ptr<Connection>> conn = Connection::Connect(
        *ConnInfo::Parse(server.ConnString("shop") + " application_name=locker"), {});
    EXPECT_TRUE(conn.ok()) << conn.status().ToString();
    if (!conn.ok()) return 0;
    session = std::move(*conn);
    Status locked = session->Run("BEGIN; LOCK TABLE " + table + " IN ACCESS EXCLUSIVE MODE");
    EXPECT_TRUE(locked.ok()) << locked.ToString();
    Result<QueryResult> pid = session->Exec("SELECT pg_backend_pid()");
    EXPECT_TRUE(pid.ok());
    return pid.ok() ? pid->GetInt(0, 0) : 0;
  }
  static std::string Waiting(const std::string& like) {
    return "SELECT count(*) > 0 FROM pg_stat_activity WHERE datname = current_database() AND "
           "wait_event_type = 'Lock' AND query LIKE '" +
           like + "'";
  }
  // With one job (events, the largest, first), locks public.small on the
  // source while events is copied, for a round of waiting (5 s) and more,
  // then lets go: the move waits, says for whom (and `also_said`), and ends
  // done and exact.
  void LockSmallDuringTheMove(const std::string& also_said = "") {
    jobs_ = "1";
    BackgroundRun run(MigrateArgs({"--lock-timeout", "60"}));
    ASSERT_TRUE(WaitUntil(*source_, "shop", Running("COPY %events%TO STDOUT%")));
    std::unique_ptr<Connection> session;
    const int64_t pid = LockTable(*source_, "public.small", session);
    ASSERT_TRUE(WaitUntil(*source_, "shop", Waiting("COPY %small%")))
        << "the copy of public.small never waited";
    std::this_thread::sleep_for(std::chrono::seconds(7));
    EXPECT_FALSE(run.ended()) << "the move did not wait for the lock";
    ASSERT_TRUE(session->Run("ROLLBACK").ok());
    const Result<ProcessResult>& ran = run.Join();
    ASSERT_TRUE(ran.ok()) << ran.status().ToString();
    EXPECT_EQ(ran->exit_code, 0) << ran->out << ran->err;
    EXPECT_NE(ran->err.find(also_said), std::string::npos) << ran->err;
    EXPECT_NE(ran->err.find(fmt::format("copying public.small: waiting for a lock held on the "
                                        "source by pid {} (",
                                        pid)),
              std::string::npos)
        << ran->err;
    EXPECT_EQ(RunState(), "done");
    ExpectSameData();
  }
};

// The lock is taken on a source table while an earlier table is copied and
// let go after a while: the copy of the locked table waits, says for whom,
// and the move completes.
TEST_F(LockTest, SourceTableLockedDuringTheCopyIsWaitedForAndNamed) {
  ASSERT_NO_FATAL_FAILURE(StartServers(Shop()));
  ASSERT_NO_FATAL_FAILURE(Load(kShop));
  ASSERT_NO_FATAL_FAILURE(LockSmallDuringTheMove());
}

// Small tables go several to a transaction: a lock on one of them fails its
// batch's round, and the batch's tables are copied one by one, the locked
// one waiting and named as above.
TEST_F(LockTest, ASmallTableLockedInItsBatchIsCopiedAloneWaitingAndNamed) {
  ASSERT_NO_FATAL_FAILURE(StartServers(Shop()));
  std::string more = kShop;
  for (int i = 0; i < 7; ++i) {
    more += fmt::format(
        "CREATE TABLE public.t{0} (id int PRIMARY KEY, v text); INSERT INTO public.t{0} "
        "SELECT g, md5(g::text) FROM generate_series(1, 500) g;",
        i);
  }
  ASSERT_NO_FATAL_FAILURE(Load(more));
  // Nine small tables, three to a batch.
  ASSERT_NO_FATAL_FAILURE(LockSmallDuringTheMove("copying them one by one"));
}

// The lock outlasts --lock-timeout: the database fails naming the table and
// the session; once the lock is gone, the resumed run ends verified.
TEST_F(LockTest, SourceTableLockedPastTheDeadlineFailsNamingItThenResumes) {
  ASSERT_NO_FATAL_FAILURE(StartServers(Shop()));
  ASSERT_NO_FATAL_FAILURE(Load(kShop));
  jobs_ = "1";
  BackgroundRun run(MigrateArgs({"--lock-timeout", "3", "--quiet"}));
  ASSERT_TRUE(WaitUntil(*source_, "shop", Running("COPY %events%TO STDOUT%")));
  std::unique_ptr<Connection> session;
  const int64_t pid = LockTable(*source_, "public.small", session);
  const Result<ProcessResult>& ran = run.Join();
  ASSERT_TRUE(ran.ok()) << ran.status().ToString();
  EXPECT_NE(ran->exit_code, 0);
  const std::string said = ran->out + ran->err;
  EXPECT_NE(said.find(fmt::format("copying public.small: no lock after waiting 3 s: it is held on "
                                  "the source by pid {} (",
                                  pid)),
            std::string::npos)
      << said;
  EXPECT_NE(said.find("AccessExclusiveLock on public.small"), std::string::npos) << said;
  ASSERT_TRUE(session->Run("ROLLBACK").ok());
  ResumeIfNeededAndCheck(*ran);
}

// A lock held on a source table before the move starts: the snapshot's
// catalog read (table sizes) waits for it, bounded by --lock-timeout, and
// the failure names the session.
TEST_F(LockTest, SourceTableLockedBeforeTheStartFailsNamingItThenResumes) {
  ASSERT_NO_FATAL_FAILURE(StartServers(Shop()));
  ASSERT_NO_FATAL_FAILURE(Load(kShop));
  std::unique_ptr<Connection> session;
  const int64_t pid = LockTable(*source_, "public.small", session);
  const auto started = Clock::now();
  Result<ProcessResult> ran = TryRunCli(MigrateArgs({"--lock-timeout", "2", "--quiet"}));
  ASSERT_TRUE(ran.ok()) << ran.status().ToString();
  EXPECT_LT(Clock::now() - started, std::chrono::seconds(60));
  EXPECT_NE(ran->exit_code, 0);
  const std::string said = ran->out + ran->err;
  EXPECT_NE(said.find(fmt::format("pid {} (", pid)), std::string::npos) << said;
  EXPECT_NE(said.find("AccessExclusiveLock on public.small"), std::string::npos) << said;
  ASSERT_TRUE(session->Run("ROLLBACK").ok());
  ResumeIfNeededAndCheck(*ran);
}

// The lock is taken on a target table between two of its index builds and
// outlasts --lock-timeout: the build fails naming the table and the session;
// the resumed run builds what is missing and ends verified.
TEST_F(LockTest, TargetTableLockedDuringIndexBuildsFailsNamingItThenResumes) {
  ASSERT_NO_FATAL_FAILURE(StartServers(Shop()));
  // Two index builds that take a second each: whichever runs first, another
  // build of the table follows it.
  ASSERT_NO_FATAL_FAILURE(Load(std::string(kShop) + R"sql(
    CREATE FUNCTION public.slow(id int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
    BEGIN
      IF id = 1 THEN PERFORM pg_catalog.pg_sleep(1); END IF;
      RETURN id;
    END $$;
    CREATE INDEX small_slow_a ON public.small (public.slow(id));
    CREATE INDEX small_slow_b ON public.small (public.slow(id), label);
  )sql"));
  jobs_ = "1";
  BackgroundRun run(MigrateArgs({"--lock-timeout", "3", "--quiet"}));
  ASSERT_TRUE(WaitUntil(*target_, "shop", Running("%CREATE INDEX small_slow%")));
  std::unique_ptr<Connection> session;
  // Granted once the running build commits.
  const int64_t pid = LockTable(*target_, "public.small", session);
  const Result<ProcessResult>& ran = run.Join();
  ASSERT_TRUE(ran.ok()) << ran.status().ToString();
  EXPECT_NE(ran->exit_code, 0);
  const std::string said = ran->out + ran->err;
  // A small table builds its indexes in its copy's transaction: the lock is
  // had after its COMMIT, and what waits for it is the table's ANALYZE and
  // comparison, which fail naming the table and the holder.
  EXPECT_NE(said.find("public.small: no lock after waiting "), std::string::npos) << said;
  EXPECT_NE(said.find(fmt::format(" s: it is held on the target by pid {} (", pid)),
            std::string::npos)
      << said;
  ASSERT_TRUE(session->Run("ROLLBACK").ok());
  ResumeIfNeededAndCheck(*ran);
}

// Small tables on both servers, alike: what `pgcourier verify` compares.
constexpr const char* kSmallShop = R"sql(
  CREATE TABLE public.small (id int PRIMARY KEY, label text);
  INSERT INTO public.small SELECT g, 'small ' || g FROM generate_series(1, 1000) g;
  CREATE TABLE public.no_key (v text);
  INSERT INTO public.no_key SELECT 'row ' || g FROM generate_series(1, 3000) g;
  CREATE SEQUENCE public.ids;
  SELECT setval('public.ids', 42);
)sql";

// `pgcourier verify` and a lock held by another session: the run ends
// after --lock-timeout (the hang detector of the run is a minute) naming
// the side, the table and the session, and reports no difference; once the
// lock is gone, the same command finds the databases equal.
class VerifyLockTest : public LockTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(StartServers(Shop()));
    ASSERT_NO_FATAL_FAILURE(Load(kSmallShop));
    ASSERT_TRUE(target_->Sql("CREATE DATABASE shop").ok());
    Result<std::string> loaded = target_->Sql(kSmallShop, "shop");
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  }

  Result<ProcessResult> Verify(const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> args = {"verify", "--source", source_->ConnString("shop"), "--target",
                                     target_->ConnString("shop")};
    args.insert(args.end(), extra.begin(), extra.end());
    return TryRunCli(args, testing::WithTimeout(std::chrono::minutes(1)));
  }

  void LockedTableFailsTheVerification(PgCluster& side, const std::string& side_name) {
    std::unique_ptr<Connection> session;
    const int64_t pid = LockTable(side, "public.no_key", session);
    ASSERT_NE(pid, 0);
    Result<ProcessResult> ran = Verify({"--lock-timeout", "2"});
    ASSERT_TRUE(ran.ok()) << "the verification waited on: " << ran.status().ToString();
    const std::string said = ran->out + ran->err;
    EXPECT_EQ(ran->exit_code, 1) << said;
    EXPECT_NE(said.find("no lock after waiting 2 s"), std::string::npos) << said;
    EXPECT_NE(said.find(fmt::format("held on the {} by pid {} (locker, ", side_name, pid)),
              std::string::npos)
        << said;
    EXPECT_NE(said.find("AccessExclusiveLock on public.no_key"), std::string::npos) << said;
    EXPECT_NE(said.find("then run pgcourier verify again"), std::string::npos) << said;
    // Not a difference, and nothing called verified.
    EXPECT_EQ(said.find("differ"), std::string::npos) << said;
    EXPECT_EQ(said.find("MISMATCH"), std::string::npos) << said;
    EXPECT_EQ(ran->out, "") << "no report of a verification that did not finish";
    ASSERT_TRUE(session->Run("ROLLBACK").ok());
    Result<ProcessResult> again = Verify({"--lock-timeout", "2"});
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ(again->exit_code, 0) << again->out << again->err;
  }
};

TEST_F(VerifyLockTest, LockedTargetTableFailsNamingTheSessionNotADifference) {
  LockedTableFailsTheVerification(*target_, "target");
}

TEST_F(VerifyLockTest, LockedSourceTableFailsNamingTheSessionNotADifference) {
  LockedTableFailsTheVerification(*source_, "source");
}

// The lock is taken on a target table the run has finished with (copied,
// indexed and compared) while a materialized view is refreshed, so that the
// final verification meets it: the database fails unverified naming the
// table and the session, and the resumed run, once the lock is gone, ends
// verified.
TEST_F(LockTest, FinalVerificationMeetingALockFailsNamingItThenResumes) {
  ASSERT_NO_FATAL_FAILURE(StartServers(Shop()));
  // The view's refresh on the target sleeps for 2 s (on one row).
  ASSERT_NO_FATAL_FAILURE(Load(std::string(kSmallShop) + R"sql(
    CREATE FUNCTION public.slow(id int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
    BEGIN
      IF id = 1 THEN PERFORM pg_catalog.pg_sleep(2); END IF;
      RETURN id;
    END $$;
    CREATE MATERIALIZED VIEW public.slow_view AS SELECT public.slow(id) AS id FROM public.small;
    CREATE TABLE public.orders (id int PRIMARY KEY, small_id int REFERENCES public.small (id));
    INSERT INTO public.orders SELECT g, g % 1000 + 1 FROM generate_series(1, 2000) g;
  )sql"));
  // A hang detector: the run takes seconds.
  BackgroundRun run(MigrateArgs({"--lock-timeout", "2", "--quiet"}),
                    testing::WithTimeout(std::chrono::minutes(2)));
  ASSERT_TRUE(WaitUntil(*target_, "shop", Running("%REFRESH MATERIALIZED VIEW%slow_view%")));
  std::unique_ptr<Connection> session;
  const int64_t pid = LockTable(*target_, "public.no_key", session);
  ASSERT_NE(pid, 0);
  const Result<ProcessResult>& ran = run.Join();
  ASSERT_TRUE(ran.ok()) << ran.status().ToString();
  const std::string said = ran->out + ran->err;
  EXPECT_NE(ran->exit_code, 0) << said;
  EXPECT_NE(said.find("verify: verifying: no lock after waiting 2 s"), std::string::npos) << said;
  EXPECT_NE(said.find(fmt::format("held on the target by pid {} (locker, ", pid)),
            std::string::npos)
      << said;
  EXPECT_NE(said.find("AccessExclusiveLock on public.no_key"), std::string::npos) << said;
  EXPECT_NE(said.find("pgcourier migrate --resume --dir"), std::string::npos) << said;
  EXPECT_EQ(said.find("differ"), std::string::npos) << said;
  EXPECT_NE(RunState(), "done");
  ASSERT_TRUE(session->Run("ROLLBACK").ok());
  ResumeIfNeededAndCheck(*ran);
}

// pgcourier killed (SIGKILL) at random moments, run after run: the first
// run, then resumes, each of which may be killed again, until one finishes;
// then the next move from nothing, for about 25 s, the last resume left to
// finish. Whatever was interrupted where, every move ends verified and
// equal to the source.
TEST_F(ServerFaultsTest, KilledAtRandomMomentsOverAndOverAlwaysEndsVerified) {
  ASSERT_NO_FATAL_FAILURE(StartServers(Shop()));
  ASSERT_NO_FATAL_FAILURE(Load(R"sql(
    CREATE TABLE public.events (id bigserial PRIMARY KEY, customer int NOT NULL, payload text);
    INSERT INTO public.events (customer, payload)
      SELECT g % 200, repeat(md5(g::text), 4) FROM generate_series(1, 30000) g;
    CREATE INDEX events_customer ON public.events (customer);
    CREATE TABLE public.small (id int PRIMARY KEY, label text UNIQUE);
    INSERT INTO public.small SELECT g, 'small ' || g FROM generate_series(1, 1000) g;
    ALTER TABLE public.events ADD FOREIGN KEY (customer) REFERENCES public.small (id)
      NOT VALID;
    CREATE TABLE public.no_key (v text);
    INSERT INTO public.no_key SELECT 'row ' || g FROM generate_series(1, 3000) g;
    CREATE MATERIALIZED VIEW public.per_customer AS
      SELECT customer, count(*) FROM public.events GROUP BY customer;
  )sql"));
  slice_size_ = "1MB";
  const unsigned seed = std::random_device{}();
  std::mt19937 random(seed);
  const auto started = Clock::now();
  const auto bound = std::chrono::seconds(25);
  int rounds = 0;
  int kills = 0;
  int moves = 0;
  // A move: the first run, then resumes until one finishes. Once a move is
  // done and checked, the next one starts from nothing, while time is left.
  while (moves == 0 || Clock::now() - started < bound) {
    if (moves > 0) {
      std::filesystem::remove_all(dir_);
      ASSERT_TRUE(target_->Sql("DROP DATABASE shop WITH (FORCE)").ok());
    }
    ++moves;
    for (;;) {
      SCOPED_TRACE(fmt::format("move {}, round {} (seed {})", moves, rounds, seed));
      const std::string state = RunState();
      if (state == "done") break;  // killed after it recorded the end
      // A run killed before it recorded itself touched nothing: start anew.
      std::vector<std::string> args =
          state.empty() ? MigrateArgs({"--quiet"})
                        : std::vector<std::string>{"migrate", "--resume", "--dir", dir_, "--quiet"};
      ++rounds;
      if (Clock::now() - started > bound) {
        Result<ProcessResult> last = TryRunCli(args);
        ASSERT_TRUE(last.ok()) << last.status().ToString();
        ASSERT_EQ(last->exit_code, 0) << last->out << last->err;
        break;
      }
      BackgroundRun run(args);
      const auto delay = std::chrono::milliseconds(random() % 2000);
      const auto launched = Clock::now();
      while (!run.ended() && Clock::now() - launched < delay) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      if (run.Kill()) ++kills;
      const Result<ProcessResult>& ran = run.Join();
      ASSERT_TRUE(ran.ok()) << ran.status().ToString();
      if (ran->exit_code == 0) break;
      ASSERT_EQ(ran->signal, SIGKILL) << "a run failed without being killed:\n"
                                      << ran->out << ran->err;
    }
    EXPECT_EQ(RunState(), "done");
    ASSERT_NO_FATAL_FAILURE(ExpectSameData());
    ASSERT_FALSE(HasFailure());
  }
  std::cout << "moves: " << moves << ", runs: " << rounds << ", killed: " << kills << " (seed "
            << seed << ")" << std::endl;
  EXPECT_GE(kills, 3);
  const std::string mv = "SELECT sum(count) FROM public.per_customer";
  EXPECT_EQ(*target_->Sql(mv, "shop"), *source_->Sql(mv, "shop"));
}

}  // namespace
}  // namespace pgcourier

// Scale: a database of ten thousand tables, tables of 1,600 columns (the
// most PostgreSQL allows), and rows carrying 100 MB values. Each is moved
// by the real binary (`migrate --method copy`), which verifies what it
// moved; the test then compares both sides again its own way (an ordered
// digest of every row, not pgcourier's sum of hashes) and watches
// pgcourier while it runs: its peak resident memory and its sessions on
// the source.
//
// In a sanitizer build the sizes are smaller (fewer tables, 20 MB values):
// the scenarios stay the same, but ASan's allocator keeps freed blocks
// resident (its quarantine) and everything runs slower.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli_runner.h"
#include "pg/connection.h"
#include "pg_cluster.h"
#include "two_servers.h"
#include "util/process.h"

namespace pgcourier {
namespace {

using testing::PgCluster;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

constexpr int64_t kMB = 1024 * 1024;
// ASan keeps up to 256 MB of freed blocks resident (its default quarantine),
// on top of what pgcourier itself holds.
constexpr int64_t kSanitizerSlack = kSanitized ? 256 * kMB : 0;

// The peak resident memory of a process so far (VmHWM: the kernel's
// high-water mark), in bytes; -1 when it cannot be read (the process ended).
int64_t PeakResidentBytes(pid_t pid) {
  std::ifstream status(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      std::istringstream fields(line.substr(6));
      int64_t kb = -1;
      fields >> kb;
      return kb < 0 ? -1 : kb * 1024;
    }
  }
  return -1;
}

// What a watched run of pgcourier did.
struct WatchedRun {
  Result<ProcessResult> ran = Status::Ok();
  double seconds = 0;
  int64_t peak_bytes = -1;  // VmHWM at the last sample before the end
  // The most client sessions open on the source at once (pg_stat_activity,
  // the watcher's own left out), and who they were at that moment.
  int64_t max_source_sessions = 0;
  std::string sessions_at_max;
  // Sessions opened on the migrated database during the run
  // (pg_stat_database.sessions), -1 when unknown.
  int64_t source_sessions_opened = -1;
};

Result<std::unique_ptr<Connection>> Connect(const PgCluster& cluster, const std::string& db) {
  Result<ConnInfo> info = ConnInfo::Parse(cluster.ConnString(db));
  if (!info.ok()) return info.status();
  return Connection::Connect(*info, {});
}

// pg_stat_database.sessions of `db` (PostgreSQL 14+), once no session is
// left on it (a backend counts itself when it ends).
int64_t SessionsOpened(Connection& conn, const std::string& db) {
  for (int i = 0; i < 100; ++i) {
    Result<QueryResult> left = conn.ExecParams(
        "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE datname = $1", {db});
    if (left.ok() && left->GetInt(0, 0) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  (void)conn.Run("SELECT pg_catalog.pg_stat_clear_snapshot()");
  Result<QueryResult> opened =
      conn.ExecParams("SELECT sessions FROM pg_catalog.pg_stat_database WHERE datname = $1", {db});
  return opened.ok() && opened->rows() == 1 ? opened->GetInt(0, 0, -1) : -1;
}

// Runs pgcourier with `args` and samples it every 20 ms until it ends:
// its VmHWM, and the client sessions on `source` (sampled from its
// `postgres` database). `db` is the source database it moves.
WatchedRun RunWatched(const std::vector<std::string>& args, const PgCluster& source,
                      const std::string& db, std::chrono::minutes timeout) {
  WatchedRun out;
  Result<std::unique_ptr<Connection>> watcher = Connect(source, "postgres");
  if (!watcher.ok()) {
    out.ran = watcher.status();
    return out;
  }
  const int64_t sessions_before = SessionsOpened(**watcher, db);
  testing::BackgroundRun run(args, testing::WithTimeout(timeout));
  while (!run.ended()) {
    if (run.pid() != 0) {
      const int64_t peak = PeakResidentBytes(run.pid());
      if (peak > out.peak_bytes) out.peak_bytes = peak;
    }
    Result<QueryResult> now = (*watcher)->Exec(
        "SELECT count(*), coalesce(string_agg(coalesce(application_name, '') || '@' || "
        "coalesce(datname, ''), ', ' ORDER BY application_name), '') "
        "FROM pg_catalog.pg_stat_activity "
        "WHERE backend_type = 'client backend' AND pid <> pg_catalog.pg_backend_pid()");
    if (now.ok() && now->GetInt(0, 0) > out.max_source_sessions) {
      out.max_source_sessions = now->GetInt(0, 0);
      out.sessions_at_max = now->GetString(0, 1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  out.ran = run.Join();
  out.seconds = run.seconds();
  const int64_t sessions_after = SessionsOpened(**watcher, db);
  if (sessions_before >= 0 && sessions_after >= 0) {
    out.source_sessions_opened = sessions_after - sessions_before;
  }
  return out;
}

std::vector<std::string> MigrateArgs(const PgCluster& source, const PgCluster& target,
                                     const std::string& db, int jobs) {
  return {"migrate",
          "--method",
          "copy",
          "--source",
          source.ConnString(db),
          "--target",
          target.ConnString("postgres"),
          "--dir",
          source.base_dir() + "/work-" + db,
          "--jobs",
          std::to_string(jobs),
          "--json",
          "--quiet"};
}

// Per table of the schema public: its row count and a digest of its rows in
// order (the md5 of the sorted md5s of the rows' text; `r.*`, the whole row,
// whatever the columns are named). Computed on the server, so 100 MB values
// never come to the test.
std::map<std::string, std::string> TableDigests(const PgCluster& cluster, const std::string& db) {
  testing::SqlOptions options;
  options.dbname = db;
  options.timeout = std::chrono::minutes(4);
  Result<std::string> out = cluster.Sql(
      "SELECT c.relname, (xpath('/row/f/text()', query_to_xml(format("
      "'SELECT count(*) || '':'' || coalesce(md5(string_agg(md5((r.*)::text), '''' "
      "ORDER BY md5((r.*)::text))), '''') AS f FROM ONLY %s r', c.oid::regclass), "
      "false, true, '')))[1]::text "
      "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE c.relkind = 'r' AND n.nspname = 'public' ORDER BY 1",
      options);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  std::map<std::string, std::string> digests;
  if (!out.ok()) return digests;
  std::istringstream lines(*out);
  std::string line;
  while (std::getline(lines, line)) {
    const size_t bar = line.find('|');
    if (bar != std::string::npos) digests[line.substr(0, bar)] = line.substr(bar + 1);
  }
  return digests;
}

// Source and target digests equal, table by table; the first differences
// are reported, not ten thousand lines.
void ExpectSameTables(const PgCluster& source, const PgCluster& target, const std::string& db,
                      size_t expected_tables) {
  // Both sides at once: ten thousand tables take seconds on each.
  std::future<std::map<std::string, std::string>> source_side =
      std::async(std::launch::async, [&] { return TableDigests(source, db); });
  const std::map<std::string, std::string> to = TableDigests(target, db);
  const std::map<std::string, std::string> from = source_side.get();
  EXPECT_EQ(from.size(), expected_tables);
  EXPECT_EQ(to.size(), from.size());
  int reported = 0;
  for (const auto& [table, digest] : from) {
    auto found = to.find(table);
    const std::string there = found == to.end() ? "(missing)" : found->second;
    if (there != digest && reported++ < 5) {
      ADD_FAILURE() << db << "." << table << ": source " << digest << ", target " << there;
    }
  }
}

// The verification pgcourier reported for its one database: every table
// compared and equal, the schema equal.
void ExpectVerified(const nlohmann::json& report, size_t tables, size_t sequences) {
  ASSERT_TRUE(report.is_object());
  EXPECT_EQ(report["ok"], true);
  ASSERT_EQ(report["databases"].size(), 1U);
  const nlohmann::json& db = report["databases"][0];
  EXPECT_EQ(db["state"], "done") << db["error"];
  const nlohmann::json& verification = db["verification"];
  ASSERT_TRUE(verification.is_object()) << db.dump().substr(0, 2000);
  EXPECT_EQ(verification["ok"], true);
  EXPECT_EQ(verification["mismatches"], 0);
  EXPECT_EQ(verification["tables"].size(), tables);
  EXPECT_EQ(verification["sequences"].size(), sequences);
  int reported = 0;
  for (const auto& t : verification["tables"]) {
    if (t["match"] != true && reported++ < 5) ADD_FAILURE() << t.dump();
    EXPECT_FALSE(t["source_checksum"].is_null()) << t.dump();
  }
}

// `pgcourier verify` of one database: its exit status, and its report.
std::pair<int, nlohmann::json> Verify(const PgCluster& source, const PgCluster& target,
                                      const std::string& db) {
  Result<ProcessResult> ran =
      testing::TryRunCli({"verify", "--source", source.ConnString(db), "--target",
                          target.ConnString(db), "--jobs", "2", "--json"});
  EXPECT_TRUE(ran.ok()) << ran.status().ToString();
  if (!ran.ok()) return {-1, nullptr};
  nlohmann::json report = nlohmann::json::parse(ran->out, nullptr, false);
  EXPECT_TRUE(report.is_object()) << ran->out.substr(0, 2000) << ran->err;
  return {ran->exit_code, report};
}

// The tables of a `pgcourier verify` report that differ.
std::vector<std::string> Mismatched(const nlohmann::json& report) {
  std::vector<std::string> out;
  if (!report.is_object()) return out;
  for (const auto& db : report["databases"]) {
    for (const auto& t : db["tables"]) {
      if (t["match"] != true) out.push_back(t["name"].get<std::string>());
    }
  }
  return out;
}

nlohmann::json ParseReport(const WatchedRun& run) {
  if (!run.ran.ok()) return nullptr;
  return nlohmann::json::parse(run.ran->out, nullptr, false);
}

// A database of many small tables, made in one DO block that commits every
// thousand tables (one transaction would need a lock table of their size).
// Every tenth table has a primary key, every 25th an index on its text, every
// thousandth a serial column (a sequence); most have a TOAST table (a text
// column), every third does not.
std::string ManyTablesSql(int tables) {
  return fmt::format(R"sql(
    DO $$
    BEGIN
      FOR i IN 1..{} LOOP
        IF i % 1000 = 1 THEN
          EXECUTE format('CREATE TABLE public.t%s (id serial, v text, n numeric)', i);
        ELSIF i % 10 = 0 THEN
          EXECUTE format('CREATE TABLE public.t%s (id int PRIMARY KEY, v text, n numeric)', i);
        ELSIF i % 3 = 0 THEN
          EXECUTE format('CREATE TABLE public.t%s (id int, v int, n bigint)', i);
        ELSE
          EXECUTE format('CREATE TABLE public.t%s (id int, v text, n numeric)', i);
        END IF;
        IF i % 25 = 0 THEN
          EXECUTE format('CREATE INDEX t%s_v ON public.t%s (v)', i, i);
        END IF;
        IF i % 1000 = 1 THEN
          EXECUTE format('INSERT INTO public.t%s (v, n) SELECT g * %s, g * 1.5 '
                         'FROM generate_series(1, 1 + %s %% 4) g', i, i, i);
        ELSE
          EXECUTE format('INSERT INTO public.t%s (id, v, n) SELECT g, g * %s, g * 3 '
                         'FROM generate_series(1, 1 + %s %% 4) g', i, i, i);
        END IF;
        IF i % 1000 = 0 THEN COMMIT; END IF;
      END LOOP;
    END $$;
  )sql",
                     tables);
}

class ScaleTest : public testing::SourceAndTargetTest {};

TEST_F(ScaleTest, TenThousandTables) {
  const int tables = kSanitized ? 3000 : 10000;
  constexpr int kJobs = 2;
  // pg_dump locks every table it dumps, and the pre-data restore is one
  // transaction that locks every relation it creates (tables, their TOAST
  // tables and indexes): the default lock table (64 per connection) is too
  // small for that, on either side.
  testing::SourceAndTargetOptions options;
  options.source.settings = {"max_locks_per_transaction = 256"};
  options.target.settings = options.source.settings;
  options.database = "many";
  ASSERT_NO_FATAL_FAILURE(StartServers(options));
  testing::SqlOptions build;
  build.dbname = "many";
  build.timeout = std::chrono::minutes(3);
  const auto building = std::chrono::steady_clock::now();
  Result<std::string> built = source_->Sql(ManyTablesSql(tables), build);
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  std::cout << fmt::format(
      "[ scale    ] {} tables made in {:.1f} s\n", tables,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - building).count());

  WatchedRun run = RunWatched(MigrateArgs(*source_, *target_, "many", kJobs), *source_, "many",
                              std::chrono::minutes(4));
  ASSERT_TRUE(run.ran.ok()) << run.ran.status().ToString()
                            << "; sessions opened on the source: " << run.source_sessions_opened;
  EXPECT_EQ(run.ran->exit_code, 0) << run.ran->err << run.ran->out.substr(0, 4000);
  std::cout << fmt::format(
      "[ scale    ] {} tables: migrate {:.1f} s, peak RSS {:.1f} MB, at most {} sessions on "
      "the source at once ({}), {} opened\n",
      tables, run.seconds, static_cast<double>(run.peak_bytes) / kMB, run.max_source_sessions,
      run.sessions_at_max, run.source_sessions_opened);
  const nlohmann::json report = ParseReport(run);
  ExpectVerified(report, static_cast<size_t>(tables), static_cast<size_t>((tables + 999) / 1000));
  // The checks' trial restore of the whole schema, timed in its detail.
  if (report.is_object() && report.contains("check")) {
    for (const auto& item : report["check"]["checks"]) {
      if (item["code"] == "schema.restorable") {
        EXPECT_EQ(item["status"], "pass") << item.dump();
        std::cout << "[ scale    ] " << item["detail"].get<std::string>() << "\n";
      }
    }
  }
  if (report.is_object() && report["databases"].size() == 1) {
    std::string phases;
    for (const auto& p : report["databases"][0]["phases"]) {
      phases +=
          fmt::format(" {} {:.1f} s,", p["phase"].get<std::string>(), p["seconds"].get<double>());
    }
    std::cout << "[ scale    ] phases:" << phases << "\n";
  }

  // Memory: a few kB per table of catalog and bookkeeping, nothing per row.
  EXPECT_GT(run.peak_bytes, 0) << "VmHWM never read";
  EXPECT_LT(run.peak_bytes, 300 * kMB + kSanitizerSlack);
  // Sessions on the source: the snapshot holder, per job a copy session and
  // a checksum session, pg_dump, and the pre-flight checks; never one per
  // table, neither at once nor one after the other.
  EXPECT_LE(run.max_source_sessions, 2 * kJobs + 3) << run.sessions_at_max;
  EXPECT_GE(run.source_sessions_opened, 0);
  EXPECT_LE(run.source_sessions_opened, 40);

  // Our own comparison: every row of every table, indexes, constraints and
  // sequences.
  ExpectSameTables(*source_, *target_, "many", static_cast<size_t>(tables));
  const std::string objects =
      "SELECT (SELECT count(*) FROM pg_indexes WHERE schemaname = 'public') || ' ' || "
      "(SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
      " WHERE n.nspname = 'public') || ' ' || "
      "(SELECT string_agg(sequencename || '=' || coalesce(last_value::text, 'null'), ',' "
      " ORDER BY sequencename) FROM pg_sequences WHERE schemaname = 'public')";
  Result<std::string> source_objects = source_->Sql(objects, "many");
  Result<std::string> target_objects = target_->Sql(objects, "many");
  ASSERT_TRUE(source_objects.ok() && target_objects.ok());
  EXPECT_EQ(*target_objects, *source_objects);
  EXPECT_EQ(source_objects->substr(0, source_objects->find(' ')),
            std::to_string(tables / 10 + tables / 25))
      << "primary keys and indexes of the source";
}

// Three tables of 1,600 columns of eight types, NULLs spread over them:
// one with a primary key, one without and with names of 63 bytes (the
// longest PostgreSQL keeps: the column list alone is about 100 kB), one
// made with 1,600 columns of which every 16th was dropped (the dropped ones
// still count towards the limit, and the target's table has none).
constexpr const char* kWideTables = R"sql(
  DO $$
  DECLARE
    cols text;
    long_cols text;
    vals text;
  BEGIN
    SELECT string_agg(format('c%s %s', k, (ARRAY['int', 'text', 'boolean', 'smallint',
                 'numeric', 'date', 'real', 'timestamptz'])[k % 8 + 1]), ', ' ORDER BY k),
           string_agg(format('%I %s', rpad('column_' || k || '_', 63, 'x'),
                 (ARRAY['int', 'text', 'boolean', 'smallint', 'numeric', 'date', 'real',
                        'timestamptz'])[k % 8 + 1]), ', ' ORDER BY k),
           string_agg(format('CASE WHEN (g + %s) %% 5 <> 0 THEN %s END', k, replace(
                 (ARRAY['g * #', '''v'' || g || ''_#''', '(g + #) % 2 = 0',
                        '((g * 7 + #) % 30000)::smallint', 'g + # / 1000.0',
                        'date ''2000-01-01'' + g + #', '(g + #) / 7.0',
                        'timestamptz ''2020-01-01 00:00:00+00'' + g * # * interval ''1 second'''
                       ])[k % 8 + 1], '#', k::text)), ', ' ORDER BY k)
      INTO cols, long_cols, vals FROM generate_series(2, 1600) k;
    EXECUTE 'CREATE TABLE public.wide_pk (id int PRIMARY KEY, ' || cols || ')';
    EXECUTE 'CREATE TABLE public.wide_long_names (id int, ' || long_cols || ')';
    EXECUTE 'CREATE TABLE public.wide_dropped (id int, ' || cols || ')';
    EXECUTE 'INSERT INTO public.wide_pk SELECT g, ' || vals || ' FROM generate_series(1, 300) g';
    INSERT INTO public.wide_long_names SELECT * FROM public.wide_pk;
    INSERT INTO public.wide_dropped SELECT * FROM public.wide_pk;
    FOR k IN 16..1600 BY 16 LOOP
      EXECUTE format('ALTER TABLE public.wide_dropped DROP COLUMN c%s', k);
    END LOOP;
  END $$;
)sql";

TEST_F(ScaleTest, TablesOfSixteenHundredColumns) {
  testing::SourceAndTargetOptions options;
  options.database = "wide";
  options.database_sql = kWideTables;
  ASSERT_NO_FATAL_FAILURE(StartServers(options));
  ASSERT_EQ(*source_->Sql("SELECT string_agg(c.relname || ':' || (SELECT count(*) FROM "
                          "pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT "
                          "a.attisdropped), ' ' ORDER BY c.relname) FROM pg_class c "
                          "WHERE c.relname LIKE 'wide%' AND c.relkind = 'r'",
                          "wide"),
            "wide_dropped:1500 wide_long_names:1600 wide_pk:1600");

  WatchedRun run = RunWatched(MigrateArgs(*source_, *target_, "wide", 2), *source_, "wide",
                              std::chrono::minutes(3));
  ASSERT_TRUE(run.ran.ok()) << run.ran.status().ToString();
  EXPECT_EQ(run.ran->exit_code, 0) << run.ran->err << run.ran->out.substr(0, 4000);
  std::cout << fmt::format(
      "[ scale    ] 3 tables of 1,600 columns: migrate {:.1f} s, peak RSS "
      "{:.1f} MB\n",
      run.seconds, static_cast<double>(run.peak_bytes) / kMB);
  ExpectVerified(ParseReport(run), 3, 0);
  ExpectSameTables(*source_, *target_, "wide", 3);
  EXPECT_EQ(*target_->Sql("SELECT string_agg(conrelid::regclass::text, ',') FROM pg_constraint "
                          "WHERE contype = 'p' AND connamespace = 'public'::regnamespace",
                          "wide"),
            "wide_pk");

  // pgcourier's own checksum sees a change in the 1,599th column of one row
  // (and only there): the whole row is hashed, however wide.
  auto [clean_exit, clean] = Verify(*source_, *target_, "wide");
  EXPECT_EQ(clean_exit, 0) << clean.dump().substr(0, 2000);
  Result<std::string> updated = target_->Sql(
      "UPDATE public.wide_pk SET c1599 = c1599 + interval '1 second' "
      "WHERE id = 152 AND c1599 IS NOT NULL RETURNING id",
      "wide");
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  ASSERT_EQ(*updated, "152");
  auto [changed_exit, changed] = Verify(*source_, *target_, "wide");
  EXPECT_EQ(changed_exit, 1);
  EXPECT_EQ(Mismatched(changed), std::vector<std::string>{"wide_pk"}) << changed.dump();
}

TEST_F(ScaleTest, RowsOfHundredMegabyteValues) {
  // Four rows of one large value each (two bytea, two text), built on the
  // server, and a small row. In COPY's text form a bytea is hex: a 100 MB
  // value is a 200 MB row. The text column is named t, like the table's
  // alias in pgcourier's checksum query, where `t::text` once meant that
  // column alone: the bytea values went unchecked.
  const int64_t value = (kSanitized ? 20 : 100) * kMB;
  testing::SourceAndTargetOptions options;
  options.database = "big";
  ASSERT_NO_FATAL_FAILURE(StartServers(options));
  testing::SqlOptions build;
  build.dbname = "big";
  build.timeout = std::chrono::minutes(2);
  Result<std::string> built = source_->Sql(fmt::format(R"sql(
        CREATE TABLE public.big (id int PRIMARY KEY, b bytea, t text);
        INSERT INTO public.big (id, b)
          SELECT g, decode(repeat(md5(g::text), {0} / 16), 'hex') || '\x0102'::bytea
            FROM generate_series(1, 2) g;
        INSERT INTO public.big (id, t)
          SELECT g, repeat(md5(g::text), {0} / 32) || 'end ' || g FROM generate_series(3, 4) g;
        INSERT INTO public.big (id, b, t) VALUES (5, '\x00ff', 'small');
      )sql",
                                                       value),
                                           build);
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  ASSERT_EQ(*source_->Sql("SELECT sum(coalesce(octet_length(b), 0) + coalesce(octet_length(t), 0)) "
                          "FROM public.big",
                          "big"),
            std::to_string(4 * value + 4 + 2 * 5 + 2 + 5));

  WatchedRun run = RunWatched(MigrateArgs(*source_, *target_, "big", 2), *source_, "big",
                              std::chrono::minutes(4));
  ASSERT_TRUE(run.ran.ok()) << run.ran.status().ToString();
  EXPECT_EQ(run.ran->exit_code, 0) << run.ran->err << run.ran->out.substr(0, 4000);
  std::cout << fmt::format(
      "[ scale    ] 4 rows of {} MB values: migrate {:.1f} s, peak RSS {:.1f} MB "
      "(bound {} MB)\n",
      value / kMB, run.seconds, static_cast<double>(run.peak_bytes) / kMB,
      (4 * value + 100 * kMB + kSanitizerSlack) / kMB);
  ExpectVerified(ParseReport(run), 1, 0);
  // libpq hands over a whole row (200 MB for a 100 MB bytea) after reading
  // all of it into its own buffer: about twice the largest row, never the
  // sum of the rows, and never a third copy in the send buffer.
  EXPECT_GT(run.peak_bytes, 0) << "VmHWM never read";
  EXPECT_LT(run.peak_bytes, 4 * value + 100 * kMB + kSanitizerSlack);
  ExpectSameTables(*source_, *target_, "big", 1);

  // One byte in the middle of one 100 MB value differs: pgcourier's
  // checksum, over the whole row, sees it.
  ASSERT_TRUE(target_
                  ->Sql(fmt::format("UPDATE public.big SET b = set_byte(b, {}, 0) WHERE id = 2",
                                    value / 2 + 1),
                        "big")
                  .ok());
  auto [changed_exit, changed] = Verify(*source_, *target_, "big");
  EXPECT_EQ(changed_exit, 1);
  EXPECT_EQ(Mismatched(changed), std::vector<std::string>{"big"}) << changed.dump();
}

}  // namespace
}  // namespace pgcourier

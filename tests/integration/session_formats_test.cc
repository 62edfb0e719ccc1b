// Session defaults that change how values are written or read as text
// (ALTER DATABASE / ALTER ROLE ... SET of extra_float_digits, DateStyle,
// IntervalStyle, bytea_output, TimeZone, client_encoding, ...) on either
// server change nothing that pgcourier moves or compares: every session it
// opens pins them. And cutover's re-copy of the tables replication does not
// carry fires none of the target's user triggers.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "cli_runner.h"
#include "migrate/cutover.h"
#include "migrate/migration.h"
#include "pg_cluster.h"
#include "state_names.h"
#include "two_servers.h"
#include "version_pairs.h"

namespace pgcourier {
namespace {

using testing::PgCluster;
using testing::RunCli;

const std::string kSourceDir = PGCOURIER_SOURCE_DIR;

// Defaults of the source database (and of its user in it) that each change
// the text of some value: floats cut to 15 digits, dates day first with
// their time zone abbreviation, intervals in SQL standard form, bytea
// escaped, money and xml their own way, and an encoding in which some of the
// rows cannot be written.
std::string OddSourceDefaults(const std::string& db) {
  std::string sql;
  for (const char* setting :
       {"extra_float_digits = 0", "DateStyle = 'SQL, DMY'", "IntervalStyle = 'sql_standard'",
        "bytea_output = 'escape'", "TimeZone = 'America/St_Johns'", "lc_monetary = 'C.utf8'",
        "standard_conforming_strings = off", "xmloption = document",
        "client_encoding = 'LATIN1'"}) {
    sql += fmt::format("ALTER DATABASE {} SET {};\n", db, setting);
  }
  sql += fmt::format("ALTER ROLE postgres IN DATABASE {} SET IntervalStyle = 'iso_8601';\n", db);
  return sql;
}

// Other odd defaults for the target's user (the one pgcourier connects as).
constexpr const char* kOddTargetDefaults =
    "ALTER ROLE postgres SET extra_float_digits = -15; "
    "ALTER ROLE postgres SET DateStyle = 'German, DMY'; "
    "ALTER ROLE postgres SET IntervalStyle = 'postgres_verbose'; "
    "ALTER ROLE postgres SET bytea_output = 'escape'; "
    "ALTER ROLE postgres SET TimeZone = 'Asia/Kathmandu'; "
    "ALTER ROLE postgres SET xmloption = document; "
    "ALTER ROLE postgres SET client_encoding = 'LATIN1'";

// Per user table: its row count and an md5 of its rows' text, read with
// fixed output settings (the same on both servers, whatever their defaults).
std::string Rows(const PgCluster& cluster, const std::string& db) {
  Result<std::string> tables = cluster.Sql(
      "SELECT string_agg(format('%I.%I', schemaname, tablename), chr(10) "
      "ORDER BY format('%I.%I', schemaname, tablename) COLLATE \"C\") "
      "FROM pg_tables "
      "WHERE schemaname NOT IN ('pg_catalog', 'information_schema', '_pgcourier')",
      db);
  if (!tables.ok()) return tables.status().ToString();
  std::string sql =
      "SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 3; "
      "SET bytea_output = 'hex'; SET TimeZone = 'UTC'; SET lc_monetary = 'C'; "
      "SET xmloption = content;\n";
  std::string rest = *tables;
  while (!rest.empty()) {
    const size_t end = rest.find('\n');
    const std::string table = rest.substr(0, end);
    rest = end == std::string::npos ? "" : rest.substr(end + 1);
    sql += fmt::format(
        "SELECT '{0} ' || count(*) || ' ' || md5(coalesce(string_agg(t::text, '|' ORDER BY "
        "t::text COLLATE \"C\"), '')) FROM {0} t;\n",
        table);
  }
  Result<std::string> out = cluster.Sql(sql, db);
  return out.ok() ? *out : out.status().ToString();
}

// The result of `sql`, or its error.
std::string Value(const PgCluster& cluster, const std::string& sql, const std::string& db) {
  Result<std::string> out = cluster.Sql(sql, db);
  return out.ok() ? *out : out.status().ToString();
}

class SessionFormatsTest : public testing::VersionPairTest {};

TEST_P(SessionFormatsTest, OddDefaultsOfDatabaseAndRolesChangeNoValueMovedOrCompared) {
  ASSERT_TRUE(source_->Sql("CREATE DATABASE fid").ok());
  Result<std::string> loaded =
      source_->Sql("\\i " + kSourceDir + "/tests/fixtures/fidelity.sql", "fid");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_TRUE(source_->Sql(OddSourceDefaults("fid")).ok());
  ASSERT_TRUE(target_->Sql(kOddTargetDefaults).ok());

  Result<MigrationOutcome> outcome = Migrate(MigrationOptions("fid", Method::kCopy));
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  std::string blocked;
  for (const auto& item : outcome->check.items) {
    if (item.status == CheckStatus::kFail) blocked += item.code + ": " + item.detail + "\n";
  }
  ASSERT_EQ(outcome->databases.size(), 1u) << blocked;
  const DatabaseOutcome& db = outcome->databases[0];
  ASSERT_EQ(db.state, "done") << db.error;
  ASSERT_TRUE(db.verification.has_value());
  EXPECT_TRUE(db.verification->ok());

  const std::string source_rows = Rows(*source_, "fid");
  EXPECT_NE(source_rows.find("public.types_float "), std::string::npos) << source_rows;
  EXPECT_EQ(Rows(*target_, "fid"), source_rows);

  // verify alone, as a user runs it.
  ProcessResult verified = RunCli(
      {"verify", "--source", source_->ConnString("fid"), "--target", target_->ConnString("fid")});
  EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
}

INSTANTIATE_TEST_SUITE_P(Versions, SessionFormatsTest, ::testing::ValuesIn(testing::TargetMajors()),
                         testing::VersionPairName);

// Tables for the replication method: one with a key (replicated) and three
// without (copied again at cutover), with values whose text depends on the
// session's settings, and two user triggers: one that rewrites the rows it
// sees, one (ENABLE ALWAYS, so that it fires under
// session_replication_role = replica too) that refuses rows older than a
// second.
constexpr const char* kShop = R"sql(
  CREATE TABLE public.measures (id int PRIMARY KEY, f float8, r real, d timestamptz,
                                iv interval, b bytea, m money);
  CREATE TABLE public.loose (f float8, r real, d timestamptz, iv interval, b bytea, m money);
  INSERT INTO public.measures VALUES
    (1, '1.7976931348623157e308', '3.4028235e38', '4714-11-24 00:00:00+00 BC',
     '-2 years -3 mons -4 days -05:06:07.891011', '\x00ff5c27', '-92233720368547758.08'),
    (2, '-1.7976931348623157e308', '1.17549435e-38', '294276-12-31 23:59:59.999999+00',
     '1 mon -30 days', '\x', '92233720368547758.07'),
    (3, '4.9e-324', '-0.0', '2024-02-29 12:34:56.789+05:45', '178000000 years', '\x5c5c', '0.01');
  INSERT INTO public.loose SELECT f, r, d, iv, b, m FROM public.measures;
  CREATE TABLE public.docs (body text, seen int NOT NULL DEFAULT 0);
  CREATE FUNCTION public.count_seen() RETURNS trigger LANGUAGE plpgsql
    AS $$BEGIN NEW.seen := NEW.seen + 1; RETURN NEW; END$$;
  CREATE TRIGGER docs_seen BEFORE INSERT ON public.docs
    FOR EACH ROW EXECUTE FUNCTION public.count_seen();
  INSERT INTO public.docs (body) SELECT 'doc ' || g FROM generate_series(1, 100) g;
  CREATE TABLE public.ledger (at timestamptz NOT NULL DEFAULT pg_catalog.now(), what text);
  CREATE FUNCTION public.refuse_backdated() RETURNS trigger LANGUAGE plpgsql
    AS $$BEGIN
      IF NEW.at < pg_catalog.now() - interval '1 second' THEN
        RAISE EXCEPTION 'back-dated row %', NEW.what;
      END IF;
      RETURN NEW;
    END$$;
  CREATE TRIGGER ledger_fresh BEFORE INSERT ON public.ledger
    FOR EACH ROW EXECUTE FUNCTION public.refuse_backdated();
  ALTER TABLE public.ledger ENABLE ALWAYS TRIGGER ledger_fresh;
  INSERT INTO public.ledger (what) SELECT 'entry ' || g FROM generate_series(1, 50) g;
)sql";

class ReplicationFormatsTest
    : public testing::SourceAndTargetFixture<::testing::TestWithParam<int>> {
 protected:
  void SetUp() override {
    testing::SourceAndTargetOptions options;
    options.logical_source = true;
    options.target.major = GetParam();
    options.database = "shop";
    options.database_sql = std::string(kShop) + OddSourceDefaults("shop");
    ASSERT_NO_FATAL_FAILURE(StartServers(options));
    ASSERT_TRUE(target_->Sql(kOddTargetDefaults).ok());
  }
};

TEST_P(ReplicationFormatsTest, CutoverRecopiesUnderOddDefaultsAndFiresNoUserTrigger) {
  ASSERT_NO_FATAL_FAILURE(
      testing::StartReplicating(MigrationOptions("shop", Method::kReplication)));

  // Rows written while syncing, to replicated and re-copied tables alike.
  ASSERT_TRUE(
      source_
          ->Sql("INSERT INTO public.measures VALUES (4, '2.2250738585072014e-308', "
                "'3.4e-38', '0044-03-15 12:00:00+00 BC', '-1 days +02:00:00', decode('dead', "
                "'hex'), '-0.01'); "
                "INSERT INTO public.loose SELECT f, r, d, iv, b, m FROM public.measures "
                "WHERE id = 4; "
                "INSERT INTO public.docs (body) VALUES ('written while syncing'); "
                "INSERT INTO public.ledger (what) VALUES ('written while syncing'); "
                // An update on each table without a key: cutover copies them
                // again (inserts alone would have been replicated).
                "UPDATE public.loose SET m = m; UPDATE public.docs SET seen = seen; "
                "UPDATE public.ledger SET what = what",
                "shop")
          .ok());
  // Every ledger row is older than a second by the time cutover copies it.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));

  std::vector<std::string> said;
  CutoverOptions cut;
  cut.work_dir = dir_;
  cut.timeout = std::chrono::seconds(60);
  cut.connect_timeout = std::chrono::seconds(10);
  cut.on_progress = [&said](const ProgressEvent& e) { said.push_back(e.message); };
  Result<CutoverOutcome> cutover = Cutover(cut);
  ASSERT_TRUE(cutover.ok()) << cutover.status().ToString();
  ASSERT_EQ(cutover->databases.size(), 1u);
  const CutoverDatabase& done = cutover->databases[0];
  ASSERT_EQ(done.state, "done") << done.error;
  EXPECT_EQ(done.tables_recopied, 3) << "loose, docs and ledger";
  ASSERT_TRUE(done.verification.has_value());
  EXPECT_TRUE(done.verification->ok());

  // The rows are the source's: no trigger counted them again or refused them.
  EXPECT_EQ(Rows(*target_, "shop"), Rows(*source_, "shop"));
  EXPECT_EQ(Value(*target_,
                  "SELECT count(*) FILTER (WHERE seen <> 1) || '/' || count(*) "
                  "FROM public.docs",
                  "shop"),
            "0/101");
  // How, said in the output: the replica role where every trigger of the
  // table is an ordinary one, disabled triggers where one fires always.
  std::string all;
  for (const auto& s : said) all += s + "\n";
  EXPECT_NE(all.find("public.docs (inserts and truncates replicated; 101 row(s) updated or "
                     "deleted on the source since the copy) copied again: 101 rows "
                     "(session_replication_role = replica)"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("public.ledger (inserts and truncates replicated; 51 row(s) updated or "
                     "deleted on the source since the copy) copied again: 51 rows (user triggers "
                     "disabled for the copy: ledger_fresh)"),
            std::string::npos)
      << all;
  // The triggers are as they were, and fire for the application's rows.
  EXPECT_EQ(Value(*target_,
                  "SELECT string_agg(tgname || ' ' || tgenabled::text, ', ' ORDER BY tgname) "
                  "FROM pg_trigger WHERE NOT tgisinternal",
                  "shop"),
            "docs_seen O, ledger_fresh A");
  EXPECT_EQ(
      Value(*target_, "INSERT INTO public.docs (body) VALUES ('after') RETURNING seen", "shop"),
      "1");
  EXPECT_FALSE(
      target_->Sql("INSERT INTO public.ledger VALUES (now() - interval '1 hour', 'old')", "shop")
          .ok());
}

INSTANTIATE_TEST_SUITE_P(Versions, ReplicationFormatsTest,
                         ::testing::ValuesIn(testing::TargetMajors()), testing::VersionPairName);

}  // namespace
}  // namespace pgcourier

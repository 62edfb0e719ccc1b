// Object filters (--include-schema, --exclude-schema, --include-table,
// --exclude-table, --exclude-table-data) against real servers: `migrate`
// moves exactly what they select and verifies it, `verify` leaves the same
// objects out on both sides, and a filter that selects nothing fails before
// the target is touched.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>

#include "cli_runner.h"
#include "migrate/migration.h"
#include "pg_cluster.h"
#include "state_names.h"
#include "two_servers.h"
#include "util/process.h"
#include "verify/verifier.h"
#include "version_pairs.h"

namespace pgcourier {
namespace {

using testing::PgCluster;

// Schemas public, sales and "Logs" (mixed case); an extension and a type
// that sales uses; a foreign key between two sales tables; identity and
// serial columns; a view; indexes, triggers and a policy on the tables the
// filters act on.
constexpr const char* kShop = R"sql(
CREATE DATABASE shop;
\c shop
CREATE EXTENSION citext;
CREATE SCHEMA sales;
CREATE SCHEMA "Logs";
CREATE TYPE sales.status AS ENUM ('new', 'paid', 'shipped');

CREATE TABLE public.users (id serial PRIMARY KEY, email public.citext NOT NULL UNIQUE);
INSERT INTO public.users (email) SELECT 'u' || g || '@example.com' FROM generate_series(1, 50) g;
CREATE TABLE public.audit_log (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                               at timestamptz NOT NULL DEFAULT now(), what text);
CREATE INDEX audit_log_at ON public.audit_log (at);
INSERT INTO public.audit_log (what) SELECT 'event ' || g FROM generate_series(1, 200) g;
CREATE TABLE public.audit_trail (id serial PRIMARY KEY, what text);
INSERT INTO public.audit_trail (what) SELECT 'step ' || g FROM generate_series(1, 30) g;
CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.at := now();
  RETURN NEW;
END $$;
CREATE TRIGGER audit_log_touch BEFORE UPDATE ON public.audit_log
  FOR EACH ROW EXECUTE FUNCTION public.touch();
ALTER TABLE public.audit_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY audit_log_all ON public.audit_log USING (true);

CREATE TABLE sales.customers (id integer PRIMARY KEY, email public.citext NOT NULL, name text);
INSERT INTO sales.customers SELECT g, 'C' || g || '@Example.com', 'customer ' || g
  FROM generate_series(1, 100) g;
CREATE TABLE sales.orders (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  customer_id integer NOT NULL REFERENCES sales.customers,
  status sales.status NOT NULL DEFAULT 'new',
  total numeric(12, 2));
CREATE INDEX orders_customer_idx ON sales.orders (customer_id);
INSERT INTO sales.orders (customer_id, status, total)
  SELECT 1 + g % 100, (ARRAY['new', 'paid', 'shipped'])[1 + g % 3]::sales.status, g * 1.5
    FROM generate_series(1, 1000) g;
CREATE TABLE sales.orders_2023 (LIKE sales.orders);
INSERT INTO sales.orders_2023 SELECT g, 1, 'shipped', g FROM generate_series(1, 40) g;
CREATE TABLE sales.orders_2024 (LIKE sales.orders);
INSERT INTO sales.orders_2024 SELECT g, 2, 'paid', g FROM generate_series(1, 60) g;
CREATE VIEW sales.big_orders AS SELECT id, total FROM sales.orders WHERE total > 1000;

CREATE TABLE "Logs"."Events" (id bigserial PRIMARY KEY, at timestamptz NOT NULL,
                              payload jsonb);
CREATE INDEX "Events_at" ON "Logs"."Events" (at);
INSERT INTO "Logs"."Events" (at, payload)
  SELECT '2024-01-01'::timestamptz + g * interval '1 minute', jsonb_build_object('g', g)
    FROM generate_series(1, 500) g;
CREATE TABLE "Logs".requests (id integer PRIMARY KEY, user_id integer REFERENCES public.users,
                              path text);
INSERT INTO "Logs".requests SELECT g, 1 + g % 50, '/p/' || g FROM generate_series(1, 80) g;
)sql";

std::string ClusterConn(const PgCluster& c, const std::string& db = "") {
  std::string conn = fmt::format("host=127.0.0.1 port={} user=postgres", c.port());
  return db.empty() ? conn : conn + " dbname=" + db;
}

std::string Describe(const MigrationOutcome& outcome) {
  std::string out;
  for (const auto& db : outcome.databases) {
    out += fmt::format("{}: {} {}\n", db.name, db.state, db.error);
    if (!db.verification) continue;
    for (const auto& t : db.verification->tables) {
      if (!t.match()) {
        out += fmt::format("  table {}.{}: rows {}/{} {}\n", t.schema, t.name, t.source_rows,
                           t.target_rows, t.error);
      }
    }
    for (const auto& s : db.verification->sequences) {
      if (!s.match()) out += fmt::format("  sequence {}.{} {}\n", s.schema, s.name, s.error);
    }
    for (const auto& k : db.verification->schema) {
      for (const auto& m : k.missing_on_target) out += "  missing " + k.kind + " " + m + "\n";
      for (const auto& m : k.extra_on_target) out += "  extra " + k.kind + " " + m + "\n";
    }
  }
  return out;
}

bool Verified(const DatabaseOutcome& db, const std::string& schema, const std::string& name) {
  if (!db.verification) return false;
  return std::any_of(db.verification->tables.begin(), db.verification->tables.end(),
                     [&](const TableVerification& t) {
                       return t.schema == schema && t.name == name && t.match();
                     });
}

bool Compared(const DatabaseVerification& v, const std::string& qualified) {
  return std::any_of(v.tables.begin(), v.tables.end(), [&](const TableVerification& t) {
    return t.schema + "." + t.name == qualified;
  });
}

class MigrateFilterTest : public testing::VersionPairTest {
 protected:
  void SetUp() override {
    VersionPairTest::SetUp();
    if (HasFatalFailure()) return;
    Result<std::string> built = source_->Sql(kShop);
    ASSERT_TRUE(built.ok()) << built.status().ToString();
  }

  Result<MigrationOutcome> Run(const ObjectFilter& filter) {
    MigrateOptions options;
    options.check.source = ClusterConn(*source_, "shop");
    options.check.target = ClusterConn(*target_);
    options.check.method = Method::kCopy;
    options.check.jobs = 2;
    options.check.connect_timeout = std::chrono::seconds(5);
    // One work directory per migration.
    options.work_dir = source_->base_dir() + "/work" + std::to_string(++runs_);
    options.filter = filter;
    return Migrate(options);
  }

  // The value of `sql` on the target's shop database ("" on error).
  std::string OnTarget(const std::string& sql) {
    Result<std::string> out = target_->Sql(sql, "shop");
    EXPECT_TRUE(out.ok()) << sql << ": " << out.status().ToString();
    return out.ok() ? *out : "";
  }
  bool ExistsOnTarget(const std::string& relation) {
    return OnTarget("SELECT to_regclass('" + relation + "') IS NOT NULL") == "t";
  }
  int runs_ = 0;
};

TEST_P(MigrateFilterTest, ExcludedTablesAreLeftOutEntirely) {
  ObjectFilter filter;
  filter.exclude_tables = {"public.audit_*"};
  Result<MigrationOutcome> outcome = Run(filter);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  ASSERT_TRUE(outcome->ok()) << Describe(*outcome);
  const DatabaseOutcome& db = outcome->databases[0];

  EXPECT_FALSE(ExistsOnTarget("public.audit_log"));
  EXPECT_FALSE(ExistsOnTarget("public.audit_trail"));
  // As pg_dump does: an identity column's sequence goes with its table, a
  // serial column's sequence stays, as a sequence of its own, at the
  // source's value.
  EXPECT_FALSE(ExistsOnTarget("public.audit_log_id_seq"));
  ASSERT_TRUE(ExistsOnTarget("public.audit_trail_id_seq"));
  EXPECT_EQ(OnTarget("SELECT last_value FROM public.audit_trail_id_seq"), "30");
  EXPECT_EQ(OnTarget("SELECT count(*) FROM pg_trigger WHERE tgname = 'audit_log_touch'"), "0");

  EXPECT_EQ(OnTarget("SELECT count(*) FROM public.users"), "50");
  EXPECT_EQ(OnTarget("SELECT count(*) FROM sales.orders"), "1000");
  EXPECT_EQ(OnTarget("SELECT count(*) FROM \"Logs\".\"Events\""), "500");
  EXPECT_TRUE(Verified(db, "sales", "orders"));
  EXPECT_TRUE(Verified(db, "Logs", "Events"));
  ASSERT_TRUE(db.verification.has_value());
  EXPECT_FALSE(Compared(*db.verification, "public.audit_log")) << Describe(*outcome);
  EXPECT_EQ(db.verification->tables.size(), 7u) << Describe(*outcome);
}

TEST_P(MigrateFilterTest, ExcludedTableDataKeepsTheDefinition) {
  ObjectFilter filter;
  filter.exclude_table_data = {"Logs.*"};
  Result<MigrationOutcome> outcome = Run(filter);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  ASSERT_TRUE(outcome->ok()) << Describe(*outcome);
  const DatabaseOutcome& db = outcome->databases[0];

  // The tables are there, empty, with their indexes and constraints (from
  // pg_restore's post-data); the sequence has the source's value.
  EXPECT_EQ(OnTarget("SELECT count(*) FROM \"Logs\".\"Events\""), "0");
  EXPECT_EQ(OnTarget("SELECT count(*) FROM \"Logs\".requests"), "0");
  EXPECT_TRUE(ExistsOnTarget("\"Logs\".\"Events_at\""));
  EXPECT_TRUE(ExistsOnTarget("\"Logs\".\"Events_pkey\""));
  EXPECT_EQ(OnTarget("SELECT count(*) FROM pg_constraint WHERE conrelid = "
                     "'\"Logs\".requests'::regclass AND contype IN ('p', 'f')"),
            "2");
  EXPECT_EQ(OnTarget("SELECT last_value FROM \"Logs\".\"Events_id_seq\""), "500");
  EXPECT_FALSE(Compared(*db.verification, "Logs.Events")) << "rows not compared";
  EXPECT_TRUE(std::none_of(db.tables.begin(), db.tables.end(), [](const TableOutcome& t) {
    return t.table.rfind("Logs.", 0) == 0;
  })) << "not copied";

  EXPECT_EQ(OnTarget("SELECT count(*) FROM public.audit_log"), "200");
  EXPECT_TRUE(Verified(db, "public", "audit_log"));
  EXPECT_TRUE(Verified(db, "sales", "customers"));
}

TEST_P(MigrateFilterTest, IncludedSchemaAlone) {
  ObjectFilter filter;
  filter.include_schemas = {"sales"};
  Result<MigrationOutcome> outcome = Run(filter);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  ASSERT_TRUE(outcome->ok()) << Describe(*outcome);
  const DatabaseOutcome& db = outcome->databases[0];

  EXPECT_EQ(OnTarget("SELECT count(*) FROM sales.orders"), "1000");
  EXPECT_EQ(OnTarget("SELECT count(*) FROM sales.customers WHERE email = 'c7@example.COM'"), "1")
      << "citext, from the extension in public, works";
  EXPECT_EQ(OnTarget("SELECT count(*) FROM sales.big_orders"), "334");
  EXPECT_EQ(OnTarget("SELECT count(*) FROM pg_extension WHERE extname = 'citext'"), "1");
  EXPECT_EQ(OnTarget("SELECT 'paid'::sales.status"), "paid");
  EXPECT_FALSE(ExistsOnTarget("public.users"));
  EXPECT_FALSE(ExistsOnTarget("public.audit_log"));
  EXPECT_EQ(OnTarget("SELECT count(*) FROM pg_namespace WHERE nspname = 'Logs'"), "0");
  EXPECT_EQ(OnTarget("SELECT count(*) FROM pg_proc WHERE proname = 'touch'"), "0");
  // The identity continues, and the foreign key works.
  EXPECT_EQ(OnTarget("INSERT INTO sales.orders (customer_id) VALUES (1) RETURNING id"), "1001");
  EXPECT_FALSE(target_->Sql("INSERT INTO sales.orders (customer_id) VALUES (-1)", "shop").ok());
  ASSERT_TRUE(db.verification.has_value());
  EXPECT_EQ(db.verification->tables.size(), 4u) << Describe(*outcome);
}

TEST_P(MigrateFilterTest, IncludedAndExcludedTablesByQualifiedName) {
  ObjectFilter filter;
  filter.include_tables = {"sales.*", "Logs.Events"};
  filter.exclude_tables = {"sales.orders_20*"};
  Result<MigrationOutcome> outcome = Run(filter);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  ASSERT_TRUE(outcome->ok()) << Describe(*outcome);
  const DatabaseOutcome& db = outcome->databases[0];

  EXPECT_TRUE(Verified(db, "sales", "orders"));
  EXPECT_TRUE(Verified(db, "sales", "customers"));
  EXPECT_TRUE(Verified(db, "Logs", "Events"));
  EXPECT_EQ(db.verification->tables.size(), 3u) << Describe(*outcome);
  EXPECT_FALSE(ExistsOnTarget("sales.orders_2023"));
  EXPECT_FALSE(ExistsOnTarget("sales.orders_2024"));
  EXPECT_FALSE(ExistsOnTarget("\"Logs\".requests"));
  EXPECT_FALSE(ExistsOnTarget("public.users"));
  // Objects that are not tables follow the schema filters.
  EXPECT_EQ(OnTarget("SELECT count(*) FROM pg_proc WHERE proname = 'touch'"), "1");
  EXPECT_TRUE(ExistsOnTarget("sales.big_orders"));
}

TEST_P(MigrateFilterTest, FilterSelectingNothingFailsBeforeTouchingTheTarget) {
  for (const char* pattern : {"nomatch.*", "logs.*"}) {  // case-sensitive
    SCOPED_TRACE(pattern);
    ObjectFilter filter;
    filter.include_tables = {pattern};
    Result<MigrationOutcome> outcome = Run(filter);
    ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
    EXPECT_FALSE(outcome->ok());
    ASSERT_EQ(outcome->databases.size(), 1u);
    const DatabaseOutcome& db = outcome->databases[0];
    EXPECT_EQ(db.state, "failed");
    EXPECT_NE(db.error.find("no table of database shop matches --include-table"), std::string::npos)
        << db.error;
    EXPECT_FALSE(db.hint.empty());
    EXPECT_EQ(*target_->Sql("SELECT count(*) FROM pg_database WHERE datname = 'shop'"), "0")
        << "the target database was not even created";
  }
  ObjectFilter schemas;
  schemas.include_schemas = {"SALES"};
  Result<MigrationOutcome> outcome = Run(schemas);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  ASSERT_EQ(outcome->databases.size(), 1u);
  EXPECT_NE(outcome->databases[0].error.find("no schema of database shop matches"),
            std::string::npos)
      << outcome->databases[0].error;
  EXPECT_EQ(*target_->Sql("SELECT count(*) FROM pg_database WHERE datname = 'shop'"), "0");
}

INSTANTIATE_TEST_SUITE_P(Versions, MigrateFilterTest, ::testing::ValuesIn(testing::TargetMajors()),
                         testing::VersionPairName);

// `verify` on its own: the same database on two servers, then the target
// changed where the filter says it may differ.
class VerifyFilterTest : public testing::SourceAndTargetTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(StartServers());
    for (const PgCluster* c : {source_.get(), target_.get()}) {
      Result<std::string> built = c->Sql(kShop);
      ASSERT_TRUE(built.ok()) << built.status().ToString();
    }
    // The target as a move with --exclude-table 'public.audit_*' leaves it
    // (the serial column's sequence stays), then changed where the filters
    // let it differ.
    Result<std::string> changed = target_->Sql(
        "ALTER SEQUENCE public.audit_trail_id_seq OWNED BY NONE; "
        "DROP TABLE public.audit_log, public.audit_trail; "
        "TRUNCATE \"Logs\".\"Events\", \"Logs\".requests; "
        "DROP TABLE sales.orders_2023; CREATE TABLE sales.orders_2025 (id integer)",
        "shop");
    ASSERT_TRUE(changed.ok()) << changed.status().ToString();
  }

  Result<DatabaseVerification> Verify(const ObjectFilter& filter) {
    Result<ConnInfo> s = ConnInfo::Parse(ClusterConn(*source_, "shop"));
    Result<ConnInfo> t = ConnInfo::Parse(ClusterConn(*target_, "shop"));
    if (!s.ok()) return s.status();
    if (!t.ok()) return t.status();
    VerifyOptions options;
    options.jobs = 2;
    options.connect_timeout = std::chrono::seconds(5);
    options.filter = filter;
    return VerifyDatabase(*s, *t, options);
  }
};

std::string Show(const DatabaseVerification& v) {
  MigrationOutcome outcome;
  DatabaseOutcome db;
  db.verification = v;
  outcome.databases.push_back(db);
  return Describe(outcome);
}

TEST_F(VerifyFilterTest, LeavesTheSameObjectsOutOnBothSides) {
  Result<DatabaseVerification> unfiltered = Verify({});
  ASSERT_TRUE(unfiltered.ok()) << unfiltered.status().ToString();
  EXPECT_GT(unfiltered->Mismatches(), 5) << Show(*unfiltered);

  ObjectFilter filter;
  filter.exclude_tables = {"public.audit_*", "sales.orders_20*"};
  filter.exclude_table_data = {"Logs.*"};
  Result<DatabaseVerification> v = Verify(filter);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->Mismatches(), 0) << Show(*v);
  EXPECT_FALSE(Compared(*v, "public.audit_log"));
  EXPECT_FALSE(Compared(*v, "Logs.Events"));
  EXPECT_TRUE(Compared(*v, "public.users"));
  EXPECT_EQ(v->tables.size(), 3u) << Show(*v);
  // A serial column's sequence outlives its excluded table (as with
  // pg_dump); an identity column's does not.
  auto sequence = [&](const std::string& name) {
    return std::any_of(v->sequences.begin(), v->sequences.end(),
                       [&](const auto& s) { return s.schema + "." + s.name == name; });
  };
  EXPECT_TRUE(sequence("public.audit_trail_id_seq"));
  EXPECT_FALSE(sequence("public.audit_log_id_seq"));

  // A data exclusion alone still compares the definitions.
  ObjectFilter data_only;
  data_only.exclude_table_data = {"*"};
  v = Verify(data_only);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_TRUE(v->tables.empty());
  EXPECT_GE(v->Mismatches(), 3) << "tables, indexes, constraints\n" << Show(*v);
}

TEST_F(VerifyFilterTest, IncludedSchemasOnly) {
  ObjectFilter filter;
  filter.include_schemas = {"Logs", "sales"};
  filter.exclude_tables = {"sales.orders_202?"};
  filter.exclude_table_data = {"Logs.*"};
  Result<DatabaseVerification> v = Verify(filter);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->Mismatches(), 0) << Show(*v);
  EXPECT_EQ(v->tables.size(), 2u) << Show(*v);

  filter.include_tables = {"nomatch.*"};
  v = Verify(filter);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(v.status().message().find("--include-table"), std::string::npos)
      << v.status().ToString();
}

TEST_F(VerifyFilterTest, CommandLineOptions) {
  auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"verify", "--source", ClusterConn(*source_, "shop"),
                                     "--target", ClusterConn(*target_, "shop")};
    args.insert(args.end(), extra.begin(), extra.end());
    return testing::RunCli(args);
  };
  ProcessResult matched = run({"--exclude-table", "public.audit_*", "--exclude-table",
                               "sales.orders_20*", "--exclude-table-data", "Logs.*"});
  EXPECT_EQ(matched.exit_code, 0) << matched.out << matched.err;
  ProcessResult differs = run({"--exclude-table-data", "Logs.*"});
  EXPECT_EQ(differs.exit_code, 1) << differs.out << differs.err;
  ProcessResult nothing = run({"--include-schema", "sales", "--include-table", "public.*"});
  EXPECT_EQ(nothing.exit_code, 2) << nothing.out << nothing.err;
  EXPECT_NE(nothing.err.find("no table of database shop matches --include-table 'public.*'"),
            std::string::npos)
      << nothing.err;
}

}  // namespace
}  // namespace pgcourier

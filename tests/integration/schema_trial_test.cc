// What `check` knows before any row moves: roles the schema's restore names
// (roles.required) and what the target refuses of the schema, found by
// restoring it there in a transaction that is rolled back
// (schema.restorable). A READY followed by a migration that fails after the
// data on one of these is a defect of the check; so `migrate` stops before
// the data on them, and the trial leaves nothing on the target.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>

#include "cli_runner.h"
#include "pg_cluster.h"
#include "preflight/checker.h"
#include "two_servers.h"

namespace pgcourier {
namespace {

std::string ClusterConn(const testing::PgCluster& c, const std::string& db = "") {
  return fmt::format("host=127.0.0.1 port={} user=postgres{}", c.port(),
                     db.empty() ? "" : " dbname=" + db);
}

Result<CheckReport> Check(const testing::PgCluster& source, const testing::PgCluster& target,
                          bool roles = false) {
  CheckOptions options;
  options.source = ClusterConn(source, "docs");
  options.target = ClusterConn(target);
  options.method = Method::kCopy;
  options.roles = roles;
  options.connect_timeout = std::chrono::seconds(3);
  return RunChecks(options);
}

const CheckItem* Find(const CheckReport& report, const std::string& code,
                      const std::string& object_part = "") {
  for (const auto& item : report.items) {
    if (item.code == code && item.object.find(object_part) != std::string::npos) return &item;
  }
  return nullptr;
}

std::string Dump(const CheckReport& report) {
  std::string out;
  for (const auto& i : report.items) {
    out += fmt::format("{} {} [{}] {} / {}\n", CheckStatusName(i.status), i.code, i.object,
                       i.detail, i.hint);
  }
  return out;
}

// Everything the trial could leave on the target: databases, roles, and the
// user's objects of its maintenance database.
std::string TargetInventory(const testing::PgCluster& target) {
  Result<std::string> listed = target.Sql(
      "SELECT (SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database) || ' | ' || "
      "(SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles) || ' | ' || "
      "(SELECT count(*) FROM pg_class WHERE oid >= 16384) || ' ' || "
      "(SELECT count(*) FROM pg_proc WHERE oid >= 16384) || ' ' || "
      "(SELECT count(*) FROM pg_namespace WHERE oid >= 16384)");
  return listed.ok() ? *listed : listed.status().ToString();
}

std::vector<std::string> MigrateArgs(const testing::PgCluster& source,
                                     const testing::PgCluster& target, const std::string& dir) {
  return {"migrate",
          "--source",
          ClusterConn(source, "docs"),
          "--target",
          ClusterConn(target),
          "--method",
          "copy",
          "--dir",
          dir,
          "--json"};
}

class SchemaTrialTest : public testing::SourceAndTargetTest {};

// A policy names a role the target lacks: the check fails naming the policy
// with --roles as the fix; with --roles it passes and the move works.
TEST_F(SchemaTrialTest, PolicyRoleMissingOnTargetFailsUntilRoles) {
  testing::SourceAndTargetOptions options;
  ASSERT_NO_FATAL_FAILURE(StartServers(options));
  ASSERT_TRUE(source_
                  ->Sql(R"sql(
    CREATE ROLE app_reader NOLOGIN;
    CREATE DATABASE docs;
    \c docs
    CREATE TABLE public.docs (id int PRIMARY KEY, body text);
    INSERT INTO public.docs SELECT g, 'doc ' || g FROM generate_series(1, 100) g;
    ALTER TABLE public.docs ENABLE ROW LEVEL SECURITY;
    CREATE POLICY readers ON public.docs FOR SELECT TO app_reader USING (id > 0);
    -- A backslash at a line's start inside a function body is no psql command.
    CREATE FUNCTION public.odd(s text) RETURNS text LANGUAGE plpgsql AS $$
    BEGIN
      RETURN s || E'
\\connect';
    END $$;
  )sql")
                  .ok());
  const std::string before = TargetInventory(*target_);

  Result<CheckReport> report = Check(*source_, *target_);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->blocked()) << Dump(*report);
  const CheckItem* required = Find(*report, check_code::kRolesRequired, "app_reader");
  ASSERT_NE(required, nullptr) << Dump(*report);
  EXPECT_EQ(required->status, CheckStatus::kFail) << Dump(*report);
  EXPECT_NE(required->detail.find("policy readers on table public.docs"), std::string::npos)
      << required->detail;
  EXPECT_NE(required->hint.find("--roles"), std::string::npos) << required->hint;
  // The trial creates the missing role in its transaction and tries the rest.
  const CheckItem* trial = Find(*report, check_code::kSchemaRestorable);
  ASSERT_NE(trial, nullptr) << Dump(*report);
  EXPECT_EQ(trial->status, CheckStatus::kPass) << Dump(*report);
  EXPECT_EQ(TargetInventory(*target_), before) << "the trial left something on the target";

  // migrate without --roles stops before the data: no database on the target.
  ProcessResult refused = testing::RunCli(MigrateArgs(*source_, *target_, dir_ + "-1"));
  EXPECT_EQ(refused.exit_code, 1) << refused.out << refused.err;
  EXPECT_NE(refused.out.find("roles.required"), std::string::npos) << refused.out;
  EXPECT_EQ(TargetInventory(*target_), before);

  Result<CheckReport> with_roles = Check(*source_, *target_, true);
  ASSERT_TRUE(with_roles.ok());
  EXPECT_FALSE(with_roles->blocked()) << Dump(*with_roles);
  EXPECT_EQ(Find(*with_roles, check_code::kRolesRequired, "app_reader")->status,
            CheckStatus::kPass);

  std::vector<std::string> args = MigrateArgs(*source_, *target_, dir_ + "-2");
  args.emplace_back("--roles");
  ProcessResult moved = testing::RunCli(args);
  EXPECT_EQ(moved.exit_code, 0) << moved.out << moved.err;
  Result<std::string> policy =
      target_->Sql("SELECT polroles::regrole[]::text FROM pg_policy", "docs");
  ASSERT_TRUE(policy.ok());
  EXPECT_EQ(*policy, "{app_reader}");
}

// 15 -> 17: Debian's 15 has lz4, the 17 build here does not. The check
// fails on the table with a hint, and migrate refuses before any data.
TEST_F(SchemaTrialTest, Lz4CompressionOnTargetWithoutLz4) {
  if (!testing::HavePgMajor(17)) GTEST_SKIP() << "PostgreSQL 17 is not installed";
  testing::SourceAndTargetOptions options;
  options.target.major = 17;
  options.database = "docs";
  options.database_sql =
      "CREATE TABLE public.docs (id int PRIMARY KEY, body text COMPRESSION lz4); "
      "INSERT INTO public.docs VALUES (1, repeat('x', 10000));";
  ASSERT_NO_FATAL_FAILURE(StartServers(options));
  const std::string before = TargetInventory(*target_);

  Result<CheckReport> report = Check(*source_, *target_);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->blocked()) << Dump(*report);
  const CheckItem* trial = Find(*report, check_code::kSchemaRestorable, "TABLE public.docs");
  ASSERT_NE(trial, nullptr) << Dump(*report);
  EXPECT_EQ(trial->status, CheckStatus::kFail);
  EXPECT_NE(trial->detail.find("lz4"), std::string::npos) << trial->detail;
  EXPECT_NE(trial->hint.find("SET COMPRESSION pglz"), std::string::npos) << trial->hint;
  EXPECT_EQ(TargetInventory(*target_), before) << "the trial left something on the target";

  ProcessResult refused = testing::RunCli(MigrateArgs(*source_, *target_, dir_));
  EXPECT_EQ(refused.exit_code, 1) << refused.out << refused.err;
  EXPECT_NE(refused.out.find("schema.restorable"), std::string::npos) << refused.out;
  EXPECT_EQ(TargetInventory(*target_), before) << "migrate touched the target";
}

// 15 -> 17: a C function whose library (adminpack, gone in 17) only the
// source has.
TEST_F(SchemaTrialTest, CFunctionWhoseLibraryTheTargetLacks) {
  if (!testing::HavePgMajor(17)) GTEST_SKIP() << "PostgreSQL 17 is not installed";
  testing::SourceAndTargetOptions options;
  options.target.major = 17;
  options.database = "docs";
  options.database_sql =
      "CREATE FUNCTION public.file_write(text, text, boolean) RETURNS bigint "
      "AS '$libdir/adminpack', 'pg_file_write_v1_1' LANGUAGE C STRICT;";
  ASSERT_NO_FATAL_FAILURE(StartServers(options));
  const std::string before = TargetInventory(*target_);

  Result<CheckReport> report = Check(*source_, *target_);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->blocked()) << Dump(*report);
  const CheckItem* trial =
      Find(*report, check_code::kSchemaRestorable, "FUNCTION public.file_write");
  ASSERT_NE(trial, nullptr) << Dump(*report);
  EXPECT_EQ(trial->status, CheckStatus::kFail);
  EXPECT_NE(trial->detail.find("adminpack"), std::string::npos) << trial->detail;
  EXPECT_NE(trial->hint.find("shared library"), std::string::npos) << trial->hint;
  EXPECT_EQ(TargetInventory(*target_), before) << "the trial left something on the target";
}

// An existing, empty target database is tried in place: a name the schema
// creates that is already there fails the restore too, so it is a finding;
// the trial's objects are rolled back, the target's own are untouched.
TEST_F(SchemaTrialTest, ExistingTargetDatabaseIsTriedInPlace) {
  testing::SourceAndTargetOptions options;
  options.database = "docs";
  options.database_sql =
      "CREATE SCHEMA app; CREATE TABLE app.docs (id int PRIMARY KEY); "
      "CREATE FUNCTION app.f() RETURNS int LANGUAGE sql AS 'SELECT 1';";
  ASSERT_NO_FATAL_FAILURE(StartServers(options));
  ASSERT_TRUE(target_->Sql("CREATE DATABASE docs").ok());
  const std::string objects =
      "SELECT (SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace) || ' ' || "
      "(SELECT count(*) FROM pg_class WHERE oid >= 16384)";
  Result<std::string> before = target_->Sql(objects, "docs");
  ASSERT_TRUE(before.ok());

  CheckOptions check;
  check.source = ClusterConn(*source_, "docs");
  check.target = ClusterConn(*target_, "docs");
  check.method = Method::kCopy;
  Result<CheckReport> report = RunChecks(check);
  ASSERT_TRUE(report.ok());
  const CheckItem* trial = Find(*report, check_code::kSchemaRestorable);
  ASSERT_NE(trial, nullptr) << Dump(*report);
  EXPECT_EQ(trial->status, CheckStatus::kPass) << Dump(*report);
  EXPECT_EQ(trial->detail.find("scratch"), std::string::npos) << trial->detail;
  Result<std::string> after = target_->Sql(objects, "docs");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, *before);

  // A schema of the same name on the target: the restore would fail on it.
  ASSERT_TRUE(target_->Sql("CREATE SCHEMA app", "docs").ok());
  Result<CheckReport> collides = RunChecks(check);
  ASSERT_TRUE(collides.ok());
  const CheckItem* collision = Find(*collides, check_code::kSchemaRestorable, "SCHEMA app");
  ASSERT_NE(collision, nullptr) << Dump(*collides);
  EXPECT_EQ(collision->status, CheckStatus::kFail);
  EXPECT_NE(collision->hint.find("already holds"), std::string::npos) << collision->hint;
}

}  // namespace
}  // namespace pgcourier

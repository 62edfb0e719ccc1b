// What a database has outside its schema, in the server's shared catalogs
// (its settings, the settings of roles in it, its comment, connection limit
// and grants), and its large objects (data, comment, owner, grants): moved
// exactly by migrate, compared by verify, and each one changed on the target
// afterwards is a difference that names it.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli_runner.h"
#include "pg_cluster.h"
#include "two_servers.h"
#include "version_pairs.h"

namespace pgcourier {
namespace {

using testing::PgCluster;
using testing::RunCli;

// Run on the source's postgres database: roles, then the database `app` and
// its properties.
constexpr const char* kRolesAndDatabase = R"sql(
CREATE ROLE app_owner;
CREATE ROLE app_reader;
CREATE ROLE app_user;
CREATE DATABASE app;
ALTER DATABASE app SET search_path = app, public;
ALTER DATABASE app SET work_mem = '12MB';
ALTER ROLE app_user IN DATABASE app SET statement_timeout = '7s';
COMMENT ON DATABASE app IS 'the app''s data';
ALTER DATABASE app CONNECTION LIMIT 40;
REVOKE ALL ON DATABASE app FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE app TO app_user;
GRANT CONNECT ON DATABASE app TO app_reader WITH GRANT OPTION;
)sql";

// Run in app: a table, and large objects (one of 2.4 MB, read in 1 MB
// pieces by the comparison) with a comment, an owner and a grant.
constexpr const char* kAppContent = R"sql(
CREATE SCHEMA app;
CREATE TABLE app.items (id integer PRIMARY KEY, label text);
INSERT INTO app.items SELECT g, 'item ' || g FROM generate_series(1, 100) g;
SELECT lo_from_bytea(50001, convert_to(repeat('lo data ', 300000), 'UTF8'));
SELECT lo_from_bytea(50002, '\x0001'::bytea);
COMMENT ON LARGE OBJECT 50001 IS 'a big one';
ALTER LARGE OBJECT 50002 OWNER TO app_owner;
GRANT SELECT ON LARGE OBJECT 50001 TO app_reader;
)sql";

// The properties as text, the same on both servers when they moved.
constexpr const char* kPropertiesSql = R"sql(
SELECT coalesce(r.rolname, '-') || ' ' || array_to_string(s.setconfig, ';')
  FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
  LEFT JOIN pg_roles r ON r.oid = s.setrole
 WHERE d.datname = 'app' ORDER BY 1;
SELECT shobj_description(d.oid, 'pg_database'), d.datconnlimit,
       (SELECT string_agg(g, ',' ORDER BY g)
          FROM (SELECT pg_get_userbyid(a.grantee) || ':' || a.privilege_type
                       || a.is_grantable::text AS g
                  FROM aclexplode(d.datacl) a WHERE a.grantee <> d.datdba) x)
  FROM pg_database d WHERE d.datname = 'app';
)sql";

constexpr const char* kLargeObjectsSql = R"sql(
SELECT m.oid, md5(lo_get(m.oid)), obj_description(m.oid, 'pg_largeobject'),
       pg_get_userbyid(m.lomowner),
       (SELECT string_agg(g, ',' ORDER BY g)
          FROM (SELECT pg_get_userbyid(a.grantee) || ':' || a.privilege_type AS g
                  FROM aclexplode(m.lomacl) a WHERE a.grantee <> m.lomowner) x)
  FROM pg_largeobject_metadata m ORDER BY 1;
)sql";

std::string Sql(const PgCluster& server, const std::string& sql, const std::string& db) {
  Result<std::string> out = server.Sql(sql, db);
  EXPECT_TRUE(out.ok()) << sql << ": " << out.status().ToString();
  return out.ok() ? *out : "";
}

class DatabasePropertiesTest : public testing::VersionPairTest {};

TEST_P(DatabasePropertiesTest, MoveExactlyAndEachChangeOnTheTargetIsFound) {
  ASSERT_TRUE(source_->Sql(kRolesAndDatabase).ok());
  ASSERT_TRUE(source_->Sql(kAppContent, "app").ok());
  const std::string source = source_->ConnString("app");
  const std::string target = target_->ConnString("app");

  ProcessResult moved = RunCli({"migrate", "--source", source, "--target", target, "--dir", dir_,
                                "--roles", "--preserve-owners", "--preserve-acl"});
  ASSERT_EQ(moved.exit_code, 0) << moved.out << moved.err;

  EXPECT_EQ(Sql(*target_, kPropertiesSql, "postgres"), Sql(*source_, kPropertiesSql, "postgres"));
  EXPECT_EQ(Sql(*target_, kLargeObjectsSql, "app"), Sql(*source_, kLargeObjectsSql, "app"));
  // The list arrives as two names, so unqualified names find the schema app.
  EXPECT_EQ(Sql(*target_, "SELECT current_schemas(false)", "app"), "{app,public}");
  EXPECT_EQ(Sql(*target_, "SELECT count(*) FROM items", "app"), "100");

  const std::vector<std::string> verify = {
      "verify", "--source", source, "--target", target, "--preserve-owners", "--preserve-acl"};
  ProcessResult same = RunCli(verify);
  ASSERT_EQ(same.exit_code, 0) << same.out << same.err;

  struct Plant {
    std::string named;  // what the report must name
    std::string db;     // where to run plant and undo on the target
    std::string plant;
    std::string undo;
  };
  const std::vector<Plant> plants = {
      {"setting search_path", "postgres", "ALTER DATABASE app SET search_path = 'app, public'",
       "ALTER DATABASE app SET search_path = app, public"},
      {"setting work_mem", "postgres", "ALTER DATABASE app RESET work_mem",
       "ALTER DATABASE app SET work_mem = '12MB'"},
      {"role app_user: setting statement_timeout", "postgres",
       "ALTER ROLE app_user IN DATABASE app SET statement_timeout = '8s'",
       "ALTER ROLE app_user IN DATABASE app SET statement_timeout = '7s'"},
      {"comment", "postgres", "COMMENT ON DATABASE app IS 'the app''s data!'",
       "COMMENT ON DATABASE app IS 'the app''s data'"},
      {"connection limit", "postgres", "ALTER DATABASE app CONNECTION LIMIT -1",
       "ALTER DATABASE app CONNECTION LIMIT 40"},
      {"grants", "postgres", "REVOKE TEMPORARY ON DATABASE app FROM app_user",
       "GRANT TEMPORARY ON DATABASE app TO app_user"},
      {"large object 50001: data", "app", "SELECT lo_put(50001, 1500000, 'X'::bytea)",
       "SELECT lo_put(50001, 1500000, 'l'::bytea)"},
      {"large object 50001: comment", "app", "COMMENT ON LARGE OBJECT 50001 IS NULL",
       "COMMENT ON LARGE OBJECT 50001 IS 'a big one'"},
      {"large object 50002: owner", "app", "ALTER LARGE OBJECT 50002 OWNER TO app_user",
       "ALTER LARGE OBJECT 50002 OWNER TO app_owner"},
      {"large object 50001: grants", "app", "REVOKE SELECT ON LARGE OBJECT 50001 FROM app_reader",
       "GRANT SELECT ON LARGE OBJECT 50001 TO app_reader"},
      {"large object 50003", "app", "SELECT lo_from_bytea(50003, 'x'::bytea)",
       "SELECT lo_unlink(50003)"},
  };
  for (const Plant& p : plants) {
    SCOPED_TRACE(p.named);
    ASSERT_TRUE(target_->Sql(p.plant, p.db).ok());
    ProcessResult found = RunCli(verify);
    EXPECT_EQ(found.exit_code, 1) << found.out << found.err;
    EXPECT_NE(found.out.find("  " + p.named + " "), std::string::npos) << found.out;
    EXPECT_NE(found.out.find("differs"), std::string::npos) << found.out;
    ASSERT_TRUE(target_->Sql(p.undo, p.db).ok());
  }
  ProcessResult undone = RunCli(verify);
  EXPECT_EQ(undone.exit_code, 0) << undone.out << undone.err;
}

INSTANTIATE_TEST_SUITE_P(Versions, DatabasePropertiesTest,
                         ::testing::ValuesIn(testing::TargetMajors()), testing::VersionPairName);

// A whole cluster: each database gets its own properties. A source database
// made read-only does not make the target read-only (nor stop the move), and
// the settings of a role the target lacks are named as left out.
class DatabasePropertiesClusterTest : public testing::SourceAndTargetTest {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(StartServers()); }
};

TEST_F(DatabasePropertiesClusterTest, EveryDatabaseGetsItsOwnAndTheTargetStaysWritable) {
  ASSERT_TRUE(source_
                  ->Sql("CREATE ROLE shared_role; CREATE ROLE source_only; "
                        "CREATE DATABASE one; CREATE DATABASE two; "
                        "ALTER DATABASE one SET search_path = \"My Schema\", public; "
                        "COMMENT ON DATABASE one IS 'first'; "
                        "ALTER ROLE shared_role IN DATABASE one SET work_mem = '5MB'; "
                        "ALTER DATABASE two CONNECTION LIMIT 30; "
                        "COMMENT ON DATABASE two IS 'second'; "
                        "ALTER ROLE source_only IN DATABASE two SET work_mem = '6MB'")
                  .ok());
  ASSERT_TRUE(
      source_->Sql("CREATE SCHEMA \"My Schema\"; CREATE TABLE \"My Schema\".t (id int)", "one")
          .ok());
  ASSERT_TRUE(source_->Sql("CREATE TABLE t (id int); INSERT INTO t VALUES (1)", "two").ok());
  // Made read-only last: its own sessions would be read-only too.
  ASSERT_TRUE(source_->Sql("ALTER DATABASE two SET default_transaction_read_only = on").ok());
  ASSERT_TRUE(target_->Sql("CREATE ROLE shared_role").ok());

  ProcessResult moved =
      RunCli({"migrate", "--source", source_->ConnString(), "--target", target_->ConnString(),
              "--dir", dir_, "--databases", "one", "--databases", "two"});
  ASSERT_EQ(moved.exit_code, 0) << moved.out << moved.err;
  EXPECT_NE(moved.err.find("settings of role(s) source_only"), std::string::npos) << moved.err;

  EXPECT_EQ(Sql(*target_, "SELECT current_schemas(false)", "one"), "{\"My Schema\",public}");
  EXPECT_EQ(Sql(*target_,
                "SELECT string_agg(datname || ' ' || coalesce(shobj_description(oid, "
                "'pg_database'), '') || ' ' || datconnlimit, ',' ORDER BY datname) "
                "FROM pg_database WHERE datname IN ('one', 'two')",
                "postgres"),
            "one first -1,two second 30");
  EXPECT_EQ(Sql(*target_,
                "SELECT array_to_string(setconfig, ';') FROM pg_db_role_setting s "
                "JOIN pg_roles r ON r.oid = s.setrole",
                "postgres"),
            "work_mem=5MB");
  // The target takes writes.
  EXPECT_TRUE(target_->Sql("INSERT INTO t VALUES (2)", "two").ok());
  EXPECT_TRUE(target_->Sql("DELETE FROM t WHERE id = 2", "two").ok());

  ProcessResult verified =
      RunCli({"verify", "--source", source_->ConnString(), "--target", target_->ConnString(),
              "--databases", "one", "--databases", "two"});
  EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
  EXPECT_NE(verified.out.find("role source_only: setting work_mem"), std::string::npos)
      << verified.out;
  EXPECT_NE(verified.out.find("left out: no such role on the target"), std::string::npos)
      << verified.out;
}

}  // namespace
}  // namespace pgcourier

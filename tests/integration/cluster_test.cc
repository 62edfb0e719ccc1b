// A whole cluster moved in one run: every database (different encodings and
// locales, one much larger than the others) with the source's roles,
// memberships, owners and grants (--roles --preserve-owners --preserve-acl),
// all databases sharing one pool of jobs.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "migrate/migration.h"
#include "pg_cluster.h"
#include "state/store.h"
#include "state_names.h"
#include "version_pairs.h"

namespace pgcourier {
namespace {

using testing::PgCluster;
using testing::StartClusterOrFail;

std::string ServerConn(const PgCluster& c) {
  return fmt::format("host=127.0.0.1 port={} user=postgres", c.port());
}

constexpr const char* kRoles = R"sql(
  CREATE ROLE app_owner LOGIN PASSWORD 'owner-secret';
  CREATE ROLE readers NOLOGIN;
  CREATE ROLE alice LOGIN IN ROLE readers;
  CREATE ROLE bob LOGIN;
  GRANT readers TO bob WITH ADMIN OPTION;
)sql";

// One database's objects, owned by app_owner, readable by readers.
constexpr const char* kObjects = R"sql(
  CREATE SCHEMA app AUTHORIZATION app_owner;
  SET ROLE app_owner;
  CREATE TABLE app.notes (id int PRIMARY KEY, body text);
  CREATE TABLE app.tags (id int PRIMARY KEY, note int REFERENCES app.notes, tag text);
  GRANT USAGE ON SCHEMA app TO readers;
  GRANT SELECT ON app.notes TO readers;
  GRANT SELECT, INSERT ON app.tags TO alice;
  RESET ROLE;
)sql";

class ClusterMigrateTest : public testing::VersionPairTest {};

TEST_P(ClusterMigrateTest, EveryDatabaseWithRolesOwnersAndGrants) {
  ASSERT_TRUE(source_->Sql(kRoles).ok());
  struct Db {
    const char* name;
    const char* create;
    int rows;
  };
  const std::vector<Db> dbs = {
      {"big_utf8", "CREATE DATABASE big_utf8 TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'",
       150000},
      {"latin", "CREATE DATABASE latin TEMPLATE template0 ENCODING 'LATIN1' LOCALE 'C'", 500},
      {"plain", "CREATE DATABASE plain TEMPLATE template0 ENCODING 'SQL_ASCII' LOCALE 'POSIX'",
       200},
  };
  for (const auto& db : dbs) {
    ASSERT_TRUE(source_->Sql(db.create).ok()) << db.name;
    Result<std::string> built = source_->Sql(kObjects, db.name);
    ASSERT_TRUE(built.ok()) << built.status().ToString();
    ASSERT_TRUE(source_
                    ->Sql(fmt::format("INSERT INTO app.notes SELECT g, 'caf\xc3\xa9 ' || g FROM "
                                      "generate_series(1, {0}) g; INSERT INTO app.tags SELECT g, "
                                      "g, 't' FROM generate_series(1, {0}) g;",
                                      db.rows),
                          db.name)
                    .ok());
  }
  ASSERT_TRUE(source_->Sql("ALTER DATABASE latin SET work_mem = '8MB'").ok());
  ASSERT_TRUE(source_->Sql("ALTER ROLE alice IN DATABASE latin SET statement_timeout = '5s'").ok());

  MigrateOptions options;
  options.check.source = ServerConn(*source_);
  options.check.target = ServerConn(*target_);
  options.check.method = Method::kCopy;
  options.check.jobs = 2;
  options.check.connect_timeout = std::chrono::seconds(10);
  options.work_dir = source_->base_dir() + "/work";
  options.roles = true;
  options.policy.preserve_owners = true;
  options.policy.preserve_acl = true;
  options.split_bytes = 1 << 20;
  Result<MigrationOutcome> outcome = Migrate(options);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  std::string states;
  for (const auto& db : outcome->databases)
    states += db.name + "=" + Name(db.state) + " " + db.error;
  ASSERT_TRUE(outcome->ok()) << states;
  // The three, and postgres (every non-template database is moved).
  ASSERT_EQ(outcome->databases.size(), 4u) << states;
  ASSERT_TRUE(outcome->roles.has_value());

  // Roles and memberships, with the admin option.
  const std::string memberships =
      "SELECT string_agg(format('%s>%s:%s', r.rolname, m.rolname, am.admin_option), ',' ORDER BY "
      "1) FROM pg_auth_members am JOIN pg_roles r ON r.oid = am.roleid JOIN pg_roles m ON m.oid "
      "= am.member WHERE r.rolname IN ('readers')";
  EXPECT_EQ(*target_->Sql(memberships), *source_->Sql(memberships));
  EXPECT_EQ(*target_->Sql("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'app_owner'"), "t");

  for (const auto& db : dbs) {
    SCOPED_TRACE(db.name);
    // The database's encoding and locale.
    const std::string database = fmt::format(
        "SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database "
        "WHERE datname = '{}'",
        db.name);
    EXPECT_EQ(*target_->Sql(database), *source_->Sql(database));
    // Owners and grants of the schema and the tables.
    // Grants compared privilege by privilege (17 gives owners MAINTAIN too).
    const std::string acl =
        "SELECT string_agg(format('%s %s %s', c.relname, pg_get_userbyid(c.relowner), "
        "(SELECT string_agg(format('%s:%s:%s', pg_get_userbyid(a.grantee), a.privilege_type, "
        "pg_get_userbyid(a.grantor)), ',' ORDER BY 1) FROM aclexplode(c.relacl) a "
        "WHERE a.privilege_type <> 'MAINTAIN')), '; ' ORDER BY c.relname) FROM pg_class c "
        "WHERE c.relnamespace = 'app'::regnamespace AND c.relkind = 'r'";
    EXPECT_EQ(*target_->Sql(acl, db.name), *source_->Sql(acl, db.name));
    const std::string schema_acl =
        "SELECT format('%s %s', pg_get_userbyid(nspowner), nspacl) FROM pg_namespace "
        "WHERE nspname = 'app'";
    EXPECT_EQ(*target_->Sql(schema_acl, db.name), *source_->Sql(schema_acl, db.name));
    const std::string data = "SELECT count(*), sum(hashtext(n::text)) FROM app.notes n";
    EXPECT_EQ(*target_->Sql(data, db.name), *source_->Sql(data, db.name));
  }
  // Database and per-database role settings.
  const std::string settings =
      "SELECT string_agg(array_to_string(setconfig, ','), ';' ORDER BY setrole) FROM "
      "pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = 'latin'";
  EXPECT_EQ(*target_->Sql(settings), *source_->Sql(settings));

  // The store lists every database, done.
  Result<std::unique_ptr<StateStore>> store = StateStore::OpenReadOnly(options.work_dir);
  ASSERT_TRUE(store.ok());
  Result<std::vector<StoredDatabase>> stored = (*store)->Databases();
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 4u);
  for (const auto& db : *stored) EXPECT_EQ(db.state, "done") << db.name << " " << db.error;
}

TEST_P(ClusterMigrateTest, OneFailingDatabaseDoesNotStopTheOthers) {
  for (const char* name : {"one", "two", "three"}) {
    ASSERT_TRUE(source_->Sql(fmt::format("CREATE DATABASE {}", name)).ok());
    ASSERT_TRUE(source_
                    ->Sql("CREATE TABLE public.t (id int PRIMARY KEY); INSERT INTO public.t "
                          "SELECT generate_series(1, 1000);",
                          name)
                    .ok());
  }
  // The failure is recorded in the work directory too.
  const std::string work = source_->base_dir() + "/work";
  // "two" has a table whose CHECK refuses every row on the target's port:
  // its copy fails there (not retried: the server refuses it); the others go on.
  ASSERT_TRUE(
      source_
          ->Sql(fmt::format("CREATE FUNCTION public.ok(int) RETURNS boolean LANGUAGE plpgsql AS $$ "
                            "BEGIN IF inet_server_port() = {} THEN RAISE EXCEPTION 'refused on "
                            "the target'; END IF; RETURN true; END $$; "
                            "CREATE TABLE public.u (x int CHECK (public.ok(x))); "
                            "INSERT INTO public.u VALUES (1);",
                            target_->port()),
                "two")
          .ok());
  MigrateOptions options;
  options.check.source = ServerConn(*source_);
  options.check.target = ServerConn(*target_);
  options.check.method = Method::kCopy;
  options.check.jobs = 2;
  options.check.connect_timeout = std::chrono::seconds(10);
  options.work_dir = source_->base_dir() + "/work";
  Result<MigrationOutcome> outcome = Migrate(options);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  ASSERT_TRUE(outcome->checks_passed);
  EXPECT_FALSE(outcome->ok());
  ASSERT_EQ(outcome->databases.size(), 4u);  // with postgres
  for (const auto& db : outcome->databases) {
    if (db.name == "two") {
      EXPECT_EQ(db.state, "failed");
      EXPECT_NE(db.error.find("refused on the target"), std::string::npos) << db.error;
      EXPECT_NE(db.error.find("public.u"), std::string::npos) << "names the table: " << db.error;
    } else {
      EXPECT_EQ(db.state, "done") << db.name << ": " << db.error;
    }
  }
  Result<std::unique_ptr<StateStore>> store = StateStore::OpenReadOnly(work);
  ASSERT_TRUE(store.ok());
  Result<std::optional<StoredRun>> run = (*store)->Run();
  ASSERT_TRUE(run.ok() && run->has_value());
  EXPECT_EQ((*run)->state, "failed");
  Result<std::optional<StoredDatabase>> two = (*store)->Database("two");
  ASSERT_TRUE(two.ok() && two->has_value());
  EXPECT_EQ((*two)->state, "failed");
  EXPECT_NE((*two)->error.find("refused on the target"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Versions, ClusterMigrateTest, ::testing::ValuesIn(testing::TargetMajors()),
                         testing::VersionPairName);

}  // namespace
}  // namespace pgcourier

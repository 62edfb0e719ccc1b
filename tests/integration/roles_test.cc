// The role copy of `migrate --roles` against real servers (15 -> 15 and,
// where installed, 15 -> 17): attributes, memberships, settings and password
// hashes arrive; existing and provider roles are left alone; what a
// non-superuser target user may not grant is left out with a note.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>

#include "pg/connection.h"
#include "pg/conninfo.h"
#include "pg_cluster.h"
#include "roles/role_copy.h"
#include "two_servers.h"
#include "version_pairs.h"

namespace pgcourier {
namespace {

using testing::PgCluster;
using Action = RoleOutcome::Action;

ConnectOptions Quick() {
  ConnectOptions o;
  o.total_timeout = std::chrono::seconds(5);
  o.attempt_timeout = std::chrono::seconds(5);
  return o;
}

Result<std::unique_ptr<Connection>> Connect(const PgCluster& cluster, const std::string& user = "",
                                            const std::string& password = "") {
  Result<ConnInfo> info = ConnInfo::Parse(cluster.ConnString("postgres", user, password));
  if (!info.ok()) return info.status();
  return Connection::Connect(*info, Quick());
}

// Runs SQL on a cluster as its superuser and returns the output; records a
// failure (with psql's error) and returns "<error>" when it fails.
std::string Sql(const PgCluster& cluster, const std::string& sql) {
  Result<std::string> out = cluster.Sql(sql);
  EXPECT_TRUE(out.ok()) << out.status().ToString() << "\nin: " << sql;
  return out.ok() ? *out : "<error>";
}

const char* ActionName(Action action) {
  switch (action) {
    case Action::kCreated:
      return "created";
    case Action::kExisting:
      return "existing";
    case Action::kProviderSkipped:
      return "provider";
    case Action::kFailed:
      return "failed";
  }
  return "?";
}

std::string Dump(const RoleCopyReport& report) {
  std::string out;
  for (const auto& r : report.roles) {
    out += fmt::format("{} {} password={}\n", ActionName(r.action), r.name, r.password_copied);
    for (const auto& n : r.notes) out += "    " + n + "\n";
  }
  for (const auto& m : report.memberships_granted) out += "granted " + m + "\n";
  for (const auto& w : report.warnings) out += "warning " + w + "\n";
  return out;
}

const RoleOutcome* Find(const RoleCopyReport& report, const std::string& name) {
  for (const auto& r : report.roles) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

// Whether `name` is in the report with `action` and, when given, a note
// containing `note_part`.
::testing::AssertionResult Has(const RoleCopyReport& report, const std::string& name, Action action,
                               const std::string& note_part = "") {
  const RoleOutcome* r = Find(report, name);
  if (r == nullptr)
    return ::testing::AssertionFailure() << "no role " << name << "\n" << Dump(report);
  if (r->action != action) {
    return ::testing::AssertionFailure()
           << name << " is " << ActionName(r->action) << ", expected " << ActionName(action) << "\n"
           << Dump(report);
  }
  if (!note_part.empty() &&
      std::none_of(r->notes.begin(), r->notes.end(),
                   [&](const std::string& n) { return n.find(note_part) != std::string::npos; })) {
    return ::testing::AssertionFailure() << name << " has no note with '" << note_part << "'\n"
                                         << Dump(report);
  }
  return ::testing::AssertionSuccess();
}

bool Granted(const RoleCopyReport& report, const std::string& text) {
  return std::find(report.memberships_granted.begin(), report.memberships_granted.end(), text) !=
         report.memberships_granted.end();
}

Result<RoleCopyReport> Copy(const PgCluster& source, const PgCluster& target,
                            const std::string& source_user = "",
                            const std::string& target_user = "", RoleCopyOptions options = {}) {
  Result<std::unique_ptr<Connection>> s = Connect(source, source_user);
  if (!s.ok()) return s.status();
  Result<std::unique_ptr<Connection>> t = Connect(target, target_user);
  if (!t.ok()) return t.status();
  return CopyRoles(**s, **t, options, Deadline::After(std::chrono::seconds(60)));
}

// Role attributes as the catalog has them, one line per role.
constexpr const char* kAttributesSql = R"sql(
SET TimeZone = 'UTC';
SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication,
       rolbypassrls, rolconnlimit, rolvaliduntil
  FROM pg_roles WHERE rolname IN ({}) ORDER BY rolname COLLATE "C")sql";

std::string RoleSettings(const PgCluster& cluster, const std::string& role,
                         const std::string& database = "") {
  return Sql(cluster, fmt::format("SELECT s.setconfig FROM pg_db_role_setting s "
                                  "JOIN pg_roles r ON r.oid = s.setrole "
                                  "LEFT JOIN pg_database d ON d.oid = s.setdatabase "
                                  "WHERE r.rolname = '{}' AND coalesce(d.datname, '') = '{}'",
                                  role, database));
}

class RolesPairTest : public testing::VersionPairTest {};

constexpr const char* kSourceRoles = R"sql(
CREATE ROLE app_owner LOGIN CREATEDB CREATEROLE CONNECTION LIMIT 7
  VALID UNTIL '2031-02-03 04:05:06+00';
CREATE ROLE ops LOGIN REPLICATION BYPASSRLS NOINHERIT;
CREATE ROLE root_like SUPERUSER;
CREATE ROLE forever LOGIN VALID UNTIL 'infinity';
CREATE ROLE readers;
CREATE ROLE writers;
CREATE ROLE alice LOGIN;
CREATE ROLE "Odd ""Name"" é" LOGIN;
CREATE ROLE existing LOGIN CREATEDB;
CREATE ROLE old_group;
CREATE ROLE azure_pg_admin;
CREATE ROLE rds_superuser;
GRANT readers TO writers WITH ADMIN OPTION;
GRANT writers TO alice;
GRANT readers TO "Odd ""Name"" é" WITH ADMIN OPTION;
GRANT pg_read_all_stats TO ops;
GRANT readers TO existing;
GRANT old_group TO ops;
GRANT old_group TO existing;
GRANT rds_superuser TO alice;
GRANT readers TO azure_pg_admin;
ALTER ROLE alice SET work_mem = '64MB';
ALTER ROLE alice SET search_path = '$user', public, 'odd "schema"', '';
ALTER ROLE alice SET myapp.tenant = 'it''s, a \ value';
ALTER ROLE alice SET role = 'writers';
ALTER ROLE existing SET work_mem = '1MB';
CREATE DATABASE shop;
ALTER DATABASE shop SET work_mem = '3MB';
ALTER ROLE alice IN DATABASE shop SET statement_timeout = '5s';
ALTER ROLE alice IN DATABASE shop SET search_path = shop, public;
ALTER ROLE existing IN DATABASE shop SET work_mem = '2MB';
ALTER ROLE rds_superuser IN DATABASE shop SET work_mem = '4MB';
)sql";

TEST_P(RolesPairTest, CopiesAttributesMembershipsAndSettings) {
  Sql(*source_, kSourceRoles);
  Sql(*target_, "CREATE ROLE existing NOLOGIN; CREATE ROLE old_group");

  Result<RoleCopyReport> report = Copy(*source_, *target_);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  const std::string created_roles =
      "'app_owner', 'ops', 'root_like', 'forever', 'readers', 'writers', 'alice', "
      "'Odd \"Name\" é'";
  for (const char* name : {"app_owner", "ops", "root_like", "forever", "readers", "writers",
                           "alice", "Odd \"Name\" é"}) {
    EXPECT_TRUE(Has(*report, name, Action::kCreated));
  }
  EXPECT_TRUE(Has(*report, "alice", Action::kCreated, "the source role has none"));
  EXPECT_TRUE(Has(*report, "existing", Action::kExisting));
  EXPECT_TRUE(Has(*report, "old_group", Action::kExisting));
  EXPECT_TRUE(Has(*report, "postgres", Action::kExisting));
  EXPECT_TRUE(Has(*report, "azure_pg_admin", Action::kProviderSkipped));
  EXPECT_TRUE(Has(*report, "rds_superuser", Action::kProviderSkipped));
  EXPECT_TRUE(Has(*report, "pg_monitor", Action::kProviderSkipped));
  EXPECT_TRUE(report->warnings.empty()) << Dump(*report);

  // Attributes, as the catalogs show them, identical on both sides.
  const std::string attributes = fmt::format(kAttributesSql, created_roles);
  const std::string source_attributes = Sql(*source_, attributes);
  EXPECT_EQ(Sql(*target_, attributes), source_attributes);
  EXPECT_NE(source_attributes.find("app_owner|f|t|t|t|t|f|f|7|2031-02-03 04:05:06+00"),
            std::string::npos)
      << source_attributes;
  EXPECT_NE(source_attributes.find("forever|f|t|f|f|t|f|f|-1|infinity"), std::string::npos)
      << source_attributes;

  // Existing and provider roles are left alone.
  EXPECT_EQ(Sql(*target_,
                "SELECT rolcanlogin, rolcreatedb FROM pg_roles WHERE rolname = "
                "'existing'"),
            "f|f");
  EXPECT_EQ(RoleSettings(*target_, "existing"), "");
  EXPECT_EQ(Sql(*target_,
                "SELECT count(*) FROM pg_roles WHERE rolname IN ('azure_pg_admin', "
                "'rds_superuser')"),
            "0");

  // Memberships: among the roles on the target, one of them created here.
  const std::string memberships_sql = R"sql(
SELECT g.rolname || ' -> ' || m.rolname || ' ' || am.admin_option
  FROM pg_auth_members am
  JOIN pg_roles g ON g.oid = am.roleid JOIN pg_roles m ON m.oid = am.member
 WHERE m.rolname NOT LIKE 'pg\_%'
 ORDER BY g.rolname COLLATE "C", m.rolname COLLATE "C")sql";
  EXPECT_EQ(Sql(*target_, memberships_sql),
            "old_group -> ops false\n"
            "pg_read_all_stats -> ops false\n"
            "readers -> Odd \"Name\" é true\n"
            "readers -> existing false\n"
            "readers -> writers true\n"
            "writers -> alice false")
      << "old_group -> existing (both existing) is not granted\n"
      << Dump(*report);
  EXPECT_TRUE(Granted(*report, "readers -> writers (admin option)")) << Dump(*report);
  EXPECT_TRUE(Granted(*report, "writers -> alice")) << Dump(*report);
  EXPECT_EQ(report->memberships_granted.size(), 6u) << Dump(*report);
  EXPECT_TRUE(Has(*report, "alice", Action::kCreated, "the target has no role rds_superuser"));
  EXPECT_TRUE(Has(*report, "readers", Action::kCreated, "azure_pg_admin is a provider role"));
  if (GetParam() >= 16) {
    // The INHERIT option of a grant follows the member's INHERIT attribute.
    EXPECT_EQ(Sql(*target_,
                  "SELECT am.inherit_option, am.set_option FROM pg_auth_members am "
                  "JOIN pg_roles m ON m.oid = am.member "
                  "WHERE m.rolname = 'ops' AND am.roleid = 'old_group'::regrole"),
              "f|t");
  }

  // Settings, element for element (list settings included).
  EXPECT_EQ(RoleSettings(*target_, "alice"), RoleSettings(*source_, "alice"));
  EXPECT_NE(RoleSettings(*target_, "alice").find("myapp.tenant"), std::string::npos)
      << RoleSettings(*target_, "alice");
  // They take effect when alice logs in.
  Result<std::string> as_alice =
      target_->Sql("SHOW search_path; SHOW myapp.tenant; SELECT current_user", "postgres", "alice");
  ASSERT_TRUE(as_alice.ok()) << as_alice.status().ToString();
  EXPECT_EQ(*as_alice,
            "\"$user\", public, \"odd \"\"schema\"\"\", \"\"\nit's, a \\ value\nwriters");

  // Settings in one database, after it exists on the target.
  Result<std::unique_ptr<Connection>> s = Connect(*source_);
  Result<std::unique_ptr<Connection>> t = Connect(*target_);
  ASSERT_TRUE(s.ok() && t.ok());
  const Deadline deadline = Deadline::After(std::chrono::seconds(30));
  Status missing = CopyRoleDatabaseSettings(**s, **t, "shop", "shop_copy", deadline);
  EXPECT_EQ(missing.code(), StatusCode::kNotFound) << missing.ToString();
  Sql(*target_, "CREATE DATABASE shop_copy");
  Status copied = CopyRoleDatabaseSettings(**s, **t, "shop", "shop_copy", deadline);
  ASSERT_TRUE(copied.ok()) << copied.ToString();
  EXPECT_EQ(RoleSettings(*target_, "alice", "shop_copy"), RoleSettings(*source_, "alice", "shop"));
  EXPECT_EQ(RoleSettings(*target_, "alice", "shop_copy"),
            "{statement_timeout=5s,\"search_path=shop, public\"}");
  EXPECT_EQ(RoleSettings(*target_, "existing", "shop_copy"), "{work_mem=2MB}");
  EXPECT_EQ(Sql(*target_,
                "SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d ON "
                "d.oid = s.setdatabase WHERE d.datname = 'shop_copy'"),
            "2")
      << "neither the database's own settings nor a provider role's";
  EXPECT_EQ(CopyRoleDatabaseSettings(**s, **t, "nope", "shop_copy", deadline).code(),
            StatusCode::kNotFound);

  // A second run finds everything in place and changes nothing.
  const std::string memberships_before = Sql(*target_, memberships_sql);
  Result<RoleCopyReport> again = Copy(*source_, *target_);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  for (const auto& r : again->roles) {
    EXPECT_NE(r.action, Action::kCreated) << r.name;
    EXPECT_NE(r.action, Action::kFailed) << r.name;
  }
  EXPECT_TRUE(again->memberships_granted.empty()) << Dump(*again);
  EXPECT_EQ(Sql(*target_, memberships_sql), memberships_before);
}

TEST_P(RolesPairTest, NonSuperuserTargetLeavesOutWhatItMayNotGrant) {
  Sql(*source_, R"sql(
CREATE ROLE root_like SUPERUSER LOGIN;
CREATE ROLE ops LOGIN REPLICATION BYPASSRLS CREATEDB CREATEROLE;
CREATE ROLE grp;
CREATE ROLE plain LOGIN;
GRANT grp TO plain WITH ADMIN OPTION;
GRANT pg_read_all_stats TO plain;
ALTER ROLE plain SET work_mem = '8MB';
ALTER ROLE plain SET log_min_duration_statement = 5;
)sql");
  Sql(*target_, "CREATE ROLE nobody LOGIN; CREATE ROLE creator LOGIN CREATEROLE");

  // A target user that may not create roles at all: every missing role fails.
  Result<RoleCopyReport> denied = Copy(*source_, *target_, "", "nobody");
  ASSERT_TRUE(denied.ok()) << denied.status().ToString();
  EXPECT_TRUE(Has(*denied, "plain", Action::kFailed, "neither SUPERUSER nor CREATEROLE"));
  EXPECT_TRUE(Has(*denied, "root_like", Action::kFailed));
  EXPECT_EQ(denied->warnings.size(), 1u) << Dump(*denied);
  EXPECT_EQ(Sql(*target_,
                "SELECT count(*) FROM pg_roles WHERE rolname IN ('root_like', 'ops', "
                "'grp', 'plain')"),
            "0");

  // CREATEROLE: the roles are created, without what it may not give.
  Result<RoleCopyReport> report = Copy(*source_, *target_, "", "creator");
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->warnings.empty()) << Dump(*report);
  EXPECT_TRUE(Has(*report, "root_like", Action::kCreated, "SUPERUSER left out"));
  EXPECT_TRUE(Has(*report, "ops", Action::kCreated, "REPLICATION left out"));
  EXPECT_TRUE(Has(*report, "ops", Action::kCreated, "BYPASSRLS left out"));
  EXPECT_TRUE(Has(*report, "plain", Action::kCreated, "setting log_min_duration_statement"));
  const bool v16 = GetParam() >= 16;
  if (v16) {
    EXPECT_TRUE(Has(*report, "ops", Action::kCreated, "CREATEDB left out"));
    EXPECT_TRUE(Has(*report, "plain", Action::kCreated,
                    "membership pg_read_all_stats -> plain not granted"));
  } else {
    EXPECT_TRUE(Granted(*report, "pg_read_all_stats -> plain")) << Dump(*report);
  }
  EXPECT_TRUE(Granted(*report, "grp -> plain (admin option)")) << Dump(*report);
  EXPECT_EQ(Sql(*target_,
                "SELECT rolname, rolsuper, rolcanlogin, rolreplication, rolbypassrls, "
                "rolcreatedb, rolcreaterole FROM pg_roles "
                "WHERE rolname IN ('root_like', 'ops') ORDER BY 1"),
            fmt::format("ops|f|t|f|f|{}|t\nroot_like|f|t|f|f|f|f", v16 ? "f" : "t"));
  EXPECT_EQ(RoleSettings(*target_, "plain"), "{work_mem=8MB}");
}

TEST_P(RolesPairTest, DeadlineAndTransactionAreErrors) {
  Sql(*source_, "CREATE ROLE late");
  Result<std::unique_ptr<Connection>> s = Connect(*source_);
  Result<std::unique_ptr<Connection>> t = Connect(*target_);
  ASSERT_TRUE(s.ok() && t.ok());
  Result<RoleCopyReport> late =
      CopyRoles(**s, **t, {}, Deadline::After(std::chrono::milliseconds(0)));
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.status().code(), StatusCode::kTimeout) << late.status().ToString();

  ASSERT_TRUE((*t)->Run("BEGIN").ok());
  Result<RoleCopyReport> in_transaction = CopyRoles(**s, **t, {}, Deadline::Never());
  EXPECT_EQ(in_transaction.status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE((*t)->Run("ROLLBACK").ok());
  Result<RoleCopyReport> done = CopyRoles(**s, **t, {}, Deadline::Never());
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_TRUE(Has(*done, "late", Action::kCreated));
}

INSTANTIATE_TEST_SUITE_P(Versions, RolesPairTest, ::testing::ValuesIn(testing::TargetMajors()),
                         testing::VersionPairName);

// Passwords: a target that checks them (scram and md5 lines for the test
// roles) and runs passwordcheck, which refuses a password equal to the user
// name even as a hash.
class RolesPasswordTest : public testing::SourceAndTargetFixture<::testing::TestWithParam<int>> {
 protected:
  void SetUp() override {
    testing::SourceAndTargetOptions options;
    options.target.major = GetParam();
    options.target.settings = {"shared_preload_libraries = 'passwordcheck'"};
    options.target.hba_lines = {"host all alice 127.0.0.1/32 scram-sha-256",
                                "host all legacy 127.0.0.1/32 md5",
                                "host all sameuser 127.0.0.1/32 scram-sha-256"};
    ASSERT_NO_FATAL_FAILURE(StartServers(options));
    Sql(*source_, R"sql(
CREATE ROLE alice LOGIN PASSWORD 'alice secret';
SET password_encryption = 'md5';
CREATE ROLE legacy LOGIN PASSWORD 'legacy secret';
RESET password_encryption;
CREATE ROLE sameuser LOGIN PASSWORD 'sameuser';
CREATE ROLE reader LOGIN;
)sql");
  }

  // The stored hash of a role.
  std::string Hash(const PgCluster& cluster, const std::string& role) {
    return Sql(cluster, "SELECT rolpassword FROM pg_authid WHERE rolname = '" + role + "'");
  }

  Status LogIn(const std::string& user, const std::string& password) {
    return Connect(*target_, user, password).status();
  }

  // Every text of the report, where no hash may appear.
  static std::string AllText(const RoleCopyReport& report) { return Dump(report); }
};

TEST_P(RolesPasswordTest, HashesAreCopiedAndLogIn) {
  const std::string alice_hash = Hash(*source_, "alice");
  const std::string legacy_hash = Hash(*source_, "legacy");
  ASSERT_EQ(alice_hash.rfind("SCRAM-SHA-256$", 0), 0u) << alice_hash;
  ASSERT_EQ(legacy_hash.rfind("md5", 0), 0u) << legacy_hash;

  Result<RoleCopyReport> report = Copy(*source_, *target_);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  for (const char* name : {"alice", "legacy"}) {
    const RoleOutcome* r = Find(*report, name);
    ASSERT_NE(r, nullptr) << name;
    EXPECT_EQ(r->action, Action::kCreated) << Dump(*report);
    EXPECT_TRUE(r->password_copied) << Dump(*report);
    EXPECT_TRUE(r->notes.empty()) << Dump(*report);
  }
  EXPECT_EQ(Hash(*target_, "alice"), alice_hash);
  EXPECT_EQ(Hash(*target_, "legacy"), legacy_hash);
  EXPECT_TRUE(LogIn("alice", "alice secret").ok()) << LogIn("alice", "alice secret").ToString();
  EXPECT_TRUE(LogIn("legacy", "legacy secret").ok()) << LogIn("legacy", "legacy secret").ToString();
  EXPECT_FALSE(LogIn("alice", "wrong").ok()) << "the password is really checked";
  EXPECT_FALSE(LogIn("legacy", "wrong").ok());

  // passwordcheck refuses sameuser's hash: created without a password.
  EXPECT_TRUE(Has(*report, "sameuser", Action::kCreated, "did not accept"));
  EXPECT_FALSE(Find(*report, "sameuser")->password_copied);
  EXPECT_EQ(Hash(*target_, "sameuser"), "");
  EXPECT_FALSE(LogIn("sameuser", "sameuser").ok());

  const std::string text = AllText(*report);
  EXPECT_EQ(text.find("SCRAM-SHA-256$"), std::string::npos) << text;
  EXPECT_EQ(text.find(legacy_hash.substr(3)), std::string::npos) << text;
  EXPECT_EQ(text.find(Hash(*source_, "sameuser").substr(14, 20)), std::string::npos) << text;
}

TEST_P(RolesPasswordTest, WithoutPasswordsWhenTurnedOffOrUnreadable) {
  RoleCopyOptions off;
  off.copy_passwords = false;
  Result<RoleCopyReport> report = Copy(*source_, *target_, "", "", off);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(Has(*report, "alice", Action::kCreated, "copying passwords was turned off"));
  EXPECT_FALSE(Find(*report, "alice")->password_copied);
  EXPECT_EQ(Hash(*target_, "alice"), "");
  EXPECT_FALSE(LogIn("alice", "alice secret").ok());

  // A source user that is no superuser cannot read pg_authid.
  Sql(*target_, "DROP ROLE alice, legacy");
  Result<RoleCopyReport> unreadable = Copy(*source_, *target_, "reader");
  ASSERT_TRUE(unreadable.ok()) << unreadable.status().ToString();
  EXPECT_TRUE(Has(*unreadable, "alice", Action::kCreated, "may not read pg_authid"));
  EXPECT_TRUE(Has(*unreadable, "legacy", Action::kCreated, "may not read pg_authid"));
  EXPECT_FALSE(Find(*unreadable, "alice")->password_copied);
  EXPECT_EQ(Hash(*target_, "alice"), "");
  EXPECT_FALSE(LogIn("alice", "alice secret").ok());
}

INSTANTIATE_TEST_SUITE_P(Versions, RolesPasswordTest, ::testing::ValuesIn(testing::TargetMajors()),
                         testing::VersionPairName);

}  // namespace
}  // namespace pgcourier

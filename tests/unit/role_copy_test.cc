// The parts of the role copy that need no server: ALTER ROLE ... SET values,
// the CREATE ROLE statement and its fallbacks when a target refuses it. The
// copy itself runs against real servers in integration/roles_test.cc.
#include "roles/role_copy.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "pg/setting_entry.h"

namespace pgcourier {
namespace {

using role_copy_internal::Attribute;
using role_copy_internal::CreateRolePlan;
using role_copy_internal::CreateRoleResult;
using role_copy_internal::CreateRoleSql;
using role_copy_internal::CreateRoleWithFallback;

constexpr const char* kScram =
    "SCRAM-SHA-256$4096:c2FsdHNhbHQ=$c3RvcmVkc3RvcmVkc3RvcmVk=:c2VydmVyc2VydmVyc2VydmVy";

TEST(RolesSettingAssignmentTest, PlainValueIsOneLiteral) {
  EXPECT_EQ(SettingAssignment("work_mem=64MB"), R"("work_mem" TO E'64MB')");
  EXPECT_EQ(SettingAssignment("myapp.tenant=a'b\\c=d"), R"("myapp.tenant" TO E'a''b\\c=d')");
  EXPECT_EQ(SettingAssignment("application_name="), R"("application_name" TO E'')");
  // Not a list setting: a comma stays inside the one literal.
  EXPECT_EQ(SettingAssignment("DateStyle=ISO, MDY"), R"("DateStyle" TO E'ISO, MDY')");
}

TEST(RolesSettingAssignmentTest, ListSettingsAreSplitIntoLiterals) {
  EXPECT_EQ(SettingAssignment(R"(search_path="$user", public)"),
            R"("search_path" TO E'$user', E'public')");
  EXPECT_EQ(SettingAssignment(R"(search_path="odd ""schema""",  "", x)"),
            R"("search_path" TO E'odd "schema"', E'', E'x')");
  EXPECT_EQ(SettingAssignment(R"(search_path="")"), R"("search_path" TO E'')");
  EXPECT_EQ(SettingAssignment("Temp_Tablespaces=a,b"), R"("Temp_Tablespaces" TO E'a', E'b')");
  // Malformed lists fall back to one literal rather than guessing.
  EXPECT_EQ(SettingAssignment(R"(search_path="open)"), R"("search_path" TO E'"open')");
  EXPECT_EQ(SettingAssignment("search_path=a,"), R"("search_path" TO E'a,')");
}

TEST(RolesSettingAssignmentTest, ValuesAreComparedByMeaning) {
  // Two names, however spelled, differ from one name that holds a comma.
  EXPECT_EQ(SettingValueForComparison("search_path=app, public"), "app, public");
  EXPECT_EQ(SettingValueForComparison(R"(search_path="app","public")"), "app, public");
  EXPECT_EQ(SettingValueForComparison(R"(search_path="app, public")"), R"("app, public")");
  EXPECT_EQ(SettingValueForComparison(R"(search_path="$user", "My Schema")"),
            R"("$user", "My Schema")");
  // Other settings compare as stored.
  EXPECT_EQ(SettingValueForComparison("DateStyle=ISO, MDY"), "ISO, MDY");
  EXPECT_EQ(SettingValueForComparison("work_mem=12MB"), "12MB");
}

TEST(RolesSettingAssignmentTest, EntryWithoutNameIsRejected) {
  EXPECT_FALSE(SettingAssignment("work_mem").has_value());
  EXPECT_FALSE(SettingAssignment("=1").has_value());
}

TEST(RolesCreateRoleSqlTest, AttributesAndQuoting) {
  CreateRolePlan plan;
  plan.name = R"(Odd "name")";
  plan.attributes = {Attribute::kCreateDb, Attribute::kSuperuser};
  plan.inherit = false;
  plan.login = true;
  plan.connection_limit = 3;
  plan.valid_until = "2031-02-03T04:05:06+00:00";
  plan.password = "md5'x";
  EXPECT_EQ(CreateRoleSql(plan),
            R"(CREATE ROLE "Odd ""name""" WITH CREATEDB SUPERUSER NOINHERIT LOGIN )"
            R"(CONNECTION LIMIT 3 VALID UNTIL E'2031-02-03T04:05:06+00:00' PASSWORD E'md5''x')");
  CreateRolePlan plain;
  plain.name = "g";
  EXPECT_EQ(CreateRoleSql(plain), R"(CREATE ROLE "g" WITH INHERIT NOLOGIN)");
}

// A target that refuses some statements, recording what it was sent.
struct FakeTarget {
  std::vector<std::string> sent;
  std::function<Status(const std::string&)> answer;
  std::function<Status(const std::string&)> Runner() {
    return [this](const std::string& sql) {
      sent.push_back(sql);
      return answer(sql);
    };
  }
};

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string AllText(const CreateRoleResult& r) {
  std::string out = r.status.message() + "\n" + r.status.hint() + "\n";
  for (const auto& n : r.notes) out += n + "\n";
  return out;
}

CreateRolePlan PowerfulPlan() {
  CreateRolePlan plan;
  plan.name = "ops";
  plan.login = true;
  plan.attributes = {Attribute::kCreateDb, Attribute::kCreateRole, Attribute::kReplication};
  plan.password = kScram;
  return plan;
}

TEST(RolesCreateFallbackTest, UnexpectedRefusalDropsMostPowerfulAttributesFirst) {
  // A provider whose rules the up-front check did not know: REPLICATION and
  // CREATEROLE are refused with 42501.
  FakeTarget target;
  target.answer = [](const std::string& sql) {
    if (Contains(sql, "REPLICATION") || Contains(sql, "CREATEROLE")) {
      return Status(StatusCode::kServerError, "permission denied to create role", "", "42501");
    }
    return Status::Ok();
  };
  CreateRoleResult r = CreateRoleWithFallback(PowerfulPlan(), target.Runner());
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_FALSE(r.abort_all);
  EXPECT_TRUE(r.password_set);
  ASSERT_EQ(target.sent.size(), 3u);
  EXPECT_TRUE(Contains(target.sent[0], "WITH REPLICATION CREATEROLE CREATEDB")) << target.sent[0];
  EXPECT_TRUE(Contains(target.sent[2], "WITH CREATEDB INHERIT LOGIN")) << target.sent[2];
  EXPECT_TRUE(Contains(target.sent[2], kScram)) << "the password is still given";
  ASSERT_EQ(r.notes.size(), 2u);
  EXPECT_TRUE(Contains(r.notes[0], "REPLICATION left out")) << r.notes[0];
  EXPECT_TRUE(Contains(r.notes[1], "CREATEROLE left out")) << r.notes[1];
}

TEST(RolesCreateFallbackTest, RefusedPasswordIsDroppedAndNeverShown) {
  // A password policy that refuses the hash and, carelessly, quotes it.
  FakeTarget target;
  target.answer = [](const std::string& sql) {
    if (Contains(sql, "PASSWORD")) {
      return Status(StatusCode::kServerError,
                    std::string("password \"") + kScram +
                        "\" is not allowed; nor md5d41d8cd98f00b204e9800998ecf8427e",
                    std::string("hint quoting ") + kScram, "22023");
    }
    return Status::Ok();
  };
  CreateRoleResult r = CreateRoleWithFallback(PowerfulPlan(), target.Runner());
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_FALSE(r.password_set);
  ASSERT_EQ(target.sent.size(), 2u);
  EXPECT_FALSE(Contains(target.sent[1], "PASSWORD"));
  EXPECT_TRUE(Contains(target.sent[1], "REPLICATION")) << "attributes are kept";
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_TRUE(Contains(r.notes[0], "without a password")) << r.notes[0];
  EXPECT_FALSE(Contains(AllText(r), "SCRAM-SHA-256$")) << AllText(r);
  EXPECT_FALSE(Contains(AllText(r), "c2FsdHNhbHQ")) << AllText(r);
  EXPECT_FALSE(Contains(AllText(r), "d41d8cd98f00b204e9800998ecf8427e")) << AllText(r);
}

TEST(RolesCreateFallbackTest, RefusalWithNothingLeftToDropFails) {
  FakeTarget target;
  target.answer = [](const std::string&) {
    return Status(StatusCode::kServerError, std::string("role name ") + kScram + " is invalid", "",
                  "42939");
  };
  CreateRoleResult r = CreateRoleWithFallback(PowerfulPlan(), target.Runner());
  EXPECT_FALSE(r.status.ok());
  EXPECT_FALSE(r.abort_all);
  EXPECT_EQ(r.status.sqlstate(), "42939");
  EXPECT_TRUE(r.notes.empty()) << "no notes about give-ups that did not help";
  EXPECT_EQ(target.sent.size(), 2u) << "with, then without the password";
  EXPECT_FALSE(Contains(AllText(r), "SCRAM-SHA-256$")) << AllText(r);
}

TEST(RolesCreateFallbackTest, LostConnectionAbortsAndExistingRoleIsReported) {
  FakeTarget lost;
  lost.answer = [](const std::string&) {
    return Status(StatusCode::kConnectionFailed, "server closed the connection unexpectedly");
  };
  CreateRoleResult aborted = CreateRoleWithFallback(PowerfulPlan(), lost.Runner());
  EXPECT_TRUE(aborted.abort_all);
  EXPECT_EQ(aborted.status.code(), StatusCode::kConnectionFailed);
  EXPECT_EQ(lost.sent.size(), 1u) << "no retries over a lost connection";

  FakeTarget raced;
  raced.answer = [](const std::string&) {
    return Status(StatusCode::kServerError, "role \"ops\" already exists", "", "42710");
  };
  CreateRoleResult exists = CreateRoleWithFallback(PowerfulPlan(), raced.Runner());
  EXPECT_TRUE(exists.already_exists);
  EXPECT_FALSE(exists.abort_all);
  EXPECT_EQ(raced.sent.size(), 1u);
}

}  // namespace
}  // namespace pgcourier

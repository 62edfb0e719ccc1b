#include "pg/conninfo.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace pgcourier {
namespace {

// Environment variables libpq reads would change effective values; clear
// them for the duration of a test.
class ConnInfoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGDATABASE"}) {
      ::unsetenv(name);
    }
  }
};

TEST_F(ConnInfoTest, ParsesUri) {
  Result<ConnInfo> info =
      ConnInfo::Parse("postgresql://app:s3cret@db.example.com:6543/shop?sslmode=require");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->Get("host"), "db.example.com");
  EXPECT_EQ(info->Get("port"), "6543");
  EXPECT_EQ(info->Get("user"), "app");
  EXPECT_EQ(info->Get("password"), "s3cret");
  EXPECT_EQ(info->Get("dbname"), "shop");
  EXPECT_EQ(info->Get("sslmode"), "require");
  EXPECT_FALSE(info->IsLocal());
}

TEST_F(ConnInfoTest, ParsesKeyValue) {
  Result<ConnInfo> info = ConnInfo::Parse("host=localhost port=5433 user=me password='a b'");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->Get("password"), "a b");
  EXPECT_TRUE(info->IsLocal());
  EXPECT_EQ(info->ExplicitDatabase(), "");
}

TEST_F(ConnInfoTest, RedactedNeverShowsSecrets) {
  for (const char* text :
       {"postgresql://app:s3cret@db.example.com:6543/shop?sslmode=require",
        "host=db.example.com user=app password=s3cret dbname=shop sslpassword=s3cret",
        "postgresql://app@db.example.com/shop?password=s3cret"}) {
    Result<ConnInfo> info = ConnInfo::Parse(text);
    ASSERT_TRUE(info.ok()) << text;
    std::string shown = info->Redacted();
    EXPECT_EQ(shown.find("s3cret"), std::string::npos) << shown;
    EXPECT_NE(shown.find("db.example.com"), std::string::npos) << shown;
    EXPECT_NE(shown.find("app@"), std::string::npos) << shown;
    EXPECT_NE(shown.find("/shop"), std::string::npos) << shown;
  }
}

TEST_F(ConnInfoTest, RedactedShowsSocketDirectory) {
  Result<ConnInfo> info = ConnInfo::Parse("host=/var/run/postgresql port=5432 user=me dbname=x");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->Redacted(), "postgresql://me@/x?host=%2Fvar%2Frun%2Fpostgresql&port=5432");
  EXPECT_TRUE(info->IsLocal());
}

TEST_F(ConnInfoTest, EnvironmentFillsEffectiveValues) {
  ::setenv("PGHOST", "envhost", 1);
  ::setenv("PGPORT", "7777", 1);
  ::setenv("PGDATABASE", "envdb", 1);
  Result<ConnInfo> info = ConnInfo::Parse("user=me");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->EffectiveHost(), "envhost");
  EXPECT_EQ(info->EffectivePort(), "7777");
  EXPECT_EQ(info->ExplicitDatabase(), "envdb");
  EXPECT_FALSE(info->IsLocal());
}

TEST_F(ConnInfoTest, WithReplacesOrAdds) {
  Result<ConnInfo> info = ConnInfo::Parse("postgresql://u@h/one");
  ASSERT_TRUE(info.ok());
  ConnInfo other = info->WithDatabase("two");
  EXPECT_EQ(other.Get("dbname"), "two");
  EXPECT_EQ(info->Get("dbname"), "one");
  EXPECT_EQ(other.With("sslmode", "disable").Get("sslmode"), "disable");
}

TEST_F(ConnInfoTest, InvalidStringIsAnErrorWithoutEchoingIt) {
  Result<ConnInfo> info = ConnInfo::Parse("host=x password=s3cret bogus_keyword=1");
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(info.status().message().find("s3cret"), std::string::npos);
  EXPECT_NE(info.status().message().find("bogus_keyword"), std::string::npos);
  EXPECT_FALSE(info.status().hint().empty());

  // libpq quotes the whole URI in some of its messages.
  for (const char* uri : {"postgresql://u:s3cret@[::1/db", "postgresql://u:s3cret@h/db?bogus=1"}) {
    Result<ConnInfo> bad_uri = ConnInfo::Parse(uri);
    ASSERT_FALSE(bad_uri.ok()) << uri;
    EXPECT_EQ(bad_uri.status().message().find("s3cret"), std::string::npos)
        << bad_uri.status().message();
  }
}

}  // namespace
}  // namespace pgcourier

#include "pg/version.h"

#include <gtest/gtest.h>

namespace pgcourier {
namespace {

TEST(VersionTest, MajorFromVersionNum) {
  EXPECT_EQ(MajorFromVersionNum(150018), 15);
  EXPECT_EQ(MajorFromVersionNum(170010), 17);
  EXPECT_EQ(MajorFromVersionNum(100023), 10);
  EXPECT_EQ(MajorFromVersionNum(90624), 9);
}

TEST(VersionTest, MajorFromVersionText) {
  EXPECT_EQ(MajorFromVersionText("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"), 15);
  EXPECT_EQ(MajorFromVersionText("pg_dump (PostgreSQL) 17.10"), 17);
  EXPECT_EQ(MajorFromVersionText("pg_dump (PostgreSQL) 18devel"), 18);
  EXPECT_EQ(MajorFromVersionText("pg_dump (PostgreSQL) 9.6.24"), 9);
  EXPECT_EQ(MajorFromVersionText("no version here"), std::nullopt);
}

TEST(VersionTest, ExtensionVersionsCompareNumerically) {
  EXPECT_LT(CompareExtensionVersions("1.9", "1.10"), 0);
  EXPECT_GT(CompareExtensionVersions("2.0", "1.10"), 0);
  EXPECT_EQ(CompareExtensionVersions("1.8", "1.8"), 0);
  EXPECT_LT(CompareExtensionVersions("1.8", "1.8.1"), 0);
  EXPECT_GT(CompareExtensionVersions("3.4.0", "3.3.9"), 0);
  EXPECT_NE(CompareExtensionVersions("1.0beta", "1.0"), 0);
}

}  // namespace
}  // namespace pgcourier

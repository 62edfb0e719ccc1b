#include "report/check_report.h"

#include <gtest/gtest.h>

#include "preflight/checker.h"
#include "roles/provider_roles.h"

namespace pgcourier {
namespace {

CheckReport SampleReport() {
  CheckReport r;
  r.source = {"postgresql://app@src:5432/", true, "15.18", 15, false, "app", false, ""};
  r.target = {"postgresql://admin@dst:5432/", true, "17.10", 17, true, "admin", true, "TLSv1.3"};
  r.tools = {"/usr/lib/postgresql/15/bin/pg_dump", "/usr/lib/postgresql/15/bin/pg_restore", 15};
  r.databases.push_back(
      {"shop", "shop", Method::kCopy, "wal_level is replica, not logical", false, 1024});
  r.items.push_back({check_code::kSourceConnect, CheckStatus::kPass, "source", "connected", ""});
  r.items.push_back({check_code::kWalLevel, CheckStatus::kWarn, "source",
                     "wal_level is replica, not logical", "set wal_level = logical"});
  return r;
}

TEST(CheckReportTest, JsonHasStableShape) {
  CheckReport r = SampleReport();
  nlohmann::json j = CheckReportToJson(r);
  EXPECT_EQ(j["format"], "pgcourier.check/1");
  EXPECT_EQ(j["verdict"], "ready");
  EXPECT_EQ(j["source"]["major"], 15);
  EXPECT_EQ(j["target"]["encrypted"], true);
  EXPECT_EQ(j["tools"]["major"], 15);
  ASSERT_EQ(j["databases"].size(), 1u);
  EXPECT_EQ(j["databases"][0]["method"], "copy");
  EXPECT_EQ(j["databases"][0]["reason"], "wal_level is replica, not logical");
  ASSERT_EQ(j["checks"].size(), 2u);
  EXPECT_EQ(j["checks"][1]["code"], "replication.wal_level");
  EXPECT_EQ(j["checks"][1]["status"], "warn");
  EXPECT_EQ(j["summary"]["warn"], 1);

  r.items.push_back(
      {check_code::kVersionCompatible, CheckStatus::kFail, "source, target", "old", "upgrade"});
  EXPECT_EQ(CheckReportToJson(r)["verdict"], "blocked");
}

TEST(CheckReportTest, TextShowsHintsForProblemsAndVerdict) {
  CheckReport r = SampleReport();
  std::string text = RenderCheckText(r);
  EXPECT_NE(text.find("warn  replication.wal_level"), std::string::npos) << text;
  EXPECT_NE(text.find("-> set wal_level = logical"), std::string::npos) << text;
  EXPECT_NE(text.find("READY"), std::string::npos);
  EXPECT_EQ(text.find("\033["), std::string::npos) << "no colors unless asked";
  TextStyle quiet;
  quiet.show_passes = false;
  EXPECT_EQ(RenderCheckText(r, quiet).find("source.connect"), std::string::npos);
}

TEST(ProviderNamesTest, RecognisesProviderDatabasesAndRoles) {
  EXPECT_TRUE(IsProviderAdminDatabase("rdsadmin"));
  EXPECT_TRUE(IsProviderAdminDatabase("_aiven"));
  EXPECT_TRUE(IsProviderAdminDatabase("azure_maintenance"));
  EXPECT_FALSE(IsProviderAdminDatabase("postgres"));
  EXPECT_TRUE(IsProviderRole("azure_pg_admin"));
  EXPECT_TRUE(IsProviderRole("rds_superuser"));
  EXPECT_TRUE(IsProviderRole("cloudsqlsuperuser"));
  EXPECT_TRUE(IsProviderRole("neon_superuser"));
  EXPECT_TRUE(IsProviderRole("pg_read_all_data"));
  EXPECT_FALSE(IsProviderRole("app_owner"));
}

}  // namespace
}  // namespace pgcourier

#include "report/verify_report.h"

#include <gtest/gtest.h>

namespace pgcourier {
namespace {

DatabaseVerification Sample() {
  DatabaseVerification db;
  db.source_database = "shop";
  db.target_database = "shop_new";
  TableVerification same;
  same.schema = "public";
  same.name = "customers";
  same.source_rows = same.target_rows = 100;
  same.source_checksum = same.target_checksum = "-123456789012345678901";
  db.tables.push_back(same);
  TableVerification changed = same;
  changed.name = "orders";
  changed.target_checksum = "42";
  db.tables.push_back(changed);

  SequenceVerification seq;
  seq.schema = "public";
  seq.name = "orders_id_seq";
  seq.source_last_value = 100;
  seq.target_last_value = 100;
  db.sequences.push_back(seq);
  SequenceVerification fresh;
  fresh.schema = "public";
  fresh.name = "unused_seq";
  db.sequences.push_back(fresh);

  SchemaVerification tables;
  tables.kind = "table";
  tables.source_count = tables.target_count = 2;
  db.schema.push_back(tables);
  SchemaVerification indexes;
  indexes.kind = "index";
  indexes.source_count = 13;
  indexes.target_count = 1;
  for (int i = 0; i < 12; ++i)
    indexes.missing_on_target.push_back("public.idx" + std::to_string(i));
  db.schema.push_back(indexes);
  return db;
}

TEST(VerifyReportTest, MismatchesCountTablesSequencesAndKinds) {
  DatabaseVerification db = Sample();
  EXPECT_EQ(db.Mismatches(), 2);
  EXPECT_FALSE(db.ok());
  db.sequences[0].target_last_value = 101;
  EXPECT_EQ(db.Mismatches(), 3);
  db.sequences[0].target_last_value = 100;
  db.sequences[0].error = "missing on the target";
  EXPECT_EQ(db.Mismatches(), 3);
  db = Sample();
  db.tables[1].target_checksum = db.tables[1].source_checksum;
  db.schema[1].missing_on_target.clear();
  EXPECT_TRUE(db.ok());
}

TEST(VerifyReportTest, JsonHasStableShape) {
  nlohmann::json j = VerifyToJson({Sample()});
  EXPECT_EQ(j["format"], "pgcourier.verify/1");
  EXPECT_EQ(j["ok"], false);
  ASSERT_EQ(j["databases"].size(), 1u);
  const nlohmann::json& db = j["databases"][0];
  EXPECT_EQ(db["source_database"], "shop");
  EXPECT_EQ(db["target_database"], "shop_new");
  EXPECT_EQ(db["ok"], false);
  EXPECT_EQ(db["mismatches"], 2);

  ASSERT_EQ(db["tables"].size(), 2u);
  const nlohmann::json& orders = db["tables"][1];
  EXPECT_EQ(orders["schema"], "public");
  EXPECT_EQ(orders["name"], "orders");
  EXPECT_EQ(orders["source_rows"], 100);
  EXPECT_EQ(orders["target_rows"], 100);
  EXPECT_EQ(orders["source_checksum"], "-123456789012345678901") << "checksums stay text";
  EXPECT_EQ(orders["target_checksum"], "42");
  EXPECT_EQ(orders["match"], false);
  EXPECT_TRUE(orders["error"].is_null());
  EXPECT_EQ(db["tables"][0]["match"], true);

  ASSERT_EQ(db["sequences"].size(), 2u);
  EXPECT_EQ(db["sequences"][0]["source_last_value"], 100);
  EXPECT_EQ(db["sequences"][0]["match"], true);
  EXPECT_TRUE(db["sequences"][1]["source_last_value"].is_null()) << "not yet called";
  EXPECT_TRUE(db["sequences"][1]["target_last_value"].is_null());
  EXPECT_EQ(db["sequences"][1]["match"], true);

  ASSERT_EQ(db["schema"].size(), 2u);
  EXPECT_EQ(db["schema"][1]["kind"], "index");
  EXPECT_EQ(db["schema"][1]["source_count"], 13);
  EXPECT_EQ(db["schema"][1]["target_count"], 1);
  EXPECT_EQ(db["schema"][1]["missing_on_target"].size(), 12u) << "JSON lists every name";
  EXPECT_EQ(db["schema"][1]["missing_on_target"][0], "public.idx0");
  EXPECT_TRUE(db["schema"][1]["extra_on_target"].is_array());
  EXPECT_EQ(db["schema"][1]["match"], false);

  DatabaseVerification missing = Sample();
  missing.tables[1].target_rows = -1;
  missing.tables[1].target_checksum.clear();
  missing.tables[1].error = "missing on the target";
  nlohmann::json m = VerifyToJson({missing})["databases"][0]["tables"][1];
  EXPECT_TRUE(m["target_rows"].is_null());
  EXPECT_TRUE(m["target_checksum"].is_null());
  EXPECT_EQ(m["error"], "missing on the target");
}

TEST(VerifyReportTest, TextListsMismatchesAndVerdict) {
  std::string text = RenderVerifyText({Sample()}, false);
  EXPECT_EQ(text.rfind("shop -> shop_new\n", 0), 0u) << text;
  EXPECT_NE(text.find("public.orders"), std::string::npos) << text;
  EXPECT_NE(text.find("checksum differs"), std::string::npos) << text;
  EXPECT_EQ(text.find("public.customers"), std::string::npos) << "matches hidden\n" << text;
  EXPECT_EQ(text.find("orders_id_seq"), std::string::npos) << text;
  EXPECT_NE(text.find("12 missing on the target"), std::string::npos) << text;
  EXPECT_NE(text.find("public.idx9 and 2 more"), std::string::npos) << "bounded list\n" << text;
  EXPECT_EQ(text.find("public.idx10"), std::string::npos) << text;
  EXPECT_NE(text.find("shop: 2 tables, 2 sequences, 2 object kinds verified: 2 mismatches"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\nMISMATCH: 2 mismatches in 1 of 1 database.\n"), std::string::npos) << text;

  std::string all = RenderVerifyText({Sample()}, true);
  EXPECT_NE(all.find("public.customers"), std::string::npos) << all;
  EXPECT_NE(all.find("not called"), std::string::npos) << all;
}

TEST(VerifyReportTest, PropertiesAreCountedListedAndInJson) {
  DatabaseVerification db = Sample();
  db.tables[1].target_checksum = db.tables[1].source_checksum;
  db.schema[1].missing_on_target.clear();
  PropertyVerification comment;
  comment.property = "comment";
  comment.source_value = comment.target_value = "the shop";
  db.properties.push_back(comment);
  PropertyVerification left;
  left.property = "role gone: setting work_mem";
  left.source_value = "5MB";
  left.left_out = "no such role on the target";
  db.properties.push_back(left);
  EXPECT_TRUE(db.ok()) << "left out is no mismatch";
  std::string text = RenderVerifyText({db}, false);
  EXPECT_NE(text.find("role gone: setting work_mem  5MB     (none)  left out: no such role on "
                      "the target"),
            std::string::npos)
      << "left out is always listed\n"
      << text;
  EXPECT_EQ(text.find("the shop"), std::string::npos) << "matches hidden\n" << text;

  PropertyVerification path;
  path.property = "setting search_path";
  path.source_value = "app, public";
  path.target_value = "\"app, public\"";
  db.properties.push_back(path);
  EXPECT_EQ(db.Mismatches(), 1);
  text = RenderVerifyText({db}, false);
  EXPECT_NE(text.find("setting search_path"), std::string::npos) << text;
  EXPECT_NE(text.find("differs"), std::string::npos) << text;

  const nlohmann::json j = VerifyToJson({db})["databases"][0]["properties"];
  ASSERT_EQ(j.size(), 3u);
  EXPECT_EQ(j[0]["property"], "comment");
  EXPECT_EQ(j[0]["match"], true);
  EXPECT_TRUE(j[0]["left_out"].is_null());
  EXPECT_TRUE(j[1]["target"].is_null());
  EXPECT_EQ(j[1]["left_out"], "no such role on the target");
  EXPECT_EQ(j[2]["target"], "\"app, public\"");
  EXPECT_EQ(j[2]["match"], false);
}

TEST(VerifyReportTest, TextSaysVerifiedWhenEverythingMatches) {
  DatabaseVerification db = Sample();
  db.target_database = db.source_database;
  db.tables[1].target_checksum = db.tables[1].source_checksum;
  db.schema[1].missing_on_target.clear();
  std::string text = RenderVerifyText({db, db}, false);
  EXPECT_EQ(text.rfind("shop\n", 0), 0u) << text;
  EXPECT_EQ(text.find("TABLE"), std::string::npos) << "nothing to list\n" << text;
  EXPECT_NE(text.find("shop: 2 tables, 2 sequences, 2 object kinds verified: OK"),
            std::string::npos)
      << text;
  std::string last = text.substr(text.rfind('\n', text.size() - 2) + 1);
  EXPECT_EQ(last.rfind("VERIFIED: 2 databases, 4 tables, 4 sequences", 0), 0u) << text;
  EXPECT_TRUE(VerifyToJson({db})["ok"]);
}

}  // namespace
}  // namespace pgcourier

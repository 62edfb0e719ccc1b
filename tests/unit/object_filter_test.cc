#include "catalog/object_filter.h"

#include <gtest/gtest.h>

#include "schema/schema_dump.h"

namespace pgcourier {
namespace {

TEST(ObjectFilterTest, EmptyFilterIncludesEverything) {
  ObjectFilter filter;
  EXPECT_TRUE(filter.empty());
  EXPECT_FALSE(filter.ExcludesSchema("public"));
  EXPECT_FALSE(filter.ExcludesTable("public", "t"));
  EXPECT_FALSE(filter.ExcludesTableData("public", "t"));
}

TEST(ObjectFilterTest, SchemaPatternsAreCaseSensitiveGlobs) {
  ObjectFilter filter;
  filter.include_schemas = {"sales", "Lo?s"};
  filter.exclude_schemas = {"sales_*"};
  EXPECT_FALSE(filter.empty());
  EXPECT_FALSE(filter.ExcludesSchema("sales"));
  EXPECT_FALSE(filter.ExcludesSchema("Logs"));
  EXPECT_TRUE(filter.ExcludesSchema("logs")) << "no case folding";
  EXPECT_TRUE(filter.ExcludesSchema("SALES"));
  EXPECT_TRUE(filter.ExcludesSchema("public")) << "not included";
  EXPECT_TRUE(filter.ExcludesSchema("sales_archive")) << "not included";
  // Everything in an excluded schema goes with it.
  EXPECT_TRUE(filter.ExcludesTable("public", "users"));
  EXPECT_TRUE(filter.ExcludesTableData("public", "users"));
  EXPECT_FALSE(filter.ExcludesTable("Logs", "Events"));

  ObjectFilter exclude_only;
  exclude_only.exclude_schemas = {"provider_*"};
  EXPECT_TRUE(exclude_only.ExcludesSchema("provider_tools"));
  EXPECT_FALSE(exclude_only.ExcludesSchema("public"));
}

TEST(ObjectFilterTest, TablePatternsMatchSchemaDotTable) {
  ObjectFilter filter;
  filter.exclude_tables = {"public.audit_*", "*.tmp", "sales.orders_20*"};
  EXPECT_TRUE(filter.ExcludesTable("public", "audit_log"));
  EXPECT_TRUE(filter.ExcludesTable("public", "audit_"));
  EXPECT_FALSE(filter.ExcludesTable("sales", "audit_log"));
  EXPECT_TRUE(filter.ExcludesTable("sales", "tmp"));
  EXPECT_TRUE(filter.ExcludesTable("Logs", "tmp"));
  EXPECT_FALSE(filter.ExcludesTable("public", "tmp2"));
  EXPECT_TRUE(filter.ExcludesTable("sales", "orders_2024"));
  EXPECT_FALSE(filter.ExcludesTable("sales", "orders"));
  EXPECT_FALSE(filter.ExcludesSchema("public")) << "a table pattern never excludes a schema";
  // An excluded table's rows are excluded too.
  EXPECT_TRUE(filter.ExcludesTableData("public", "audit_log"));
  EXPECT_FALSE(filter.ExcludesTableData("public", "users"));
}

TEST(ObjectFilterTest, IncludedTablesMustBeInIncludedSchemas) {
  ObjectFilter filter;
  filter.include_schemas = {"sales", "public"};
  filter.include_tables = {"sales.*", "Logs.Events", "public.users"};
  filter.exclude_tables = {"sales.orders_20*"};
  EXPECT_FALSE(filter.ExcludesTable("sales", "orders"));
  EXPECT_FALSE(filter.ExcludesTable("public", "users"));
  EXPECT_TRUE(filter.ExcludesTable("public", "audit_log")) << "not an included table";
  EXPECT_TRUE(filter.ExcludesTable("Logs", "Events")) << "Logs is not an included schema";
  EXPECT_TRUE(filter.ExcludesTable("sales", "orders_2023")) << "exclusion wins";
  EXPECT_TRUE(filter.ExcludesTable("sales", "orders_20")) << "* matches nothing too";
  EXPECT_FALSE(filter.ExcludesTable("sales", "orders_19"));
}

TEST(ObjectFilterTest, TableDataExclusionKeepsTheTable) {
  ObjectFilter filter;
  filter.exclude_table_data = {"Logs.*", "public.big_[ab]"};
  EXPECT_FALSE(filter.ExcludesTable("Logs", "Events"));
  EXPECT_TRUE(filter.ExcludesTableData("Logs", "Events"));
  EXPECT_TRUE(filter.ExcludesTableData("public", "big_a"));
  EXPECT_FALSE(filter.ExcludesTableData("public", "big_c"));
  EXPECT_FALSE(filter.ExcludesTableData("logs", "Events"));
  EXPECT_FALSE(filter.ExcludesSchema("Logs"));
}

TEST(ObjectFilterTest, DotsInNamesAreOrdinaryCharacters) {
  // "schema.table" is matched as one string: a `*` spans dots, and a dot in
  // a name is matched like any other character.
  ObjectFilter filter;
  filter.exclude_tables = {"*.log"};
  EXPECT_TRUE(filter.ExcludesTable("a.b", "log"));
  EXPECT_TRUE(filter.ExcludesTable("a", "b.log"));
  filter.exclude_tables = {"a.b.c"};
  EXPECT_TRUE(filter.ExcludesTable("a.b", "c"));
  EXPECT_TRUE(filter.ExcludesTable("a", "b.c"));
  EXPECT_FALSE(filter.ExcludesTable("a", "bxc"));
}

TEST(ObjectFilterTest, PgDumpGetsExactQuotedNamesNeverPatterns) {
  ResolvedObjectFilter excluded;
  excluded.excluded_schemas = {"Logs", "public", "we\"ird*.?$"};
  excluded.excluded_tables = {{"sales", "Orders.2024"}, {"a\"b", "c*"}};
  excluded.data_excluded_tables = {{"sales", "big"}};  // pg_dump dumps their schema
  EXPECT_EQ(DumpExclusionArgs(excluded),
            (std::vector<std::string>{"--exclude-schema=\"Logs\"", "--exclude-schema=\"public\"",
                                      "--exclude-schema=\"we\"\"ird*.?$\"",
                                      "--exclude-table=\"sales\".\"Orders.2024\"",
                                      "--exclude-table=\"a\"\"b\".\"c*\""}));
  EXPECT_TRUE(DumpExclusionArgs({}).empty());
}

}  // namespace
}  // namespace pgcourier

#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "replication/replication.h"

namespace pgcourier {
namespace {

PublishedColumnType Column(const std::string& name, const std::string& type,
                           const std::string& extension = "", const std::string& version = "") {
  PublishedColumnType c;
  c.schema = "public";
  c.table = "t";
  c.column = name;
  c.type = type;
  c.extension = extension;
  c.extension_version = version;
  return c;
}

TEST(BinaryTransferTest, SameTypesWithBinaryFunctionsOnBothSidesTravelInBinary) {
  const std::vector<PublishedColumnType> source = {Column("id", "integer"),
                                                   Column("tags", "hstore", "hstore", "1.8")};
  EXPECT_EQ(BinaryTransferProblem(source, {source[0], source[1]}), "");
  // A column the target lacks is not binary's concern.
  EXPECT_EQ(BinaryTransferProblem(source, {source[0], std::nullopt}), "");
}

TEST(BinaryTransferTest, TheSourceNeedsSendTheTargetReceive) {
  std::vector<PublishedColumnType> source = {Column("id", "integer"), Column("v", "public.odd")};
  source[1].binary = false;
  EXPECT_EQ(BinaryTransferProblem(source, {source[0], source[1]}),
            "type public.odd has no binary send/receive on the source");

  source[1].binary = true;
  PublishedColumnType there = source[1];
  there.binary = false;
  EXPECT_EQ(BinaryTransferProblem(source, {source[0], there}),
            "type public.odd has no binary receive on the target");
}

TEST(BinaryTransferTest, TheTypesMustBeTheSameOnBothSides) {
  const std::vector<PublishedColumnType> source = {Column("v", "public.mood")};
  EXPECT_EQ(BinaryTransferProblem(source, {Column("v", "text")}),
            "column public.t.v is of type public.mood on the source, text on the target");

  const std::vector<PublishedColumnType> of_extension = {Column("v", "hstore", "hstore", "1.8")};
  EXPECT_EQ(BinaryTransferProblem(of_extension, {Column("v", "hstore", "hstore", "1.7")}),
            "type hstore of extension hstore 1.8 on the source, of extension hstore 1.7 on the "
            "target");
  // Made by hand on the target, not by the extension.
  EXPECT_EQ(BinaryTransferProblem(of_extension, {Column("v", "hstore")}),
            "type hstore of extension hstore 1.8 on the source, of no extension on the target");
  EXPECT_EQ(BinaryTransferProblem({Column("v", "hstore")}, {of_extension[0]}),
            "type hstore of no extension on the source, of extension hstore 1.8 on the target");
}

}  // namespace
}  // namespace pgcourier

#include "copy/row_hash.h"

#include <gtest/gtest.h>

namespace pgcourier {
namespace {

RowSetHash Of(std::initializer_list<const char*> rows) {
  RowSetHash h;
  for (const char* r : rows) h.AddRow(r);
  return h;
}

TEST(RowSetHashTest, OrderDoesNotMatterButEveryByteAndDuplicateDoes) {
  EXPECT_EQ(Of({"1\ta\n", "2\tb\n", "3\tc\n"}), Of({"3\tc\n", "1\ta\n", "2\tb\n"}));
  EXPECT_NE(Of({"1\t1.0\n"}), Of({"1\t1.00\n"}));
  EXPECT_NE(Of({"1\t-0\n"}), Of({"1\t0\n"}));
  EXPECT_NE(Of({"1\tNaN\n"}), Of({"1\t\\N\n"}));
  // Same count, one row twice instead of two rows once each.
  EXPECT_NE(Of({"1\n", "1\n", "2\n"}), Of({"1\n", "2\n", "2\n"}));
  EXPECT_NE(Of({"1\n"}).Digest(), Of({}).Digest());
  EXPECT_EQ(Of({}).rows(), 0);
}

TEST(RowSetHashTest, PartsAddUpToTheWhole) {
  RowSetHash first = Of({"1\n", "2\n"});
  first.Add(Of({"3\n"}));
  EXPECT_EQ(first, Of({"3\n", "2\n", "1\n"}));
  EXPECT_EQ(first.rows(), 3);
}

TEST(RowSetHashTest, DigestRoundTripsWithItsCount) {
  RowSetHash h = Of({"x\n", "y\n"});
  std::optional<RowSetHash> back = RowSetHash::FromDigest(h.rows(), h.Digest());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, h);
  EXPECT_EQ(h.Digest().size(), 32u);
  EXPECT_FALSE(RowSetHash::FromDigest(2, "").has_value()) << "a mark without a hash";
  EXPECT_FALSE(RowSetHash::FromDigest(2, std::string(32, 'g')).has_value());
  EXPECT_FALSE(RowSetHash::FromDigest(-1, h.Digest()).has_value());
}

}  // namespace
}  // namespace pgcourier

// Binary COPY streams cut into rows, from golden bytes: the same rows
// whatever way the stream is cut into chunks, and malformed streams refused.
#include "copy/binary_copy.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pgcourier {
namespace {

using namespace std::string_literals;

// Two columns: (1, 'ab') and (NULL, '').
const std::string kRow1 =
    "\0\x02"s
    "\0\0\0\x04"
    "\0\0\0\x01"s
    "\0\0\0\x02"
    "ab"s;
const std::string kRow2 =
    "\0\x02"s
    "\xff\xff\xff\xff"
    "\0\0\0\0"s;
// A header with 3 bytes of header extension, which a reader skips.
const std::string kHeaderWithExtension =
    "PGCOPY\n\xff\r\n\0"s
    "\0\0\0\0"
    "\0\0\0\x03"
    "xyz";

// The rows of `stream` fed in chunks of at most `chunk` bytes.
Result<std::vector<std::string>> RowsOf(const std::string& stream, size_t chunk) {
  BinaryCopyRows rows;
  std::vector<std::string> out;
  for (size_t at = 0; at < stream.size(); at += chunk) {
    rows.Feed(std::string_view(stream).substr(at, chunk));
    std::string_view row;
    for (;;) {
      Result<bool> got = rows.Next(&row);
      if (!got.ok()) return got.status();
      if (!*got) break;
      out.emplace_back(row);
    }
  }
  PGC_RETURN_IF_ERROR(rows.CheckEnded());
  return out;
}

TEST(BinaryCopyTest, HeaderAndTrailerAreWhatTheServerSends) {
  EXPECT_EQ(std::string(BinaryCopyHeader()),
            "PGCOPY\n\xff\r\n\0"s
            "\0\0\0\0\0\0\0\0"s);
  EXPECT_EQ(std::string(BinaryCopyTrailer()), "\xff\xff");
}

TEST(BinaryCopyTest, RowsAreTheSameHoweverTheStreamIsCut) {
  const std::string stream =
      std::string(BinaryCopyHeader()) + kRow1 + kRow2 + std::string(BinaryCopyTrailer());
  const std::vector<std::string> expected = {kRow1, kRow2};
  for (size_t chunk = 1; chunk <= stream.size(); ++chunk) {
    Result<std::vector<std::string>> rows = RowsOf(stream, chunk);
    ASSERT_TRUE(rows.ok()) << "chunks of " << chunk << ": " << rows.status().ToString();
    EXPECT_EQ(*rows, expected) << "chunks of " << chunk;
  }
  // As a server sends it: the header with the first row, the trailer alone.
  BinaryCopyRows rows;
  std::string first = std::string(BinaryCopyHeader()) + kRow1;
  rows.Feed(first);
  std::string_view row;
  ASSERT_TRUE(*rows.Next(&row));
  EXPECT_EQ(row, kRow1);
  EXPECT_FALSE(*rows.Next(&row));
  EXPECT_FALSE(rows.CheckEnded().ok()) << "no trailer yet";
  rows.Feed(BinaryCopyTrailer());
  EXPECT_FALSE(*rows.Next(&row));
  EXPECT_TRUE(rows.CheckEnded().ok());
}

TEST(BinaryCopyTest, HeaderExtensionAndEmptyStreams) {
  Result<std::vector<std::string>> rows =
      RowsOf(kHeaderWithExtension + kRow2 + std::string(BinaryCopyTrailer()), 4);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(*rows, std::vector<std::string>{kRow2});
  rows = RowsOf(std::string(BinaryCopyHeader()) + std::string(BinaryCopyTrailer()), 100);
  ASSERT_TRUE(rows.ok());
  EXPECT_TRUE(rows->empty());
  // A table without columns: rows of zero fields.
  rows =
      RowsOf(std::string(BinaryCopyHeader()) + "\0\0\0\0"s + std::string(BinaryCopyTrailer()), 3);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(*rows, (std::vector<std::string>{"\0\0"s, "\0\0"s}));
}

TEST(BinaryCopyTest, MalformedStreamsAreRefusedWithTheWayOut) {
  const std::string header(BinaryCopyHeader());
  const std::string trailer(BinaryCopyTrailer());
  auto refused = [](const std::string& stream) {
    Result<std::vector<std::string>> rows = RowsOf(stream, 7);
    if (rows.ok()) return std::string("accepted");
    EXPECT_NE(rows.status().hint().find("--copy-format text"), std::string::npos);
    return rows.status().message();
  };
  EXPECT_NE(refused("PGCOPX\n\xff\r\n\0"s
                    "\0\0\0\0\0\0\0\0"s +
                    trailer)
                .find("signature"),
            std::string::npos);
  EXPECT_NE(refused("1\tab\n"s + std::string(20, 'x')).find("signature"), std::string::npos);
  EXPECT_NE(refused("PGCOPY\n\xff\r\n\0"s
                    "\0\x01\0\0"
                    "\0\0\0\0"s +
                    trailer)
                .find("OIDs"),
            std::string::npos);
  EXPECT_NE(refused(header + "\0\x01\xff\xff\xff\xfe"s + trailer).find("field length"),
            std::string::npos);
  EXPECT_NE(refused(header + "\xff\xfe"s).find("field count"), std::string::npos);
  EXPECT_NE(refused(header + kRow1 + trailer + kRow2).find("after the trailer"), std::string::npos);
  EXPECT_NE(refused(header + kRow1).find("before its trailer"), std::string::npos);
  EXPECT_NE(refused(header + kRow1.substr(0, 9)).find("before its trailer"), std::string::npos);
}

}  // namespace
}  // namespace pgcourier

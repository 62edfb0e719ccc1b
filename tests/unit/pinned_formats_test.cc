// The value formats every session pins (pg/connection.h, PinnedFormatsSql).
#include <gtest/gtest.h>

#include <string>

#include "pg/connection.h"

namespace pgcourier {
namespace {

TEST(PinnedFormatsTest, PinsEveryFormatAndTheGivenEncoding) {
  const std::string sql = PinnedFormatsSql("LATIN1");
  for (const char* setting :
       {"SET DateStyle = 'ISO, YMD'", "SET IntervalStyle = 'postgres'",
        "SET extra_float_digits = 3", "SET bytea_output = 'hex'", "SET TimeZone = 'UTC'",
        "SET standard_conforming_strings = on", "SET xmloption = content", "SET lc_monetary = 'C'",
        "SET client_encoding = 'LATIN1'"}) {
    EXPECT_NE(sql.find(setting), std::string::npos) << setting << " in " << sql;
  }
}

TEST(PinnedFormatsTest, EncodingNameIsNeverMoreThanANameAndMayBeLeftOut) {
  EXPECT_NE(PinnedFormatsSql("SQL_ASCII'; DROP TABLE x; --")
                .find("client_encoding = 'SQL_ASCIIDROPTABLEx'"),
            std::string::npos);
  EXPECT_EQ(PinnedFormatsSql("").find("client_encoding"), std::string::npos);
}

}  // namespace
}  // namespace pgcourier

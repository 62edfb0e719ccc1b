// The value formats every session pins, and how settings reach the server
// (pg/session_settings.h).
#include <gtest/gtest.h>

#include <string>

#include "pg/session_settings.h"

namespace pgcourier {
namespace {

TEST(PinnedFormatsTest, PinsEveryFormat) {
  const std::string options = StartupOptions(PinnedFormatSettings());
  for (const char* setting :
       {"-c DateStyle=ISO,\\ YMD", "-c IntervalStyle=postgres", "-c extra_float_digits=3",
        "-c bytea_output=hex", "-c TimeZone=UTC", "-c standard_conforming_strings=on",
        "-c xmloption=content", "-c lc_monetary=C"}) {
    EXPECT_NE(options.find(setting), std::string::npos) << setting << " in " << options;
  }
}

TEST(PinnedFormatsTest, StartupOptionsEscapeSpacesAndBackslashesAndFollowTheUsersOwn) {
  EXPECT_EQ(StartupOptions({{"search_path", ""}, {"application_name", "a b\\c"}}, "-c geqo=off"),
            "-c geqo=off -c search_path= -c application_name=a\\ b\\\\c");
  EXPECT_EQ(StartupOptions({}), "");
}

TEST(PinnedFormatsTest, SetConfigSqlQuotesValuesAndKeepsNamesToNames) {
  EXPECT_EQ(SetConfigSql({{"search_path", ""}, {"x'; DROP TABLE t; --", "it's"}}),
            "SELECT pg_catalog.set_config(E'search_path', E'', false), "
            "pg_catalog.set_config(E'xDROPTABLEt', E'it''s', false)");
  EXPECT_EQ(SetConfigSql({}), "");
}

}  // namespace
}  // namespace pgcourier

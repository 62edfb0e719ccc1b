#include "schema/restore_script.h"

#include <gtest/gtest.h>

#include <string>

namespace pgcourier {
namespace {

// The shape of `pg_restore --file=-` of a schema-only archive, as pg_dump
// 15.18 writes it.
constexpr const char* kScript = R"sql(--
-- PostgreSQL database dump
--

\restrict aBcDeF0123456789

SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);

--
-- Name: app; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA app;


--
-- Name: f(); Type: FUNCTION; Schema: app; Owner: -
--

CREATE FUNCTION app.f() RETURNS text
    LANGUAGE plpgsql
    AS $_$
BEGIN
\connect not_a_command
-- Name: inside; Type: TABLE; Schema: app; Owner: -
  RETURN E'it''s \' a \\ quote' || 'x' || $$a;b$$;
END $_$;


--
-- Name: docs; Type: TABLE; Schema: app; Owner: -
--

CREATE TABLE app."do\cs" (
    id integer, /* a \comment /* nested */ still */ v text DEFAULT '\x'
);

--
-- Name: docs readers; Type: POLICY; Schema: app; Owner: -
--

CREATE POLICY readers ON app.docs TO app_reader USING (true);


--
-- PostgreSQL database dump complete
--

\unrestrict aBcDeF0123456789
)sql";

TEST(RestoreScriptTest, CutsEntriesAndDropsRestrictLines) {
  Result<std::vector<ScriptEntry>> entries = ParseRestoreScript(kScript);
  ASSERT_TRUE(entries.ok()) << entries.status().ToString();
  ASSERT_EQ(entries->size(), 5u);
  EXPECT_EQ((*entries)[0].Describe(), "preamble");
  EXPECT_NE((*entries)[0].sql.find("SET statement_timeout"), std::string::npos);
  EXPECT_EQ((*entries)[0].sql.find("\\restrict"), std::string::npos);
  EXPECT_EQ((*entries)[1].Describe(), "SCHEMA app");
  EXPECT_EQ((*entries)[2].Describe(), "FUNCTION app.f()");
  // A backslash and a header inside a dollar quote are the function's body.
  EXPECT_NE((*entries)[2].sql.find("\\connect not_a_command"), std::string::npos);
  EXPECT_NE((*entries)[2].sql.find("-- Name: inside"), std::string::npos);
  EXPECT_EQ((*entries)[3].Describe(), "TABLE app.docs");
  EXPECT_EQ((*entries)[4].Describe(), "POLICY app.docs readers");
  EXPECT_EQ((*entries)[4].line, 40);
  EXPECT_EQ((*entries)[4].sql.find("\\unrestrict"), std::string::npos);
}

TEST(RestoreScriptTest, RefusesOtherMetaCommands) {
  for (const char* script :
       {"SELECT 1;\n\\connect other\nSELECT 2;\n", "SELECT 1 \\gset\n", "\\! rm -rf /\n",
        "-- Name: t; Type: TABLE; Schema: public; Owner: -\n\\i /etc/passwd\n"}) {
    Result<std::vector<ScriptEntry>> entries = ParseRestoreScript(script);
    ASSERT_FALSE(entries.ok()) << script;
    EXPECT_NE(entries.status().message().find("meta-command"), std::string::npos)
        << entries.status().message();
  }
  Result<std::vector<ScriptEntry>> at = ParseRestoreScript("SELECT 1;\n\n\\copy t from x\n");
  ASSERT_FALSE(at.ok());
  EXPECT_NE(at.status().message().find("\"\\copy t from x\" at line 3"), std::string::npos)
      << at.status().message();
}

TEST(RestoreScriptTest, BackslashesInsideLiteralsAreNotCommands) {
  Result<std::vector<ScriptEntry>> entries = ParseRestoreScript(
      "SELECT 'a\\b', E'c\\'d', \"e\\f\", $t$ \\g $t$, U&'\\0041';\n-- \\h in a comment\n");
  ASSERT_TRUE(entries.ok()) << entries.status().ToString();
  ASSERT_EQ(entries->size(), 1u);
}

TEST(RestoreScriptTest, UnterminatedLiteralsAreErrors) {
  EXPECT_FALSE(ParseRestoreScript("SELECT 'open;\n").ok());
  EXPECT_FALSE(ParseRestoreScript("SELECT \"open;\n").ok());
  EXPECT_FALSE(ParseRestoreScript("SELECT /* open;\n").ok());
}

}  // namespace
}  // namespace pgcourier

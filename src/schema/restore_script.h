// The SQL script pg_restore writes (`pg_restore --file=-`), cut into its
// archive entries so each can be sent to a server on its own and a failure
// named by its object.
//
// The script is read as psql would lex it (quoted strings, E'' strings,
// quoted identifiers, dollar quotes, comments), but nothing in it is
// interpreted: a psql meta-command (a backslash outside any literal) is
// refused, except the `\restrict KEY` / `\unrestrict KEY` pair that pg_dump
// 15.14+ (and 16.10+, 17.6+) writes around a script, which only guards psql
// itself and is dropped.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace pgcourier {

// One archive entry of the script: pg_restore heads each with a comment
// "-- Name: orders; Type: TABLE; Schema: public; Owner: app".
struct ScriptEntry {
  std::string type;    // "TABLE", "POLICY", ...; empty for the script's preamble
  std::string schema;  // "-" when the object has none
  std::string name;    // as pg_restore prints it, e.g. "orders" or "orders orders_pkey"
  std::string sql;     // the entry's statements (meta-commands removed)
  int line = 0;        // the 1-based line of the script where the entry begins

  // "TABLE public.orders", "EXTENSION hstore", "preamble".
  std::string Describe() const;
};

// Cuts `script` into entries, in order. Entries without any statement (only
// comments and blank lines) are left out. A meta-command other than
// \restrict / \unrestrict is an error (kFailedPrecondition) naming it and its
// line; so is a script that ends inside a literal or comment.
Result<std::vector<ScriptEntry>> ParseRestoreScript(std::string_view script);

}  // namespace pgcourier

// Renders verification results for people (a table) and for programs (JSON).
// Rendering returns text; the CLI decides where it goes.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "verify/verifier.h"

namespace pgcourier {

// Per database: a heading ("shop" or "shop -> neondb"), the tables,
// sequences and schema kinds that differ (all of them with show_matches),
// and a one-line summary; then an overall last line starting with
// "VERIFIED:" or "MISMATCH:".
std::string RenderVerifyText(const std::vector<DatabaseVerification>& databases,
                             bool show_matches = false);

// One database's differences and summary line, without heading or overall
// verdict: for embedding in another report (migrate's).
std::string RenderVerifyDatabaseText(const DatabaseVerification& database);

// The stable machine format, "pgcourier.verify/1":
// {format, ok, databases[{source_database, target_database, ok, mismatches,
//  tables[{schema, name, source_rows, target_rows, source_checksum,
//          target_checksum, match, error}],
//  sequences[{schema, name, source_last_value, target_last_value, match, error}],
//  schema[{kind, source_count, target_count, missing_on_target,
//          extra_on_target, match}]}]}
// Rows and checksums not read are null; a sequence value is null when the
// sequence was not yet called; error is null when there is none.
nlohmann::json VerifyToJson(const std::vector<DatabaseVerification>& databases);

}  // namespace pgcourier

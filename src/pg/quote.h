// Quoting of identifiers and literals for SQL that pgcourier builds itself.
// Values from a server are always passed as parameters where the statement
// allows it; these are for the places it does not (DDL, COPY).
#pragma once

#include <string>
#include <string_view>

namespace pgcourier {

// "name" with embedded double quotes doubled; always quoted, so any case or
// keyword is safe.
std::string QuoteIdent(std::string_view name);

// For display, not SQL: the name as it is, when it is lower-case letters,
// digits, '_' and '$' not starting with a digit or '$'; else QuoteIdent.
std::string DisplayIdent(std::string_view name);
// schema.name, each part quoted.
std::string QualifiedName(std::string_view schema, std::string_view name);
// A string literal valid with standard_conforming_strings on or off:
// E'...' with backslashes and quotes escaped.
std::string QuoteLiteral(std::string_view value);

}  // namespace pgcourier

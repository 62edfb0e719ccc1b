// A query's result set, owning its PGresult.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "util/status.h"

namespace pgcourier {

class QueryResult {
 public:
  explicit QueryResult(PGresult* result) : result_(result, &PQclear) {}

  int rows() const { return PQntuples(result_.get()); }
  int columns() const { return PQnfields(result_.get()); }
  // Index of a named column; -1 when absent.
  int Column(const char* name) const { return PQfnumber(result_.get(), name); }
  bool IsNull(int row, int col) const { return PQgetisnull(result_.get(), row, col) != 0; }
  // Text value; empty for NULL.
  std::string_view Get(int row, int col) const {
    return {PQgetvalue(result_.get(), row, col),
            static_cast<size_t>(PQgetlength(result_.get(), row, col))};
  }
  std::string GetString(int row, int col) const { return std::string(Get(row, col)); }
  std::optional<std::string> GetOptional(int row, int col) const {
    if (IsNull(row, col)) return std::nullopt;
    return GetString(row, col);
  }
  // Integer value; `fallback` for NULL or text that is not an integer.
  int64_t GetInt(int row, int col, int64_t fallback = 0) const;
  // PostgreSQL boolean text ("t"/"f"); false for NULL.
  bool GetBool(int row, int col) const { return Get(row, col) == "t"; }
  // Command tag's row count ("INSERT 0 5" -> 5).
  int64_t AffectedRows() const;

  PGresult* raw() const { return result_.get(); }

 private:
  std::unique_ptr<PGresult, decltype(&PQclear)> result_;
};

// Builds the Status of a failed PGresult: the server's primary message with
// its detail, its hint, and SQLSTATE.
Status StatusFromResult(const PGresult* result);

}  // namespace pgcourier

// The rows of a COPY stream as a multiset: how many there are, and the sum
// (modulo 2^128) of each row's 128-bit XXH3 hash. The sum does not depend on
// the rows' order, so the rows a copy relayed from the source and the rows
// the target hands back in its own order hash alike when, and only when
// (short of a 128-bit collision), they are the same rows, duplicates
// included. Rows are compared as the bytes of their COPY form: in text form
// 1.0 and 1.00, -0 and 0, and NaN each keep their own spelling; in binary
// form numeric keeps its scale (dscale) and NaN its own sign code, float8
// its IEEE bits (-0 is not 0); no collation is involved either way. Both
// sides of a comparison hash the same form.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pgcourier {

class RowSetHash {
 public:
  // One row: in text form a COPY ... TO STDOUT message, its line end
  // included; in binary form its field count and fields
  // (copy/binary_copy.h).
  void AddRow(std::string_view row);
  // The rows of another part of the same table (a slice).
  void Add(const RowSetHash& other);

  int64_t rows() const { return rows_; }
  // 32 hex digits, the high half first.
  std::string Digest() const;
  // A digest as Digest() writes it with its row count; nullopt when
  // `digest` is not one.
  static std::optional<RowSetHash> FromDigest(int64_t rows, std::string_view digest);

  bool operator==(const RowSetHash& other) const = default;

 private:
  int64_t rows_ = 0;
  uint64_t high_ = 0;
  uint64_t low_ = 0;
};

}  // namespace pgcourier

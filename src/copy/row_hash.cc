#include "copy/row_hash.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <charconv>

namespace pgcourier {
namespace {

// Adds (high, low) to the 128-bit sum in (*sum_high, *sum_low), modulo 2^128.
void Add128(uint64_t high, uint64_t low, uint64_t* sum_high, uint64_t* sum_low) {
  const uint64_t before = *sum_low;
  *sum_low += low;
  *sum_high += high + (*sum_low < before ? 1 : 0);
}

std::optional<uint64_t> ParseHex64(std::string_view text) {
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [at, error] = std::from_chars(text.data(), end, value, 16);
  if (error != std::errc() || at != end) return std::nullopt;
  return value;
}

}  // namespace

void RowSetHash::AddRow(std::string_view row) {
  const XXH128_hash_t h = XXH3_128bits(row.data(), row.size());
  Add128(h.high64, h.low64, &high_, &low_);
  ++rows_;
}

void RowSetHash::Add(const RowSetHash& other) {
  Add128(other.high_, other.low_, &high_, &low_);
  rows_ += other.rows_;
}

std::string RowSetHash::Digest() const { return fmt::format("{:016x}{:016x}", high_, low_); }

std::optional<RowSetHash> RowSetHash::FromDigest(int64_t rows, std::string_view digest) {
  if (digest.size() != 32 || rows < 0) return std::nullopt;
  std::optional<uint64_t> high = ParseHex64(digest.substr(0, 16));
  std::optional<uint64_t> low = ParseHex64(digest.substr(16));
  if (!high || !low) return std::nullopt;
  RowSetHash out;
  out.rows_ = rows;
  out.high_ = *high;
  out.low_ = *low;
  return out;
}

}  // namespace pgcourier

#include "copy/binary_copy.h"

#include <fmt/format.h>

#include <cassert>
#include <cstdint>

namespace pgcourier {
namespace {

// "PGCOPY\n\377\r\n\0", then flags and the header extension's length.
constexpr char kHeader[] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";
constexpr size_t kSignatureSize = 11;
constexpr size_t kHeaderSize = 19;
constexpr char kTrailer[] = "\377\377";
constexpr uint32_t kOidsFlag = uint32_t{1} << 16;

uint32_t ReadUint32(std::string_view data, size_t at) {
  auto byte = [&](size_t i) {
    return static_cast<uint32_t>(static_cast<unsigned char>(data[at + i]));
  };
  return byte(0) << 24 | byte(1) << 16 | byte(2) << 8 | byte(3);
}

int32_t ReadInt32(std::string_view data, size_t at) {
  return static_cast<int32_t>(ReadUint32(data, at));
}

int16_t ReadInt16(std::string_view data, size_t at) {
  return static_cast<int16_t>(static_cast<unsigned char>(data[at]) << 8 |
                              static_cast<unsigned char>(data[at + 1]));
}

Status Malformed(const std::string& what) {
  return Status(StatusCode::kFailedPrecondition, "malformed binary COPY data: " + what,
                "copy the rows as text instead: pgcourier migrate --copy-format text");
}

}  // namespace

std::string_view BinaryCopyHeader() { return {kHeader, kHeaderSize}; }
std::string_view BinaryCopyTrailer() { return {kTrailer, 2}; }

Result<size_t> BinaryCopyRows::Measure(std::string_view data) const {
  if (state_ == State::kHeader) {
    if (data.size() < kHeaderSize) return size_t{0};
    if (data.substr(0, kSignatureSize) != BinaryCopyHeader().substr(0, kSignatureSize)) {
      return Malformed("no PGCOPY signature");
    }
    const uint32_t flags = ReadUint32(data, kSignatureSize);
    if ((flags & kOidsFlag) != 0) return Malformed("rows with OIDs");
    if ((flags & 0xffff) != 0) return Malformed(fmt::format("unknown flags {:#x}", flags));
    const int32_t extension = ReadInt32(data, kSignatureSize + 4);
    if (extension < 0) return Malformed("negative header extension length");
    const size_t size = kHeaderSize + static_cast<size_t>(extension);
    return data.size() < size ? size_t{0} : size;
  }
  if (data.size() < 2) return size_t{0};
  const int16_t fields = ReadInt16(data, 0);
  if (fields == -1) return size_t{2};
  if (fields < 0) return Malformed(fmt::format("field count {}", fields));
  size_t at = 2;
  for (int16_t f = 0; f < fields; ++f) {
    if (data.size() < at + 4) return size_t{0};
    const int32_t length = ReadInt32(data, at);
    at += 4;
    if (length == -1) continue;
    if (length < 0) return Malformed(fmt::format("field length {}", length));
    at += static_cast<size_t>(length);
    if (data.size() < at) return size_t{0};
  }
  return at;
}

void BinaryCopyRows::Feed(std::string_view chunk) {
  assert(input_.empty() && "Feed() before Next() returned false");
  if (carry_at_ > 0) {
    carry_.erase(0, carry_at_);
    carry_at_ = 0;
  }
  if (carry_.empty()) {
    input_ = chunk;
  } else {
    carry_.append(chunk);
  }
}

Status BinaryCopyRows::CheckEnded() const {
  if (state_ == State::kEnded) return Status::Ok();
  return Malformed("the data ended before its trailer");
}

Result<bool> BinaryCopyRows::Next(std::string_view* row) {
  for (;;) {
    const bool carried = !carry_.empty();
    std::string_view data = carried ? std::string_view(carry_).substr(carry_at_) : input_;
    if (data.empty()) return false;
    if (state_ == State::kEnded) return Malformed("data after the trailer");
    Result<size_t> size = Measure(data);
    if (!size.ok()) return size.status();
    if (*size == 0) {
      // Incomplete: kept until the next chunk completes it.
      if (!carried) {
        carry_.assign(input_);
        carry_at_ = 0;
        input_ = {};
      }
      return false;
    }
    const std::string_view piece = data.substr(0, *size);
    if (carried) {
      carry_at_ += *size;
    } else {
      input_.remove_prefix(*size);
    }
    if (state_ == State::kHeader) {
      state_ = State::kRows;
    } else if (piece == BinaryCopyTrailer()) {
      state_ = State::kEnded;
    } else {
      *row = piece;
      return true;
    }
  }
}

}  // namespace pgcourier

// COPY's binary format (`FORMAT binary`), split into rows. The stream is a
// header (an 11-byte signature, 32-bit flags, a 32-bit length and that many
// bytes of header extension), then per row a 16-bit field count and per
// field a 32-bit length (-1: NULL) and that many bytes, then a 16-bit -1
// (the trailer); integers in network byte order.
//
// The rows a copy relays and the rows the target hands back are hashed as
// the bytes of each row (field count and fields), without the header and the
// trailer, whatever way the server cut the stream into messages.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "util/status.h"

namespace pgcourier {

// What a relay sends the target before the first row: the signature, no
// flags, no header extension (19 bytes).
std::string_view BinaryCopyHeader();
// What ends the rows: a field count of -1 (2 bytes).
std::string_view BinaryCopyTrailer();

// Splits the chunks of one binary COPY ... TO STDOUT into rows. Feed() a
// chunk, then call Next() until it returns false (the rest of the chunk is a
// row still incomplete, kept for the next chunk, or the trailer was read).
// Servers send a row per message, so a row is held in memory only when a
// stream is cut otherwise.
class BinaryCopyRows {
 public:
  // Takes the next chunk. Rows returned before are no longer valid. Call
  // only once Next() has returned false.
  void Feed(std::string_view chunk);
  // The next complete row, valid until the next Feed() and as long as the
  // chunk given to it; false when no complete row is left in what was fed.
  // An error when the stream is not binary COPY: a bad signature, OIDs
  // (flags bit 16, which a COPY of a table pgcourier writes never has), a
  // negative length other than -1, anything after the trailer.
  Result<bool> Next(std::string_view* row);
  // At the end of the stream: an error unless the trailer was read (a
  // stream that ends without it was cut short).
  Status CheckEnded() const;

 private:
  enum class State { kHeader, kRows, kEnded };
  // The length of the header, row or trailer that starts `data`; 0 when
  // `data` does not hold all of it yet.
  Result<size_t> Measure(std::string_view data) const;

  State state_ = State::kHeader;
  std::string_view input_;  // the part of the last chunk not yet read
  std::string carry_;       // an incomplete piece and what followed it
  size_t carry_at_ = 0;     // read up to here
};

}  // namespace pgcourier

// The pgcourier binary that CLI tests run: $PGCOURIER_BINARY (set by ctest
// to the one just built), else the one on PATH.
#pragma once

#include <cstdlib>
#include <string>

namespace pgcourier::testing {

inline std::string PgcourierBinary() {
  const char* path = std::getenv("PGCOURIER_BINARY");
  return path != nullptr ? path : "pgcourier";
}

}  // namespace pgcourier::testing

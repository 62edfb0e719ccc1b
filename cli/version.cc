#include "version.h"

// Generated into the build tree at every build (cmake/write_version.cmake).
#include "pgcourier_version.h"

namespace pgcourier::cli {

std::string Version() { return PGCOURIER_VERSION; }

std::string Commit() { return PGCOURIER_COMMIT; }

std::string VersionLine() {
  return std::string("pgcourier ") + PGCOURIER_VERSION + " (commit " + PGCOURIER_COMMIT + ")";
}

}  // namespace pgcourier::cli

// The version pgcourier reports (`pgcourier --version`, the man pages): the
// project's version from CMake and the commit the binary was built from,
// both written at build time into a generated header
// (cmake/write_version.cmake), so neither is spelled anywhere else.
#pragma once

#include <string>

namespace pgcourier::cli {

// The project's version, e.g. "0.1.0".
std::string Version();

// git's short hash of the checkout built, with "-dirty" when tracked files
// differed from it; "unknown" when not built from a git checkout.
std::string Commit();

// What `--version` prints: "pgcourier 0.1.0 (commit 1a2b3c4d5e6f)".
std::string VersionLine();

}  // namespace pgcourier::cli

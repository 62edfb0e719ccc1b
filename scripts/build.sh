#!/usr/bin/env bash
# Configures and builds pgcourier with CMake.
#
#   scripts/build.sh [--werror] [--sanitize] [--line-tables] [BUILD_DIR]
#
#   --werror       compiler warnings are errors (-DPGCOURIER_WERROR=ON)
#   --sanitize     AddressSanitizer + UndefinedBehaviorSanitizer (-DPGCOURIER_SANITIZE=ON)
#   --line-tables  debug information of line tables only, -g1 (-DPGCOURIER_LINE_TABLES_ONLY=ON):
#                  stack traces name files and lines; a cheaper build (scripts/test.sh)
#   BUILD_DIR      defaults to "build" (relative to the repository root)
#
# The binary ends up in BUILD_DIR/pgcourier. Run scripts/setup.sh first on a
# fresh machine.
set -euo pipefail

usage() {
  sed -n '2,11s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

werror=OFF
sanitize=OFF
line_tables=OFF
build_dir=""
while (($# > 0)); do
  case "$1" in
    --werror) werror=ON ;;
    --sanitize) sanitize=ON ;;
    --line-tables) line_tables=ON ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "build.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *)
      if [[ -n "${build_dir}" ]]; then
        echo "build.sh: only one BUILD_DIR may be given" >&2
        exit 2
      fi
      build_dir="$1"
      ;;
  esac
  shift
done
build_dir="${build_dir:-build}"

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# ccache (scripts/setup.sh installs it) keeps compiled objects between
# builds, also of another checkout of the same sources: paths are taken
# relative to the checkout, and the build directory is not part of the key.
# A build without it is the same build, only slower.
if command -v ccache >/dev/null 2>&1 && [[ -z "${CMAKE_CXX_COMPILER_LAUNCHER:-}" ]]; then
  export CMAKE_CXX_COMPILER_LAUNCHER=ccache
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(pwd -P)}"
  export CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
fi

echo "==> configuring ${build_dir} (RelWithDebInfo, PGCOURIER_WERROR=${werror}, PGCOURIER_SANITIZE=${sanitize}, PGCOURIER_LINE_TABLES_ONLY=${line_tables})"
cmake -S . -B "${build_dir}" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPGCOURIER_WERROR="${werror}" \
  -DPGCOURIER_SANITIZE="${sanitize}" \
  -DPGCOURIER_LINE_TABLES_ONLY="${line_tables}"

echo "==> building ${build_dir}"
cmake --build "${build_dir}" -j2

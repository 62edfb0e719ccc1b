#!/usr/bin/env bash
# Builds the Debian package of pgcourier from a Release build:
#
#   scripts/package.sh [BUILD_DIR]
#
#   BUILD_DIR   defaults to "build-release" (relative to the repository root)
#
# Writes BUILD_DIR/pgcourier_<version>_<arch>.deb: /usr/bin/pgcourier
# (stripped), its man pages (pgcourier(1) and one per command) and its bash
# and zsh completion. The libraries it depends on are read from the binary
# by dpkg-shlibdeps; it depends on postgresql-client for pg_dump and
# pg_restore. Install it with `apt install ./pgcourier_*.deb`, which pulls
# them. Run scripts/setup.sh first on a fresh machine (dpkg-dev).
set -euo pipefail

usage() {
  sed -n '2,13s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

build_dir=""
while (($# > 0)); do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    -*) echo "package.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *)
      if [[ -n "${build_dir}" ]]; then
        echo "package.sh: only one BUILD_DIR may be given" >&2
        exit 2
      fi
      build_dir="$1"
      ;;
  esac
  shift
done
build_dir="${build_dir:-build-release}"

cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v dpkg-shlibdeps >/dev/null 2>&1 ||
  { echo "package.sh: dpkg-shlibdeps is missing: install dpkg-dev (scripts/setup.sh does)" >&2; exit 1; }

if command -v ccache >/dev/null 2>&1 && [[ -z "${CMAKE_CXX_COMPILER_LAUNCHER:-}" ]]; then
  export CMAKE_CXX_COMPILER_LAUNCHER=ccache
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(pwd -P)}"
  export CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
fi

echo "==> configuring ${build_dir} (Release, without the tests)"
cmake -S . -B "${build_dir}" -DCMAKE_BUILD_TYPE=Release -DPGCOURIER_BUILD_TESTS=OFF

echo "==> building ${build_dir}"
cmake --build "${build_dir}" -j2

echo "==> packaging"
(cd "${build_dir}" && cpack -G DEB)
ls -1 "${build_dir}"/pgcourier_*.deb

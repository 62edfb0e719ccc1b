# shellcheck shell=bash
# Where the PostgreSQL server binaries of a major version live. Sourced by the
# other scripts; the C++ test harness (tests/support) follows the same rules:
#
#   1. $PGCOURIER_PG<MAJOR>_BINDIR, when set (even if it holds no postgres:
#      an explicit setting is never second-guessed);
#   2. /usr/lib/postgresql/<MAJOR>/bin       (Debian's packages, e.g. PG15);
#   3. /opt/pgcourier/pg/<MAJOR>/bin          (scripts/setup.sh run as root);
#   4. $HOME/.local/share/pgcourier/pg/<MAJOR>/bin  (setup.sh as a user).
#
# Candidates 2-4 count only when they hold an executable `postgres`.

# pgc_bindir MAJOR: prints the bindir for MAJOR, or nothing when none is found.
# Always returns 0, so `dir="$(pgc_bindir 17)"` is safe under `set -e`; test
# the result with [[ -n "$dir" ]].
pgc_bindir() {
  local major="${1:?usage: pgc_bindir MAJOR}"
  local var="PGCOURIER_PG${major}_BINDIR"
  if [[ -n "${!var:-}" ]]; then
    printf '%s\n' "${!var}"
    return 0
  fi
  local dir
  for dir in "/usr/lib/postgresql/${major}/bin" \
             "/opt/pgcourier/pg/${major}/bin" \
             "${HOME:-/nonexistent}/.local/share/pgcourier/pg/${major}/bin"; do
    if [[ -x "${dir}/postgres" ]]; then
      printf '%s\n' "${dir}"
      return 0
    fi
  done
  return 0
}

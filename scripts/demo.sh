#!/usr/bin/env bash
# The pgcourier demo: two throwaway PostgreSQL servers on this machine, a
# small shop database on the first, and pgcourier run against both: check,
# migrate (replication, since the source allows it), status, cutover,
# verify.
#
#   scripts/demo.sh
#
#   source  PostgreSQL 15 (Debian), wal_level=logical, database "shop"
#           loaded from demo/shop.sql
#   target  PostgreSQL 17 (installed by scripts/setup.sh; PostgreSQL 15 when
#           there is no 17), empty
#
# Both listen on free ports on 127.0.0.1 with trust authentication, live in a
# temporary directory, and are stopped and removed when the script ends.
# PGCOURIER_DEMO_KEEP=1 leaves them running (and the directory in place) and
# prints how to connect and how to stop them.
#
# Exits with pgcourier's exit status.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$(pwd)"
# shellcheck source=scripts/pg-bindirs.sh
source scripts/pg-bindirs.sh

keep="${PGCOURIER_DEMO_KEEP:-0}"
pgcourier="${repo}/build/pgcourier"

heading() { printf '\n==> %s\n' "$*"; }
die() { printf 'demo.sh: error: %s\n' "$*" >&2; exit 1; }

# The servers are reached only through the URLs below: connection settings
# from the caller's environment must not redirect libpq.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGPASSFILE \
  PGSERVICE PGSERVICEFILE PGOPTIONS PGSSLMODE PGTARGETSESSIONATTRS

# --- build -------------------------------------------------------------------

heading "setup: scripts/setup.sh"
bash scripts/setup.sh
heading "build: scripts/build.sh"
bash scripts/build.sh build
[[ -x "${pgcourier}" ]] || die "build/pgcourier does not exist after the build"

# --- servers -----------------------------------------------------------------

source_major=15
source_bindir="$(pgc_bindir "${source_major}")"
[[ -n "${source_bindir}" ]] || die "no PostgreSQL ${source_major} found (run scripts/setup.sh)"
target_major=17
target_bindir="$(pgc_bindir "${target_major}")"
if [[ -z "${target_bindir}" ]]; then
  echo "note: no PostgreSQL 17 found; the target is PostgreSQL ${source_major} too"
  target_major="${source_major}"
  target_bindir="${source_bindir}"
fi
# psql comes with the client package, not with every server bindir (the npm
# PostgreSQL 17 has none); PostgreSQL 15's talks to both servers.
psql="${source_bindir}/psql"
[[ -x "${psql}" ]] || psql="$(command -v psql)" || die "psql not found"

# PostgreSQL refuses to run as root: as root, the servers run as "postgres".
if [[ "$(id -u)" -eq 0 ]]; then
  id postgres >/dev/null 2>&1 || die "running as root, but there is no postgres user to run the servers"
  as_server_user() { runuser -u postgres -- "$@"; }
else
  as_server_user() { "$@"; }
fi

tmp="$(mktemp -d -t pgcourier-demo.XXXXXX)"
[[ "$(id -u)" -ne 0 ]] || chown postgres: "${tmp}"
started_dirs=()

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  local rc=$?
  if [[ "${keep}" == "1" ]]; then
    if ((${#started_dirs[@]} > 0)); then
      heading "PGCOURIER_DEMO_KEEP=1: the servers are still running, in ${tmp}"
      echo "    source: ${psql} 'postgresql://postgres@127.0.0.1:${source_port}/shop'"
      echo "    target: ${psql} 'postgresql://postgres@127.0.0.1:${target_port}/postgres'"
      echo "    stop them and clean up with:"
      echo "      ${source_stop_cmd:-}"
      echo "      ${target_stop_cmd:-}"
      echo "      rm -rf ${tmp}"
    else
      echo "PGCOURIER_DEMO_KEEP=1: kept ${tmp}"
    fi
    return "${rc}"
  fi
  local dir
  for dir in "${started_dirs[@]}"; do
    as_server_user "${pg_ctl_of[${dir}]}" -D "${dir}" stop -m immediate >/dev/null 2>&1 || true
  done
  rm -rf "${tmp}"
  return "${rc}"
}
declare -A pg_ctl_of=()
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Two distinct free ports on 127.0.0.1 (held together so they differ).
read -r source_port target_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
')

# start_server NAME BINDIR PORT [SETTING...]: initdb, configure and start.
start_server() {
  local name="$1" bindir="$2" port="$3"
  shift 3
  local data="${tmp}/${name}"
  if ! as_server_user "${bindir}/initdb" -D "${data}" -A trust -N -U postgres \
      --encoding=UTF8 --locale=C >"${tmp}/${name}-initdb.log" 2>&1; then
    cat "${tmp}/${name}-initdb.log" >&2
    die "initdb for the ${name} server failed"
  fi
  {
    echo "# scripts/demo.sh"
    echo "listen_addresses = '127.0.0.1'"
    echo "port = ${port}"
    echo "unix_socket_directories = '${tmp}'"
    echo "fsync = off"
    local setting
    for setting in "$@"; do
      echo "${setting}"
    done
  } >>"${data}/postgresql.conf"
  pg_ctl_of["${data}"]="${bindir}/pg_ctl"
  started_dirs+=("${data}")
  if ! as_server_user "${bindir}/pg_ctl" -D "${data}" -w -t 60 -l "${tmp}/${name}.log" start \
      >/dev/null; then
    cat "${tmp}/${name}.log" >&2 || true
    die "the ${name} server did not start"
  fi
  echo "    $("${bindir}/postgres" --version), data in ${data}, log ${tmp}/${name}.log"
}

heading "starting source PostgreSQL ${source_major} on port ${source_port}"
start_server source "${source_bindir}" "${source_port}" \
  "wal_level = logical" "max_replication_slots = 10" "max_wal_senders = 10"
source_stop_cmd="$(if [[ "$(id -u)" -eq 0 ]]; then printf 'runuser -u postgres -- '; fi)${source_bindir}/pg_ctl -D ${tmp}/source stop"

heading "starting target PostgreSQL ${target_major} on port ${target_port}"
start_server target "${target_bindir}" "${target_port}"
target_stop_cmd="$(if [[ "$(id -u)" -eq 0 ]]; then printf 'runuser -u postgres -- '; fi)${target_bindir}/pg_ctl -D ${tmp}/target stop"

source_url="postgresql://postgres@127.0.0.1:${source_port}"
target_url="postgresql://postgres@127.0.0.1:${target_port}"
psql_run() { "${psql}" -X -q -v ON_ERROR_STOP=1 "$@"; }
# shop_counts URL: the row count of each shop table on that server.
shop_counts() {
  psql_run -d "$1/shop" -At -F ' ' -c "
    SELECT rpad(t, 12), n FROM (
      SELECT 'customers' AS t, count(*) AS n, 1 AS o FROM customers
      UNION ALL SELECT 'products', count(*), 2 FROM products
      UNION ALL SELECT 'orders', count(*), 3 FROM orders
      UNION ALL SELECT 'order_items', count(*), 4 FROM order_items
      UNION ALL SELECT 'audit_log', count(*), 5 FROM audit_log) AS c
    ORDER BY o" | sed 's/^/      /'
}

# --- demo data ---------------------------------------------------------------

heading "loading demo/shop.sql into database \"shop\" on the source"
psql_run -d "${source_url}/postgres" -c 'CREATE DATABASE shop'
load_started=${SECONDS}
psql_run -d "${source_url}/shop" -f demo/shop.sql
echo "    loaded in $((SECONDS - load_started))s:"
shop_counts "${source_url}"

# --- pgcourier check ---------------------------------------------------------

# The URLs name no database: pgcourier then moves every database of the
# source (here "postgres" and "shop"); naming one would move only that one.
heading "pgcourier check --source ${source_url} --target ${target_url}"
set +e
"${pgcourier}" check --source "${source_url}" --target "${target_url}"
check_status=$?
set -e
echo "==> pgcourier check exited with status ${check_status}"
demo_status=${check_status}

# --- pgcourier migrate -------------------------------------------------------

if ((check_status == 0)); then
  heading "pgcourier migrate --source ${source_url} --target ${target_url}"
  set +e
  "${pgcourier}" migrate --source "${source_url}" --target "${target_url}" --dir "${tmp}/work"
  migrate_status=$?
  set -e
  echo "==> pgcourier migrate exited with status ${migrate_status}"
  demo_status=${migrate_status}

  if ((migrate_status == 0)); then
    # The source has wal_level=logical: --method auto chose replication, so
    # the target now follows the source. A few orders arrive meanwhile.
    heading "pgcourier status --dir ${tmp}/work (the target follows the source)"
    psql_run -d "${source_url}/shop" -c "
      INSERT INTO public.orders (customer_id) SELECT id FROM public.customers ORDER BY id LIMIT 3"
    sleep 2
    "${pgcourier}" status --dir "${tmp}/work" || true
    heading "pgcourier cutover --dir ${tmp}/work --stop-source-writes"
    set +e
    "${pgcourier}" cutover --dir "${tmp}/work" --stop-source-writes
    demo_status=$?
    set -e
    # The demo's source takes writes again.
    psql_run -d "${source_url}/postgres" -c "SET default_transaction_read_only = off" \
      -c "ALTER DATABASE shop RESET default_transaction_read_only" \
      -c "ALTER DATABASE postgres RESET default_transaction_read_only"
  fi
  if ((demo_status == 0)); then
    heading "the shop on the target (PostgreSQL ${target_major})"
    shop_counts "${target_url}"
    heading "pgcourier verify --source ${source_url}/shop --target ${target_url}/shop"
    set +e
    "${pgcourier}" verify --source "${source_url}/shop" --target "${target_url}/shop"
    demo_status=$?
    set -e
  fi
fi

exit "${demo_status}"

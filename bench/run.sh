#!/usr/bin/env bash
# pgcourier's benchmark: pgcourier migrate side by side with its peers on the
# same two local PostgreSQL 15 servers, in one run, as ratios.
#
#   bench/run.sh [--scale N] [--jobs N] [--rounds N] [--keep] [--timeout SECONDS]
#                [--tools LIST] [--no-build]
#
#   --scale N          dataset size (bench/generate.sh): pgbench scale N plus a
#                      proportional e-commerce schema; default 100 (~1.9 GB)
#   --jobs N           parallelism given to every tool; default 2
#   --rounds N         run every tool N times, interleaved (round r starts
#                      with the r-th tool), and report the median; default 1
#   --keep             leave the servers running and the temp dir in place
#   --timeout SECONDS  limit for each step (dataset load, each tool run, each
#                      verification); default 3600
#   --tools LIST       comma-separated subset of pgcourier,pg_dump,pgcopydb,floor
#                      (default: all four, in that order)
#   --no-build         use build-bench/pgcourier as it is
#
# Needs root or the packages of scripts/setup.sh and bench/setup.sh. See
# bench/README.md for what is measured and how to read the output. Results go
# to bench/results/<date>-scale<N>-jobs<N>.json. Exit status 0 when every
# tool ran and its copy verified, 1 otherwise, 2 for a usage error.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$(pwd)"
# shellcheck source=scripts/pg-bindirs.sh
source scripts/pg-bindirs.sh

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"; }
die() { printf 'bench/run.sh: error: %s\n' "$*" >&2; exit 1; }
usage_error() { printf 'bench/run.sh: %s\n' "$*" >&2; exit 2; }
heading() { printf '\n==> %s\n' "$*"; }

scale=100
jobs=2
rounds=1
keep=0
step_timeout=3600
tools="pgcourier,pg_dump,pgcopydb,floor"
build=1
while (($# > 0)); do
  case "$1" in
    --scale) scale="${2:?--scale needs a value}"; shift ;;
    --jobs) jobs="${2:?--jobs needs a value}"; shift ;;
    --rounds) rounds="${2:?--rounds needs a value}"; shift ;;
    --keep) keep=1 ;;
    --timeout) step_timeout="${2:?--timeout needs a value}"; shift ;;
    --tools) tools="${2:?--tools needs a value}"; shift ;;
    --no-build) build=0 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench/run.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
[[ "${scale}" =~ ^[1-9][0-9]*$ ]] || usage_error "--scale must be a positive integer"
[[ "${jobs}" =~ ^[1-9][0-9]*$ ]] || usage_error "--jobs must be a positive integer"
[[ "${rounds}" =~ ^[1-9][0-9]*$ ]] || usage_error "--rounds must be a positive integer"
[[ "${step_timeout}" =~ ^[1-9][0-9]*$ ]] || usage_error "--timeout must be a positive integer"
IFS=',' read -r -a tool_list <<<"${tools}"
declare -A seen_tool=()
for tool in "${tool_list[@]}"; do
  case "${tool}" in
    pgcourier | pg_dump | pgcopydb | floor) ;;
    *) usage_error "unknown tool ${tool} in --tools (pgcourier, pg_dump, pgcopydb, floor)" ;;
  esac
  [[ -z "${seen_tool[${tool}]:-}" ]] || usage_error "${tool} is named twice in --tools (use --rounds)"
  seen_tool["${tool}"]=1
done

# The servers are reached only through the URLs below.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGPASSFILE \
  PGSERVICE PGSERVICEFILE PGOPTIONS PGSSLMODE PGTARGETSESSIONATTRS

# --- tools -------------------------------------------------------------------

heading "setup: bench/setup.sh"
bash bench/setup.sh | tail -n 3
pgcourier="${repo}/build-bench/pgcourier"
if ((build)); then
  heading "build: scripts/build.sh build-bench"
  if ! bash scripts/build.sh build-bench >/tmp/pgcourier-bench-build.log 2>&1; then
    tail -n 30 /tmp/pgcourier-bench-build.log >&2
    die "the build failed (log: /tmp/pgcourier-bench-build.log)"
  fi
fi
[[ -x "${pgcourier}" ]] || die "${pgcourier} does not exist (run without --no-build)"
# What was measured: the commit, and whether src/ or cli/ differed from it,
# at the time of the build (others may commit while the benchmark runs).
git_commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD -- src cli 2>/dev/null || git_commit+="+uncommitted"
[[ -z "$(git status --porcelain -- src cli 2>/dev/null)" ]] || [[ "${git_commit}" == *+uncommitted ]] ||
  git_commit+="+untracked"
if ((!build)); then
  git_commit+=" (--no-build: binary of $(date -u -r "${pgcourier}" +%Y-%m-%dT%H:%MZ))"
fi

bindir="$(pgc_bindir 15)"
[[ -n "${bindir}" ]] || die "no PostgreSQL 15 found (run scripts/setup.sh)"
psql_bin="${bindir}/psql"
# pgcopydb runs pg_dump and pg_restore from PATH: PostgreSQL 15's.
export PATH="${bindir}:${PATH}"
command -v pgcopydb >/dev/null || die "pgcopydb is missing (run bench/setup.sh)"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (run bench/setup.sh)"

if [[ "$(id -u)" -eq 0 ]]; then
  id postgres >/dev/null 2>&1 || die "running as root, but there is no postgres user to run the servers"
  as_server_user() { runuser -u postgres -- "$@"; }
else
  as_server_user() { "$@"; }
fi

# --- temp dir and servers ----------------------------------------------------

tmp="$(mktemp -d /var/tmp/pgcourier-bench.XXXXXX)"
chmod 755 "${tmp}"
[[ "$(id -u)" -ne 0 ]] || chown postgres: "${tmp}"
declare -a started_dirs=()

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  local rc=$?
  if ((keep)); then
    echo
    echo "--keep: servers still running, files in ${tmp}"
    echo "    source: ${psql_bin} postgresql://postgres@127.0.0.1:${source_port:-?}/bench"
    echo "    target: ${psql_bin} postgresql://postgres@127.0.0.1:${target_port:-?}/postgres"
    local dir
    for dir in "${started_dirs[@]}"; do
      echo "    stop: $(if [[ "$(id -u)" -eq 0 ]]; then printf 'runuser -u postgres -- '; fi)${bindir}/pg_ctl -D ${dir} stop"
    done
    echo "    then: rm -rf ${tmp}"
    return "${rc}"
  fi
  local dir
  for dir in "${started_dirs[@]}"; do
    as_server_user "${bindir}/pg_ctl" -D "${dir}" -t 60 -m fast stop >/dev/null 2>&1 ||
      as_server_user "${bindir}/pg_ctl" -D "${dir}" -m immediate stop >/dev/null 2>&1 || true
  done
  rm -rf "${tmp}"
  return "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

read -r source_port target_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
')

# Identical settings on both servers; the source also gets wal_level=logical.
common_settings=(
  "shared_buffers = 512MB"
  "max_wal_size = 4GB"
  "checkpoint_timeout = 30min"
  "max_connections = 100"
  "fsync = on"
)

start_server() {
  local name="$1" port="$2"
  shift 2
  local data="${tmp}/${name}"
  as_server_user "${bindir}/initdb" -D "${data}" -A trust -U postgres --encoding=UTF8 \
    --locale=C >"${tmp}/${name}-initdb.log" 2>&1 ||
    { cat "${tmp}/${name}-initdb.log" >&2; die "initdb for the ${name} server failed"; }
  {
    echo "# bench/run.sh"
    echo "listen_addresses = '127.0.0.1'"
    echo "port = ${port}"
    echo "unix_socket_directories = '${tmp}'"
    local setting
    for setting in "$@"; do echo "${setting}"; done
  } >>"${data}/postgresql.conf"
  started_dirs+=("${data}")
  as_server_user "${bindir}/pg_ctl" -D "${data}" -w -t 120 -l "${tmp}/${name}.log" start >/dev/null ||
    { cat "${tmp}/${name}.log" >&2 || true; die "the ${name} server did not start"; }
}

heading "starting two PostgreSQL 15 servers in ${tmp}"
start_server source "${source_port}" "${common_settings[@]}" "wal_level = logical"
start_server target "${target_port}" "${common_settings[@]}"
src="postgresql://postgres@127.0.0.1:${source_port}"
tgt="postgresql://postgres@127.0.0.1:${target_port}"
echo "    source ${src}  target ${tgt}"

psql_run() { timeout -k 10 "${step_timeout}" "${psql_bin}" -X -q -v ON_ERROR_STOP=1 "$@"; }

# --- dataset -----------------------------------------------------------------

heading "dataset: bench/generate.sh ${scale} (source database \"bench\")"
gen_started="$(date +%s.%N)"
timeout -k 30 "${step_timeout}" bash bench/generate.sh "${scale}" "${source_port}" bench ||
  die "loading the dataset failed or took longer than ${step_timeout} s"
gen_seconds="$(python3 -c "import sys,time; print(f'{time.time() - float(sys.argv[1]):.1f}')" "${gen_started}")"
source_bytes="$(psql_run -At -d "${src}/bench" -c "SELECT pg_database_size('bench')")"
echo "    dataset loaded in ${gen_seconds} s"

# --- verification --------------------------------------------------------------

# User tables of the source, largest first (the floor copies them in this
# order).
psql_run -At -d "${src}/bench" -c "
  SELECT format('%I.%I', n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r' AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
    AND n.nspname <> 'pgcopydb'
  ORDER BY pg_table_size(c.oid) DESC, 1" >"${tmp}/tables.txt"
echo "    $(wc -l <"${tmp}/tables.txt") tables"

# The fingerprint of a database: per table the row count and the sum of a
# 64-bit hash of every row's text form, the sequences' values, and the
# number of indexes and of constraints per kind in user schemas.
user_schemas="n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' AND n.nspname <> 'pgcopydb'"
{
  echo "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres';"
  echo "SET extra_float_digits = 1; SET statement_timeout = 0;"
  while IFS= read -r table; do
    echo "SELECT 'table ${table//\'/\'\'}', count(*), coalesce(sum(hashtextextended(t::text, 0)::numeric), 0) FROM ONLY ${table} t;"
  done <"${tmp}/tables.txt"
  echo "SELECT 'sequence ' || format('%I.%I', schemaname, sequencename), coalesce(last_value::text, 'unset'), ''
        FROM pg_sequences WHERE ${user_schemas//n.nspname/schemaname} ORDER BY 1;"
  echo "SELECT 'indexes', count(*), count(*) FILTER (WHERE i.indisvalid)
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE ${user_schemas};"
  echo "SELECT 'constraints ' || con.contype::text, count(*), count(*) FILTER (WHERE con.convalidated)
        FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace
        WHERE ${user_schemas} GROUP BY con.contype ORDER BY 1;"
} >"${tmp}/fingerprint.sql"

fingerprint() {  # URL OUTFILE
  psql_run -At -F ' | ' -d "$1" -f "${tmp}/fingerprint.sql" >"$2"
}

heading "fingerprinting the source (also warms its cache for every tool alike)"
fp_started="$(date +%s)"
fingerprint "${src}/bench" "${tmp}/source.fingerprint" || die "fingerprinting the source failed"
echo "    $(grep -c '^table ' "${tmp}/source.fingerprint") tables in $(($(date +%s) - fp_started)) s"

# --- timing ----------------------------------------------------------------------

# timed NAME CMD...: runs CMD under GNU time and the step timeout, output in
# $tmp/NAME.out/.err; sets t_wall (seconds) and t_rss_kb, returns CMD's status.
timed() {
  local name="$1"
  shift
  local status=0
  /usr/bin/time -v -o "${tmp}/${name}.time" timeout -k 30 "${step_timeout}" "$@" \
    >"${tmp}/${name}.out" 2>"${tmp}/${name}.err" || status=$?
  read -r t_wall t_rss_kb < <(python3 - "${tmp}/${name}.time" <<'PY'
import sys
wall, rss = 0.0, 0
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("Elapsed (wall clock) time"):
        parts = line.rsplit(" ", 1)[1].split(":")
        wall = sum(float(p) * 60 ** i for i, p in enumerate(reversed(parts)))
    elif line.startswith("Maximum resident set size"):
        rss = int(line.rsplit(" ", 1)[1])
print(f"{wall:.2f} {rss}")
PY
)
  if ((status != 0)); then
    echo "    ${name} exited with status ${status}$( ((status == 124)) && echo " (timed out after ${step_timeout} s)"); last lines:"
    tail -n 15 "${tmp}/${name}.err" | sed 's/^/      /'
  fi
  return "${status}"
}

# Results, one line per run: round, tool, exit status, wall s, peak RSS kB,
# verified, parts, 1-minute load average before and after the run.
results="${tmp}/results.tsv"
: >"${results}"

before_run() {  # DB: a fresh target and a checkpoint on both servers
  psql_run -d "${tgt}/postgres" -c "SET client_min_messages = warning" \
    -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)"
  psql_run -d "${src}/postgres" -c "CHECKPOINT"
  psql_run -d "${tgt}/postgres" -c "CHECKPOINT"
  sync
  load_before="$(cut -d ' ' -f 1 /proc/loadavg)"
  round_label=""
  ((rounds == 1)) || round_label=" (round ${round} of ${rounds})"
}

after_run() {  # TOOL DB EXIT WALL RSS_KB PARTS
  local tool="$1" db="$2" exit_code="$3" wall="$4" rss="$5" parts="$6"
  local verified=no
  if [[ "${exit_code}" == 0 ]]; then
    local fp="${tmp}/${tool}-r${round}"
    if fingerprint "${tgt}/${db}" "${fp}.fingerprint" 2>"${fp}.fingerprint.err" &&
      diff -u "${tmp}/source.fingerprint" "${fp}.fingerprint" >"${fp}.diff"; then
      verified=yes
    else
      echo "    ${tool}: the copy does NOT match the source:"
      { cat "${fp}.fingerprint.err"; head -n 20 "${fp}.diff"; } | sed 's/^/      /'
    fi
  fi
  local load_after
  load_after="$(cut -d ' ' -f 1 /proc/loadavg)"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "${round}" "${tool}" "${exit_code}" "${wall}" "${rss}" \
    "${verified}" "${parts}" "${load_before}" "${load_after}" >>"${results}"
  printf '    %s%s: exit %s, %s s, peak RSS %s MB, verified %s\n' "${tool}" \
    "$( ((rounds == 1)) || echo " (round ${round})")" "${exit_code}" "${wall}" \
    "$((rss / 1024))" "${verified}"
  psql_run -d "${tgt}/postgres" -c "DROP DATABASE IF EXISTS ${db} WITH (FORCE)"
}

max() { if (($1 > $2)); then echo "$1"; else echo "$2"; fi; }
add() { python3 -c "import sys; print(f'{float(sys.argv[1]) + float(sys.argv[2]):.2f}')" "$1" "$2"; }

# --- the tools ---------------------------------------------------------------------

run_pgcourier() {
  local db=bench_pgcourier
  before_run "${db}"
  rm -rf "${tmp}/pgcourier-work"
  heading "pgcourier migrate --jobs ${jobs}${round_label}"
  local rc=0
  timed "pgcourier-r${round}" "${pgcourier}" migrate --source "${src}/bench" --target "${tgt}/${db}" \
    --jobs "${jobs}" --dir "${tmp}/pgcourier-work" --json || rc=$?
  after_run pgcourier "${db}" "${rc}" "${t_wall}" "${t_rss_kb}" "json:${tmp}/pgcourier-r${round}.out"
}

run_pg_dump() {
  local db=bench_pgdump
  before_run "${db}"
  rm -rf "${tmp}/dump"
  psql_run -d "${tgt}/postgres" -c "CREATE DATABASE ${db}"
  heading "pg_dump -Fd -j ${jobs} + pg_restore -j ${jobs}${round_label}"
  local rc=0 wall rss dump_wall dump_size=0
  timed "pg_dump-r${round}" "${bindir}/pg_dump" -Fd -j "${jobs}" -f "${tmp}/dump" -d "${src}/bench" || rc=$?
  dump_wall="${t_wall}" rss="${t_rss_kb}"
  if ((rc == 0)); then
    dump_size="$(du -sb "${tmp}/dump" | cut -f 1)"
    timed "pg_restore-r${round}" "${bindir}/pg_restore" -j "${jobs}" --exit-on-error -d "${tgt}/${db}" \
      "${tmp}/dump" || rc=$?
    wall="$(add "${dump_wall}" "${t_wall}")"
    rss="$(max "${rss}" "${t_rss_kb}")"
    after_run pg_dump "${db}" "${rc}" "${wall}" "${rss}" \
      "pg_dump=${dump_wall};pg_restore=${t_wall};dump_bytes=${dump_size}"
  else
    after_run pg_dump "${db}" "${rc}" "${dump_wall}" "${rss}" "pg_dump=${dump_wall}"
  fi
  rm -rf "${tmp}/dump"
}

run_pgcopydb() {
  local db=bench_pgcopydb
  before_run "${db}"
  rm -rf "${tmp}/pgcopydb-work"
  psql_run -d "${tgt}/postgres" -c "CREATE DATABASE ${db}"
  heading "pgcopydb clone --table-jobs ${jobs} --index-jobs ${jobs}${round_label}"
  local rc=0
  timed "pgcopydb-r${round}" pgcopydb clone --source "${src}/bench" --target "${tgt}/${db}" \
    --table-jobs "${jobs}" --index-jobs "${jobs}" --dir "${tmp}/pgcopydb-work" || rc=$?
  after_run pgcopydb "${db}" "${rc}" "${t_wall}" "${t_rss_kb}" ""
  rm -rf "${tmp}/pgcopydb-work"
}

run_floor() {
  local db=bench_floor
  before_run "${db}"
  rm -rf "${tmp}/floor"
  mkdir -p "${tmp}/floor"
  psql_run -d "${tgt}/postgres" -c "CREATE DATABASE ${db}"
  heading "floor: COPY | COPY per table (-P ${jobs}), then post-data pg_restore -j ${jobs}${round_label}"
  # Untimed: the empty tables.
  timeout -k 10 "${step_timeout}" "${bindir}/pg_dump" -Fc --schema-only -f "${tmp}/floor/schema.dump" \
    -d "${src}/bench"
  timeout -k 10 "${step_timeout}" "${bindir}/pg_restore" --section=pre-data --exit-on-error \
    -d "${tgt}/${db}" "${tmp}/floor/schema.dump"
  # Timed: the data (and the sequences' values, a few statements)...
  cat >"${tmp}/floor/copy-one.sh" <<EOF
#!/usr/bin/env bash
set -euo pipefail
"${psql_bin}" -X -q -v ON_ERROR_STOP=1 -d "${src}/bench" -c "COPY \$1 TO STDOUT" |
  "${psql_bin}" -X -q -v ON_ERROR_STOP=1 -d "${tgt}/${db}" -c "COPY \$1 FROM STDIN"
EOF
  cat >"${tmp}/floor/data.sh" <<EOF
#!/usr/bin/env bash
set -euo pipefail
xargs -d '\n' -n 1 -P "${jobs}" bash "${tmp}/floor/copy-one.sh" <"${tmp}/tables.txt"
"${psql_bin}" -X -q -At -v ON_ERROR_STOP=1 -d "${src}/bench" -c "
  SELECT format('SELECT pg_catalog.setval(%L, %s, true);', format('%I.%I', schemaname, sequencename), last_value)
  FROM pg_sequences WHERE last_value IS NOT NULL" |
  "${psql_bin}" -X -q -v ON_ERROR_STOP=1 -d "${tgt}/${db}" >/dev/null
EOF
  local rc=0 data_wall data_rss wall rss
  timed "floor-data-r${round}" bash "${tmp}/floor/data.sh" || rc=$?
  data_wall="${t_wall}" data_rss="${t_rss_kb}"
  if ((rc == 0)); then
    # ... and the indexes and constraints.
    timed "floor-index-r${round}" "${bindir}/pg_restore" --section=post-data -j "${jobs}" --exit-on-error \
      -d "${tgt}/${db}" "${tmp}/floor/schema.dump" || rc=$?
    wall="$(add "${data_wall}" "${t_wall}")"
    rss="$(max "${data_rss}" "${t_rss_kb}")"
    after_run floor "${db}" "${rc}" "${wall}" "${rss}" "data=${data_wall};indexes=${t_wall}"
  else
    after_run floor "${db}" "${rc}" "${data_wall}" "${data_rss}" "data=${data_wall}"
  fi
  rm -rf "${tmp}/floor"
}

bench_started="$(date +%s)"
# Round r starts with the r-th tool (and wraps around), so that no tool is
# always first or always follows the same one.
n_tools=${#tool_list[@]}
for ((round = 1; round <= rounds; round++)); do
  ((rounds == 1)) || heading "round ${round} of ${rounds}"
  for ((i = 0; i < n_tools; i++)); do
    "run_${tool_list[$(((round - 1 + i) % n_tools))]}"
  done
done
echo
echo "    all tool runs took $(($(date +%s) - bench_started)) s"

# --- report ------------------------------------------------------------------

mkdir -p bench/results
# A run of some of the tools gets their names in the file name, so that it
# does not overwrite the full run of the day.
suffix=""
[[ "${tools}" == "pgcourier,pg_dump,pgcopydb,floor" ]] || suffix="-${tools//,/-}"
out="bench/results/$(date -u +%Y-%m-%d)-scale${scale}-jobs${jobs}${suffix}.json"
# A second run of the day keeps the first: its file gets the time too.
[[ ! -e "${out}" ]] || out="${out%.json}-$(date -u +%H%M).json"
disk_dev="$(df --output=source "${tmp}" | tail -n 1)"
python3 bench/report.py \
  --results "${results}" --out "${out}" \
  --scale "${scale}" --jobs "${jobs}" --rounds "${rounds}" --generate-seconds "${gen_seconds}" \
  --source-bytes "${source_bytes}" --source-fingerprint "${tmp}/source.fingerprint" \
  --pgcourier-version "$("${pgcourier}" --version 2>&1 | head -n 1)" \
  --git-commit "${git_commit}" \
  --postgres-version "$(psql_run -At -d "${src}/postgres" -c 'SELECT version()')" \
  --pg-dump-version "$("${bindir}/pg_dump" --version)" \
  --pgcopydb-version "$(pgcopydb --version 2>/dev/null | grep -m 1 '^pgcopydb version' || true)" \
  --disk "${disk_dev} ($(df -h --output=size "${tmp}" | tail -n 1 | tr -d ' '), $(df --output=fstype "${tmp}" | tail -n 1 | tr -d ' '), lsblk ROTA=$(lsblk -dno ROTA "${disk_dev}" 2>/dev/null | tr -d ' ' || echo '?'))" \
  --command "bench/run.sh --scale ${scale} --jobs ${jobs}$( ((rounds == 1)) || echo " --rounds ${rounds}")"
echo
echo "results: ${out}"
# Exit status 1 when any run failed or did not verify (the results are
# written all the same).
if cut -f 3,6 "${results}" | grep -qv $'^0\tyes$'; then
  echo "bench/run.sh: at least one tool failed or did not verify (see above)" >&2
  exit 1
fi

#!/usr/bin/env bash
# pgcourier's benchmark: pgcourier migrate side by side with its peers on the
# same two local PostgreSQL 15 servers, in one run, as ratios.
#
#   bench/run.sh [--dataset NAME] [--scale N] [--tables N] [--table-mb N]
#                [--jobs N] [--rounds N] [--warmup TOOL|none] [--network]
#                [--delay-ms N] [--rate RATE] [--keep] [--timeout SECONDS]
#                [--tools LIST] [--no-build]
#
#   --dataset NAME     pgbench-shop (default), small-tables or big-table
#                      (bench/generate.sh)
#   --scale N          pgbench-shop: pgbench scale N plus a proportional
#                      e-commerce schema; default 100 (~1.9 GB)
#   --tables N         small-tables: the number of tables; default 2000
#   --table-mb N       big-table: the table's size in MB; default 4096
#   --jobs N           parallelism given to every tool; default 2
#   --rounds N         run every tool N times, interleaved (round r starts
#                      with the r-th tool), and report the median; default 1
#   --warmup TOOL      one run of TOOL (any of the tools) before the rounds,
#                      verified but not counted, so that no counted run pays
#                      for the servers' first WAL segments; default floor;
#                      none: no warm-up
#   --network          the tools (and the verifications) reach the servers
#                      over emulated links instead of loopback: each server
#                      in a network namespace of its own, the tools in a
#                      third, one veth pair per server with 127.77.0.x
#                      addresses, every packet delayed --delay-ms in each
#                      direction and each direction capped at --rate
#   --delay-ms N       one-way delay of --network; default 25 (50 ms round trip)
#   --rate RATE        bandwidth cap of --network per direction and link (tc
#                      units); default 1gbit
#   --keep             leave the servers running and the temp dir in place
#   --timeout SECONDS  limit for each step (dataset load, each tool run, each
#                      verification); default 3600
#   --tools LIST       comma-separated subset of pgcourier,pg_dump,pgcopydb,floor
#                      (default: all four, in that order)
#   --no-build         use build-bench/pgcourier as it is
#
# Needs root or the packages of scripts/setup.sh and bench/setup.sh; --network
# needs root (ip netns, tc, iptables). See bench/README.md for what is
# measured and how to read the output. Results go to
# bench/results/<date>-<dataset><size>-jobs<N>[-net...].json. Exit status 0
# when every tool ran, its copy verified and nothing was left behind, 1
# otherwise, 2 for a usage error.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Debian's python3 when there is one: a version manager's shim can take
# seconds to start on a busy machine, and this runs it often.
py="$(command -v /usr/bin/python3 || command -v python3)"
repo="$(pwd)"
# shellcheck source=scripts/pg-bindirs.sh
source scripts/pg-bindirs.sh

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"; }
die() { printf 'bench/run.sh: error: %s\n' "$*" >&2; exit 1; }
usage_error() { printf 'bench/run.sh: %s\n' "$*" >&2; exit 2; }
heading() { printf '\n==> %s\n' "$*"; }

command_line="bench/run.sh${*:+ $*}"
dataset=pgbench-shop
scale=100
tables=2000
table_mb=4096
jobs=2
rounds=1
warmup=floor
network=0
delay_ms=25
rate=1gbit
keep=0
step_timeout=3600
tools="pgcourier,pg_dump,pgcopydb,floor"
build=1
while (($# > 0)); do
  case "$1" in
    --dataset) dataset="${2:?--dataset needs a value}"; shift ;;
    --scale) scale="${2:?--scale needs a value}"; shift ;;
    --tables) tables="${2:?--tables needs a value}"; shift ;;
    --table-mb) table_mb="${2:?--table-mb needs a value}"; shift ;;
    --warmup) warmup="${2:?--warmup needs a value}"; shift ;;
    --network) network=1 ;;
    --delay-ms) delay_ms="${2:?--delay-ms needs a value}"; shift ;;
    --rate) rate="${2:?--rate needs a value}"; shift ;;
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
[[ "${tables}" =~ ^[1-9][0-9]*$ ]] || usage_error "--tables must be a positive integer"
[[ "${table_mb}" =~ ^[1-9][0-9]*$ ]] || usage_error "--table-mb must be a positive integer"
[[ "${delay_ms}" =~ ^[0-9]+$ ]] || usage_error "--delay-ms must be a whole number of milliseconds"
[[ "${rate}" =~ ^[1-9][0-9]*(bit|kbit|mbit|gbit)$ ]] || usage_error "--rate must be like 100mbit or 1gbit"
case "${dataset}" in
  pgbench-shop) size="${scale}" dataset_label="scale${scale}" ;;
  small-tables) size="${tables}" dataset_label="small-tables${tables}" ;;
  big-table) size="${table_mb}" dataset_label="big-table${table_mb}mb" ;;
  *) usage_error "unknown dataset ${dataset} (pgbench-shop, small-tables, big-table)" ;;
esac
case "${warmup}" in
  none | pgcourier | pg_dump | pgcopydb | floor) ;;
  *) usage_error "--warmup must be one of pgcourier, pg_dump, pgcopydb, floor, none" ;;
esac
if ((network)) && [[ "$(id -u)" -ne 0 ]]; then
  usage_error "--network needs root (it creates network namespaces)"
fi
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
needs_pgcourier=0
[[ ",${tools},${warmup}," != *,pgcourier,* ]] || needs_pgcourier=1
((needs_pgcourier)) || build=0
if ((build)); then
  heading "build: scripts/build.sh build-bench"
  if ! bash scripts/build.sh build-bench >/tmp/pgcourier-bench-build.log 2>&1; then
    tail -n 30 /tmp/pgcourier-bench-build.log >&2
    die "the build failed (log: /tmp/pgcourier-bench-build.log)"
  fi
fi
((!needs_pgcourier)) || [[ -x "${pgcourier}" ]] || die "${pgcourier} does not exist (run without --no-build)"
# What was measured: the commit, and whether src/ or cli/ differed from it,
# at the time of the build (others may commit while the benchmark runs).
git_commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD -- src cli 2>/dev/null || git_commit+="+uncommitted"
[[ -z "$(git status --porcelain -- src cli 2>/dev/null)" ]] || [[ "${git_commit}" == *+uncommitted ]] ||
  git_commit+="+untracked"
if ((!build && needs_pgcourier)); then
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

# --- temp dir, CPU accounting, network and servers ---------------------------

tmp="$(mktemp -d /var/tmp/pgcourier-bench.XXXXXX)"
chmod 755 "${tmp}"
[[ "$(id -u)" -ne 0 ]] || chown postgres: "${tmp}"
declare -a started_dirs=()

# CPU accounting: a cgroup v2 of its own for each server, for the clients
# (tools and verifications) and, with --network, for the packet delayers,
# when this user may create them (root with a cgroup2 mount); cpu.stat
# counts every process ever in the group. Otherwise the servers are read from
# /proc (bench/cpu.py) and the clients from /usr/bin/time.
cg=""
cg_mount="$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)"
if [[ -n "${cg_mount}" && -w "${cg_mount}" ]] &&
  mkdir "${cg_mount}/pgcourier-bench.$$" 2>/dev/null; then
  cg="${cg_mount}/pgcourier-bench.$$"
  mkdir "${cg}/source" "${cg}/target" "${cg}/client" "${cg}/network"
fi
# in_cgroup NAME CMD...: runs CMD (exec) in the bench's cgroup NAME, when there is one.
in_cgroup() {
  local name="$1"
  shift
  if [[ -n "${cg}" ]]; then
    bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "${cg}/${name}" "$@"
  else
    "$@"
  fi
}
# cpu_now: the cumulative CPU seconds of the source, the target and the
# clients (0 for the clients without a cgroup: /usr/bin/time has them).
cpu_now() {
  if [[ -n "${cg}" ]]; then
    "${py}" bench/cpu.py "cgroup:${cg}/source" "cgroup:${cg}/target" "cgroup:${cg}/client"
  else
    "${py}" bench/cpu.py "postmaster:${tmp}/source" "postmaster:${tmp}/target" none
  fi
}

# --network: namespaces pgcb<pid>-tool, -src and -tgt; veth pairs
# tool 127.77.0.1 <-> source 127.77.0.2 and tool 127.77.0.5 <-> target
# 127.77.0.6 (loopback addresses, inside these namespaces only: each
# namespace's lo keeps only 127.0.0.1/32, and route_localnet lets 127/8
# travel on the veths); a tbf rate cap on each veth end; and the packets
# entering each namespace from a veth held --delay-ms by bench/delay.py
# (NFQUEUE: this kernel may lack netem), so each direction is delayed once.
# Delaying on the way in, not out, matters: a packet held on its way out
# still counts against the sending socket's small-queue limit, which then
# throttles TCP to a few packets per delay.
ns_prefix="pgcb$$"
declare -a made_namespaces=() delay_pids=()
in_tool_ns=()
net_setup() {
  local ns
  for ns in tool src tgt; do
    ip netns add "${ns_prefix}-${ns}"
    made_namespaces+=("${ns_prefix}-${ns}")
    ip -n "${ns_prefix}-${ns}" link set lo up
    ip -n "${ns_prefix}-${ns}" addr del 127.0.0.1/8 dev lo
    ip -n "${ns_prefix}-${ns}" addr add 127.0.0.1/32 dev lo
    ip netns exec "${ns_prefix}-${ns}" sysctl -qw net.ipv4.conf.all.route_localnet=1
  done
  local side tool_end server_end tool_addr server_addr
  for side in src tgt; do
    tool_end="${ns_prefix}${side:0:1}0" server_end="${ns_prefix}${side:0:1}1"
    if [[ "${side}" == src ]]; then tool_addr=127.77.0.1 server_addr=127.77.0.2; else
      tool_addr=127.77.0.5 server_addr=127.77.0.6; fi
    ip link add "${tool_end}" netns "${ns_prefix}-tool" type veth peer name "${server_end}" \
      netns "${ns_prefix}-${side}"
    ip -n "${ns_prefix}-tool" addr add "${tool_addr}/30" dev "${tool_end}"
    ip -n "${ns_prefix}-${side}" addr add "${server_addr}/30" dev "${server_end}"
    ip -n "${ns_prefix}-tool" link set "${tool_end}" up
    ip -n "${ns_prefix}-${side}" link set "${server_end}" up
    tc -n "${ns_prefix}-tool" qdisc add dev "${tool_end}" root tbf rate "${rate}" burst 256kb latency 500ms
    tc -n "${ns_prefix}-${side}" qdisc add dev "${server_end}" root tbf rate "${rate}" burst 256kb latency 500ms
    ip netns exec "${ns_prefix}-tool" iptables-legacy -A INPUT -i "${tool_end}" -j NFQUEUE --queue-num 0
    ip netns exec "${ns_prefix}-${side}" iptables-legacy -A INPUT -i "${server_end}" -j NFQUEUE --queue-num 0
  done
  if ((delay_ms > 0)); then
    for ns in tool src tgt; do
      # Reniced: it stands for a network, which does not wait for a CPU.
      in_cgroup network ip netns exec "${ns_prefix}-${ns}" nice -n -15 "${py}" bench/delay.py 0 "${delay_ms}" \
        >"${tmp}/delay-${ns}.out" 2>"${tmp}/delay-${ns}.err" &
    done
    for ns in tool src tgt; do
      local waited=0
      until grep -q ready "${tmp}/delay-${ns}.out" 2>/dev/null; do
        ((waited++ < 100)) || die "bench/delay.py did not start in ${ns_prefix}-${ns}: $(cat "${tmp}/delay-${ns}.err")"
        sleep 0.1
      done
      # Its own pid ($! is the subshell that started it).
      delay_pids+=("$(awk '/^ready/ { print $2 }' "${tmp}/delay-${ns}.out")")
    done
  else
    for ns in tool src tgt; do ip netns exec "${ns_prefix}-${ns}" iptables-legacy -F INPUT; done
  fi
  in_tool_ns=(ip netns exec "${ns_prefix}-tool")
}
net_check() {  # every delayer still running
  local pid
  for pid in "${delay_pids[@]}"; do
    kill -0 "${pid}" 2>/dev/null || die "a packet delayer (bench/delay.py) has stopped: the network is not what it claims"
  done
}

delayers_alive() {
  local pid
  for pid in "${delay_pids[@]}"; do
    ! kill -0 "${pid}" 2>/dev/null || return 0
  done
  return 1
}

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  local rc=$?
  if ((keep)); then
    echo
    echo "--keep: servers still running, files in ${tmp}"
    echo "    source: ${psql_bin} ${asrc:-?}/bench"
    echo "    target: ${psql_bin} ${atgt:-?}/postgres"
    local dir
    for dir in "${started_dirs[@]}"; do
      echo "    stop: $(if [[ "$(id -u)" -eq 0 ]]; then printf 'runuser -u postgres -- '; fi)${bindir}/pg_ctl -D ${dir} stop"
    done
    ((${#made_namespaces[@]} == 0)) || echo "    then: ip netns del ${made_namespaces[*]} (kill ${delay_pids[*]} first)"
    [[ -z "${cg}" ]] || echo "    then: rmdir ${cg}/{source,target,client,network} ${cg}"
    echo "    then: rm -rf ${tmp}"
    return "${rc}"
  fi
  local dir pid ns
  for dir in "${started_dirs[@]}"; do
    as_server_user "${bindir}/pg_ctl" -D "${dir}" -t 60 -m fast stop >/dev/null 2>&1 ||
      as_server_user "${bindir}/pg_ctl" -D "${dir}" -m immediate stop >/dev/null 2>&1 || true
  done
  for pid in "${delay_pids[@]}"; do kill "${pid}" 2>/dev/null || true; done
  # One that was still starting when the bench stopped: the network cgroup
  # holds the delayers only.
  if [[ -n "${cg}" && -s "${cg}/network/cgroup.procs" ]]; then
    while read -r pid; do kill "${pid}" 2>/dev/null || true; done <"${cg}/network/cgroup.procs"
  fi
  local waited=0
  while ((waited++ < 50)) && delayers_alive; do sleep 0.1; done
  # Deleting a namespace deletes its veth ends (and so the pairs).
  for ns in "${made_namespaces[@]}"; do ip netns del "${ns}" 2>/dev/null || true; done
  if [[ -n "${cg}" ]]; then
    rmdir "${cg}/source" "${cg}/target" "${cg}/client" "${cg}/network" "${cg}" 2>/dev/null || echo "bench/run.sh: could not remove ${cg} (a process still in it?)" >&2
  fi
  rm -rf "${tmp}"
  return "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ((network)); then
  heading "network: namespaces ${ns_prefix}-tool/-src/-tgt, ${delay_ms} ms each way, ${rate} per direction"
  command -v iptables-legacy >/dev/null || die "iptables-legacy is missing (run bench/setup.sh)"
  net_setup
fi

read -r source_port target_port < <("${py}" -c '
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
  local name="$1" port="$2" listen="$3" ns="$4"
  shift 4
  local data="${tmp}/${name}"
  as_server_user "${bindir}/initdb" -D "${data}" -A trust -U postgres --encoding=UTF8 \
    --locale=C >"${tmp}/${name}-initdb.log" 2>&1 ||
    { cat "${tmp}/${name}-initdb.log" >&2; die "initdb for the ${name} server failed"; }
  {
    echo "# bench/run.sh"
    echo "listen_addresses = '${listen}'"
    echo "port = ${port}"
    echo "unix_socket_directories = '${tmp}'"
    local setting
    for setting in "$@"; do echo "${setting}"; done
  } >>"${data}/postgresql.conf"
  # The emulated links' addresses (--network) are loopback addresses too.
  echo "host all all 127.0.0.0/8 trust" >>"${data}/pg_hba.conf"
  started_dirs+=("${data}")
  local in_ns=() as_user=()
  [[ -z "${ns}" ]] || in_ns=(ip netns exec "${ns}")
  [[ "$(id -u)" -ne 0 ]] || as_user=(runuser -u postgres --)
  in_cgroup "${name}" "${in_ns[@]}" "${as_user[@]}" "${bindir}/pg_ctl" -D "${data}" -w -t 120 -l "${tmp}/${name}.log" start >/dev/null ||
    { cat "${tmp}/${name}.log" >&2 || true; die "the ${name} server did not start"; }
}

heading "starting two PostgreSQL 15 servers in ${tmp}"
if ((network)); then
  start_server source "${source_port}" 127.77.0.2 "${ns_prefix}-src" "${common_settings[@]}" "wal_level = logical"
  start_server target "${target_port}" 127.77.0.6 "${ns_prefix}-tgt" "${common_settings[@]}"
  src="postgresql://postgres@127.77.0.2:${source_port}"
  tgt="postgresql://postgres@127.77.0.6:${target_port}"
else
  start_server source "${source_port}" 127.0.0.1 "" "${common_settings[@]}" "wal_level = logical"
  start_server target "${target_port}" 127.0.0.1 "" "${common_settings[@]}"
  src="postgresql://postgres@127.0.0.1:${source_port}"
  tgt="postgresql://postgres@127.0.0.1:${target_port}"
fi
# The bench's own statements (loading, checkpoints, dropping, the reference
# fingerprint) go through the servers' Unix sockets: never over --network.
socket_dir="$("${py}" -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "${tmp}")"
asrc="postgresql://postgres@${socket_dir}:${source_port}"
atgt="postgresql://postgres@${socket_dir}:${target_port}"
echo "    source ${src}  target ${tgt}$( ((network)) && echo " (from namespace ${ns_prefix}-tool)")"

psql_run() { timeout -k 10 "${step_timeout}" "${psql_bin}" -X -q -v ON_ERROR_STOP=1 "$@"; }

# --- dataset -----------------------------------------------------------------

heading "dataset: bench/generate.sh --dataset ${dataset} ${size} (source database \"bench\")"
gen_started="$(date +%s.%N)"
BENCH_PG_BINDIR="${bindir}" BENCH_PG_HOST="${tmp}" timeout -k 30 "${step_timeout}" \
  bash bench/generate.sh --dataset "${dataset}" "${size}" "${source_port}" bench ||
  die "loading the dataset failed or took longer than ${step_timeout} s"
gen_seconds="$("${py}" -c "import sys,time; print(f'{time.time() - float(sys.argv[1]):.1f}')" "${gen_started}")"
source_bytes="$(psql_run -At -d "${asrc}/bench" -c "SELECT pg_database_size('bench')")"
echo "    dataset loaded in ${gen_seconds} s"

# --- verification --------------------------------------------------------------

# User tables of the source, largest first (the floor copies them in this
# order).
psql_run -At -d "${asrc}/bench" -c "
  SELECT format('%I.%I', n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r' AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
    AND n.nspname <> 'pgcopydb'
  ORDER BY pg_table_size(c.oid) DESC, 1" >"${tmp}/tables.txt"
n_tables="$(wc -l <"${tmp}/tables.txt")"
echo "    ${n_tables} tables"

# The fingerprint of a database: per table the row count and the sum of a
# 64-bit hash of every row's text form, the sequences' values, and the
# number of indexes and of constraints per kind in user schemas. It is read
# by --jobs sessions at once (the tables dealt round-robin, largest first),
# each sending its tables in statements of at most 200 (UNION ALL): few round
# trips, so that it costs about the same over --network, and never a lock
# on thousands of tables in one transaction. The lines are sorted.
user_schemas="n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' AND n.nspname <> 'pgcopydb'"
"${py}" - "${tmp}/tables.txt" "${tmp}/fingerprint" "${jobs}" "${user_schemas}" <<'PY'
import sys
tables_file, prefix, jobs, user_schemas = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
tables = [line.rstrip("\n") for line in open(tables_file, encoding="utf-8") if line.strip()]
parts = [tables[i::jobs] for i in range(jobs)]
header = ("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres';\n"
          "SET extra_float_digits = 1; SET statement_timeout = 0;\n")
for i, part in enumerate(parts):
    with open(f"{prefix}-{i}.sql", "w", encoding="utf-8") as f:
        f.write(header)
        for start in range(0, len(part), 200):
            f.write("\nUNION ALL\n".join(
                "SELECT 'table {}', count(*)::text, coalesce(sum(hashtextextended(t::text, 0)::numeric), 0)::text"
                " FROM ONLY {} t".format(table.replace("'", "''"), table)
                for table in part[start:start + 200]) + ";\n")
        if i == 0:
            f.write(f"""SELECT 'sequence ' || format('%I.%I', schemaname, sequencename), coalesce(last_value::text, 'unset'), ''
  FROM pg_sequences WHERE {user_schemas.replace('n.nspname', 'schemaname')};
SELECT 'indexes', count(*), count(*) FILTER (WHERE i.indisvalid)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE {user_schemas};
SELECT 'constraints ' || con.contype::text, count(*), count(*) FILTER (WHERE con.convalidated)
  FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace
  WHERE {user_schemas} GROUP BY con.contype;
""")
PY

# fingerprint URL OUTFILE: the --jobs sessions of one database, sorted into OUTFILE.
fingerprint() {
  local i rc=0
  local -a pids=()
  for ((i = 0; i < jobs; i++)); do
    "${psql_bin}" -X -q -v ON_ERROR_STOP=1 -At -F ' | ' -d "$1" -f "${tmp}/fingerprint-${i}.sql" \
      >"$2.part${i}" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "${i}" || rc=1; done
  LC_ALL=C sort "$2".part* >"$2"
  rm -f "$2".part*
  return "${rc}"
}

# The verification a user runs after a tool that does not verify: both
# databases fingerprinted at once (--jobs sessions each), then compared. Run
# by `timed` like a tool (in the tools' namespace with --network).
cat >"${tmp}/verify.sh" <<EOF
#!/usr/bin/env bash
# verify.sh SOURCE_URL TARGET_URL OUT_PREFIX
set -uo pipefail
jobs=${jobs} tmp='${tmp}' psql_bin='${psql_bin}'
$(declare -f fingerprint)
fingerprint "\$1" "\$3.source.fingerprint" & source_pid=\$!
fingerprint "\$2" "\$3.fingerprint"; target_rc=\$?
wait "\${source_pid}" || exit 3
((target_rc == 0)) || exit 4
diff -u "\$3.source.fingerprint" "\$3.fingerprint" >"\$3.diff" || exit 1
EOF

heading "fingerprinting the source (also warms its cache for every tool alike)"
fp_started="$(date +%s)"
fingerprint "${asrc}/bench" "${tmp}/source.fingerprint" || die "fingerprinting the source failed"
echo "    $(grep -c '^table ' "${tmp}/source.fingerprint") tables in $(($(date +%s) - fp_started)) s"

# --- timing ----------------------------------------------------------------------

# timed NAME CMD...: runs CMD under GNU time and the step timeout, in the
# clients' cgroup and (--network) the tools' namespace, output in
# $tmp/NAME.out/.err; sets t_wall (seconds), t_rss_kb and t_cpu (CPU seconds
# of the client, both servers: "client source target") and returns CMD's
# status.
timed() {
  local name="$1"
  shift
  local status=0 before after
  before="$(cpu_now)"
  in_cgroup client /usr/bin/time -v -o "${tmp}/${name}.time" timeout -k 30 "${step_timeout}" \
    "${in_tool_ns[@]}" "$@" >"${tmp}/${name}.out" 2>"${tmp}/${name}.err" || status=$?
  after="$(cpu_now)"
  read -r t_wall t_rss_kb t_cpu < <("${py}" - "${tmp}/${name}.time" "${before}" "${after}" <<'PY'
import sys
wall, rss, rusage = 0.0, 0, 0.0
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("Elapsed (wall clock) time"):
        parts = line.rsplit(" ", 1)[1].split(":")
        wall = sum(float(p) * 60 ** i for i, p in enumerate(reversed(parts)))
    elif line.startswith("Maximum resident set size"):
        rss = int(line.rsplit(" ", 1)[1])
    elif line.startswith(("User time (seconds)", "System time (seconds)")):
        rusage += float(line.rsplit(" ", 1)[1])
src, tgt, client = (a - b for a, b in zip(map(float, sys.argv[3].split()), map(float, sys.argv[2].split())))
# Without a cgroup for the clients, GNU time's rusage of the command's tree.
client = client if client > 0 else rusage
print(f"{wall:.2f} {rss} {client:.2f},{src:.2f},{tgt:.2f}")
PY
)
  if ((status != 0)); then
    echo "    ${name} exited with status ${status}$( ((status == 124)) && echo " (timed out after ${step_timeout} s)"); last lines:"
    tail -n 15 "${tmp}/${name}.err" | sed 's/^/      /'
  fi
  return "${status}"
}

# Results, one line per run: round (0: the warm-up), tool, exit status, wall
# s, peak RSS kB, verified, parts, 1-minute load average before and after the
# run, CPU s of the run (client,source,target), the verification's wall s and
# CPU s (client,source,target), what was left behind.
results="${tmp}/results.tsv"
: >"${results}"

before_run() {  # DB: a fresh target and a checkpoint on both servers
  psql_run -d "${atgt}/postgres" -c "SET client_min_messages = warning" \
    -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)"
  psql_run -d "${asrc}/postgres" -c "CHECKPOINT"
  psql_run -d "${atgt}/postgres" -c "CHECKPOINT"
  sync
  load_before="$(cut -d ' ' -f 1 /proc/loadavg)"
  run_cpu="0,0,0"
  if ((round == 0)); then
    round_label=" (warm-up, not counted)"
  else
    round_label=""
    ((rounds == 1)) || round_label=" (round ${round} of ${rounds})"
  fi
}

# add_cpu A B: the sum of two "client,source,target" triples.
add_cpu() {
  "${py}" -c "import sys; print(','.join(f'{float(a) + float(b):.2f}' for a, b in zip(*(x.split(',') for x in sys.argv[1:]))))" "$1" "$2"
}

# leftovers DB: what a run left on the servers that the next round would
# trip on: replication slots and publications on the source, subscriptions
# on the target (which keep DROP DATABASE from dropping DB).
leftovers() {
  psql_run -At -d "${asrc}/bench" -c "
    SELECT string_agg(x, ' ') FROM (
      SELECT 'slot:' || slot_name AS x FROM pg_replication_slots
      UNION ALL SELECT 'publication:' || pubname FROM pg_publication) s"
  psql_run -At -d "${atgt}/postgres" -c "
    SELECT string_agg('subscription:' || s.subname || '@' || d.datname, ' ')
    FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid"
}

# drop_leftovers: removes by hand what `leftovers` lists (the servers are
# the bench's own): subscriptions detached from their slots first, then
# slots (their walsenders ended) and publications.
drop_leftovers() {
  local sub db
  while IFS='|' read -r sub db; do
    [[ -n "${sub}" ]] || continue
    psql_run -d "${atgt}/${db}" -c "ALTER SUBSCRIPTION \"${sub}\" DISABLE" \
      -c "ALTER SUBSCRIPTION \"${sub}\" SET (slot_name = NONE)" -c "DROP SUBSCRIPTION \"${sub}\"" || true
  done < <(psql_run -At -d "${atgt}/postgres" -c "
    SELECT s.subname, d.datname FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid")
  psql_run -d "${asrc}/bench" -c "
    SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE active_pid IS NOT NULL" \
    -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots" >/dev/null || true
  psql_run -At -d "${asrc}/bench" -c "SELECT format('DROP PUBLICATION %I', pubname) FROM pg_publication" |
    psql_run -d "${asrc}/bench" >/dev/null || true
}

after_run() {  # TOOL DB EXIT WALL RSS_KB PARTS
  local tool="$1" db="$2" exit_code="$3" wall="$4" rss="$5" parts="$6"
  local verified=no verify_wall="" verify_cpu="" left fp="${tmp}/${tool}-r${round}"
  # The CPU of the run up to here: not the verification, nor any cleanup.
  local copy_cpu="${run_cpu}"
  if [[ "${exit_code}" == 0 ]]; then
    local vrc=0
    timed "verify-${tool}-r${round}" bash "${tmp}/verify.sh" "${src}/bench" "${tgt}/${db}" "${fp}" || vrc=$?
    verify_wall="${t_wall}" verify_cpu="${t_cpu}"
    if ((vrc == 0)) && cmp -s "${tmp}/source.fingerprint" "${fp}.source.fingerprint"; then
      verified=yes
    elif ((vrc == 0 || vrc == 1)) && ! cmp -s "${tmp}/source.fingerprint" "${fp}.source.fingerprint"; then
      echo "    ${tool}: the SOURCE differs from its fingerprint before the runs:"
      diff -u "${tmp}/source.fingerprint" "${fp}.source.fingerprint" | head -n 20 | sed 's/^/      /'
    else
      echo "    ${tool}: the copy does NOT match the source (verify.sh status ${vrc}):"
      { tail -n 5 "${tmp}/verify-${tool}-r${round}.err"; head -n 20 "${fp}.diff" 2>/dev/null; } | sed 's/^/      /'
    fi
  fi
  local load_after
  load_after="$(cut -d ' ' -f 1 /proc/loadavg)"
  left="$(leftovers | tr '\n' ' ' | xargs)"
  if [[ -n "${left}" ]]; then
    echo "    ${tool}: LEFT BEHIND on the servers: ${left}; removing it"
    if [[ "${tool}" == pgcourier && -d "${tmp}/pgcourier-work" ]]; then
      timeout -k 10 "${step_timeout}" "${in_tool_ns[@]}" "${pgcourier}" cleanup --dir "${tmp}/pgcourier-work" \
        >"${tmp}/pgcourier-cleanup-r${round}.out" 2>&1 || true
    fi
    drop_leftovers
    [[ -z "$(leftovers | xargs)" ]] || die "could not remove what ${tool} left behind: $(leftovers | xargs)"
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "${round}" "${tool}" "${exit_code}" "${wall}" \
    "${rss}" "${verified}" "${parts}" "${load_before}" "${load_after}" "${copy_cpu}" "${verify_wall}" \
    "${verify_cpu}" "${left}" >>"${results}"
  printf '    %s%s: exit %s, %s s, CPU %s s (client,source,target), peak RSS %s MB, verified %s%s\n' \
    "${tool}" "${round_label}" "${exit_code}" "${wall}" "${copy_cpu}" "$((rss / 1024))" "${verified}" \
    "$([[ -z "${verify_wall}" ]] || echo " (the bench's verification: ${verify_wall} s, CPU ${verify_cpu} s)")"
  psql_run -d "${atgt}/postgres" -c "DROP DATABASE IF EXISTS ${db} WITH (FORCE)"
  ((!network)) || net_check
}

max() { if (($1 > $2)); then echo "$1"; else echo "$2"; fi; }
add() { "${py}" -c "import sys; print(f'{float(sys.argv[1]) + float(sys.argv[2]):.2f}')" "$1" "$2"; }

# --- the tools ---------------------------------------------------------------------

run_pgcourier() {
  local db=bench_pgcourier
  before_run "${db}"
  rm -rf "${tmp}/pgcourier-work"
  # --method copy: the comparison is of one-shot moves (auto, the default,
  # would replicate from this source, which has wal_level = logical).
  heading "pgcourier migrate --method copy --jobs ${jobs}${round_label}"
  local rc=0
  timed "pgcourier-r${round}" "${pgcourier}" migrate --source "${src}/bench" --target "${tgt}/${db}" \
    --method copy --jobs "${jobs}" --dir "${tmp}/pgcourier-work" --json || rc=$?
  run_cpu="${t_cpu}"
  if ((rc != 0)); then  # whatever it made, it removes
    timeout -k 10 "${step_timeout}" "${in_tool_ns[@]}" "${pgcourier}" cleanup --dir "${tmp}/pgcourier-work" \
      >"${tmp}/pgcourier-cleanup-r${round}.out" 2>&1 || true
  fi
  after_run pgcourier "${db}" "${rc}" "${t_wall}" "${t_rss_kb}" "json:${tmp}/pgcourier-r${round}.out"
}

run_pg_dump() {
  local db=bench_pgdump
  before_run "${db}"
  rm -rf "${tmp}/dump"
  psql_run -d "${atgt}/postgres" -c "CREATE DATABASE ${db}"
  heading "pg_dump -Fd -j ${jobs} + pg_restore -j ${jobs}${round_label}"
  local rc=0 wall rss dump_wall dump_size=0
  timed "pg_dump-r${round}" "${bindir}/pg_dump" -Fd -j "${jobs}" -f "${tmp}/dump" -d "${src}/bench" || rc=$?
  dump_wall="${t_wall}" rss="${t_rss_kb}" run_cpu="${t_cpu}"
  if ((rc == 0)); then
    dump_size="$(du -sb "${tmp}/dump" | cut -f 1)"
    timed "pg_restore-r${round}" "${bindir}/pg_restore" -j "${jobs}" --exit-on-error -d "${tgt}/${db}" \
      "${tmp}/dump" || rc=$?
    wall="$(add "${dump_wall}" "${t_wall}")"
    rss="$(max "${rss}" "${t_rss_kb}")"
    run_cpu="$(add_cpu "${run_cpu}" "${t_cpu}")"
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
  psql_run -d "${atgt}/postgres" -c "CREATE DATABASE ${db}"
  # big-table: pgcopydb splits a table into --table-jobs ranges of its key
  # only when told to (pgcourier slices large tables by itself).
  local split=()
  [[ "${dataset}" != big-table ]] || split=(--split-tables-larger-than "$(max 1 $((table_mb / jobs / 2)))MB")
  heading "pgcopydb clone --table-jobs ${jobs} --index-jobs ${jobs}${split[*]:+ ${split[*]}}${round_label}"
  local rc=0
  timed "pgcopydb-r${round}" pgcopydb clone --source "${src}/bench" --target "${tgt}/${db}" \
    --table-jobs "${jobs}" --index-jobs "${jobs}" "${split[@]}" --dir "${tmp}/pgcopydb-work" || rc=$?
  run_cpu="${t_cpu}"
  after_run pgcopydb "${db}" "${rc}" "${t_wall}" "${t_rss_kb}" ""
  rm -rf "${tmp}/pgcopydb-work"
}

run_floor() {
  local db=bench_floor
  before_run "${db}"
  rm -rf "${tmp}/floor"
  mkdir -p "${tmp}/floor"
  psql_run -d "${atgt}/postgres" -c "CREATE DATABASE ${db}"
  heading "floor: COPY | COPY per table (-P ${jobs}), then post-data pg_restore -j ${jobs}${round_label}"
  # Untimed: the empty tables.
  timeout -k 10 "${step_timeout}" "${bindir}/pg_dump" -Fc --schema-only -f "${tmp}/floor/schema.dump" \
    -d "${asrc}/bench"
  timeout -k 10 "${step_timeout}" "${bindir}/pg_restore" --section=pre-data --exit-on-error \
    -d "${atgt}/${db}" "${tmp}/floor/schema.dump"
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
  data_wall="${t_wall}" data_rss="${t_rss_kb}" run_cpu="${t_cpu}"
  if ((rc == 0)); then
    # ... and the indexes and constraints.
    timed "floor-index-r${round}" "${bindir}/pg_restore" --section=post-data -j "${jobs}" --exit-on-error \
      -d "${tgt}/${db}" "${tmp}/floor/schema.dump" || rc=$?
    wall="$(add "${data_wall}" "${t_wall}")"
    rss="$(max "${data_rss}" "${t_rss_kb}")"
    run_cpu="$(add_cpu "${run_cpu}" "${t_cpu}")"
    after_run floor "${db}" "${rc}" "${wall}" "${rss}" "data=${data_wall};indexes=${t_wall}"
  else
    after_run floor "${db}" "${rc}" "${data_wall}" "${data_rss}" "data=${data_wall}"
  fi
  rm -rf "${tmp}/floor"
}

bench_started="$(date +%s)"
# The warm-up: the first run on fresh servers pays for creating their WAL
# segments (about 10 s at scale 100 here), whichever tool it is.
if [[ "${warmup}" != none ]]; then
  round=0
  "run_${warmup}"
fi
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
net_label=""
((!network)) || net_label="-net${delay_ms}ms-${rate}"
out="bench/results/$(date -u +%Y-%m-%d)-${dataset_label}-jobs${jobs}${net_label}${suffix}.json"
# A second run of the day keeps the first: its file gets the time too.
[[ ! -e "${out}" ]] || out="${out%.json}-$(date -u +%H%M).json"
disk_dev="$(df --output=source "${tmp}" | tail -n 1)"
"${py}" bench/report.py \
  --results "${results}" --out "${out}" \
  --dataset "${dataset}" --size "${size}" --jobs "${jobs}" --rounds "${rounds}" \
  --generate-seconds "${gen_seconds}" --warmup "${warmup}" \
  --network "$( ((network)) && echo "${delay_ms} ms each way (${delay_ms}+${delay_ms} ms round trip), ${rate} per direction and link, network namespaces with veth pairs, tbf, NFQUEUE delay")" \
  --network-cpu-seconds "$( ((network)) && [[ -n "${cg}" ]] && "${py}" bench/cpu.py "cgroup:${cg}/network")" \
  --cpu-accounting "$(if [[ -n "${cg}" ]]; then echo "cgroup v2 (${cg_mount})"; else echo "/proc (servers), GNU time (clients)"; fi)" \
  --source-bytes "${source_bytes}" --source-fingerprint "${tmp}/source.fingerprint" \
  --pgcourier-version "$( ((!needs_pgcourier)) || "${pgcourier}" --version 2>&1 | head -n 1)" \
  --git-commit "${git_commit}" \
  --postgres-version "$(psql_run -At -d "${asrc}/postgres" -c 'SELECT version()')" \
  --pg-dump-version "$("${bindir}/pg_dump" --version)" \
  --pgcopydb-version "$(pgcopydb --version 2>/dev/null | grep -m 1 '^pgcopydb version' || true)" \
  --disk "${disk_dev} ($(df -h --output=size "${tmp}" | tail -n 1 | tr -d ' '), $(df --output=fstype "${tmp}" | tail -n 1 | tr -d ' '), lsblk ROTA=$(lsblk -dno ROTA "${disk_dev}" 2>/dev/null | tr -d ' ' || echo '?'))" \
  --command "${command_line}"
echo
echo "results: ${out}"
# Exit status 1 when any run failed, did not verify or left something
# behind (the results are written all the same).
if cut -f 3,6 "${results}" | grep -qv $'^0\tyes$'; then
  echo "bench/run.sh: at least one tool failed or did not verify (see above)" >&2
  exit 1
fi
if cut -f 13 "${results}" | grep -q .; then
  echo "bench/run.sh: at least one run left objects on the servers (removed; see above)" >&2
  exit 1
fi

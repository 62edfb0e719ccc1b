#!/usr/bin/env bash
# pgcourier's replication benchmark: under a steady pgbench load on the
# source, how fast the target catches up after the bulk copy, and how long
# `pgcourier cutover --stop-source-writes` keeps writes stopped; with
# --rollback, also how long `pgcourier rollback` keeps them stopped.
#
#   bench/replication.sh [--scale N] [--rate TPS] [--jobs N] [--rollback] [--no-build]
#                        [--binary PATH]
#                        [--keep-up [--steps "250 500 1000 2000 0"] [--step-seconds S]]
#
#   --scale N      pgbench scale of the source database (default 10)
#   --rate TPS     pgbench's rate limit during the whole run (default 500)
#   --jobs N       pgcourier --jobs (default 2)
#   --rollback     cut over with --keep-rollback (the target with wal_level =
#                  logical too), run pgbench at the same rate on the new
#                  primary for 10 s, then `pgcourier rollback` while it runs:
#                  its write-stop window and phases are reported
#   --no-build     use build-bench/pgcourier as it is
#   --binary PATH  use this pgcourier binary (a RelWithDebInfo build), build nothing
#   --keep-up      measure the write rate the subscription keeps up with
#                  instead of cutting over (below; not with --rollback)
#   --steps LIST   the pgbench rates of --keep-up, 0 for unthrottled
#                  (default "250 500 1000 2000 0")
#   --step-seconds S  how long each step runs (default 20)
#
# Reports the catch-up after the bulk copy, the lag while replication runs
# under the load for 20 s (sampled every 2 s: bounded when the last sample is
# not above the first by more than 1 MB), and the cutover: the write-stop
# window with its phases and the verification after it (from cutover --json);
# with --rollback the same of the rollback (from rollback --json).
#
# With --keep-up, after the catch-up the steady load stops and pgbench runs
# once per step at that rate (-R; 0: as fast as it can) for --step-seconds,
# each step starting from a drained replication (lag under 1 MB). During a
# step, pgcourier status samples the lag and the apply rate about every 2 s;
# a step keeps up when its last lag sample is not above its first by more
# than 1 MB. Reported per step: pgbench's achieved tps, the lag samples, the
# mean apply rate, how long the target took to drain after the step, and the
# load average; the figure is the highest achieved tps of a step that kept
# up. Results go to bench/results/<date>-keepup-scale<N>.json; no cutover.
#
# Two throwaway PostgreSQL 15 servers on 127.0.0.1 (the source with
# wal_level = logical) in a temporary directory under /var/tmp, removed at
# the end. Results go to bench/results/<date>-replication-scale<N>.json.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$(pwd)"
# shellcheck source=scripts/pg-bindirs.sh
source scripts/pg-bindirs.sh

scale=10
rate=500
jobs=2
build=1
rollback=0
pgcourier_binary=""
keep_up=0
steps="250 500 1000 2000 0"
step_seconds=20
while (($# > 0)); do
  case "$1" in
    --keep-up) keep_up=1 ;;
    --steps) steps="${2:?--steps needs a list}"; shift ;;
    --step-seconds) step_seconds="${2:?--step-seconds needs a value}"; shift ;;
    --scale) scale="${2:?--scale needs a value}"; shift ;;
    --rate) rate="${2:?--rate needs a value}"; shift ;;
    --jobs) jobs="${2:?--jobs needs a value}"; shift ;;
    --rollback) rollback=1 ;;
    --no-build) build=0 ;;
    --binary) pgcourier_binary="${2:?--binary needs a path}"; build=0; shift ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) echo "bench/replication.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if ((keep_up && rollback)); then
  echo "bench/replication.sh: --keep-up cuts nothing over, so it has no rollback; drop --rollback or --keep-up" >&2
  exit 2
fi
for step in ${steps}; do
  [[ "${step}" =~ ^[0-9]+$ ]] || { echo "bench/replication.sh: step ${step} is not a rate (0: unthrottled)" >&2; exit 2; }
done
for value in "${scale}" "${rate}" "${jobs}" "${step_seconds}"; do
  [[ "${value}" =~ ^[1-9][0-9]*$ ]] || { echo "bench/replication.sh: ${value} is not a positive integer" >&2; exit 2; }
done

unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGPASSFILE PGSERVICE PGOPTIONS
bindir="$(pgc_bindir 15)"
[[ -n "${bindir}" ]] || { echo "bench/replication.sh: no PostgreSQL 15 (run scripts/setup.sh)" >&2; exit 1; }
pgcourier="${pgcourier_binary:-${repo}/build-bench/pgcourier}"
if ((build)); then
  bash scripts/build.sh build-bench >/tmp/pgcourier-bench-build.log 2>&1 ||
    { tail -n 30 /tmp/pgcourier-bench-build.log >&2; exit 1; }
fi
if [[ "$(id -u)" -eq 0 ]]; then as_server_user() { runuser -u postgres -- "$@"; }; else as_server_user() { "$@"; }; fi

tmp="$(mktemp -d /var/tmp/pgcourier-replbench.XXXXXX)"
chmod 755 "${tmp}"
[[ "$(id -u)" -ne 0 ]] || chown postgres: "${tmp}"
pgbench_pid=""
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  [[ -z "${pgbench_pid}" ]] || kill "${pgbench_pid}" 2>/dev/null || true
  local d
  for d in source target; do
    [[ -f "${tmp}/${d}/postmaster.pid" ]] &&
      as_server_user "${bindir}/pg_ctl" -D "${tmp}/${d}" -m immediate stop >/dev/null 2>&1 || true
  done
  rm -rf "${tmp}"
}
trap cleanup EXIT

read -r source_port target_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')

start() {  # NAME PORT SETTINGS...
  local name="$1" port="$2"
  shift 2
  as_server_user "${bindir}/initdb" -D "${tmp}/${name}" -A trust -U postgres --locale=C >/dev/null
  printf '%s\n' "listen_addresses = '127.0.0.1'" "port = ${port}" \
    "unix_socket_directories = '${tmp}'" "shared_buffers = 512MB" "max_wal_size = 4GB" "$@" \
    >>"${tmp}/${name}/postgresql.conf"
  as_server_user "${bindir}/pg_ctl" -D "${tmp}/${name}" -w -l "${tmp}/${name}.log" start >/dev/null
}
start source "${source_port}" "wal_level = logical" "max_replication_slots = 10" "max_wal_senders = 10"
if ((rollback)); then
  start target "${target_port}" "wal_level = logical" "max_replication_slots = 10" "max_wal_senders = 10"
else
  start target "${target_port}"
fi
src="postgresql://postgres@127.0.0.1:${source_port}"
tgt="postgresql://postgres@127.0.0.1:${target_port}"
psql() { "${bindir}/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }
since() { python3 -c "import sys,time; print(f'{time.time() - float(sys.argv[1]):.2f}')" "$1"; }

echo "==> pgbench -i -s ${scale} on the source"
psql -d "${src}/postgres" -c "CREATE DATABASE bench"
"${bindir}/pgbench" -i -q -s "${scale}" --foreign-keys "${src}/bench" >/dev/null 2>&1

echo "==> pgbench -R ${rate} on the source, for the whole run"
"${bindir}/pgbench" -n -c 4 -j 2 -R "${rate}" -T 3600 -P 10 "${src}/bench" >"${tmp}/pgbench.log" 2>&1 &
pgbench_pid=$!
sleep 5

echo "==> pgcourier migrate --method replication --jobs ${jobs}"
started="$(now)"
"${pgcourier}" migrate --source "${src}/bench" --target "${tgt}/bench" --method replication \
  --jobs "${jobs}" --dir "${tmp}/work" --quiet --json >"${tmp}/migrate.json"
migrate_s="$(since "${started}")"
echo "    bulk copy verified and replicating after ${migrate_s} s"

# Catch-up: from the end of migrate until the target is in sync (every table
# ready) and less than 1 MB behind, sampling the lag every 0.2 s.
lag_at_start=""
caught_up=""
catchup_started="$(now)"
for _ in $(seq 1 600); do
  "${pgcourier}" status --dir "${tmp}/work" --json --rate-sample 0 >"${tmp}/status.json" || true
  read -r in_sync lag < <(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["databases"][0].get("replication") or {}
lag = d.get("lag_bytes", -1)
print("yes" if d.get("in_sync") and 0 <= lag < (1 << 20) else "no", lag)' "${tmp}/status.json")
  [[ -n "${lag_at_start}" ]] || lag_at_start="${lag}"
  if [[ "${in_sync}" == yes ]]; then caught_up="$(since "${catchup_started}")"; break; fi
  sleep 0.2
done
[[ -n "${caught_up}" ]] || { echo "bench/replication.sh: the target never caught up" >&2; exit 1; }
echo "    in sync ${caught_up} s later (lag when migrate returned: ${lag_at_start} bytes)"

if ((keep_up)); then
  kill "${pgbench_pid}" 2>/dev/null || true
  wait "${pgbench_pid}" 2>/dev/null || true
  pgbench_pid=""
  # One status sample: "<lag bytes> <apply bytes/s>" (the rate over 1 s).
  sample() {
    "${pgcourier}" status --dir "${tmp}/work" --json >"${tmp}/status.json" 2>/dev/null || true
    python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["databases"][0].get("replication") or {}
print(d.get("lag_bytes", -1), int(d.get("apply_bytes_per_second") or 0))' "${tmp}/status.json"
  }
  # Seconds until the lag is under 1 MB (at most 600 s; "never" past it).
  drain() {
    local began lag _rate
    began="$(now)"
    for _ in $(seq 1 3000); do
      "${pgcourier}" status --dir "${tmp}/work" --json --rate-sample 0 >"${tmp}/status.json" 2>/dev/null || true
      lag="$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["databases"][0].get("replication") or {}
print(d.get("lag_bytes", -1))' "${tmp}/status.json")"
      if ((lag >= 0 && lag < 1048576)); then since "${began}"; return; fi
      sleep 0.2
    done
    echo never
  }
  subscription="$("${pgcourier}" status --dir "${tmp}/work" --json | python3 -c '
import json, sys
print(json.load(sys.stdin)["databases"][0].get("subscription_options") or "")')"
  echo "==> keep-up steps of ${step_seconds} s: ${steps} (0: unthrottled); subscription: ${subscription}"
  : >"${tmp}/steps.txt"
  for step in ${steps}; do
    drained_before="$(drain)"
    load_before="$(cut -d ' ' -f 1-3 /proc/loadavg)"
    limit=()
    ((step == 0)) || limit=(-R "${step}")
    "${bindir}/pgbench" -n -c 4 -j 2 "${limit[@]}" -T "${step_seconds}" "${src}/bench" \
      >"${tmp}/step.log" 2>&1 &
    pgbench_pid=$!
    lags=""
    rates=""
    while kill -0 "${pgbench_pid}" 2>/dev/null; do
      sleep 1
      read -r one_lag one_rate < <(sample)
      lags="${lags} ${one_lag}"
      rates="${rates} ${one_rate}"
    done
    wait "${pgbench_pid}" || true
    pgbench_pid=""
    achieved="$(grep -o 'tps = [0-9.]*' "${tmp}/step.log" | head -n 1 | cut -d ' ' -f 3)"
    drained_after="$(drain)"
    load_after="$(cut -d ' ' -f 1-3 /proc/loadavg)"
    read -r first max last bounded mean_rate < <(python3 -c '
import sys
v = [int(x) for x in sys.argv[2].split()]
r = [int(x) for x in sys.argv[3].split()]
print(v[0], max(v), v[-1], "yes" if v[-1] <= v[0] + (1 << 20) else "no", sum(r) // len(r))' \
      "${step}" "${lags}" "${rates}")
    echo "    rate ${step}: achieved ${achieved:-?} tps; lag ${first} .. ${last} bytes (max ${max}), kept up: ${bounded}; apply ${mean_rate} bytes/s; drained ${drained_after} s after; load ${load_before} -> ${load_after}"
    echo "${step}|${achieved:-0}|${first}|${max}|${last}|${bounded}|${mean_rate}|${drained_before}|${drained_after}|${load_before}|${load_after}|${lags}" >>"${tmp}/steps.txt"
  done
  mkdir -p bench/results
  out="bench/results/$(date -u +%Y-%m-%d)-keepup-scale${scale}.json"
  [[ ! -e "${out}" ]] || out="${out%.json}-$(date -u +%H%M).json"
  python3 - "${out}" "${tmp}/steps.txt" <<PY
import json, sys
steps = []
for line in open(sys.argv[2]):
    f = line.rstrip("\n").split("|")
    steps.append({
        "rate_limit_tps": int(f[0]) or None,
        "achieved_tps": float(f[1]),
        "lag_bytes": {"first": int(f[2]), "max": int(f[3]), "last": int(f[4]),
                      "samples": [int(x) for x in f[11].split()]},
        "kept_up": f[5] == "yes",
        "apply_bytes_per_second_mean": int(f[6]),
        "drain_seconds_before": f[7],
        "drain_seconds_after": f[8],
        "load_average_before": f[9],
        "load_average_after": f[10],
    })
kept = [s["achieved_tps"] for s in steps if s["kept_up"]]
json.dump({
  "format": "pgcourier.bench.keepup/1",
  "command": "bench/replication.sh --scale ${scale} --keep-up --steps '${steps}' --step-seconds ${step_seconds}",
  "machine": "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2 / 1048576}' /proc/meminfo)",
  "commit": "$(git rev-parse --short HEAD)",
  "subscription": "${subscription}",
  "steps": steps,
  "highest_tps_kept_up": max(kept) if kept else None,
}, open(sys.argv[1], "w"), indent=2)
print("    highest achieved tps that kept up:", max(kept) if kept else "none")
PY
  echo "results: ${out}"
  exit 0
fi

# Replication under load for a while (the lag sampled), then the cutover.
lags=""
rates=""
for _ in $(seq 1 10); do
  sleep 1
  # status samples the apply rate over 1 s
  "${pgcourier}" status --dir "${tmp}/work" --json >"${tmp}/status.json" || true
  read -r one_lag one_rate < <(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["databases"][0].get("replication") or {}
print(d.get("lag_bytes", -1), int(d.get("apply_bytes_per_second") or 0))' "${tmp}/status.json")
  lags="${lags} ${one_lag}"
  rates="${rates} ${one_rate}"
done
read -r lag_first lag_max lag_last bounded < <(python3 -c '
import sys
v = [int(x) for x in sys.argv[1:]]
print(v[0], max(v), v[-1], "yes" if v[-1] <= v[0] + (1 << 20) else "no")' ${lags})
apply_rate="$(python3 -c '
import sys
v = [int(x) for x in sys.argv[1:]]
print(sum(v) // len(v))' ${rates})"
echo "    under load for 20 s: lag ${lag_first} .. ${lag_last} bytes (max ${lag_max}), bounded: ${bounded}; apply rate ${apply_rate} bytes/s"
subscription="$("${pgcourier}" status --dir "${tmp}/work" --json | python3 -c '
import json, sys
print(json.load(sys.stdin)["databases"][0].get("subscription_options") or "")')"
echo "    subscription: ${subscription}"
tps="$(grep -o '[0-9.]* tps' "${tmp}/pgbench.log" | tail -n 1 | cut -d ' ' -f 1 || true)"
xacts_before="$(psql -At -d "${src}/bench" -c "SELECT count(*) FROM pgbench_history")"
keep=()
rollback_flag=""
((rollback == 0)) || { keep=(--keep-rollback); rollback_flag=" --rollback"; }
echo "==> pgcourier cutover --stop-source-writes ${keep[*]} (pgbench still running)"
started="$(now)"
"${pgcourier}" cutover --dir "${tmp}/work" --stop-source-writes "${keep[@]}" --json --quiet >"${tmp}/cutover.json"
cutover_s="$(since "${started}")"
kill "${pgbench_pid}" 2>/dev/null || true
wait "${pgbench_pid}" 2>/dev/null || true
pgbench_pid=""
read -r stopped verified verification_s phases < <(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["databases"][0]
after = {p["phase"]: p["seconds"] for p in d.get("after_switch", [])}
phases = ",".join("%s=%.2f" % (p["phase"].replace(" ", "_"), p["seconds"]) for p in d.get("window", []))
print("%.2f" % d["writes_stopped_seconds"], "yes" if d["status"] == "done" else "no",
      "%.2f" % after.get("verification", 0), phases or "-")' "${tmp}/cutover.json")
rows_target="$(psql -At -d "${tgt}/bench" -c "SELECT count(*) FROM pgbench_history")"
rows_source="$(psql -At -d "${src}/bench" -c "SELECT count(*) FROM pgbench_history")"
echo "    cutover ${cutover_s} s, writes stopped ${stopped} s, verified ${verified} (verification after the window: ${verification_s} s)"
echo "    window: ${phases//,/, }"
echo "    pgbench_history: source ${rows_source} rows, target ${rows_target} rows (${xacts_before} before the cutover)"

# The way back: pgbench on the new primary, then the rollback while it runs.
rollback_json="null"
rollback_ok=yes
if ((rollback)); then
  echo "==> pgbench -R ${rate} on the new primary (the target), 10 s, then pgcourier rollback"
  "${bindir}/pgbench" -n -c 4 -j 2 -R "${rate}" -T 3600 "${tgt}/bench" >"${tmp}/pgbench-target.log" 2>&1 &
  pgbench_pid=$!
  sleep 10
  started="$(now)"
  "${pgcourier}" rollback --dir "${tmp}/work" --json --quiet >"${tmp}/rollback.json" || true
  rollback_s="$(since "${started}")"
  kill "${pgbench_pid}" 2>/dev/null || true
  wait "${pgbench_pid}" 2>/dev/null || true
  pgbench_pid=""
  read -r back_stopped back_verified back_phases < <(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["databases"][0]
phases = ",".join("%s=%.2f" % (p["phase"].replace(" ", "_"), p["seconds"]) for p in d.get("window", []))
print("%.2f" % d["writes_stopped_seconds"], "yes" if d["status"] == "done" else "no", phases or "-")' "${tmp}/rollback.json")
  back_target="$(psql -At -d "${tgt}/bench" -c "SELECT count(*) FROM pgbench_history")"
  back_source="$(psql -At -d "${src}/bench" -c "SELECT count(*) FROM pgbench_history")"
  echo "    rollback ${rollback_s} s, writes stopped ${back_stopped} s, verified ${back_verified}"
  echo "    window: ${back_phases//,/, }"
  echo "    pgbench_history: target ${back_target} rows, old source ${back_source} rows"
  [[ "${back_verified}" == yes && "${back_target}" == "${back_source}" ]] || rollback_ok=no
  rollback_json="$(python3 -c '
import json, sys
print(json.dumps({"rollback_seconds": float(sys.argv[1]), "writes_stopped_seconds": float(sys.argv[2]),
  "window_phases": {k: float(v) for k, v in (p.split("=") for p in sys.argv[3].split(",") if "=" in p)},
  "verified": sys.argv[4] == "yes", "history_rows_target": int(sys.argv[5]),
  "history_rows_old_source": int(sys.argv[6])}))' \
    "${rollback_s}" "${back_stopped}" "${back_phases}" "${back_verified}" "${back_target}" "${back_source}")"
fi

mkdir -p bench/results
out="bench/results/$(date -u +%Y-%m-%d)-replication-scale${scale}.json"
[[ ! -e "${out}" ]] || out="${out%.json}-$(date -u +%H%M).json"
python3 - "${out}" "${rollback_json}" <<PY
import json, sys
json.dump({
  "format": "pgcourier.bench.replication/1",
  "command": "bench/replication.sh --scale ${scale} --rate ${rate} --jobs ${jobs}${rollback_flag}",
  "machine": "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2 / 1048576}' /proc/meminfo)",
  "subscription": "${subscription}",
  "lag_bytes_under_load": {"first": ${lag_first}, "max": ${lag_max}, "last": ${lag_last},
                           "bounded": "${bounded}" == "yes"},
  "apply_bytes_per_second_under_load": ${apply_rate},
  "commit": "$(git rev-parse --short HEAD)",
  "pgbench_rate_limit_tps": ${rate},
  "pgbench_tps_last_report": "${tps}",
  "migrate_seconds": ${migrate_s},
  "lag_bytes_when_migrate_returned": ${lag_at_start:-0},
  "catch_up_seconds": ${caught_up},
  "catch_up_bytes_per_second": round(${lag_at_start:-0} / max(${caught_up}, 0.5)),
  "cutover_seconds": ${cutover_s},
  "writes_stopped_seconds": ${stopped},
  "window_phases": {k: float(v) for k, v in (p.split("=") for p in "${phases}".split(",") if "=" in p)},
  "verification_after_window_seconds": ${verification_s},
  "verified": "${verified}" == "yes",
  "history_rows_source": ${rows_source},
  "history_rows_target": ${rows_target},
  "rollback": json.loads(sys.argv[2]),
}, open(sys.argv[1], "w"), indent=2)
PY
echo "results: ${out}"
[[ "${verified}" == yes && "${rows_source}" == "${rows_target}" && "${rollback_ok}" == yes ]]

#!/usr/bin/env bash
# Installs what the benchmark needs on top of scripts/setup.sh (which it runs
# first): pgcopydb (Debian's package, 0.10 in bookworm), the peer it compares
# against, GNU time (/usr/bin/time, package "time"), which measures wall
# time, peak memory and the CPU of the tools, and iptables (iptables-legacy),
# which sends the packets of `bench/run.sh --network` to the delayer.
#
#   bench/setup.sh
#
# Idempotent: when both are present it installs nothing. As a user without
# them, it prints the sudo command to run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '==> %s\n' "$*"; }

bash scripts/setup.sh

missing=()
for pkg in pgcopydb time iptables; do
  status="$(dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null || true)"
  if [[ "${status}" != "install ok installed" ]]; then
    missing+=("${pkg}")
  fi
done

if ((${#missing[@]} > 0)); then
  if [[ "$(id -u)" -eq 0 ]]; then
    log "installing Debian packages for the benchmark: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
  else
    {
      echo "bench/setup.sh: these Debian packages are missing: ${missing[*]}"
      echo "Install them with:"
      echo
      echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
    } >&2
    exit 1
  fi
fi

command -v pgcopydb >/dev/null 2>&1 || { echo "bench/setup.sh: pgcopydb is not on PATH" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "bench/setup.sh: /usr/bin/time is missing" >&2; exit 1; }
command -v iptables-legacy >/dev/null 2>&1 || [[ -x /usr/sbin/iptables-legacy ]] ||
  { echo "bench/setup.sh: iptables-legacy is missing" >&2; exit 1; }
log "benchmark tools: $(pgcopydb --version 2>/dev/null | grep -m 1 '^pgcopydb version' || true), /usr/bin/time, iptables-legacy"

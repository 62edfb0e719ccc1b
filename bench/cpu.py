#!/usr/bin/env python3
"""Prints the CPU seconds (user + system) used so far by groups of processes.

    bench/cpu.py SPEC...

Each SPEC is one of:
  cgroup:DIR       a cgroup v2 directory: usage_usec of its cpu.stat, which
                   counts every process that ever ran in it, exited or not;
  postmaster:DATA  a PostgreSQL server by its data directory (the first line
                   of DATA/postmaster.pid is the postmaster's pid): the
                   postmaster's own time, the time of its exited children
                   that it waited for (cutime + cstime: the backends and
                   workers that have ended), and the time of its live
                   children (the backends still connected, the checkpointer,
                   the WAL writer, ...);
  none             0.

Prints one number per SPEC (seconds, 3 decimals), separated by spaces.
bench/run.sh reads them before and after each run and reports the
differences.
"""

import os
import sys

CLK_TCK = os.sysconf("SC_CLK_TCK")


def stat_fields(pid):
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
        data = f.read()
    # The command name (field 2) is in parentheses and may hold spaces.
    return data[data.rindex(")") + 2:].split()


def postmaster_seconds(data_dir):
    with open(os.path.join(data_dir, "postmaster.pid"), encoding="ascii") as f:
        pid = int(f.readline())
    # Fields after the name, 0-based: 1 ppid, 11 utime, 12 stime, 13 cutime, 14 cstime.
    fields = stat_fields(pid)
    ticks = sum(int(x) for x in fields[11:15])
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            child = stat_fields(entry)
        except OSError:  # ended meanwhile: its time is in the postmaster's cutime
            continue
        if int(child[1]) == pid:
            ticks += sum(int(x) for x in child[11:15])
    return ticks / CLK_TCK


def cgroup_seconds(path):
    with open(os.path.join(path, "cpu.stat"), encoding="ascii") as f:
        for line in f:
            key, value = line.split()
            if key == "usage_usec":
                return int(value) / 1e6
    raise ValueError(f"no usage_usec in {path}/cpu.stat")


def seconds(spec):
    kind, _, arg = spec.partition(":")
    if kind == "cgroup":
        return cgroup_seconds(arg)
    if kind == "postmaster":
        return postmaster_seconds(arg)
    if kind == "none":
        return 0.0
    raise ValueError(f"unknown SPEC {spec}")


def main():
    if len(sys.argv) < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    print(" ".join(f"{seconds(spec):.3f}" for spec in sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Prints bench/run.sh's table of results and writes them as JSON.

Called by bench/run.sh with the raw results (one tab-separated line per run:
round (0: the warm-up, not counted), tool, exit status, wall seconds, peak
RSS in kB, verified yes/no, parts, the 1-minute load averages before and
after the run, the run's CPU seconds as "client,source,target", the bench's
verification's wall seconds and CPU seconds, and what the run left behind on
the servers) and the facts about the run. Per tool it reports the medians
over the rounds of the wall time, the CPU seconds, and the time and CPU
seconds to a verified copy (the bench's verification added for the tools
that do not verify; pgcourier verifies as it copies), and ratios between the
medians.
"""

import argparse
import datetime
import hashlib
import json
import os
import platform
import statistics
import sys

LABELS = {
    "pgcourier": "pgcourier migrate",
    "pg_dump": "pg_dump -Fd + pg_restore",
    "pgcopydb": "pgcopydb clone",
    "floor": "floor (COPY|COPY + indexes)",
}
REFERENCES = [("pg_dump", "vs pg_dump"), ("pgcopydb", "vs pgcopydb"), ("floor", "vs floor")]
# The tools that check their own copy: their time to a verified copy is their
# wall time.
SELF_VERIFYING = {"pgcourier"}
GB = 1e9


def parse_parts(parts):
    """'a=1.5;b=2' -> {'a': 1.5, 'b': 2.0}; 'json:PATH' -> pgcourier's phases."""
    if not parts:
        return {}
    if parts.startswith("json:"):
        path = parts[len("json:"):]
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except (OSError, ValueError):
            return {}
        out = {}
        for db in doc.get("databases", []):
            for phase in db.get("phases", []):
                out[phase["phase"]] = round(phase["seconds"], 2)
            if db.get("error"):
                out["error"] = db["error"]
        return out
    out = {}
    for item in parts.split(";"):
        if "=" in item:
            key, value = item.split("=", 1)
            try:
                out[key] = float(value) if "." in value else int(value)
            except ValueError:
                out[key] = value
    return out


def cpu_split(text):
    """'1.5,2,3' -> {'client': 1.5, 'source': 2.0, 'target': 3.0}."""
    values = [float(x) for x in text.split(",")] if text else [0.0, 0.0, 0.0]
    return dict(zip(("client", "source", "target"), values))


def mem_total_bytes():
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dataset", default="pgbench-shop")
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--warmup", default="none")
    ap.add_argument("--network", default="")
    ap.add_argument("--cpu-accounting", default="")
    ap.add_argument("--network-cpu-seconds", default="")
    ap.add_argument("--jobs", type=int, required=True)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--generate-seconds", type=float, required=True)
    ap.add_argument("--source-bytes", type=int, required=True)
    ap.add_argument("--source-fingerprint", required=True)
    ap.add_argument("--pgcourier-version", default="")
    ap.add_argument("--git-commit", default="")
    ap.add_argument("--postgres-version", default="")
    ap.add_argument("--pg-dump-version", default="")
    ap.add_argument("--pgcopydb-version", default="")
    ap.add_argument("--disk", default="")
    ap.add_argument("--command", default="")
    args = ap.parse_args()

    runs, warmups = [], []
    with open(args.results, encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 13:
                continue
            (rnd, tool, exit_code, wall, rss_kb, verified, parts, load, load_after, cpu,
             verify_wall, verify_cpu, left) = fields[:13]
            run = {
                "round": int(rnd),
                "tool": tool,
                "ok": exit_code == "0" and verified == "yes" and not left,
                "exit_status": int(exit_code),
                "verified": verified == "yes",
                "wall_seconds": float(wall),
                "cpu_seconds": cpu_split(cpu),
                "verify_seconds": float(verify_wall) if verify_wall else None,
                "verify_cpu_seconds": cpu_split(verify_cpu) if verify_cpu else None,
                "left_behind": left.split() if left else [],
                "peak_rss_mb": round(int(rss_kb) / 1024, 1),
                "parts_seconds": parse_parts(parts),
                "load_average_before": float(load) if load else None,
                "load_average_after": float(load_after) if load_after else None,
            }
            run["cpu_seconds_total"] = round(sum(run["cpu_seconds"].values()), 2)
            if tool in SELF_VERIFYING:
                run["to_verified_seconds"] = run["wall_seconds"]
                run["to_verified_cpu_seconds"] = run["cpu_seconds_total"]
            elif run["verify_seconds"] is not None:
                run["to_verified_seconds"] = round(run["wall_seconds"] + run["verify_seconds"], 2)
                run["to_verified_cpu_seconds"] = round(
                    run["cpu_seconds_total"] + sum(run["verify_cpu_seconds"].values()), 2)
            else:
                run["to_verified_seconds"] = run["to_verified_cpu_seconds"] = None
            (warmups if run["round"] == 0 else runs).append(run)

    # Per tool: the medians over its rounds; a tool is OK only when every
    # round exited 0, verified and left nothing behind.
    source_gb = args.source_bytes / GB
    summary = []
    for tool in dict.fromkeys(r["tool"] for r in runs):
        mine = [r for r in runs if r["tool"] == tool]
        walls = [r["wall_seconds"] for r in mine]
        median = statistics.median(walls)
        # The parts of the round closest to the median.
        typical = min(mine, key=lambda r: abs(r["wall_seconds"] - median))
        failed = [r for r in mine if not r["ok"]]
        cpu = {part: round(statistics.median(r["cpu_seconds"][part] for r in mine), 2)
               for part in ("client", "source", "target")}
        to_verified = [r["to_verified_seconds"] for r in mine if r["to_verified_seconds"] is not None]
        to_verified_cpu = [r["to_verified_cpu_seconds"] for r in mine
                           if r["to_verified_cpu_seconds"] is not None]
        verify = [r["verify_seconds"] for r in mine if r["verify_seconds"] is not None]
        entry = {
            "tool": tool,
            "label": LABELS.get(tool, tool),
            "ok": not failed,
            "verified": all(r["verified"] for r in mine),
            "exit_statuses": sorted({r["exit_status"] for r in mine}),
            "left_behind": sorted({x for r in mine for x in r["left_behind"]}),
            "rounds": len(mine),
            "wall_seconds": round(median, 2),
            "wall_seconds_min": min(walls),
            "wall_seconds_max": max(walls),
            "cpu_seconds": round(statistics.median(r["cpu_seconds_total"] for r in mine), 2),
            "cpu_seconds_parts": cpu,
            "bench_verify_seconds": round(statistics.median(verify), 2) if verify else None,
            "self_verifying": tool in SELF_VERIFYING,
            "to_verified_seconds": round(statistics.median(to_verified), 2) if to_verified else None,
            "to_verified_cpu_seconds": (round(statistics.median(to_verified_cpu), 2)
                                        if to_verified_cpu else None),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in mine),
            "parts_seconds": typical["parts_seconds"],
        }
        entry["to_verified_cpu_seconds_per_gb"] = (
            round(entry["to_verified_cpu_seconds"] / source_gb, 2)
            if entry["to_verified_cpu_seconds"] is not None and source_gb > 0 else None)
        summary.append(entry)
    by_tool = {t["tool"]: t for t in summary}

    def ratio(t, other, key):
        if t["ok"] and other and other["ok"] and other.get(key):
            return round(t[key] / other[key], 2)
        return None

    for t in summary:
        t["ratios"] = {ref: ratio(t, by_tool.get(ref), "wall_seconds") for ref, _ in REFERENCES}
        t["ratios_to_pgcourier"] = {
            "to_verified_seconds": ratio(t, by_tool.get("pgcourier"), "to_verified_seconds"),
            "to_verified_cpu_seconds": ratio(t, by_tool.get("pgcourier"), "to_verified_cpu_seconds"),
        }
    n_rounds = max((t["rounds"] for t in summary), default=0)

    tables = {}
    with open(args.source_fingerprint, "rb") as f:
        fingerprint_sha256 = hashlib.sha256(f.read()).hexdigest()
    with open(args.source_fingerprint, encoding="utf-8") as f:
        for line in f:
            cols = [c.strip() for c in line.split("|")]
            if cols and cols[0].startswith("table "):
                tables[cols[0][len("table "):]] = int(cols[1])

    def print_table(header, rows):
        widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]

        def fmt_row(cells):
            return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths)))

        print(fmt_row(header))
        print(fmt_row(["-" * w for w in widths]))
        for row in rows:
            print(fmt_row(row))

    def num(value, fmt="{:.1f}"):
        return "-" if value is None else fmt.format(value)

    # The copy.
    spread = n_rounds > 1
    header = ["tool", "wall s" + (" (median)" if spread else "")]
    if spread:
        header.append("min-max")
    header += ["CPU s", "peak RSS MB", "verified"] + [h for _, h in REFERENCES]
    rows = []
    for t in summary:
        wall = f"{t['wall_seconds']:.1f}" if t["ok"] else f"FAILED ({t['wall_seconds']:.1f})"
        if t["left_behind"]:
            verified = "left objects"
        elif t["verified"]:
            verified = "yes"
        elif t["exit_statuses"] != [0]:
            verified = "no (exit " + ",".join(str(e) for e in t["exit_statuses"]) + ")"
        else:
            verified = "no"
        row = [t["label"], wall]
        if spread:
            row.append(f"{t['wall_seconds_min']:.1f}-{t['wall_seconds_max']:.1f}")
        row += [f"{t['cpu_seconds']:.1f}", f"{t['peak_rss_mb']:.0f}", verified]
        row += [f"{t['ratios'][ref]:.2f}x" if t["ratios"][ref] is not None else "-"
                for ref, _ in REFERENCES]
        rows.append(row)
    print()
    size = {"pgbench-shop": f"scale {args.size}", "small-tables": f"{args.size} tables",
            "big-table": f"{args.size} MB table"}.get(args.dataset, str(args.size))
    print(f"dataset {args.dataset} ({size}), jobs {args.jobs}, {n_rounds} round(s)"
          f"{', warm-up: ' + args.warmup if args.warmup != 'none' else ''}, source database "
          f"{args.source_bytes / 2**30:.2f} GiB, {sum(tables.values()):,} rows in {len(tables)} tables")
    print(f"network: {args.network or 'loopback (127.0.0.1)'}"
          + (f"; the packet delayers used {float(args.network_cpu_seconds):.1f} CPU s in all (in no tool's figures)"
             if args.network_cpu_seconds else ""))
    print("ratio = this tool's wall time / the other's (below 1.00x: faster); CPU s = the tool's own"
          " plus both servers'")
    print()
    print_table(header, rows)

    # The time to a verified copy.
    header = ["to a verified copy", "copy s", "+ verify s", "= s", "CPU s", "CPU s/GB",
              "time vs pgcourier", "CPU vs pgcourier"]
    rows = []
    for t in summary:
        r = t["ratios_to_pgcourier"]
        rows.append([
            t["label"], f"{t['wall_seconds']:.1f}",
            "(itself)" if t["self_verifying"] else num(t["bench_verify_seconds"]),
            num(t["to_verified_seconds"]) if t["ok"] else "FAILED",
            num(t["to_verified_cpu_seconds"]), num(t["to_verified_cpu_seconds_per_gb"]),
            num(r["to_verified_seconds"], "{:.2f}x"), num(r["to_verified_cpu_seconds"], "{:.2f}x"),
        ])
    print()
    print_table(header, rows)
    print()
    for t in summary:
        parts = ", ".join(f"{k} {v}" for k, v in t["parts_seconds"].items())
        cpu = t["cpu_seconds_parts"]
        print(f"  {t['label']}: CPU s client {cpu['client']}, source {cpu['source']}, target {cpu['target']}"
              + (f"; {parts}" if parts else ""))
        if t["left_behind"]:
            print(f"    LEFT BEHIND (removed by the bench): {' '.join(t['left_behind'])}")
    for w in warmups:
        print(f"  warm-up (not counted): {LABELS.get(w['tool'], w['tool'])} {w['wall_seconds']:.1f} s,"
              f" CPU {w['cpu_seconds_total']:.1f} s, verified {'yes' if w['verified'] else 'no'}")
    loads = [r["load_average_after"] for r in runs if r["load_average_after"] is not None]
    if loads:
        print(f"  1-minute load average after the runs: {min(loads):.1f} to {max(loads):.1f}"
              f" on {os.cpu_count()} CPUs; CPU accounting: {args.cpu_accounting}")

    doc = {
        "format": "pgcourier.bench/2",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": args.command,
        "dataset_name": args.dataset,
        "size": args.size,
        "jobs": args.jobs,
        "network": args.network or None,
        # The packet delayers' CPU over the whole benchmark (counted in no tool's figures).
        "network_cpu_seconds": float(args.network_cpu_seconds) if args.network_cpu_seconds else None,
        "cpu_accounting": args.cpu_accounting,
        "machine": {
            "nproc": os.cpu_count(),
            "mem_total_bytes": mem_total_bytes(),
            "disk": args.disk,
            "kernel": platform.release(),
        },
        "versions": {
            "pgcourier": args.pgcourier_version,
            "pgcourier_commit": args.git_commit,
            "postgresql": args.postgres_version,
            "pg_dump": args.pg_dump_version,
            "pgcopydb": args.pgcopydb_version,
        },
        "dataset": {
            "generate_seconds": args.generate_seconds,
            "source_database_bytes": args.source_bytes,
            "tables": tables if len(tables) <= 50 else {"count": len(tables), "rows": sum(tables.values())},
            # The same dataset and size give the same data: equal digests, equal bytes.
            "fingerprint_sha256": fingerprint_sha256,
        },
        "rounds": args.rounds,
        "warmup": warmups,
        "summary": summary,
        "runs": runs,
    }
    if args.dataset == "pgbench-shop":
        doc["scale"] = args.size
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

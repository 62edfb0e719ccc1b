#!/usr/bin/env python3
"""Prints bench/run.sh's table of results and writes them as JSON.

Called by bench/run.sh with the raw results (one tab-separated line per run:
round, tool, exit status, wall seconds, peak RSS in kB, verified yes/no,
parts, the 1-minute load averages before and after the run) and the facts
about the run. Per tool it reports the median wall time over the rounds, and
ratios between the medians.
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
    ap.add_argument("--scale", type=int, required=True)
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

    runs = []
    with open(args.results, encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 9:
                continue
            rnd, tool, exit_code, wall, rss_kb, verified, parts, load, load_after = fields[:9]
            runs.append({
                "round": int(rnd),
                "tool": tool,
                "ok": exit_code == "0" and verified == "yes",
                "exit_status": int(exit_code),
                "verified": verified == "yes",
                "wall_seconds": float(wall),
                "peak_rss_mb": round(int(rss_kb) / 1024, 1),
                "parts_seconds": parse_parts(parts),
                "load_average_before": float(load) if load else None,
                "load_average_after": float(load_after) if load_after else None,
            })

    # Per tool: the median over its rounds; a tool is OK only when every
    # round exited 0 and verified.
    summary = []
    for tool in dict.fromkeys(r["tool"] for r in runs):
        mine = [r for r in runs if r["tool"] == tool]
        walls = [r["wall_seconds"] for r in mine]
        median = statistics.median(walls)
        # The parts of the round closest to the median.
        typical = min(mine, key=lambda r: abs(r["wall_seconds"] - median))
        failed = [r for r in mine if not r["ok"]]
        summary.append({
            "tool": tool,
            "label": LABELS.get(tool, tool),
            "ok": not failed,
            "verified": all(r["verified"] for r in mine),
            "exit_statuses": sorted({r["exit_status"] for r in mine}),
            "rounds": len(mine),
            "wall_seconds": round(median, 2),
            "wall_seconds_min": min(walls),
            "wall_seconds_max": max(walls),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in mine),
            "parts_seconds": typical["parts_seconds"],
        })
    by_tool = {t["tool"]: t for t in summary}
    for t in summary:
        t["ratios"] = {}
        for ref, _ in REFERENCES:
            other = by_tool.get(ref)
            if t["ok"] and other and other["ok"] and other["wall_seconds"] > 0:
                t["ratios"][ref] = round(t["wall_seconds"] / other["wall_seconds"], 2)
            else:
                t["ratios"][ref] = None
    n_rounds = max((t["rounds"] for t in summary), default=0)

    tables = {}
    with open(args.source_fingerprint, "rb") as f:
        fingerprint_sha256 = hashlib.sha256(f.read()).hexdigest()
    with open(args.source_fingerprint, encoding="utf-8") as f:
        for line in f:
            cols = [c.strip() for c in line.split("|")]
            if cols and cols[0].startswith("table "):
                tables[cols[0][len("table "):]] = int(cols[1])

    # The table.
    spread = n_rounds > 1
    header = ["tool", "wall s" + (" (median)" if spread else "")]
    if spread:
        header.append("min-max")
    header += ["peak RSS MB", "verified"] + [h for _, h in REFERENCES]
    rows = []
    for t in summary:
        wall = f"{t['wall_seconds']:.1f}" if t["ok"] else f"FAILED ({t['wall_seconds']:.1f})"
        if t["verified"]:
            verified = "yes"
        elif t["exit_statuses"] != [0]:
            verified = "no (exit " + ",".join(str(e) for e in t["exit_statuses"]) + ")"
        else:
            verified = "no"
        row = [t["label"], wall]
        if spread:
            row.append(f"{t['wall_seconds_min']:.1f}-{t['wall_seconds_max']:.1f}")
        row += [f"{t['peak_rss_mb']:.0f}", verified]
        row += [f"{t['ratios'][ref]:.2f}x" if t["ratios"][ref] is not None else "-"
                for ref, _ in REFERENCES]
        rows.append(row)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    print()
    print(f"scale {args.scale}, jobs {args.jobs}, {n_rounds} round(s), source database "
          f"{args.source_bytes / 2**30:.2f} GiB, {sum(tables.values()):,} rows in {len(tables)} tables")
    print("ratio = this tool's wall time / the other's (below 1.00x: faster)")
    print()

    def fmt_row(cells):
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))

    print(fmt_row(header))
    print(fmt_row(["-" * w for w in widths]))
    for row in rows:
        print(fmt_row(row))
    print()
    for t in summary:
        if t["parts_seconds"]:
            parts = ", ".join(f"{k} {v}" for k, v in t["parts_seconds"].items())
            print(f"  {t['label']}: {parts}")
    loads = [r["load_average_after"] for r in runs if r["load_average_after"] is not None]
    if loads:
        print(f"  1-minute load average after the runs: {min(loads):.1f} to {max(loads):.1f}"
              f" on {os.cpu_count()} CPUs")

    doc = {
        "format": "pgcourier.bench/1",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": args.command,
        "scale": args.scale,
        "jobs": args.jobs,
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
            "tables": tables,
            # The same SCALE gives the same data: equal digests, equal bytes.
            "fingerprint_sha256": fingerprint_sha256,
        },
        "rounds": args.rounds,
        "summary": summary,
        "runs": runs,
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

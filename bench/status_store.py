#!/usr/bin/env python3
"""Writes a synthetic work directory for `pgcourier status`, to measure the
status page and /api/status at scale without moving any data.

    bench/status_store.py DIR [--tables 10000]

DIR/pgcourier.db gets the catalog of this checkout (the SQL of
src/state/catalog_schema.cc, every version in order), one run and one
database in the middle of its copy: a third of its tables copied (each with
its index build and comparison done), 100 copying, the rest not started;
every table with an expected size. Then, for example:

    pgcourier status --serve --dir DIR --listen 127.0.0.1:0
    curl -s 'http://127.0.0.1:PORT/api/status?tables=1' | wc -c

docs/architecture.md has the figures at 10,000 tables.
"""
import argparse
import os
import re
import sqlite3
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA = os.path.join(HERE, "..", "src", "state", "catalog_schema.cc")
NOW = "2026-12-02T14:00:00Z"


def catalog_sql():
    text = open(SCHEMA, encoding="utf-8").read()
    return re.findall(r'R"sql\((.*?)\)sql"', text, re.S)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir")
    parser.add_argument("--tables", type=int, default=10000)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    path = os.path.join(args.dir, "pgcourier.db")
    if os.path.exists(path):
        sys.exit(f"{path} exists; give a new directory")
    db = sqlite3.connect(path)
    for sql in catalog_sql():
        db.executescript(sql)
    n = args.tables
    db.execute(
        "INSERT INTO run VALUES (1, 'synthetic', 'host=source dbname=shop', "
        "'host=target dbname=shop', '{}', 'running', ?, ?, '', 0, 0, '')", (NOW, NOW))
    done, running = n // 3, min(100, n - n // 3)
    row_bytes, rows = 120, 5000
    db.execute(
        "INSERT INTO databases (name, target_name, method, method_reason, state, error, hint, "
        "created_target, consistent, snapshot, tables_total, tables_done, indexes_total, "
        "indexes_done, bytes_total, bytes_done, rows_done, started_at, finished_at) VALUES "
        "('shop', 'shop', 'copy', '', 'copying', '', '', 1, 1, '00000003-1', ?, ?, ?, ?, ?, ?, "
        "?, ?, '')",
        (n, done, n, done, n * rows * row_bytes, done * rows * row_bytes, done * rows, NOW))
    steps = []
    sizes = []
    for i in range(n):
        table = f"app.table_{i:05d}"
        sizes.append(("shop", table, rows, rows * row_bytes, NOW))
        if i < done:
            steps.append(("shop", "copy", table, "", "done", rows, rows * 110, 0.2, 1, "", NOW))
            steps.append(("shop", "index", f"app.table_{i:05d}_pkey", "", "done", 0, 0, 0.05, 1,
                          "", NOW))
            steps.append(("shop", "compare", table, "", "done", 0, 0, 0.1, 1, "", NOW))
        elif i < done + running:
            steps.append(("shop", "copy", table, "", "running", rows // 2, rows // 2 * 110, 0, 1,
                          "", NOW))
    db.executemany(
        "INSERT INTO steps (db_name, kind, object, part, state, row_count, byte_count, seconds, "
        "attempts, error, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", steps)
    db.executemany("INSERT INTO table_sizes VALUES (?, ?, ?, ?, ?)", sizes)
    db.commit()
    db.close()
    print(f"{path}: {n} tables, {len(steps)} steps")


if __name__ == "__main__":
    main()

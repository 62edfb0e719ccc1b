#include "serve/status_page.h"

namespace pgcourier {
namespace {

// Every value from the server is put in the document as text
// (textContent), never as markup: table and database names are the
// user's and may hold anything.
constexpr std::string_view kPage = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pgcourier status</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d2330; }
header { background: #1d2330; color: #fff; padding: 10px 18px; display: flex; gap: 14px;
  align-items: baseline; flex-wrap: wrap; }
header h1 { font-size: 17px; margin: 0; }
main { padding: 12px 18px; max-width: 1200px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 9px; font-size: 12px;
  font-weight: 600; background: #d9dde5; color: #1d2330; }
.s-done, .s-syncing, .s-ok { background: #cdebd3; color: #145221; }
.s-running, .s-copying, .s-schema, .s-indexing, .s-verifying, .s-cutover { background: #d5e4fb; color: #133e82; }
.s-failed, .s-broken, .s-interrupted, .s-cancelled { background: #f8d3d0; color: #7d1710; }
.db { background: #fff; border: 1px solid #dde1e8; border-radius: 6px; margin: 12px 0; padding: 10px 14px; }
.db h2 { font-size: 16px; margin: 0 0 6px; }
.facts { display: flex; flex-wrap: wrap; gap: 4px 18px; color: #4a5366; }
.facts b { color: #1d2330; font-weight: 600; }
.error { background: #fdeceb; border-left: 4px solid #c62d20; padding: 6px 10px; margin: 8px 0; white-space: pre-wrap; }
.hint { background: #fff8e1; border-left: 4px solid #e0a800; padding: 6px 10px; margin: 8px 0; white-space: pre-wrap; }
.bars { display: grid; grid-template-columns: 80px 1fr 220px; gap: 4px 10px; align-items: center; margin: 8px 0; }
.bar { height: 10px; background: #e6e9ef; border-radius: 5px; overflow: hidden; }
.bar > div { height: 100%; background: #3a7bd5; }
.bar.full > div { background: #2e9d4b; }
.charts { display: flex; flex-wrap: wrap; gap: 10px; margin: 6px 0; }
.chart { border: 1px solid #e3e6ec; border-radius: 4px; padding: 4px 6px; }
.chart .t { font-size: 12px; color: #4a5366; }
pre.cmd { background: #1d2330; color: #e8ecf3; padding: 6px 10px; border-radius: 4px; margin: 4px 0; overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 2px 6px; border-bottom: 1px solid #eef0f4; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.tbar { width: 120px; }
.pager { margin: 6px 0; display: flex; gap: 8px; align-items: center; }
#problem { color: #7d1710; }
.muted { color: #6b7487; }
</style>
</head>
<body>
<header><h1>pgcourier</h1><span id="overall" class="badge" data-field="overall" data-state="">loading</span>
<span id="run" class="muted"></span><span id="problem"></span></header>
<main><div id="dbs"></div><section id="next-section" class="db"><h2>Next</h2><div id="next"></div></section></main>
<script>
"use strict";
const token = new URLSearchParams(location.search).get("token");
const pageSize = 100;
const ui = {};  // per database: {page, filter, parts} kept across refreshes
let pollMs = 2000;

function api(path) {
  const url = new URL(path, location.href);
  if (token) url.searchParams.set("token", token);
  return fetch(url, {cache: "no-store"}).then(r => {
    if (!r.ok) throw new Error(path + ": HTTP " + r.status);
    return r.json();
  });
}
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(typeof c === "string" || typeof c === "number" ? String(c) : c);
  }
  return e;
}
function bytes(n) {
  if (n === null || n === undefined || n < 0) return "-";
  const u = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + u[i];
}
function count(n) { return (n === null || n === undefined) ? "-" : Number(n).toLocaleString("en-US"); }
function shellQuote(s) { return /^[A-Za-z0-9_\/.,:@%+=-]+$/.test(s) ? s : "'" + s.replace(/'/g, "'\\''") + "'"; }
function bar(done, total, field) {
  const pct = total > 0 ? Math.min(100, 100 * done / total) : (done > 0 ? 100 : 0);
  const b = el("div", {class: "bar" + (pct >= 100 ? " full" : ""), "data-field": field, "data-pct": pct.toFixed(1)});
  b.append(el("div", {style: "width:" + pct.toFixed(1) + "%"}));
  return b;
}
function badge(state, field) { return el("span", {class: "badge s-" + state, "data-field": field}, state); }

// A small line chart of [t, v] points (seconds, value) as SVG.
function chart(title, field, points, fmt) {
  const w = 260, h = 70, pad = 4;
  const box = el("div", {class: "chart", "data-field": field});
  const last = points.length ? points[points.length - 1][1] : null;
  box.append(el("div", {class: "t"}, title + ": " + (last === null ? "-" : fmt(last))));
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", w); svg.setAttribute("height", h);
  svg.setAttribute("viewBox", "0 0 " + w + " " + h);
  if (points.length >= 2) {
    const t0 = points[0][0], t1 = points[points.length - 1][0];
    const max = Math.max(1, ...points.map(p => p[1]));
    const xy = points.map(p => [pad + (w - 2 * pad) * (p[0] - t0) / Math.max(1e-9, t1 - t0),
                                h - pad - (h - 2 * pad) * p[1] / max]);
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", xy.map(p => p[0].toFixed(1) + "," + p[1].toFixed(1)).join(" "));
    line.setAttribute("fill", "none"); line.setAttribute("stroke", "#3a7bd5"); line.setAttribute("stroke-width", "1.5");
    svg.append(line);
    const top = document.createElementNS(ns, "text");
    top.setAttribute("x", w - pad); top.setAttribute("y", 11); top.setAttribute("text-anchor", "end");
    top.setAttribute("font-size", "10"); top.setAttribute("fill", "#6b7487");
    top.textContent = "max " + fmt(max);
    svg.append(top);
  } else {
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", 6); t.setAttribute("y", h / 2); t.setAttribute("font-size", "11"); t.setAttribute("fill", "#6b7487");
    t.textContent = "collecting samples";
    svg.append(t);
  }
  box.append(svg);
  return box;
}
function series(samples, name, key) {
  const out = [];
  for (const s of samples) {
    const d = s.databases[name];
    if (d && d[key] !== null && d[key] !== undefined) out.push([s.at, d[key]]);
  }
  return out;
}
function rate(points) {
  const out = [];
  for (let i = 1; i < points.length; i++) {
    const dt = points[i][0] - points[i - 1][0];
    if (dt > 0) out.push([points[i][0], Math.max(0, (points[i][1] - points[i - 1][1]) / dt)]);
  }
  return out;
}

// The steps of a database grouped: tables (their parts), index builds,
// phases; each table with its expected size (table_sizes), and the planned
// tables no step has started yet as pending.
function groupSteps(steps, sizes) {
  const tables = new Map(), indexes = [], phases = [];
  const rank = {failed: 3, running: 2, pending: 1, done: 0};
  for (const s of steps || []) {
    if (s.kind === "index") { indexes.push(s); continue; }
    if (s.kind === "phase") { phases.push(s); continue; }
    if (s.kind !== "copy") continue;
    let t = tables.get(s.object);
    if (!t) { t = {name: s.object, parts: 0, done: 0, bytes: 0, rows: 0, state: "done", error: null}; tables.set(s.object, t); }
    t.parts++; if (s.state === "done") t.done++;
    t.bytes += s.bytes; t.rows += s.rows;
    if (rank[s.state] > rank[t.state]) t.state = s.state;
    if (s.error) t.error = s.error;
  }
  for (const z of sizes || []) {
    let t = tables.get(z.table);
    if (!t) { t = {name: z.table, parts: 0, done: 0, bytes: 0, rows: 0, state: "pending", error: null}; tables.set(z.table, t); }
    t.size = z;
  }
  return {tables: [...tables.values()], indexes, phases};
}
// A table's rows or bytes copied against its expected total, which the
// source's catalog estimated when the copy was planned; a table done shows
// what was copied, whole.
function amountCells(t, copied, expected, fmt, field, what) {
  let text, b;
  if (t.state === "done") {
    text = fmt(copied); b = bar(1, 1, field + "-bar");
  } else if (expected === null || expected === undefined) {
    text = fmt(copied) + (t.size ? " (no estimate" + (what ? ": " + what : "") + ")" : "");
    b = bar(0, 1, field + "-bar");
  } else {
    text = fmt(copied) + " of " + fmt(expected) + " (estimated)"; b = bar(copied, expected, field + "-bar");
  }
  return [el("td", {class: "n", "data-field": field}, text), el("td", {class: "tbar"}, b)];
}
// The running phases, and what runs in them: "data: copying 2 tables".
function phaseOf(db, groups) {
  const parts = [];
  const copying = groups.tables.filter(t => t.state === "running").length;
  if (copying) parts.push("copying " + copying + (copying === 1 ? " table" : " tables"));
  const building = groups.indexes.filter(i => i.state === "running").length;
  if (building) parts.push("building " + building + (building === 1 ? " index" : " indexes"));
  const running = groups.phases.filter(p => p.state === "running").map(p => p.object);
  const phases = running.length ? running.join(", ") : db.status;
  return parts.length ? phases + ": " + parts.join(", ") : phases;
}

function tablesView(db, groups, state) {
  const box = el("details", {"data-field": "tables"});
  if (state.open) box.open = true;
  box.addEventListener("toggle", () => { state.open = box.open; });
  const done = groups.tables.filter(t => t.state === "done").length;
  box.append(el("summary", {}, "Tables: " + done + " of " + groups.tables.length + " copied; index builds: " +
    groups.indexes.filter(i => i.state === "done").length + " of " + groups.indexes.length));
  const filter = el("input", {type: "search", placeholder: "filter by name", value: state.filter || ""});
  const list = state.filter ? groups.tables.filter(t => t.name.includes(state.filter)) : groups.tables;
  list.sort((a, b) => ({failed: 0, running: 1, pending: 2, done: 3}[a.state] - {failed: 0, running: 1, pending: 2, done: 3}[b.state]) || a.name.localeCompare(b.name));
  const pages = Math.max(1, Math.ceil(list.length / pageSize));
  state.page = Math.min(state.page || 0, pages - 1);
  const prev = el("button", {}, "previous"), next = el("button", {}, "next");
  prev.disabled = state.page === 0; next.disabled = state.page >= pages - 1;
  prev.onclick = () => { state.page--; redraw(); };
  next.onclick = () => { state.page++; redraw(); };
  filter.addEventListener("input", () => { state.filter = filter.value; });
  filter.addEventListener("change", () => { state.filter = filter.value; state.page = 0; redraw(); });
  box.append(el("div", {class: "pager"}, filter, prev, "page " + (state.page + 1) + " of " + pages + " (" + list.length + " tables)", next));
  const table = el("table", {}, el("tr", {}, el("th", {}, "table"), el("th", {}, "state"), el("th", {}, "slices done"),
    el("th", {}, ""), el("th", {}, "rows copied"), el("th", {}, ""), el("th", {}, "bytes copied (of the size on disk)"),
    el("th", {}, ""), el("th", {}, "error")));
  for (const t of list.slice(state.page * pageSize, (state.page + 1) * pageSize)) {
    const z = t.size || {};
    table.append(el("tr", {"data-table": t.name}, el("td", {}, t.name), el("td", {}, badge(t.state, "table-state")),
      el("td", {class: "n"}, t.done + "/" + (t.parts || "-")), el("td", {class: "tbar"}, bar(t.done, t.parts, "table-parts")),
      ...amountCells(t, t.rows, z.expected_rows, count, "table-rows", "never analyzed"),
      ...amountCells(t, t.bytes, z.expected_bytes, bytes, "table-bytes", ""),
      el("td", {}, t.error || "")));
  }
  box.append(table);
  if (groups.indexes.length) {
    const idx = el("table", {}, el("tr", {}, el("th", {}, "index"), el("th", {}, "state"), el("th", {}, "seconds"), el("th", {}, "error")));
    for (const i of groups.indexes.slice(0, pageSize)) {
      idx.append(el("tr", {"data-index": i.object}, el("td", {}, i.object), el("td", {}, badge(i.state, "index-state")),
        el("td", {class: "n"}, i.seconds ? i.seconds.toFixed(1) : ""), el("td", {}, i.error || "")));
    }
    box.append(el("h3", {}, "Index builds" + (groups.indexes.length > pageSize ? " (first " + pageSize + ")" : "")), idx);
  }
  return box;
}

function replicationView(r) {
  if (!r) return null;
  const box = el("div", {class: "facts", "data-field": "replication"});
  const state = r.broken ? "broken" : (r.in_sync ? "in sync" : "catching up");
  box.append(el("span", {}, "replication ", el("b", {"data-field": "replication-state"}, state)),
    el("span", {}, "lag ", el("b", {"data-field": "lag-bytes", "data-value": String(r.lag_bytes)}, bytes(r.lag_bytes))),
    el("span", {}, "WAL retained on the source ", el("b", {"data-field": "retained-wal", "data-value": String(r.retained_wal_bytes)}, bytes(r.retained_wal_bytes))),
    el("span", {}, "apply rate ", el("b", {}, r.apply_bytes_per_second === null ? "-" : bytes(r.apply_bytes_per_second) + "/s")));
  const out = el("div", {}, box);
  if (r.warning) out.append(el("div", {class: "hint"}, r.warning));
  if (r.error) out.append(el("div", {class: "error", "data-field": "replication-error"}, r.error));
  if (r.hint) out.append(el("div", {class: "hint", "data-field": "replication-hint"}, r.hint));
  return out;
}

function databaseView(db, samples) {
  const state = ui[db.dbname] || (ui[db.dbname] = {page: 0, filter: "", open: false});
  const groups = groupSteps(db.tables, db.table_sizes);
  // The rows expected of the whole database, when every table has an estimate.
  const sizes = db.table_sizes || [];
  const rowsExpected = sizes.length && sizes.every(z => z.expected_rows !== null)
    ? sizes.reduce((a, z) => a + z.expected_rows, 0) : null;
  const rowsFinal = db.status === "done" || db.status === "syncing";
  const p = db.progress;
  const sec = el("section", {class: "db", "data-db": db.dbname});
  sec.append(el("h2", {}, db.dbname + (db.target_dbname !== db.dbname ? " \u2192 " + db.target_dbname : "") + " ", badge(db.status, "state")));
  sec.append(el("div", {class: "facts"},
    el("span", {}, "method ", el("b", {"data-field": "method"}, db.method)),
    el("span", {}, "phase ", el("b", {"data-field": "phase"}, phaseOf(db, groups))),
    db.method_reason ? el("span", {}, "why ", el("b", {}, db.method_reason)) : null,
    el("span", {}, "started ", el("b", {}, db.started_at || "-")),
    el("span", {}, "finished ", el("b", {}, db.finished_at || "-")),
    db.consistent ? null : el("span", {}, el("b", {}, "rows from more than one snapshot"))));
  if (db.error) sec.append(el("div", {class: "error", "data-field": "error"}, db.error));
  if (db.hint) sec.append(el("div", {class: "hint", "data-field": "hint"}, db.hint));
  sec.append(el("div", {class: "bars"},
    el("span", {}, "bytes"), bar(p.bytes_done, p.bytes_total, "bytes-bar"),
    el("span", {"data-field": "bytes-done", "data-value": String(p.bytes_done)}, bytes(p.bytes_done) + " of " + bytes(p.bytes_total)),
    el("span", {}, "tables"), bar(p.tables_done, p.tables_total, "tables-bar"),
    el("span", {"data-field": "tables-done", "data-value": String(p.tables_done)}, p.tables_done + " of " + p.tables_total),
    el("span", {}, "indexes"), bar(p.indexes_done, p.indexes_total, "indexes-bar"),
    el("span", {"data-field": "indexes-done", "data-value": String(p.indexes_done)}, p.indexes_done + " of " + p.indexes_total),
    el("span", {}, "rows"),
    rowsFinal ? bar(1, 1, "rows-bar") : rowsExpected === null ? el("span", {class: "muted"}, "(no estimate of the total)")
      : bar(p.rows_done, rowsExpected, "rows-bar"),
    el("span", {"data-field": "rows-done", "data-value": String(p.rows_done)}, count(p.rows_done) + " copied" +
      (rowsFinal || rowsExpected === null ? "" : " of " + count(rowsExpected) + " (estimated)"))));
  if (db.replication) sec.append(replicationView(db.replication));
  if (db.cutover) {
    const w = db.cutover.window.reduce((a, x) => a + x.seconds, 0);
    sec.append(el("div", {class: "facts"}, el("span", {}, "cutover: writes stopped ", el("b", {"data-field": "write-stop"}, w.toFixed(1) + " s"))));
  }
  const charts = el("div", {class: "charts"}, chart("copy throughput", "chart-throughput", rate(series(samples, db.dbname, "bytes_done")), v => bytes(v) + "/s"));
  if (db.replication) {
    charts.append(chart("replication lag", "chart-lag", series(samples, db.dbname, "lag_bytes"), bytes),
                  chart("WAL retained on the source", "chart-wal", series(samples, db.dbname, "retained_wal_bytes"), bytes));
  }
  sec.append(charts, tablesView(db, groups, state));
  return sec;
}

function nextCommands(status, dir) {
  const d = shellQuote(dir), out = [];
  const dbs = status.databases || [];
  if (status.state === "failed" || status.state === "interrupted" || status.state === "cancelled") {
    out.push(["fix what the errors above say, then continue the run", "pgcourier migrate --resume --dir " + d]);
  }
  if (dbs.some(db => db.status === "syncing")) {
    out.push(["when the target has caught up: stop the writes and switch", "pgcourier cutover --dir " + d + " --stop-source-writes"]);
    out.push(["or give up the replication: remove the publication, slot and subscription", "pgcourier cleanup --dir " + d]);
  }
  if (status.state === "running") out.push(["the migration is running; this page follows it", null]);
  if (!out.length) out.push([status.state === "done" ? "the migration is done; nothing left to run" : "nothing to run", null]);
  const box = el("div", {});
  for (const [what, cmd] of out) {
    box.append(el("div", {}, what));
    if (cmd) box.append(el("pre", {class: "cmd", "data-field": "next-command"}, cmd));
  }
  return box;
}

let last = null;
function redraw() {
  if (!last) return;
  const started = performance.now();
  const [status, history] = last;
  const overall = document.getElementById("overall");
  overall.textContent = status.state;
  overall.className = "badge s-" + status.state;
  overall.dataset.state = status.state;
  const r = status.run;
  document.getElementById("run").textContent = r ? "run " + r.id + ": " + r.source + " \u2192 " + r.target +
    ", updated " + (r.updated_at || "-") + (r.error ? "; " + r.error : "") : "no run in " + history.dir;
  document.getElementById("problem").textContent = history.read_error ? "last reading failed: " + history.read_error : "";
  const dbs = document.getElementById("dbs");
  dbs.replaceChildren(...(status.databases || []).map(db => databaseView(db, history.samples)));
  document.getElementById("next").replaceChildren(nextCommands(status, history.dir));
  document.body.dataset.updated = String(history.read_at);
  // How long building the document took, in ms (docs/architecture.md has
  // the figures at 10,000 tables).
  document.body.dataset.renderMs = (performance.now() - started).toFixed(1);
}
async function refresh() {
  try {
    last = await Promise.all([api("api/status?tables=1"), api("api/history")]);
    if (last[1].poll_seconds) pollMs = Math.max(500, 1000 * last[1].poll_seconds);
    // Not while the user types a filter: redrawing would take the field away.
    if (!(document.activeElement && document.activeElement.type === "search")) redraw();
  } catch (e) {
    document.getElementById("problem").textContent = "cannot read the status: " + e.message;
  }
  setTimeout(refresh, pollMs);
}
refresh();
</script>
</body>
</html>
)html";

}  // namespace

std::string_view StatusPageHtml() { return kPage; }

}  // namespace pgcourier

// `pgcourier status` rendered for people (a table) and for programs
// ("pgcourier.status/1") from a StatusView read before (migrate/run_status.h).
// Rendering only: it returns text and JSON, and reads nothing.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "migrate/run_status.h"

namespace pgcourier {

// A header line (overall state, run id, source -> target), when and by whom,
// then one aligned row per database (name, target name, method, state, tables
// and indexes done of all, bytes, error) with its hint and a note when its
// rows come from more than one snapshot, the replication's lines (the
// subscription's options, the last cutover's phases, lag and health), and a
// "way back: <state> ..." line with the way back's own replication lines
// while the old source follows the target; with tables, every step of every
// database.
std::string RenderStatusText(const StatusView& view, bool tables);

// {format: "pgcourier.status/1", state: <OverallState>,
//  run: {id, source, target, started_at, updated_at, finished_at, pid,
//        resumes, error} or null,
//  databases: [{dbname, target_dbname, method, method_reason, status, error,
//    hint, consistent, progress: {tables_done, tables_total, indexes_done,
//    indexes_total, bytes_done, bytes_total, rows_done}, started_at,
//    finished_at, replication, subscription_options, cutover,
//    way_back: {state, publication, slot, subscription, replication} or
//    null (replication: as the database's, while followed; else null),
//    and with tables: tables: [{object, part, kind, state, rows,
//    bytes, seconds, attempts, error}]}]}
// Empty optional strings (error, hint, method_reason, part, timestamps not
// reached yet) are null.
nlohmann::json StatusJson(const StatusView& view, bool tables);

}  // namespace pgcourier

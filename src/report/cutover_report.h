// Renders the outcomes of `pgcourier cutover`, `pgcourier rollback` and
// `pgcourier cleanup` for people (text) and for programs
// ("pgcourier.cutover/1", "pgcourier.rollback/1", "pgcourier.cleanup/1"). Rendering only: it
// returns text and JSON; the CLI decides where they go.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "migrate/cleanup.h"
#include "migrate/cutover.h"

namespace pgcourier {

// Per database: a blank line and "<name>: <state>", then "  error: ..." and
// "  -> <hint>" when set; for a database that reached the switch moment, how
// long writes were stopped with the phases of the window ("stopping writes
// 0.1 s, catching up 0.4 s, ..."), the sequences synced and the tables copied
// again, one line per table replicated for inserts and truncates only ("  <table>
// (inserts and truncates replicated): copied again: <why>", or "not copied
// again"), the phases after the switch, one "  removed <object>" line per
// replication object dropped, and its verification at the switch moment
// (RenderVerifyDatabaseText; headed in capitals when it found differences);
// with --keep-rollback "  way back kept: ..." with the way back's
// subscription options;
// for one that stopped before, the phases it went through;
// "  the source is read-only; to
// undo: <sql>" when the source was made read-only. Last, after a blank line,
// "DONE: ..." when outcome.ok() (every database done or skipped, and at least
// one), else "INCOMPLETE: ...".
std::string RenderCutoverText(const CutoverOutcome& outcome);

// {format: "pgcourier.cutover/1", ok,
//  databases: [{dbname, target_dbname, status, error, hint,
//    switched, writes_stopped_seconds, window: [{phase, seconds}],
//    after_switch: [{phase, seconds}], undo, tables_recopied,
//    append_only: [{table, recopied, why}] (the tables replicated for inserts
//    and truncates only; always empty in a rollback), sequences, removed,
//    rollback_kept, rollback_options,
//    verification: <one database of pgcourier.verify/1>}]}
// Empty error, hint and undo are null, and so is a verification not made.
nlohmann::json CutoverToJson(const CutoverOutcome& outcome);

// `pgcourier rollback`: the same as the cutover's, with the roles said the
// other way round ("the target is read-only; to undo: ...", "DONE: the old
// source has everything ..."), and "pgcourier.rollback/1" as the JSON
// format.
std::string RenderRollbackText(const CutoverOutcome& outcome);
nlohmann::json RollbackToJson(const CutoverOutcome& outcome);

// One line per object: "removed <object>", "undone <change>", then
// "NOT REMOVED: <problem>"; one "nothing to remove: ..." line when there is
// none of them.
std::string RenderCleanupText(const CleanupOutcome& outcome);

// {format: "pgcourier.cleanup/1", ok, removed: [...], undone: [...],
//  problems: [...]} (arrays of strings).
nlohmann::json CleanupToJson(const CleanupOutcome& outcome);

}  // namespace pgcourier

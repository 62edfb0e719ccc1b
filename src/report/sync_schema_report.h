// Renders the outcome of `pgcourier sync-schema` for people (text) and for
// programs ("pgcourier.sync-schema/1"). Rendering only.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "migrate/sync_schema.h"

namespace pgcourier {

// Per database: "<name>: the schemas match" or one line per difference with
// the statements that repair it ("  on the target: ..."), then what --apply
// ran ("  applied on the target: ..."), what it left for the user, and the
// error with its hint. Last: "DONE: ..." when outcome.ok(), else
// "INCOMPLETE: ..." (differences left, or a failure).
std::string RenderSyncSchemaText(const SyncSchemaOutcome& outcome);

// {format: "pgcourier.sync-schema/1", ok, applied,
//  databases: [{dbname, target_dbname, drift: [{kind, table, detail,
//    target_ddl, source_ddl, additive}], applied: [...], left: [<drift>],
//    healthy, error, hint}]}
nlohmann::json SyncSchemaToJson(const SyncSchemaOutcome& outcome);

}  // namespace pgcourier

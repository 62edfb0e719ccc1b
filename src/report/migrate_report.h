// Renders the outcome of `pgcourier migrate`: a summary for people and the
// stable JSON format "pgcourier.migrate/1".
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "migrate/migration.h"

namespace pgcourier {

std::string RenderMigrateText(const MigrationOutcome& outcome);

// {format, ok, check: <pgcourier.check/1>, databases: [{name, target_name,
//  method, state, error, hint, phases: [{phase, seconds}], tables: [{table,
//  rows, bytes, seconds, attempts}], sequences, large_objects,
//  materialized_views, verification: <one database of pgcourier.verify/1>}]}
nlohmann::json MigrateToJson(const MigrationOutcome& outcome);

}  // namespace pgcourier

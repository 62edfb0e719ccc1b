#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace pgcourier::cli {

// Registers `pgcourier cutover` and `pgcourier cleanup` on `app`.
void AddCutoverCommands(CLI::App& app, std::function<int()>& run);

}  // namespace pgcourier::cli

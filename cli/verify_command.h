#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace pgcourier::cli {

// Registers `pgcourier verify` on `app`.
void AddVerifyCommand(CLI::App& app, std::function<int()>& run);

}  // namespace pgcourier::cli

// Each rwkvlite subcommand registers itself on the app and sets the function main() runs.
#pragma once

#include <CLI/CLI.hpp>

#include "tools/common/run_main.h"

namespace rwkvlite::cli {

using Action = tools::Action;

void register_inspect(CLI::App& app, Action& action);
void register_convert(CLI::App& app, Action& action);
void register_eval(CLI::App& app, Action& action);
void register_generate(CLI::App& app, Action& action);
void register_logits(CLI::App& app, Action& action);
void register_compress(CLI::App& app, Action& action);
void register_verify(CLI::App& app, Action& action);
void register_synthesize(CLI::App& app, Action& action);
void register_sweep(CLI::App& app, Action& action);
void register_check(CLI::App& app, Action& action);
void register_profile(CLI::App& app, Action& action);
void register_plan(CLI::App& app, Action& action);

}  // namespace rwkvlite::cli

// The commands of both programs in one table, and the one error boundary both run them in.
// `basin` (launcher.cpp) runs the light commands itself and hands every other command to
// `basin-torch` (main.cpp), which registers them all; the table says which is which, in the
// order `basin --help` lists them.
#pragma once

#include "commands.h"

#include <exception>
#include <map>
#include <string>
#include <vector>

namespace basin::cli {

using Adder = Runner (*)(CLI::App& app, const std::string& command_line);

// A command whose adder takes no command line, as an Adder.
template <Runner (*add)(CLI::App&)> Runner without_command_line(CLI::App& app, const std::string&) {
    return add(app);
}

struct Command {
    const char* name;
    const char* help;
    Adder light; // the light commands' adder (no libtorch); nullptr: basin-torch supplies it
};

const std::vector<Command>& command_table();
bool is_light_command(const std::string& name);

// Registers the commands of `table` (each with its adder: the light one, or torch[name]) as
// subcommands, parses argv and runs the chosen command. Parse errors are printed as CLI11 prints
// them; a clean stop (SIGINT/SIGTERM) is report_interrupted; any other error is one line
// "basin: error: ...", exit status 1. `describe` turns an exception into that line's text (for
// libtorch's errors without their backtrace); by default what().
int run_program(int argc, char** argv, const std::vector<Command>& table,
                const std::map<std::string, Adder>& torch = {},
                std::string (*describe)(const std::exception&) = nullptr);

} // namespace basin::cli

#pragma once
namespace peersock::cli {
// Parses argv, runs the chosen subcommand, returns the process exit code.
int run(int argc, char** argv);
}  // namespace peersock::cli

#include "cli/cli.hpp"

int main(int argc, char** argv) { return peersock::cli::run(argc, argv); }

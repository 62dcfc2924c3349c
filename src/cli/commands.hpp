// The subcommand table. Each subcommand parses its own positional arguments
// into a session::Mode (one file each: listen.cpp, connect.cpp, stdio.cpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "peersock/session/session.hpp"

namespace peersock::cli {

struct Command {
  std::string_view name;
  std::string_view usage;    // positional part, e.g. "PORT [CODE]"
  std::string_view summary;
  std::string_view example;
  // Fills `mode` from the positional args (without the optional code) and
  // returns how many it used. Errors: UsageError quoting the bad argument.
  size_t (*parse)(const std::vector<std::string>& args, session::Mode& mode);
};

size_t parse_listen(const std::vector<std::string>& args, session::Mode& mode);
size_t parse_connect(const std::vector<std::string>& args, session::Mode& mode);
size_t parse_stdio_a(const std::vector<std::string>& args, session::Mode& mode);
size_t parse_stdio_b(const std::vector<std::string>& args, session::Mode& mode);
size_t parse_listen_unix(const std::vector<std::string>& args, session::Mode& mode);
size_t parse_connect_unix(const std::vector<std::string>& args, session::Mode& mode);

const std::vector<Command>& commands();

struct Parsed {
  session::Options options;
  bool help = false, version = false;
};

// Parses the whole command line: options anywhere, then defaults < config
// file < flags. Errors: UsageError quoting the bad argument or value.
Parsed parse_args(int argc, char** argv);
uint16_t parse_port(std::string_view text, std::string_view what);

}  // namespace peersock::cli

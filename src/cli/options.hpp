// The command-line options that are not settings: the code's, the output's,
// --config, --print-config, --help. (Settings' flags are rows of
// config::table(); parse_args looks a flag up there first, then here.)
#pragma once

#include <span>
#include <string_view>

namespace peersock::cli {

struct Scan;  // parse_args' state while it reads argv (options.cpp)

struct Option {
  enum class Value { none, required, optional };  // optional: only as --NAME=VALUE
  enum class Group { code, pairing, output };     // where --help lists it

  std::string_view name;   // "--help"; empty: a line of --help only ("CODE")
  std::string_view alias;  // "-h", or empty
  Value value = Value::none;
  std::string_view arg;      // the value in --help ("FILE")
  std::string_view implied;  // Value::optional given without a value
  std::string_view display;  // --help's spelling, if not "ALIAS, NAME ARG"
  std::string_view help;     // empty: not in --help
  Group group = Group::output;
  void (*apply)(Scan& scan, std::string_view value) = nullptr;
};

// In --help order.
std::span<const Option> options();

}  // namespace peersock::cli

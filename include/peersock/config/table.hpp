// The settings table: every setting's spellings (config file key,
// environment variable, flag), its parser, the Settings field it sets, its
// Origins member, its --help line and its --print-config line, in one row.
//
// The file loader, the environment layer, the CLI's flag loop, --help,
// --print-config (text and --json) and tests/e2e/test_docs.py all iterate
// this table: a new setting is one new row in src/config/table.cpp (plus its
// field in Settings and Origins, and its lines in README.md and
// docs/peersock.1, which test_docs checks).
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "peersock/config/config.hpp"

namespace peersock::config {

struct Setting {
  // --print-config's name ("stun"). Empty: another spelling of the named
  // row above it, shown there (same Origins member): `stun-port` under
  // `stun`, the flags and keys of the relay policy under `relay-policy`.
  std::string_view name;
  // Config file: [section] key. Empty key: not in the file.
  std::string_view section;
  std::string_view key;
  // Environment variable, or empty.
  std::string_view env;
  // Flag ("--stun"), or empty.
  std::string_view flag;
  // The flag's value in --help ("HOST[:PORT]"), or empty: the flag takes no
  // value and stands for `implied`. For an environment-only row, the value
  // shown after ENV= in --help.
  std::string_view arg;
  std::string_view implied;
  // The --help line (without the spelling); empty: not in --help.
  std::string_view help;
  // Where the value came from.
  Origin Origins::*origin = nullptr;
  // Parses `value` and stores it in its Settings field. Errors: UsageError
  // "WHAT: ..." quoting the value (WHAT: "--stun", "PEERSOCK_STUN",
  // "PATH:LINE: stun").
  void (*set)(Settings& settings, std::string_view value, std::string_view what) = nullptr;
  // --print-config's value; only on named rows.
  std::string (*show)(const Settings& settings) = nullptr;
  // The environment variable counts when empty (PEERSOCK_STUN= disables the
  // server); otherwise an empty variable counts as unset.
  bool empty_env_is_value = false;
  // Config file: applied again after all other lines, so that the order of
  // `stun` and `stun-port` does not matter.
  bool file_applies_last = false;
  // The flag's value is a secret: overwritten in argv after parsing (ps).
  bool secret = false;
};

// All rows, in --print-config and --help order.
std::span<const Setting> table();

// The row with this flag ("--stun"), or nullptr.
const Setting* find_flag(std::string_view flag);

// "[ice] stun"
std::string file_key(const Setting& row);

}  // namespace peersock::config

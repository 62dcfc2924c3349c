// Settings: built-in defaults < config file < command-line flags.
//
// File: $XDG_CONFIG_HOME/peersock.conf (g_get_user_config_dir()), INI style,
// compatible with the original peersock's [ice] keys:
//   [ice]        stun, stun-port, turn, turn-port, turn-user, turn-password,
//                force-relay, no-relay (true/false; ours, not the original's)
//   [rendezvous] url
// '#' and ';' start comment lines. An empty stun/turn value disables that server.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace peersock::config {

struct Endpoint {
  std::string host;  // empty = disabled
  uint16_t port = 0;
  bool enabled() const { return !host.empty(); }
};

struct Settings {
  std::string relay_url;
  Endpoint stun;
  Endpoint turn;
  std::string turn_user;
  std::string turn_password;
  // ICE relay policy: force_relay = only TURN relay candidates (hides our
  // addresses from the peer, tests TURN); no_relay = never use TURN.
  bool force_relay = false;
  bool no_relay = false;
};

inline constexpr uint16_t kDefaultStunPort = 3478;

// The public defaults users need (the original's servers). Tests always
// override them.
Settings defaults();

// $XDG_CONFIG_HOME/peersock.conf
std::string default_path();

// Reads `path` if it exists (a missing file is not an error) and overrides
// the fields it sets. Errors: UsageError "PATH:LINE: ..." naming the key (or
// the malformed line) and quoting the bad value; an unreadable file is an
// error too.
void load_file(Settings& settings, const std::string& path);

// Parses "HOST:PORT", "HOST" (default_port), "[V6]:PORT", or "" (disabled).
// Errors: UsageError quoting the value, with `what` ("--stun") as context.
Endpoint parse_endpoint(std::string_view value, uint16_t default_port, std::string_view what);

}  // namespace peersock::config

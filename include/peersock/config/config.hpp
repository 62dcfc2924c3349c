// Settings: built-in defaults < config file < environment < command-line flags.
// Every setting's spellings, parser and rendering are one row of the table in
// peersock/config/table.hpp; the three layers below iterate it.
//
// File: $XDG_CONFIG_HOME/peersock.conf (g_get_user_config_dir()), INI style,
// compatible with the original peersock's [ice] keys; the sections and keys
// are the table's. '#' and ';' start comment lines. An empty stun/turn value
// disables that server.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "peersock/protocol/version.hpp"

namespace peersock::config {

struct Endpoint {
  std::string host;  // empty = disabled
  uint16_t port = 0;
  bool enabled() const { return !host.empty(); }
};

enum class Congestion { bbr, cubic };
std::string_view congestion_name(Congestion c);  // "bbr", "cubic"
// Errors: UsageError "WHAT: 'VALUE' is not bbr or cubic".
Congestion parse_congestion(std::string_view value, std::string_view what);

inline constexpr int kMaxProtocolVersion = protocol::kCurrent;

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
  // The highest peersock protocol version we announce (PEERSOCK_PROTOCOL,
  // 1..kMaxProtocolVersion): lower it to behave like an older peer, for
  // tests or to work around a problem in a newer feature.
  int protocol_version = kMaxProtocolVersion;
  // A peer without the signaling PAKE (the original peersock, whose ice
  // body comes in plaintext): answered in plaintext (true) or refused
  // (false: --no-original, PEERSOCK_ORIGINAL=false, [rendezvous] original).
  bool allow_original = true;
  // QUIC congestion control (--congestion, PEERSOCK_CONGESTION, [quic]
  // congestion): BBR by default; CUBIC behaves like most TCP stacks.
  Congestion congestion = Congestion::bbr;
  // Direct UDP pairs: send QUIC's batches on the pair's own socket with UDP
  // GSO instead of through libnice (PEERSOCK_UDP_GSO=0 turns it off, for
  // troubleshooting and for measuring what it brings).
  bool direct_send = true;
  // Seconds of silence from the peer before the session gives up
  // (--reconnect-timeout, PEERSOCK_RECONNECT_TIMEOUT, [quic]
  // reconnect-timeout). A path that goes silent and comes back within it
  // carries on where it stopped; 0 ends the session at QUIC's 15 s idle
  // timeout instead, as before path resumption.
  int reconnect_timeout_s = 60;
};
inline constexpr int kMaxReconnectTimeout = 86400;

inline constexpr uint16_t kDefaultStunPort = 3478;

// Where an effective value came from, for `peersock --print-config`.
enum class Source { defaults, file, environment, flag };
std::string_view source_name(Source source);  // "default", "config file", "environment", "flag"

struct Origin {
  Source source = Source::defaults;
  std::string detail;  // "PATH:LINE", "PEERSOCK_STUN", "--stun"; empty for defaults
};

// One Origin per Settings field, updated by load_file, apply_environment and
// apply_flags as each layer overrides a value.
struct Origins {
  Origin relay_url, stun, turn, turn_user, turn_password;
  Origin relay_policy;  // force-relay / no-relay
  Origin protocol_version;
  Origin allow_original;
  Origin congestion;
  Origin direct_send;
  Origin reconnect_timeout;
};

struct Setting;  // a row of the settings table (table.hpp)

// Looks up an environment variable (std::getenv in the binary, a map in
// tests). nullopt = not set.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;
EnvLookup process_environment();

// The public defaults users need (the original's servers). Tests always
// override them.
Settings defaults();

// $XDG_CONFIG_HOME/peersock.conf
std::string default_path();

// Reads `path` if it exists (a missing file is not an error) and overrides
// the fields it sets. Errors: UsageError "PATH:LINE: ..." naming the key (or
// the malformed line) and quoting the bad value; an unreadable file is an
// error too.
// When `origins` is given, every field the file sets is recorded there.
void load_file(Settings& settings, const std::string& path, Origins* origins = nullptr);

// A file that holds a secret (the config file's TURN password, a code file)
// and that group or other users may read: one warning line on stderr naming
// `what` and the file, with its mode. `fd` is the open file (fstat, so the
// check is on what was read, not on a path that may have changed since).
// Nothing for other file types (a pipe, /dev/stdin) or when fstat fails.
void warn_if_readable_by_others(int fd, std::string_view what, const std::string& path);

// The environment layer: each row's variable (PEERSOCK_RELAY, PEERSOCK_STUN,
// ...) overrides the file's value. An empty variable counts as unset, except
// PEERSOCK_STUN / PEERSOCK_TURN, where empty disables the server (like
// --stun ''). Errors: UsageError naming the variable and quoting its value;
// `settings` is then untouched.
void apply_environment(Settings& settings, const EnvLookup& env, Origins* origins = nullptr);

// One flag of the settings table as given on the command line: its row and
// its value (the row's `implied` value for a flag without one).
struct FlagValue {
  const Setting* setting;
  std::string value;
};

// The flag layer: applies `flags` in order. Errors: UsageError naming the
// flag and quoting its value; `settings` is then untouched.
void apply_flags(Settings& settings, const std::vector<FlagValue>& flags, Origins* origins = nullptr);

// Checks the combination of all layers. Errors: UsageError for force-relay
// with no-relay (only the file can set both), and for force-relay without a
// TURN server.
void check_settings(const Settings& settings);

// Validates a rendezvous URL (ws:// or wss:// with something after it).
// Errors: UsageError "WHAT: 'VALUE' is not a ws:// or wss:// URL".
void check_relay_url(std::string_view url, std::string_view what);

// A port number, digits only (no sign, no "80x"). Errors: UsageError
// "WHAT: bad port 'VALUE': expected 1-65535".
uint16_t parse_port(std::string_view value, std::string_view what);

// Parses "HOST:PORT", "HOST" (default_port), "[V6]:PORT", or "" (disabled).
// Errors: UsageError quoting the value, with `what` ("--stun") as context.
Endpoint parse_endpoint(std::string_view value, uint16_t default_port, std::string_view what);

}  // namespace peersock::config

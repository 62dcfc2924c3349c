// The settings table (see peersock/config/table.hpp): one row per spelling
// group of a setting. To add a setting, add its field to Settings and
// Origins, one row here, and its line to README.md's options table and the
// man page's CONFIGURATION table (tests/e2e/test_docs.py checks both).
#include "peersock/config/table.hpp"

#include <array>

#include "peersock/error.hpp"
#include "peersock/text.hpp"

namespace peersock::config {

using text::quote;

namespace {

// ---- Parsers: (value, what) -> value, errors "WHAT: ..." quoting the value.

std::string relay_url(std::string_view value, std::string_view what) {
  check_relay_url(value, what);
  return std::string(value);
}

Endpoint server(std::string_view value, std::string_view what) { return parse_endpoint(value, kDefaultStunPort, what); }

std::string any_text(std::string_view value, std::string_view) { return std::string(value); }

bool true_or_false(std::string_view value, std::string_view what) {
  if (value == "true" || value == "yes" || value == "1") return true;
  if (value == "false" || value == "no" || value == "0") return false;
  throw UsageError(std::string(what) + ": " + quote(value) + " is not true or false");
}

bool zero_or_one(std::string_view value, std::string_view what) {
  if (value != "0" && value != "1") throw UsageError(std::string(what) + ": " + quote(value) + " is not 0 or 1");
  return value == "1";
}

static_assert(kMaxProtocolVersion <= 9, "protocol_version parses one digit");
int protocol_version(std::string_view value, std::string_view what) {
  if (value.size() != 1 || value[0] < '1' || value[0] > '0' + kMaxProtocolVersion) {
    throw UsageError(std::string(what) + ": " + quote(value) + " is not a protocol version (1 to " +
                     std::to_string(kMaxProtocolVersion) + ")");
  }
  return value[0] - '0';
}

int seconds(std::string_view value, std::string_view what) {
  int n = 0;
  bool ok = !value.empty() && value.size() <= 5;
  for (char c : value) {
    if (c < '0' || c > '9') ok = false;
    if (ok) n = n * 10 + (c - '0');
  }
  if (!ok || n > kMaxReconnectTimeout) {
    throw UsageError(std::string(what) + ": " + quote(value) + " is not a number of seconds (0 to " +
                     std::to_string(kMaxReconnectTimeout) + ")");
  }
  return n;
}

// ---- Setters: parse, then store in one Settings field.

template <auto Field, auto Parse>
void assign(Settings& settings, std::string_view value, std::string_view what) {
  settings.*Field = Parse(value, what);
}

// [ice] stun-port / turn-port: the port alone, keeping the host.
template <auto Field>
void assign_port(Settings& settings, std::string_view value, std::string_view what) {
  (settings.*Field).port = parse_port(value, what);
}

// --force-relay and --no-relay choose one policy (so a flag overrides the
// file's other key); the file's force-relay and no-relay set one each.
void assign_relay_policy(Settings& settings, std::string_view value, std::string_view what) {
  if (value != "any" && value != "force-relay" && value != "no-relay") {
    throw UsageError(std::string(what) + ": " + quote(value) + " is not any, force-relay or no-relay");
  }
  settings.force_relay = value == "force-relay";
  settings.no_relay = value == "no-relay";
}

// ---- Renderings for --print-config.

template <auto Field, auto Show>
std::string render(const Settings& settings) {
  return std::string(Show(settings.*Field));
}

std::string as_is(const std::string& value) { return value; }

std::string endpoint_text(const Endpoint& e) {
  if (!e.enabled()) return "(disabled)";
  const std::string port = std::to_string(e.port);
  if (e.host.find(':') != std::string::npos) return "[" + e.host + "]:" + port;
  return e.host + ":" + port;
}

std::string hidden(const std::string& value) { return value.empty() ? "(empty)" : "(hidden)"; }

std::string number(int value) { return std::to_string(value); }

std::string on_off(bool value) { return value ? "on" : "off"; }

std::string allowed_refused(bool value) { return value ? "allowed" : "refused"; }

std::string relay_policy(const Settings& s) { return s.force_relay ? "force-relay" : s.no_relay ? "no-relay" : "any"; }

// The --help line of PEERSOCK_PROTOCOL names the range.
static_assert(kMaxProtocolVersion == 7, "update PEERSOCK_PROTOCOL's help line (and README.md, docs/peersock.1)");

constexpr auto kTable = std::to_array<Setting>({
    {.name = "relay",
     .section = "rendezvous",
     .key = "url",
     .env = "PEERSOCK_RELAY",
     .flag = "--relay",
     .arg = "URL",
     .help = "rendezvous (magic-wormhole mailbox) server, ws(s)://",
     .origin = &Origins::relay_url,
     .set = assign<&Settings::relay_url, relay_url>,
     .show = render<&Settings::relay_url, as_is>},

    {.name = "stun",
     .section = "ice",
     .key = "stun",
     .env = "PEERSOCK_STUN",
     .flag = "--stun",
     .arg = "HOST[:PORT]",
     .help = "STUN server ('' disables)",
     .origin = &Origins::stun,
     .set = assign<&Settings::stun, server>,
     .show = render<&Settings::stun, endpoint_text>,
     .empty_env_is_value = true},
    {.section = "ice",
     .key = "stun-port",
     .origin = &Origins::stun,
     .set = assign_port<&Settings::stun>,
     .file_applies_last = true},

    {.name = "turn",
     .section = "ice",
     .key = "turn",
     .env = "PEERSOCK_TURN",
     .flag = "--turn",
     .arg = "HOST[:PORT]",
     .help = "TURN server ('' disables)",
     .origin = &Origins::turn,
     .set = assign<&Settings::turn, server>,
     .show = render<&Settings::turn, endpoint_text>,
     .empty_env_is_value = true},
    {.section = "ice",
     .key = "turn-port",
     .origin = &Origins::turn,
     .set = assign_port<&Settings::turn>,
     .file_applies_last = true},

    {.name = "turn-user",
     .section = "ice",
     .key = "turn-user",
     .env = "PEERSOCK_TURN_USER",
     .flag = "--turn-user",
     .arg = "USER",
     .help = "TURN user name",
     .origin = &Origins::turn_user,
     .set = assign<&Settings::turn_user, any_text>,
     .show = render<&Settings::turn_user, as_is>},

    {.name = "turn-password",
     .section = "ice",
     .key = "turn-password",
     .env = "PEERSOCK_TURN_PASSWORD",
     .flag = "--turn-password",
     .arg = "PASSWORD",
     .help = "TURN password",
     .origin = &Origins::turn_password,
     .set = assign<&Settings::turn_password, any_text>,
     .show = render<&Settings::turn_password, hidden>,
     .secret = true},

    {.name = "relay-policy",
     .flag = "--force-relay",
     .implied = "force-relay",
     .help = "relay via TURN only (needs --turn); hides your addresses",
     .origin = &Origins::relay_policy,
     .set = assign_relay_policy,
     .show = relay_policy},
    {.flag = "--no-relay",
     .implied = "no-relay",
     .help = "never use TURN: direct paths only",
     .origin = &Origins::relay_policy,
     .set = assign_relay_policy},
    {.section = "ice",
     .key = "force-relay",
     .origin = &Origins::relay_policy,
     .set = assign<&Settings::force_relay, true_or_false>},
    {.section = "ice",
     .key = "no-relay",
     .origin = &Origins::relay_policy,
     .set = assign<&Settings::no_relay, true_or_false>},

    {.name = "original",
     .section = "rendezvous",
     .key = "original",
     .env = "PEERSOCK_ORIGINAL",
     .flag = "--no-original",
     .implied = "false",
     .help = "refuse a peer without encrypted signaling (the original peersock)",
     .origin = &Origins::allow_original,
     .set = assign<&Settings::allow_original, true_or_false>,
     .show = render<&Settings::allow_original, allowed_refused>},

    {.name = "protocol",
     .env = "PEERSOCK_PROTOCOL",
     .arg = "N",
     .help = "highest protocol version to announce (1-7, default 7)",
     .origin = &Origins::protocol_version,
     .set = assign<&Settings::protocol_version, protocol_version>,
     .show = render<&Settings::protocol_version, number>},

    {.name = "congestion",
     .section = "quic",
     .key = "congestion",
     .env = "PEERSOCK_CONGESTION",
     .flag = "--congestion",
     .arg = "bbr|cubic",
     .help = "QUIC congestion control (default bbr)",
     .origin = &Origins::congestion,
     .set = assign<&Settings::congestion, parse_congestion>,
     .show = render<&Settings::congestion, congestion_name>},

    {.name = "reconnect-timeout",
     .section = "quic",
     .key = "reconnect-timeout",
     .env = "PEERSOCK_RECONNECT_TIMEOUT",
     .flag = "--reconnect-timeout",
     .arg = "SECONDS",
     .help = "how long to wait for a silent peer to answer again (default 60; 0: 15 s, no resumption)",
     .origin = &Origins::reconnect_timeout,
     .set = assign<&Settings::reconnect_timeout_s, seconds>,
     .show = render<&Settings::reconnect_timeout_s, number>},

    {.name = "udp-gso",
     .env = "PEERSOCK_UDP_GSO",
     .arg = "0|1",
     .help = "0: send through libnice, not with UDP GSO (default 1)",
     .origin = &Origins::direct_send,
     .set = assign<&Settings::direct_send, zero_or_one>,
     .show = render<&Settings::direct_send, on_off>},
});

// What the loops rely on, checked when compiling.
constexpr bool well_formed() {
  for (size_t i = 0; i < kTable.size(); ++i) {
    const Setting& row = kTable[i];
    if (row.origin == nullptr || row.set == nullptr) return false;
    if (row.name.empty() != (row.show == nullptr)) return false;  // named rows, and only they, are shown
    if (i == 0 && row.name.empty()) return false;                 // a continuation needs a row above
    if (i > 0 && row.name.empty() && row.origin != kTable[i - 1].origin) return false;
    if (row.key.empty() != row.section.empty()) return false;
    if (!row.flag.empty() && row.arg.empty() == row.implied.empty()) return false;  // a value, or an implied one
    if (row.key.empty() && row.env.empty() && row.flag.empty()) return false;
    for (size_t j = 0; j < i; ++j) {
      if (!row.flag.empty() && row.flag == kTable[j].flag) return false;
      if (!row.env.empty() && row.env == kTable[j].env) return false;
      if (!row.key.empty() && row.key == kTable[j].key && row.section == kTable[j].section) return false;
      if (!row.name.empty() && row.name == kTable[j].name) return false;
    }
  }
  return true;
}
static_assert(well_formed(), "a row of the settings table breaks a rule of table.hpp");

}  // namespace

std::span<const Setting> table() { return kTable; }

const Setting* find_flag(std::string_view flag) {
  for (const Setting& row : kTable) {
    if (!row.flag.empty() && row.flag == flag) return &row;
  }
  return nullptr;
}

std::string file_key(const Setting& row) { return "[" + std::string(row.section) + "] " + std::string(row.key); }

}  // namespace peersock::config

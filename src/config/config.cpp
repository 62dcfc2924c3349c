#include "peersock/config/config.hpp"

#include <fcntl.h>
#include <glib.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <optional>

#include "peersock/text.hpp"
#include "peersock/error.hpp"

namespace peersock::config {

using text::quote;
constexpr auto trim = text::trim_ascii_space;

namespace {

// A config file is a few lines; anything bigger is the wrong file (or a
// device such as /dev/zero) and must not be slurped forever.
constexpr size_t kMaxFileBytes = 1 << 20;

// Digits only: from_chars alone would accept "80x" as 80.
std::optional<uint16_t> parse_port(std::string_view s) {
  if (s.empty()) return std::nullopt;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  unsigned long value = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || ptr != s.data() + s.size() || value < 1 || value > 65535) return std::nullopt;
  return static_cast<uint16_t>(value);
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

bool is_websocket_url(std::string_view url) {
  for (std::string_view scheme : {"ws://", "wss://"}) {
    if (starts_with(url, scheme)) return url.size() > scheme.size();
  }
  return false;
}

// Reads the whole file, or returns nullopt if it does not exist. Only ENOENT
// counts as missing: a file that is there but unreadable is reported, since
// silently ignoring it would apply settings the user did not intend.
std::optional<std::string> read_file(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return std::nullopt;
    throw UsageError(path + ": cannot open: " + g_strerror(err));
  }
  std::string data;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      close(fd);
      throw UsageError(path + ": cannot read: " + g_strerror(err));
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > kMaxFileBytes) {
      close(fd);
      throw UsageError(path + ": larger than " + std::to_string(kMaxFileBytes) + " bytes, not a config file");
    }
  }
  close(fd);
  return data;
}

// One server's settings from one file, combined only after the whole file is
// read so that the order of `stun` and `stun-port` lines does not matter.
struct ServerLines {
  std::optional<Endpoint> endpoint;
  std::optional<uint16_t> port;
  std::string where;  // PATH:LINE of the last line that set either

  void apply(Endpoint& target, Origin* origin) const {
    if (endpoint) target = *endpoint;
    if (port) target.port = *port;
    if ((endpoint || port) && origin != nullptr) *origin = Origin{Source::file, where};
  }
};

enum class Section { none, ice, rendezvous, quic };

std::string_view section_name(Section s) {
  return s == Section::ice ? "ice" : s == Section::quic ? "quic" : "rendezvous";
}

}  // namespace

Settings defaults() {
  Settings s;
  s.relay_url = "ws://relay.magic-wormhole.io/v1";
  s.stun = Endpoint{"freestun.net", 3479};
  s.turn = Endpoint{"freestun.net", 3479};
  s.turn_user = "free";
  s.turn_password = "free";
  return s;
}

std::string default_path() { return std::string(g_get_user_config_dir()) + "/peersock.conf"; }

std::string_view source_name(Source source) {
  switch (source) {
    case Source::defaults: return "default";
    case Source::file: return "config file";
    case Source::environment: return "environment";
    case Source::flag: return "flag";
  }
  return "?";
}

EnvLookup process_environment() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* value = std::getenv(std::string(name).c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

void check_relay_url(std::string_view url, std::string_view what) {
  if (!is_websocket_url(url)) throw UsageError(std::string(what) + ": " + quote(url) + " is not a ws:// or wss:// URL");
}

void apply_environment(Settings& settings, const EnvLookup& env, Origins* origins) {
  // Into a copy, so that a bad variable leaves `settings` untouched.
  Settings result = settings;
  Origins record = origins != nullptr ? *origins : Origins{};
  const auto from_env = [](const char* name) { return Origin{Source::environment, name}; };
  const auto get = [&](const char* name) -> std::optional<std::string> { return env(name); };

  if (auto v = get("PEERSOCK_RELAY"); v && !v->empty()) {
    check_relay_url(*v, "PEERSOCK_RELAY");
    result.relay_url = *v;
    record.relay_url = from_env("PEERSOCK_RELAY");
  }
  if (auto v = get("PEERSOCK_STUN")) {
    result.stun = parse_endpoint(*v, kDefaultStunPort, "PEERSOCK_STUN");
    record.stun = from_env("PEERSOCK_STUN");
  }
  if (auto v = get("PEERSOCK_TURN")) {
    result.turn = parse_endpoint(*v, kDefaultStunPort, "PEERSOCK_TURN");
    record.turn = from_env("PEERSOCK_TURN");
  }
  if (auto v = get("PEERSOCK_TURN_USER"); v && !v->empty()) {
    result.turn_user = *v;
    record.turn_user = from_env("PEERSOCK_TURN_USER");
  }
  if (auto v = get("PEERSOCK_TURN_PASSWORD"); v && !v->empty()) {
    result.turn_password = *v;
    record.turn_password = from_env("PEERSOCK_TURN_PASSWORD");
  }
  if (auto v = get("PEERSOCK_PROTOCOL"); v && !v->empty()) {
    if (v->size() != 1 || (*v)[0] < '1' || (*v)[0] > '0' + kMaxProtocolVersion) {
      throw UsageError("PEERSOCK_PROTOCOL: " + quote(*v) + " is not a protocol version (1 to " +
                       std::to_string(kMaxProtocolVersion) + ")");
    }
    result.protocol_version = (*v)[0] - '0';
    record.protocol_version = from_env("PEERSOCK_PROTOCOL");
  }
  if (auto v = get("PEERSOCK_UDP_GSO"); v && !v->empty()) {
    if (*v != "0" && *v != "1") throw UsageError("PEERSOCK_UDP_GSO: " + quote(*v) + " is not 0 or 1");
    result.direct_send = *v == "1";
  }
  if (auto v = get("PEERSOCK_CONGESTION"); v && !v->empty()) {
    result.congestion = parse_congestion(*v, "PEERSOCK_CONGESTION");
    record.congestion = from_env("PEERSOCK_CONGESTION");
  }
  settings = std::move(result);
  if (origins != nullptr) *origins = std::move(record);
}

std::string_view congestion_name(Congestion c) { return c == Congestion::bbr ? "bbr" : "cubic"; }

Congestion parse_congestion(std::string_view value, std::string_view what) {
  if (value == "bbr") return Congestion::bbr;
  if (value == "cubic") return Congestion::cubic;
  throw UsageError(std::string(what) + ": " + quote(value) + " is not bbr or cubic");
}

void load_file(Settings& settings, const std::string& path, Origins* origins) {
  const std::optional<std::string> contents = read_file(path);
  if (!contents) return;

  // Parse into a copy so that an error half-way leaves `settings` untouched.
  Settings result = settings;
  Origins record = origins != nullptr ? *origins : Origins{};
  ServerLines stun;
  ServerLines turn;
  Section section = Section::none;

  std::string_view rest = *contents;
  if (starts_with(rest, "\xef\xbb\xbf")) rest.remove_prefix(3);  // editors on some systems add a BOM
  for (size_t number = 1; !rest.empty(); ++number) {
    const size_t newline = rest.find('\n');
    const std::string_view line = trim(rest.substr(0, newline));
    rest.remove_prefix(newline == std::string_view::npos ? rest.size() : newline + 1);

    const std::string here = path + ":" + std::to_string(number);
    const std::string where = here + ": ";
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;

    if (line.front() == '[') {
      if (line.back() != ']') throw UsageError(where + "malformed section header " + quote(line));
      const std::string_view name = trim(line.substr(1, line.size() - 2));
      if (name == "ice") {
        section = Section::ice;
      } else if (name == "rendezvous") {
        section = Section::rendezvous;
      } else if (name == "quic") {
        section = Section::quic;
      } else {
        throw UsageError(where + "unknown section " + quote(name) + ": expected 'ice', 'rendezvous' or 'quic'");
      }
      continue;
    }

    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) throw UsageError(where + "expected 'key = value', got " + quote(line));
    const std::string_view key = trim(line.substr(0, eq));
    // No inline comments: '#' and ';' are legitimate in passwords.
    const std::string_view value = trim(line.substr(eq + 1));
    if (key.empty()) throw UsageError(where + "missing key before '=' in " + quote(line));

    if (section == Section::none) {
      throw UsageError(where + "key " + quote(key) + " is outside any section: put it under [ice] or [rendezvous]");
    }

    const auto port_of = [&](std::string_view k) {
      const std::optional<uint16_t> port = parse_port(value);
      if (!port) throw UsageError(where + std::string(k) + ": bad port " + quote(value) + ": expected 1-65535");
      return *port;
    };

    if (section == Section::ice && key == "stun") {
      stun.endpoint = parse_endpoint(value, kDefaultStunPort, where + "stun");
      stun.where = here;
    } else if (section == Section::ice && key == "stun-port") {
      stun.port = port_of(key);
      stun.where = here;
    } else if (section == Section::ice && key == "turn") {
      turn.endpoint = parse_endpoint(value, kDefaultStunPort, where + "turn");
      turn.where = here;
    } else if (section == Section::ice && key == "turn-port") {
      turn.port = port_of(key);
      turn.where = here;
    } else if (section == Section::ice && key == "turn-user") {
      result.turn_user = value;
      record.turn_user = Origin{Source::file, here};
    } else if (section == Section::ice && key == "turn-password") {
      result.turn_password = value;
      record.turn_password = Origin{Source::file, here};
    } else if (section == Section::ice && (key == "force-relay" || key == "no-relay")) {
      bool flag = false;
      if (value == "true" || value == "yes" || value == "1") {
        flag = true;
      } else if (!(value == "false" || value == "no" || value == "0")) {
        throw UsageError(where + std::string(key) + ": " + quote(value) + " is not true or false");
      }
      (key == "force-relay" ? result.force_relay : result.no_relay) = flag;
      record.relay_policy = Origin{Source::file, here};
    } else if (section == Section::quic && key == "congestion") {
      result.congestion = parse_congestion(value, where + "congestion");
      record.congestion = Origin{Source::file, here};
    } else if (section == Section::rendezvous && key == "url") {
      if (!is_websocket_url(value)) {
        throw UsageError(where + "url " + quote(value) + " is not a ws:// or wss:// URL");
      }
      result.relay_url = value;
      record.relay_url = Origin{Source::file, here};
    } else {
      throw UsageError(where + "unknown key " + quote(key) + " in [" + std::string(section_name(section)) + "]");
    }
  }

  stun.apply(result.stun, &record.stun);
  turn.apply(result.turn, &record.turn);
  settings = std::move(result);
  if (origins != nullptr) *origins = std::move(record);
}

Endpoint parse_endpoint(std::string_view value, uint16_t default_port, std::string_view what) {
  const std::string context = std::string(what) + ": ";
  if (value.empty()) return Endpoint{};

  std::string_view host;
  std::optional<std::string_view> port_text;
  if (value.front() == '[') {
    const size_t close = value.find(']');
    if (close == std::string_view::npos) throw UsageError(context + "missing ']' in " + quote(value));
    host = value.substr(1, close - 1);
    const std::string_view after = value.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') throw UsageError(context + "unexpected " + quote(after) + " after ']' in " + quote(value));
      port_text = after.substr(1);
    }
  } else {
    const size_t colon = value.find(':');
    // Two or more colons can only be a bare IPv6 literal, which has no room
    // for a port; brackets are needed to give one.
    if (colon != std::string_view::npos && value.find(':', colon + 1) == std::string_view::npos) {
      host = value.substr(0, colon);
      port_text = value.substr(colon + 1);
    } else {
      host = value;
    }
  }

  if (host.empty()) throw UsageError(context + "empty host in " + quote(value));
  // Found by fuzz_config: a host with a newline or other control bytes went
  // unquoted into later error messages ("cannot resolve ...").
  for (char c : host) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) throw UsageError(context + "bad host " + quote(host));
  }
  Endpoint endpoint{std::string(host), default_port};
  if (port_text) {
    const std::optional<uint16_t> port = parse_port(*port_text);
    if (!port) throw UsageError(context + "bad port " + quote(*port_text) + " in " + quote(value));
    endpoint.port = *port;
  }
  return endpoint;
}

}  // namespace peersock::config

#include "peersock/config/config.hpp"

#include <fcntl.h>
#include <glib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <optional>
#include <vector>

#include "peersock/config/table.hpp"
#include "peersock/error.hpp"
#include "peersock/log.hpp"
#include "peersock/text.hpp"

namespace peersock::config {

using text::quote;
constexpr auto trim = text::trim_ascii_space;

namespace {

// A config file is a few lines; anything bigger is the wrong file (or a
// device such as /dev/zero) and must not be slurped forever.
constexpr size_t kMaxFileBytes = 1 << 20;

// Digits only: from_chars alone would accept "80x" as 80.
std::optional<uint16_t> port_number(std::string_view s) {
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
  warn_if_readable_by_others(fd, "the config file", path);
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

// The sections of the table, in order of first appearance.
std::vector<std::string_view> sections() {
  std::vector<std::string_view> out;
  for (const Setting& row : table()) {
    if (!row.section.empty() && std::find(out.begin(), out.end(), row.section) == out.end()) out.push_back(row.section);
  }
  return out;
}

// "'ice', 'rendezvous' or 'quic'", or with brackets "[ice], [rendezvous] or [quic]".
std::string one_of(const std::vector<std::string_view>& names, bool brackets) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " or " : ", ";
    out += brackets ? "[" + std::string(names[i]) + "]" : quote(names[i]);
  }
  return out;
}

// The sections that have `key`, for hints.
std::vector<std::string_view> sections_with(std::string_view key) {
  std::vector<std::string_view> out;
  for (const Setting& row : table()) {
    if (row.key == key) out.push_back(row.section);
  }
  return out;
}

const Setting* find_key(std::string_view section, std::string_view key) {
  for (const Setting& row : table()) {
    if (!row.key.empty() && row.section == section && row.key == key) return &row;
  }
  return nullptr;
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

uint16_t parse_port(std::string_view value, std::string_view what) {
  const std::optional<uint16_t> port = port_number(value);
  if (!port) throw UsageError(std::string(what) + ": bad port " + quote(value) + ": expected 1-65535");
  return *port;
}

void apply_environment(Settings& settings, const EnvLookup& env, Origins* origins) {
  // Into a copy, so that a bad variable leaves `settings` untouched.
  Settings result = settings;
  Origins record = origins != nullptr ? *origins : Origins{};
  for (const Setting& row : table()) {
    if (row.env.empty()) continue;
    const std::optional<std::string> value = env(row.env);
    if (!value || (value->empty() && !row.empty_env_is_value)) continue;
    row.set(result, *value, row.env);
    record.*row.origin = Origin{Source::environment, std::string(row.env)};
  }
  settings = std::move(result);
  if (origins != nullptr) *origins = std::move(record);
}

void apply_flags(Settings& settings, const std::vector<FlagValue>& flags, Origins* origins) {
  Settings result = settings;
  Origins record = origins != nullptr ? *origins : Origins{};
  for (const FlagValue& f : flags) {
    f.setting->set(result, f.value, f.setting->flag);
    record.*f.setting->origin = Origin{Source::flag, std::string(f.setting->flag)};
  }
  settings = std::move(result);
  if (origins != nullptr) *origins = std::move(record);
}

void check_settings(const Settings& settings) {
  if (settings.force_relay && settings.no_relay) {
    throw UsageError("force-relay and no-relay contradict each other (check the config file)");
  }
  if (settings.force_relay && !settings.turn.enabled()) {
    throw UsageError("--force-relay needs a TURN server (--turn HOST[:PORT])");
  }
}

std::string_view congestion_name(Congestion c) { return c == Congestion::bbr ? "bbr" : "cubic"; }

void warn_if_readable_by_others(int fd, std::string_view what, const std::string& path) {
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & (S_IRGRP | S_IROTH)) == 0) return;
  log::warning("readable-by-others",
               fmt::format("Warning: {} {} is readable by other users (mode {:04o}); chmod 600 it", what, quote(path),
                           st.st_mode & 07777));
}

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
  struct Again {
    const Setting* row;
    std::string value, what;
  };
  std::vector<Again> again;  // rows with file_applies_last, in line order
  const std::vector<std::string_view> known_sections = sections();
  std::string_view section;  // empty before the first [section]

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
      const auto found = std::find(known_sections.begin(), known_sections.end(), name);
      if (found == known_sections.end()) {
        throw UsageError(where + "unknown section " + quote(name) + ": expected " + one_of(known_sections, false));
      }
      section = *found;
      continue;
    }

    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) throw UsageError(where + "expected 'key = value', got " + quote(line));
    const std::string_view key = trim(line.substr(0, eq));
    // No inline comments: '#' and ';' are legitimate in passwords.
    const std::string_view value = trim(line.substr(eq + 1));
    if (key.empty()) throw UsageError(where + "missing key before '=' in " + quote(line));

    const std::vector<std::string_view> homes = sections_with(key);
    if (section.empty()) {
      throw UsageError(where + "key " + quote(key) + " is outside any section: put it under " +
                       one_of(homes.empty() ? known_sections : homes, true));
    }
    const Setting* row = find_key(section, key);
    if (row == nullptr) {
      std::string hint;
      if (!homes.empty()) hint = " (it belongs in " + one_of(homes, true) + ")";
      throw UsageError(where + "unknown key " + quote(key) + " in [" + std::string(section) + "]" + hint);
    }
    const std::string what = where + std::string(key);
    row->set(result, value, what);
    record.*row->origin = Origin{Source::file, here};
    if (row->file_applies_last) again.push_back({row, std::string(value), what});
  }

  for (const Again& a : again) a.row->set(result, a.value, a.what);
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
      if (after.front() != ':')
        throw UsageError(context + "unexpected " + quote(after) + " after ']' in " + quote(value));
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
    const std::optional<uint16_t> port = port_number(*port_text);
    if (!port) throw UsageError(context + "bad port " + quote(*port_text) + " in " + quote(value));
    endpoint.port = *port;
  }
  return endpoint;
}

}  // namespace peersock::config

#include <glib.h>
#include <glib/gstdio.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <string>

#include "peersock/config/config.hpp"
#include "peersock/config/table.hpp"
#include "peersock/error.hpp"

namespace cfg = peersock::config;

namespace {

// A config file in a fresh temp directory, removed with the directory.
class TempConfig {
 public:
  TempConfig() {
    GError* error = nullptr;
    gchar* dir = g_dir_make_tmp("peersock-config-XXXXXX", &error);
    if (dir == nullptr) {
      ADD_FAILURE() << "g_dir_make_tmp: " << error->message;
      g_error_free(error);
      return;
    }
    dir_ = dir;
    g_free(dir);
    path_ = dir_ + "/peersock.conf";
  }
  ~TempConfig() {
    g_remove(path_.c_str());
    g_rmdir(dir_.c_str());
  }
  TempConfig(const TempConfig&) = delete;
  TempConfig& operator=(const TempConfig&) = delete;

  const std::string& write(const std::string& text) {
    GError* error = nullptr;
    if (!g_file_set_contents(path_.c_str(), text.data(), static_cast<gssize>(text.size()), &error)) {
      ADD_FAILURE() << "g_file_set_contents: " << error->message;
      g_error_free(error);
    }
    return path_;
  }
  const std::string& path() const { return path_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::string path_;
};

cfg::Settings load(const std::string& text) {
  TempConfig file;
  cfg::Settings s = cfg::defaults();
  cfg::load_file(s, file.write(text));
  return s;
}

// The UsageError message from loading `text`, or a test failure.
std::string load_error(const std::string& text, std::string* path = nullptr) {
  TempConfig file;
  if (path != nullptr) *path = file.path();
  cfg::Settings s = cfg::defaults();
  try {
    cfg::load_file(s, file.write(text));
  } catch (const peersock::UsageError& e) {
    EXPECT_EQ(e.code(), peersock::ExitCode::usage);
    return e.what();
  }
  ADD_FAILURE() << "no error for:\n" << text;
  return {};
}

std::string endpoint_error(const std::string& value) {
  try {
    cfg::parse_endpoint(value, 3478, "--stun");
  } catch (const peersock::UsageError& e) {
    return e.what();
  }
  ADD_FAILURE() << "parse_endpoint('" << value << "') did not throw";
  return {};
}

#define EXPECT_CONTAINS(haystack, needle)                                                         \
  do {                                                                                            \
    const std::string h_ = (haystack);                                                            \
    EXPECT_NE(h_.find(needle), std::string::npos) << "'" << h_ << "' lacks '" << (needle) << "'"; \
  } while (0)

}  // namespace

TEST(Defaults, AreTheOriginalPublicServers) {
  const cfg::Settings s = cfg::defaults();
  EXPECT_EQ(s.relay_url, "ws://relay.magic-wormhole.io/v1");
  EXPECT_EQ(s.stun.host, "freestun.net");
  EXPECT_EQ(s.stun.port, 3479);
  EXPECT_EQ(s.turn.host, "freestun.net");
  EXPECT_EQ(s.turn.port, 3479);
  EXPECT_EQ(s.turn_user, "free");
  EXPECT_EQ(s.turn_password, "free");
  EXPECT_TRUE(s.stun.enabled());
  EXPECT_TRUE(s.turn.enabled());
}

TEST(DefaultPath, IsUnderUserConfigDir) {
  EXPECT_EQ(cfg::default_path(), std::string(g_get_user_config_dir()) + "/peersock.conf");
}

TEST(LoadFile, OverridesEveryKey) {
  const cfg::Settings s = load(
      "# peersock settings\n"
      "; another comment style\n"
      "\n"
      "[ice]\n"
      "stun = stun.example.org\n"
      "stun-port=19302\n"
      "  turn   =   turn.example.org:5349  \n"
      "turn-user = alice\n"
      "turn-password = s3cret # not a comment;\n"
      "\n"
      "[rendezvous]\n"
      "url = wss://mailbox.example.org/v1\n");
  EXPECT_EQ(s.stun.host, "stun.example.org");
  EXPECT_EQ(s.stun.port, 19302);
  EXPECT_EQ(s.turn.host, "turn.example.org");
  EXPECT_EQ(s.turn.port, 5349);
  EXPECT_EQ(s.turn_user, "alice");
  EXPECT_EQ(s.turn_password, "s3cret # not a comment;");
  EXPECT_EQ(s.relay_url, "wss://mailbox.example.org/v1");
}

TEST(LoadFile, UnsetKeysKeepPreviousValues) {
  const cfg::Settings s = load("[ice]\nturn-user = bob\r\n");
  const cfg::Settings d = cfg::defaults();
  EXPECT_EQ(s.turn_user, "bob");
  EXPECT_EQ(s.turn_password, d.turn_password);
  EXPECT_EQ(s.stun.host, d.stun.host);
  EXPECT_EQ(s.stun.port, d.stun.port);
  EXPECT_EQ(s.relay_url, d.relay_url);
}

TEST(LoadFile, HostWithoutPortGetsStandardPort) {
  const cfg::Settings s = load("[ice]\nstun = stun.example.org\nturn = [2001:db8::1]\n");
  EXPECT_EQ(s.stun.port, cfg::kDefaultStunPort);
  EXPECT_EQ(s.turn.host, "2001:db8::1");
  EXPECT_EQ(s.turn.port, cfg::kDefaultStunPort);
}

TEST(LoadFile, EmptyValueDisablesServer) {
  const cfg::Settings s = load("[ice]\nstun =\nturn=   \n");
  EXPECT_FALSE(s.stun.enabled());
  EXPECT_FALSE(s.turn.enabled());
}

TEST(LoadFile, PortAloneChangesDefaultHostPort) {
  const cfg::Settings s = load("[ice]\nstun-port = 3480\nturn-port = 443\n");
  EXPECT_EQ(s.stun.host, "freestun.net");
  EXPECT_EQ(s.stun.port, 3480);
  EXPECT_EQ(s.turn.host, "freestun.net");
  EXPECT_EQ(s.turn.port, 443);
}

TEST(LoadFile, PortAloneChangesPreviousHostPort) {
  cfg::Settings s = cfg::defaults();
  s.stun = cfg::Endpoint{"earlier.example.org", 1000};
  TempConfig file;
  cfg::load_file(s, file.write("[ice]\nstun-port = 2000\n"));
  EXPECT_EQ(s.stun.host, "earlier.example.org");
  EXPECT_EQ(s.stun.port, 2000);
}

TEST(LoadFile, PortLineOrderDoesNotMatter) {
  const cfg::Settings s = load("[ice]\nstun-port = 2000\nstun = stun.example.org\n");
  EXPECT_EQ(s.stun.host, "stun.example.org");
  EXPECT_EQ(s.stun.port, 2000);
}

TEST(LoadFile, MissingFileIsNotAnError) {
  TempConfig file;  // directory exists, file does not
  cfg::Settings s = cfg::defaults();
  EXPECT_NO_THROW(cfg::load_file(s, file.path()));
  EXPECT_EQ(s.relay_url, cfg::defaults().relay_url);
  EXPECT_EQ(s.stun.port, cfg::defaults().stun.port);
}

TEST(LoadFile, UnreadableFileIsAnError) {
  TempConfig file;
  cfg::Settings s = cfg::defaults();
  try {
    cfg::load_file(s, file.dir());
    ADD_FAILURE() << "loading a directory did not throw";
  } catch (const peersock::UsageError& e) {
    EXPECT_CONTAINS(e.what(), file.dir());
  }
}

// open() itself fails here (ENOTDIR), unlike the directory case where read() does.
TEST(LoadFile, PathThroughAFileIsAnError) {
  TempConfig file;
  const std::string bad = file.write("[ice]\n") + "/peersock.conf";
  cfg::Settings s = cfg::defaults();
  try {
    cfg::load_file(s, bad);
    ADD_FAILURE() << "loading " << bad << " did not throw";
  } catch (const peersock::UsageError& e) {
    EXPECT_CONTAINS(e.what(), bad);
  }
}

TEST(LoadFile, ErrorLeavesSettingsUntouched) {
  cfg::Settings s = cfg::defaults();
  TempConfig file;
  EXPECT_THROW(cfg::load_file(s, file.write("[ice]\nturn-user = mallory\nstun-port = 0\n")), peersock::UsageError);
  EXPECT_EQ(s.turn_user, "free");
}

TEST(LoadFile, UnknownSection) {
  std::string path;
  const std::string msg = load_error("# c\n[ice]\nstun = a\n[relay]\nurl = ws://x\n", &path);
  EXPECT_CONTAINS(msg, path + ":4: ");
  EXPECT_CONTAINS(msg, "'relay'");
}

TEST(LoadFile, MalformedSectionHeader) {
  std::string path;
  const std::string msg = load_error("[ice\n", &path);
  EXPECT_CONTAINS(msg, path + ":1: ");
  EXPECT_CONTAINS(msg, "'[ice'");
}

TEST(LoadFile, UnknownKey) {
  std::string path;
  std::string msg = load_error("[ice]\n\nstun-host = a\n", &path);
  EXPECT_CONTAINS(msg, path + ":3: ");
  EXPECT_CONTAINS(msg, "'stun-host'");
  // Keys belong to their section: url is not an [ice] key.
  msg = load_error("[ice]\nurl = ws://x/v1\n", &path);
  EXPECT_CONTAINS(msg, path + ":2: ");
  EXPECT_CONTAINS(msg, "'url'");
}

TEST(LoadFile, KeyOutsideSection) {
  std::string path;
  const std::string msg = load_error("stun = a\n", &path);
  EXPECT_CONTAINS(msg, path + ":1: ");
  EXPECT_CONTAINS(msg, "'stun'");
}

TEST(LoadFile, LineWithoutEquals) {
  std::string path;
  const std::string msg = load_error("[ice]\nstun stun.example.org\n", &path);
  EXPECT_CONTAINS(msg, path + ":2: ");
  EXPECT_CONTAINS(msg, "'stun stun.example.org'");
}

TEST(LoadFile, EmptyKey) {
  std::string path;
  const std::string msg = load_error("[ice]\n= value\n", &path);
  EXPECT_CONTAINS(msg, path + ":2: ");
}

TEST(LoadFile, BadPorts) {
  for (const std::string bad : {"0", "65536", "x", "-1", "+80", "80x", " ", "99999999999999999999"}) {
    std::string path;
    const std::string msg = load_error("[ice]\nturn-port = " + bad + "\n", &path);
    EXPECT_CONTAINS(msg, path + ":2: ");
    EXPECT_CONTAINS(msg, "turn-port");
    if (bad != " ") EXPECT_CONTAINS(msg, "'" + bad + "'");
  }
  std::string path;
  const std::string msg = load_error("[ice]\n\nstun = host:x\n", &path);
  EXPECT_CONTAINS(msg, path + ":3: stun: bad port 'x' in 'host:x'");
  EXPECT_EQ(load("[ice]\nstun-port = 65535\n").stun.port, 65535);
  EXPECT_EQ(load("[ice]\nstun-port = 1\n").stun.port, 1);
}

TEST(LoadFile, BadUrl) {
  for (const std::string bad : {"http://relay.example.org/v1", "relay.example.org", "ws://", "", "WS:/x"}) {
    std::string path;
    const std::string msg = load_error("[rendezvous]\nurl = " + bad + "\n", &path);
    EXPECT_CONTAINS(msg, path + ":2: url: '" + bad + "' is not a ws:// or wss:// URL");
  }
  EXPECT_EQ(load("[rendezvous]\nurl = ws://127.0.0.1:4000/v1\n").relay_url, "ws://127.0.0.1:4000/v1");
}

TEST(ParseEndpoint, Forms) {
  cfg::Endpoint e = cfg::parse_endpoint("stun.example.org", 3478, "--stun");
  EXPECT_EQ(e.host, "stun.example.org");
  EXPECT_EQ(e.port, 3478);

  e = cfg::parse_endpoint("stun.example.org:19302", 3478, "--stun");
  EXPECT_EQ(e.host, "stun.example.org");
  EXPECT_EQ(e.port, 19302);

  e = cfg::parse_endpoint("[2001:db8::1]:5349", 3478, "--turn");
  EXPECT_EQ(e.host, "2001:db8::1");
  EXPECT_EQ(e.port, 5349);

  e = cfg::parse_endpoint("[::1]", 3478, "--turn");
  EXPECT_EQ(e.host, "::1");
  EXPECT_EQ(e.port, 3478);

  e = cfg::parse_endpoint("2001:db8::1", 1234, "--turn");
  EXPECT_EQ(e.host, "2001:db8::1");
  EXPECT_EQ(e.port, 1234);

  e = cfg::parse_endpoint("192.0.2.7:1", 3478, "--stun");
  EXPECT_EQ(e.host, "192.0.2.7");
  EXPECT_EQ(e.port, 1);

  e = cfg::parse_endpoint("", 3478, "--stun");
  EXPECT_FALSE(e.enabled());
  EXPECT_TRUE(e.host.empty());
}

TEST(ParseEndpoint, Errors) {
  EXPECT_EQ(endpoint_error("host:x"), "--stun: bad port 'x' in 'host:x'");
  EXPECT_CONTAINS(endpoint_error("host:"), "bad port '' in 'host:'");
  EXPECT_CONTAINS(endpoint_error("host:0"), "bad port '0'");
  EXPECT_CONTAINS(endpoint_error("host:65536"), "bad port '65536'");
  EXPECT_CONTAINS(endpoint_error("[::1]:x"), "bad port 'x' in '[::1]:x'");
  EXPECT_CONTAINS(endpoint_error("[::1"), "'[::1'");
  EXPECT_CONTAINS(endpoint_error("[::1]x"), "'[::1]x'");
  EXPECT_CONTAINS(endpoint_error(":3478"), "':3478'");
  EXPECT_CONTAINS(endpoint_error("[]:3478"), "'[]:3478'");
  // Control bytes and spaces in the host (found by fuzz_config) are refused, quoted.
  EXPECT_EQ(endpoint_error("ice][\nstun"), "--stun: bad host 'ice][\\x0astun'");
  EXPECT_CONTAINS(endpoint_error("a b:3478"), "bad host 'a b'");
  EXPECT_CONTAINS(endpoint_error("[\x1b]:3478"), "bad host '\\x1b'");
  for (const std::string v : {"host:x", "[::1", ":1"}) EXPECT_EQ(endpoint_error(v).rfind("--stun: ", 0), 0u) << v;
}

// ---- environment layer and origins (--print-config) ------------------------

namespace {

cfg::EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace

TEST(Environment, OverridesFileAndRecordsOrigins) {
  TempConfig file;
  cfg::Settings s = cfg::defaults();
  cfg::Origins o;
  cfg::load_file(s, file.write("[ice]\nstun = 192.0.2.1\nturn-user = filed\n[rendezvous]\nurl = ws://127.0.0.1:9/v1\n"),
                 &o);
  EXPECT_EQ(o.stun.source, cfg::Source::file);
  EXPECT_EQ(o.stun.detail, file.path() + ":2");
  EXPECT_EQ(o.turn_user.detail, file.path() + ":3");
  EXPECT_EQ(o.relay_url.detail, file.path() + ":5");
  EXPECT_EQ(o.turn.source, cfg::Source::defaults);

  cfg::apply_environment(s,
                         env_of({{"PEERSOCK_STUN", "127.0.0.1:1"},
                                 {"PEERSOCK_RELAY", "wss://example.invalid/v1"},
                                 {"PEERSOCK_TURN_PASSWORD", "pw"},
                                 {"PEERSOCK_TURN_USER", ""}}),
                         &o);
  EXPECT_EQ(s.stun.host, "127.0.0.1");  // environment beats file
  EXPECT_EQ(s.stun.port, 1);
  EXPECT_EQ(o.stun.source, cfg::Source::environment);
  EXPECT_EQ(o.stun.detail, "PEERSOCK_STUN");
  EXPECT_EQ(s.relay_url, "wss://example.invalid/v1");
  EXPECT_EQ(s.turn_password, "pw");
  EXPECT_EQ(s.turn_user, "filed");  // empty variable = unset
  EXPECT_EQ(o.turn_user.source, cfg::Source::file);
  EXPECT_EQ(s.turn.host, "freestun.net");  // untouched default
  EXPECT_EQ(o.turn.source, cfg::Source::defaults);
}

TEST(Environment, EmptyStunOrTurnDisables) {
  cfg::Settings s = cfg::defaults();
  cfg::apply_environment(s, env_of({{"PEERSOCK_STUN", ""}, {"PEERSOCK_TURN", ""}}));
  EXPECT_FALSE(s.stun.enabled());
  EXPECT_FALSE(s.turn.enabled());
}

TEST(Environment, BadValuesNameTheVariable) {
  auto error_of = [](std::map<std::string, std::string> vars) -> std::string {
    cfg::Settings s = cfg::defaults();
    const cfg::Settings before = s;
    try {
      cfg::apply_environment(s, env_of(std::move(vars)));
    } catch (const peersock::UsageError& e) {
      EXPECT_EQ(s.relay_url, before.relay_url);  // nothing applied
      EXPECT_EQ(s.stun.host, before.stun.host);
      return e.what();
    }
    ADD_FAILURE() << "no error";
    return {};
  };
  EXPECT_CONTAINS(error_of({{"PEERSOCK_STUN", "127.0.0.1:1"}, {"PEERSOCK_RELAY", "http://x"}}),
                  "PEERSOCK_RELAY: 'http://x'");
  EXPECT_CONTAINS(error_of({{"PEERSOCK_TURN", "host:99999"}}), "PEERSOCK_TURN: bad port '99999'");
  EXPECT_CONTAINS(error_of({{"PEERSOCK_PROTOCOL", "8"}}), "PEERSOCK_PROTOCOL: '8' is not a protocol version (1 to 7)");
  EXPECT_CONTAINS(error_of({{"PEERSOCK_CONGESTION", "reno"}}), "PEERSOCK_CONGESTION: 'reno' is not bbr or cubic");
  EXPECT_CONTAINS(error_of({{"PEERSOCK_UDP_GSO", "yes"}}), "PEERSOCK_UDP_GSO: 'yes' is not 0 or 1");
  EXPECT_CONTAINS(error_of({{"PEERSOCK_PROTOCOL", "2x"}}), "PEERSOCK_PROTOCOL: '2x'");
  EXPECT_CONTAINS(error_of({{"PEERSOCK_PROTOCOL", "0"}}), "PEERSOCK_PROTOCOL: '0'");
}

TEST(Environment, ProtocolVersionCanBeLowered) {
  cfg::Settings s = cfg::defaults();
  EXPECT_EQ(s.protocol_version, cfg::kMaxProtocolVersion);
  cfg::apply_environment(s, env_of({{"PEERSOCK_PROTOCOL", "1"}}));
  EXPECT_EQ(s.protocol_version, 1);
  cfg::apply_environment(s, env_of({{"PEERSOCK_PROTOCOL", ""}}));  // empty: unchanged
  EXPECT_EQ(s.protocol_version, 1);
}

TEST(Environment, SourceNames) {
  EXPECT_EQ(cfg::source_name(cfg::Source::defaults), "default");
  EXPECT_EQ(cfg::source_name(cfg::Source::file), "config file");
  EXPECT_EQ(cfg::source_name(cfg::Source::environment), "environment");
  EXPECT_EQ(cfg::source_name(cfg::Source::flag), "flag");
}

TEST(LoadFile, QuicCongestion) {
  EXPECT_EQ(cfg::defaults().congestion, cfg::Congestion::bbr);
  EXPECT_EQ(load("[quic]\ncongestion = cubic\n").congestion, cfg::Congestion::cubic);
  EXPECT_EQ(load("[quic]\ncongestion = bbr\n").congestion, cfg::Congestion::bbr);
  std::string path;
  const std::string msg = load_error("[quic]\ncongestion = reno\n", &path);
  EXPECT_CONTAINS(msg, path + ":2: ");
  EXPECT_CONTAINS(msg, "'reno' is not bbr or cubic");
  // Keys belong to their section.
  EXPECT_CONTAINS(load_error("[ice]\ncongestion = bbr\n"), "'congestion'");
}

TEST(LoadFile, QuicReconnectTimeout) {
  EXPECT_EQ(cfg::defaults().reconnect_timeout_s, 60);
  EXPECT_EQ(load("[quic]\nreconnect-timeout = 0\n").reconnect_timeout_s, 0);
  EXPECT_EQ(load("[quic]\nreconnect-timeout = 86400\n").reconnect_timeout_s, 86400);
  for (const char* bad : {"-1", "86401", "1e3", "60s", "", " 5x", "999999999999"}) {
    SCOPED_TRACE(bad);
    std::string path;
    const std::string msg = load_error(std::string("[quic]\nreconnect-timeout = ") + bad + "\n", &path);
    EXPECT_CONTAINS(msg, path + ":2: ");
    EXPECT_CONTAINS(msg, "is not a number of seconds (0 to 86400)");
  }
}

// ---- the settings table ------------------------------------------------------

namespace {

// A valid value for each row, by its config file key, or its name, or its flag.
std::string example_for(const cfg::Setting& row) {
  static const std::map<std::string, std::string> examples = {
      {"url", "ws://127.0.0.1:1/v1"},
      {"stun", "192.0.2.1:7"},
      {"stun-port", "7"},
      {"turn", "192.0.2.2"},
      {"turn-port", "8"},
      {"turn-user", "u"},
      {"turn-password", "pw"},
      {"force-relay", "true"},
      {"no-relay", "false"},
      {"protocol", "2"},
      {"congestion", "cubic"},
      {"reconnect-timeout", "30"},
      {"udp-gso", "0"},
      {"original", "false"},
  };
  if (row.key.empty() && row.env.empty() && row.arg.empty()) return std::string(row.implied);  // a flag alone
  const std::string id(!row.key.empty() ? row.key : !row.name.empty() ? row.name : row.flag);
  const auto it = examples.find(id);
  if (it == examples.end()) ADD_FAILURE() << "no example value for the row " << id << ": add one here";
  return it == examples.end() ? std::string() : it->second;
}

}  // namespace

TEST(Table, FindFlag) {
  ASSERT_NE(cfg::find_flag("--stun"), nullptr);
  EXPECT_EQ(cfg::find_flag("--stun")->name, "stun");
  EXPECT_EQ(cfg::find_flag("--no-relay")->origin, &cfg::Origins::relay_policy);
  EXPECT_EQ(cfg::find_flag("--bogus"), nullptr);
  EXPECT_EQ(cfg::find_flag(""), nullptr);  // rows without a flag are not found by ""
  EXPECT_EQ(cfg::file_key(*cfg::find_flag("--congestion")), "[quic] congestion");
}

TEST(Table, EveryKeyVariableAndFlagSetsItsSettingAndOrigin) {
  for (const cfg::Setting& row : cfg::table()) {
    const std::string value = example_for(row);
    if (!row.key.empty()) {
      TempConfig file;
      cfg::Settings s = cfg::defaults();
      cfg::Origins o;
      cfg::load_file(
          s, file.write("# x\n[" + std::string(row.section) + "]\n" + std::string(row.key) + " = " + value + "\n"), &o);
      EXPECT_EQ((o.*row.origin).source, cfg::Source::file) << row.key;
      EXPECT_EQ((o.*row.origin).detail, file.path() + ":3") << row.key;
    }
    if (!row.env.empty()) {
      cfg::Settings s = cfg::defaults();
      cfg::Origins o;
      cfg::apply_environment(s, env_of({{std::string(row.env), value}}), &o);
      EXPECT_EQ((o.*row.origin).source, cfg::Source::environment) << row.env;
      EXPECT_EQ((o.*row.origin).detail, row.env);
    }
    if (!row.flag.empty()) {
      cfg::Settings s = cfg::defaults();
      cfg::Origins o;
      cfg::apply_flags(s, {{&row, row.arg.empty() ? std::string(row.implied) : value}}, &o);
      EXPECT_EQ((o.*row.origin).source, cfg::Source::flag) << row.flag;
      EXPECT_EQ((o.*row.origin).detail, row.flag);
    }
  }
}

TEST(Table, NamedRowsRenderTheirValue) {
  cfg::Settings s = cfg::defaults();
  std::map<std::string, std::string> shown;
  for (const cfg::Setting& row : cfg::table()) {
    if (!row.name.empty()) shown[std::string(row.name)] = row.show(s);
  }
  EXPECT_EQ(shown["relay"], "ws://relay.magic-wormhole.io/v1");
  EXPECT_EQ(shown["stun"], "freestun.net:3479");
  EXPECT_EQ(shown["turn-password"], "(hidden)");
  EXPECT_EQ(shown["relay-policy"], "any");
  EXPECT_EQ(shown["protocol"], std::to_string(cfg::kMaxProtocolVersion));
  EXPECT_EQ(shown["congestion"], "bbr");
  EXPECT_EQ(shown["udp-gso"], "on");
  s.turn = cfg::Endpoint{"2001:db8::1", 5349};
  s.stun = cfg::Endpoint{};
  s.turn_password.clear();
  s.no_relay = true;
  for (const cfg::Setting& row : cfg::table()) {
    if (!row.name.empty()) shown[std::string(row.name)] = row.show(s);
  }
  EXPECT_EQ(shown["turn"], "[2001:db8::1]:5349");
  EXPECT_EQ(shown["stun"], "(disabled)");
  EXPECT_EQ(shown["turn-password"], "(empty)");
  EXPECT_EQ(shown["relay-policy"], "no-relay");
}

TEST(Environment, UdpGso) {
  cfg::Settings s = cfg::defaults();
  cfg::Origins o;
  EXPECT_TRUE(s.direct_send);
  cfg::apply_environment(s, env_of({{"PEERSOCK_UDP_GSO", "0"}}), &o);
  EXPECT_FALSE(s.direct_send);
  EXPECT_EQ(o.direct_send.detail, "PEERSOCK_UDP_GSO");
  cfg::apply_environment(s, env_of({{"PEERSOCK_UDP_GSO", ""}}), &o);  // empty: unset
  EXPECT_FALSE(s.direct_send);
  cfg::apply_environment(s, env_of({{"PEERSOCK_UDP_GSO", "1"}}), &o);
  EXPECT_TRUE(s.direct_send);
}

TEST(Flags, RelayPolicyFlagReplacesTheFilesOtherKey) {
  TempConfig file;
  cfg::Settings s = cfg::defaults();
  cfg::load_file(s, file.write("[ice]\nno-relay = yes\n"));
  EXPECT_TRUE(s.no_relay);
  cfg::apply_flags(s, {{cfg::find_flag("--force-relay"), "force-relay"}});
  EXPECT_TRUE(s.force_relay);
  EXPECT_FALSE(s.no_relay);
  cfg::apply_flags(s, {{cfg::find_flag("--force-relay"), "force-relay"}, {cfg::find_flag("--no-relay"), "no-relay"}});
  EXPECT_FALSE(s.force_relay);  // the last one wins
  EXPECT_TRUE(s.no_relay);
}

TEST(Flags, BadValueNamesTheFlagAndLeavesSettingsUntouched) {
  cfg::Settings s = cfg::defaults();
  try {
    cfg::apply_flags(s, {{cfg::find_flag("--turn-user"), "mallory"}, {cfg::find_flag("--stun"), "host:99999"}});
    ADD_FAILURE() << "no error";
  } catch (const peersock::UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "--stun: bad port '99999' in 'host:99999'");
  }
  EXPECT_EQ(s.turn_user, "free");
  try {
    cfg::apply_flags(s, {{cfg::find_flag("--congestion"), "reno"}});
    ADD_FAILURE() << "no error";
  } catch (const peersock::UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "--congestion: 'reno' is not bbr or cubic");
  }
}

TEST(CheckSettings, RelayPolicy) {
  cfg::Settings s = cfg::defaults();
  EXPECT_NO_THROW(cfg::check_settings(s));
  s.force_relay = s.no_relay = true;
  try {
    cfg::check_settings(s);
    ADD_FAILURE() << "no error";
  } catch (const peersock::UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "force-relay and no-relay contradict each other (check the config file)");
  }
  s.no_relay = false;
  s.turn = cfg::Endpoint{};
  try {
    cfg::check_settings(s);
    ADD_FAILURE() << "no error";
  } catch (const peersock::UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "--force-relay needs a TURN server (--turn HOST[:PORT])");
  }
}

TEST(LoadFile, PortLineOriginIsTheLastOfTheServersLines) {
  TempConfig file;
  for (const std::string text :
       {"[ice]\nstun-port = 2000\nstun = stun.example.org\n", "[ice]\nstun = stun.example.org\nstun-port = 2000\n"}) {
    cfg::Settings s = cfg::defaults();
    cfg::Origins o;
    cfg::load_file(s, file.write(text), &o);
    EXPECT_EQ(s.stun.host, "stun.example.org");
    EXPECT_EQ(s.stun.port, 2000);
    EXPECT_EQ(o.stun.detail, file.path() + ":3");
  }
}

TEST(LoadFile, MessagesNameTheRightSection) {
  // The message after "PATH:".
  const auto error = [](const std::string& text) {
    std::string path;
    const std::string msg = load_error(text, &path);
    EXPECT_EQ(msg.rfind(path + ":", 0), 0u) << msg;
    return msg.substr(std::min(msg.size(), path.size() + 1));
  };
  EXPECT_EQ(error("[ice]\nurl = ws://x/v1\n"), "2: unknown key 'url' in [ice] (it belongs in [rendezvous])");
  EXPECT_EQ(error("[ice]\ncongestion = bbr\n"), "2: unknown key 'congestion' in [ice] (it belongs in [quic])");
  EXPECT_EQ(error("[quic]\nbogus = 1\n"), "2: unknown key 'bogus' in [quic]");
  EXPECT_EQ(error("stun = a\n"), "1: key 'stun' is outside any section: put it under [ice]");
  EXPECT_EQ(error("bogus = a\n"), "1: key 'bogus' is outside any section: put it under [rendezvous], [ice] or [quic]");
  EXPECT_EQ(error("[relay]\n"), "1: unknown section 'relay': expected 'rendezvous', 'ice' or 'quic'");
  EXPECT_EQ(error("[ice]\nforce-relay = maybe\n"), "2: force-relay: 'maybe' is not true or false");
  EXPECT_EQ(error("[ice]\nturn-port = 0\n"), "2: turn-port: bad port '0': expected 1-65535");
  EXPECT_EQ(error("[quic]\ncongestion = reno\n"), "2: congestion: 'reno' is not bbr or cubic");
  EXPECT_EQ(error("[rendezvous]\nurl = http://x\n"), "2: url: 'http://x' is not a ws:// or wss:// URL");
}

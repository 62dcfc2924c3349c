#include "cli/cli.hpp"

#include <openssl/crypto.h>
#include <openssl/opensslv.h>

#include <charconv>
#include <cstdio>

#include "cli/commands.hpp"
#include "peersock/code/code.hpp"
#include "peersock/config/config.hpp"
#include "peersock/error.hpp"
#include "peersock/log.hpp"
#include "peersock/session/session.hpp"

#ifndef PEERSOCK_VERSION
#define PEERSOCK_VERSION "unknown"
#endif

namespace peersock::cli {

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"connect", "HOST:PORT [CODE]", "let the other side's connections reach HOST:PORT from here",
       "peersock connect localhost:5900", &parse_connect},
      {"listen", "PORT [CODE]", "accept connections on 127.0.0.1:PORT and carry them to the other side",
       "peersock listen 5900 7-abandon-zoo-lab-name", &parse_listen},
      {"stdio-a", "[CODE]", "connect stdin/stdout to the other side (pairs with stdio-b or listen)",
       "peersock stdio-a", &parse_stdio_a},
      {"stdio-b", "[CODE]", "connect stdin/stdout to the other side (pairs with stdio-a or connect)",
       "ssh -o ProxyCommand='peersock stdio-b CODE' host", &parse_stdio_b},
  };
  return table;
}

uint16_t parse_port(std::string_view text, std::string_view what) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value == 0 || value > 65535) {
    throw UsageError(fmt::format("{}: '{}' is not a port number (1-65535)", what, text));
  }
  return static_cast<uint16_t>(value);
}

namespace {

void print_usage(FILE* out) {
  fmt::print(out, "peersock: live connections between two machines behind NAT, set up with a short code.\n\n");
  fmt::print(out, "Usage:\n");
  for (const auto& c : commands()) fmt::print(out, "  peersock [OPTIONS] {} {}\n      {}\n      e.g. {}\n", c.name, c.usage, c.summary, c.example);
  fmt::print(out, R"(
The side given no CODE prints one; give it to the other side.

Options:
  --relay URL            rendezvous (magic-wormhole mailbox) server, ws:// or wss://
  --stun HOST[:PORT]     STUN server ('' disables)
  --turn HOST[:PORT]     TURN server ('' disables)
  --turn-user USER, --turn-password PASSWORD
  --force-relay          use only the TURN relay (needs --turn); hides your addresses
  --no-relay             never use TURN: direct paths only
  --bind ADDR            listen: address to accept connections on (default 127.0.0.1)
  --config FILE          config file (default $XDG_CONFIG_HOME/peersock.conf)
  -v, --debug=LAYERS     debug logs (all layers, or some of: rendezvous,ice,quic,auth,forward,session)
  -q, --quiet            errors only
  -h, --help, --version

Exit codes: 0 ok, 1 internal error, 2 usage, 3 code mismatch, 4 no network path,
5 peer gone, 6 rendezvous server failed, 7 local socket error, 8 peer protocol violation,
130 interrupted.
)");
}

}  // namespace

Parsed parse_args(int argc, char** argv) {
  Parsed parsed;
  std::vector<std::string> positional;
  std::string config_path = config::default_path();
  struct Override {
    std::string name, value;
  };
  std::vector<Override> overrides;
  log::Settings log_settings;

  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") {
      for (++i; i < argc; ++i) positional.emplace_back(argv[i]);
      break;
    }
    if (arg.size() < 2 || arg[0] != '-' ) {
      positional.push_back(arg);
      continue;
    }
    std::string name = arg, value;
    bool has_value = false;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    auto take = [&]() -> std::string {
      if (has_value) return value;
      if (i + 1 >= argc) throw UsageError(fmt::format("option {} needs a value", name));
      return argv[++i];
    };
    if (name == "-h" || name == "--help") {
      parsed.help = true;
    } else if (name == "--version") {
      parsed.version = true;
    } else if (name == "-q" || name == "--quiet") {
      log_settings.quiet = true;
    } else if (name == "-v" || name == "--verbose") {
      log_settings.debug_mask = ~0u;
    } else if (name == "--debug") {
      std::string list = has_value ? value : "all";
      if (list == "all") {
        log_settings.debug_mask = ~0u;
      } else {
        size_t start = 0;
        while (start <= list.size()) {
          size_t comma = list.find(',', start);
          std::string item = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
          log::Layer layer;
          if (!log::parse_layer(item, layer)) throw UsageError(fmt::format("--debug: unknown layer '{}'", item));
          log_settings.debug_mask |= 1u << static_cast<unsigned>(layer);
          if (comma == std::string::npos) break;
          start = comma + 1;
        }
      }
    } else if (name == "--config") {
      config_path = take();
    } else if (name == "--bind") {
      parsed.options.mode.bind_address = take();
    } else if (name == "--code-words") {
      std::string v = take();
      int n = 0;
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec != std::errc{} || end != v.data() + v.size() || n < code::kMinWords || n > code::kMaxWords) {
        throw UsageError(fmt::format("--code-words: '{}' is not a number from {} to {}", v, code::kMinWords, code::kMaxWords));
      }
      parsed.options.code_words = n;
    } else if (name == "--force-relay" || name == "--no-relay") {
      if (has_value) throw UsageError(fmt::format("option {} takes no value", name));
      overrides.push_back({name, {}});
    } else if (name == "--relay" || name == "--stun" || name == "--turn" || name == "--turn-user" ||
               name == "--turn-password") {
      overrides.push_back({name, take()});
    } else {
      throw UsageError(fmt::format("unknown option '{}' (see peersock --help)", arg));
    }
  }
  log::configure(log_settings);
  if (parsed.help || parsed.version) return parsed;

  auto& settings = parsed.options.settings;
  settings = config::defaults();
  config::load_file(settings, config_path);
  for (const auto& o : overrides) {
    if (o.name == "--relay") {
      if (o.value.rfind("ws://", 0) != 0 && o.value.rfind("wss://", 0) != 0) {
        throw UsageError(fmt::format("--relay: '{}' is not a ws:// or wss:// URL", o.value));
      }
      settings.relay_url = o.value;
    } else if (o.name == "--stun") {
      settings.stun = config::parse_endpoint(o.value, config::kDefaultStunPort, "--stun");
    } else if (o.name == "--turn") {
      settings.turn = config::parse_endpoint(o.value, config::kDefaultStunPort, "--turn");
    } else if (o.name == "--force-relay") {
      settings.force_relay = true;
      settings.no_relay = false;
    } else if (o.name == "--no-relay") {
      settings.no_relay = true;
      settings.force_relay = false;
    } else if (o.name == "--turn-user") {
      settings.turn_user = o.value;
    } else {
      settings.turn_password = o.value;
    }
  }

  if (settings.force_relay && settings.no_relay) {
    throw UsageError("force-relay and no-relay contradict each other (check the config file)");
  }
  if (settings.force_relay && !settings.turn.enabled()) {
    throw UsageError("--force-relay needs a TURN server (--turn HOST[:PORT])");
  }
  if (positional.empty()) throw UsageError("missing subcommand (connect, listen, stdio-a, stdio-b); see peersock --help");
  const Command* command = nullptr;
  for (const auto& c : commands()) {
    if (c.name == positional[0]) command = &c;
  }
  if (command == nullptr) throw UsageError(fmt::format("unknown subcommand '{}'; see peersock --help", positional[0]));
  std::vector<std::string> rest(positional.begin() + 1, positional.end());
  size_t used = command->parse(rest, parsed.options.mode);
  if (rest.size() > used + 1) {
    throw UsageError(fmt::format("{}: unexpected argument '{}' (usage: peersock {} {})", command->name, rest[used + 1],
                                 command->name, command->usage));
  }
  if (rest.size() == used + 1) parsed.options.code = code::parse(rest[used]);
  return parsed;
}

int run(int argc, char** argv) {
  try {
    Parsed parsed = parse_args(argc, argv);
    if (parsed.help) {
      print_usage(stdout);
      return 0;
    }
    if (parsed.version) {
      fmt::print("peersock {} (built with {}; running {})\n", PEERSOCK_VERSION, OPENSSL_VERSION_TEXT,
                 OpenSSL_version(OPENSSL_VERSION));
      return 0;
    }
    return session::run(parsed.options);
  } catch (const Error& e) {
    log::error_line(e.what());
    return static_cast<int>(e.code());
  } catch (const std::exception& e) {
    log::error_line(fmt::format("internal error: {}", e.what()));
    return static_cast<int>(ExitCode::failure);
  }
}

}  // namespace peersock::cli

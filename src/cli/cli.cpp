#include "cli/cli.hpp"

#include <openssl/crypto.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "peersock/code/code.hpp"
#include "peersock/config/config.hpp"
#include "peersock/error.hpp"
#include "peersock/log.hpp"
#include "peersock/quic/endpoint.hpp"
#include "peersock/session/session.hpp"
#include "peersock/text.hpp"
#include "peersock/ui/code_prompt.hpp"

#ifndef PEERSOCK_VERSION
#define PEERSOCK_VERSION "unknown"
#endif

namespace peersock::cli {

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"connect", "HOST:PORT [CODE]", "let the other side's connections reach HOST:PORT from here",
       "peersock connect localhost:5900", &parse_connect,
       R"(Every connection that arrives at the other side's `listen` port is connected
to HOST:PORT from this machine. HOST may be a name or an address; it is
resolved here, when each connection arrives.

Examples:
  peersock connect localhost:5900          share this machine's VNC server
  peersock connect localhost:22            let the other side ssh in (it runs
                                           `peersock listen 2222 CODE`)
  peersock connect 192.168.1.10:80 -       type the code the other side got
)"},
      {"listen", "PORT [CODE]", "accept connections on 127.0.0.1:PORT and carry them to the other side",
       "peersock listen 5900 7-abandon-zoo-lab-name", &parse_listen,
       R"(Accepts TCP connections on 127.0.0.1:PORT (--bind ADDR to accept on another
address) and carries each one to the other side, which connects it to its
`connect` target or to its stdin/stdout (`stdio-a`). The port is bound before
anything else happens, so a port in use fails at once.

Examples:
  peersock listen 5900 7-abandon-zoo-lab-name  then: vncviewer localhost:5900
  peersock listen 8080 -                       ask for the code (Tab completes)
  peersock listen 2222 --join                  the same
)"},
      {"stdio-a", "[CODE]", "connect stdin/stdout to the other side (pairs with stdio-b or listen)",
       "tar c photos | peersock stdio-a", &parse_stdio_a,
       R"(Carries stdin to the other side and what the other side sends to stdout.
End of input ends this direction; peersock exits 0 once both directions have
delivered everything. Pairs with `stdio-b` or with `listen` (one connection).
The code prompt for `-` uses the terminal (/dev/tty), never stdin.

Examples:
  tar c photos | peersock stdio-a                    prints a code
  peersock stdio-a 7-abandon-zoo-lab-name > file
)"},
      {"stdio-b", "[CODE]", "connect stdin/stdout to the other side (pairs with stdio-a or connect)",
       "ssh -o ProxyCommand='peersock stdio-b CODE' host", &parse_stdio_b,
       R"(Like stdio-a, but this side opens the stream, so it pairs with `stdio-a` or
with `connect` (then it is a ProxyCommand for ssh).

Examples:
  peersock stdio-b 7-abandon-zoo-lab-name | tar x
  PEERSOCK_CODE=7-abandon-zoo-lab-name \
    ssh -o ProxyCommand='peersock -q stdio-b' alice@peer
)"},
      {"listen-unix", "PATH [CODE]", "like listen, but accept connections on a unix socket at PATH",
       "peersock listen-unix /tmp/db.sock 7-abandon-zoo-lab-name", &parse_listen_unix,
       R"(Accepts connections on a unix stream socket at PATH and carries each one to
the other side, like `listen`. PATH is created before anything else happens
and removed at exit; a stale socket left by a dead process is replaced, but
an existing file that is not a socket, or a socket another program listens
on, is refused (exit 7).

Examples:
  peersock listen-unix /tmp/.s.PGSQL.5432 7-abandon-zoo-lab-name
                                   then: psql -h /tmp (the other side runs
                                   peersock connect-unix with its socket)
)"},
      {"connect-unix", "PATH [CODE]", "like connect, but connect to the unix socket at PATH",
       "peersock connect-unix /run/postgresql/.s.PGSQL.5432", &parse_connect_unix,
       R"(Every connection that arrives at the other side's `listen` or `listen-unix`
is connected to the unix stream socket at PATH on this machine. A connection
that PATH refuses is reset; the tunnel stays up.

Examples:
  peersock connect-unix /run/postgresql/.s.PGSQL.5432
  peersock connect-unix /var/run/docker.sock
)"},
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

std::string_view code_source_name(CodeSource source) {
  switch (source) {
    case CodeSource::generate: return "generate";
    case CodeSource::argv: return "command line";
    case CodeSource::file: return "--code-file";
    case CodeSource::environment: return "PEERSOCK_CODE";
    case CodeSource::prompt: return "prompt";
  }
  return "?";
}

namespace {

constexpr std::string_view kOptionsHelp = R"(The code (it never has to be on the command line, where others can see it):
  CODE                 the code the other side printed
  -, --join            ask for it on the terminal; Tab completes the nameplate
                       and the words (no terminal: one line of stdin, except
                       for stdio-a/stdio-b)
  --code-file FILE     read it from the first line of FILE
  PEERSOCK_CODE=CODE   take it from the environment
  --code-words N       words in a generated code (2-8, default 4)

Options (flags > environment > config file > defaults):
  --relay URL          rendezvous (magic-wormhole mailbox) server, ws(s)://
  --stun HOST[:PORT]   STUN server ('' disables)
  --turn HOST[:PORT]   TURN server ('' disables)
  --turn-user USER, --turn-password PASSWORD
  --force-relay        relay via TURN only (needs --turn); hides your addresses
  --no-relay           never use TURN: direct paths only
  --congestion bbr|cubic  QUIC congestion control (default bbr)
  --bind ADDR          listen: address to accept on (default 127.0.0.1)
  --config FILE        config file (default $XDG_CONFIG_HOME/peersock.conf)
  --print-config       show each setting and where it came from, then exit
  --json               stderr: one JSON object per line (docs/json-events.md)
  --status             the live status line on a terminal (the default, except
                       for stdio-a/stdio-b, whose terminal may be ssh's)
  --no-status          one line per event instead, also on a terminal
  -v, --debug[=LAYERS] timestamped debug logs: all layers, or some of
                       rendezvous,ice,quic,auth,forward,session
  -q, --quiet          errors only (and the code, on the side that makes it)
  -h, --help           this help; `peersock SUBCOMMAND --help` for one
  --version

Exit codes: 0 ok, 1 internal error, 2 usage, 3 code mismatch, 4 no network
path, 5 peer gone, 6 rendezvous server failed, 7 local socket error,
8 peer protocol violation, 130 interrupted.
)";

// A code from a file: the first line, trimmed. Bounded, because the file
// could be anything (a device, a log).
std::string read_code_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) throw UsageError(fmt::format("--code-file: cannot open {}: {}", text::quote(path), std::strerror(errno)));
  // Unbuffered: stdio's own buffer would keep a copy of the code in freed heap.
  std::setvbuf(f, nullptr, _IONBF, 0);
  char buf[512];
  size_t n = std::fread(buf, 1, sizeof buf, f);
  const bool read_error = std::ferror(f) != 0;
  std::fclose(f);
  if (read_error) throw UsageError(fmt::format("--code-file: cannot read {}", text::quote(path)));
  std::string_view content(buf, n);
  content = content.substr(0, content.find('\n'));
  if (n == sizeof buf && content.size() == n) {
    throw UsageError(fmt::format("--code-file: the first line of {} is too long to be a code", text::quote(path)));
  }
  std::string code(text::trim_ascii_space(content));
  std::memset(buf, 0, sizeof buf);
  if (code.empty()) throw UsageError(fmt::format("--code-file: {} is empty", text::quote(path)));
  return code;
}

std::string endpoint_text(const config::Endpoint& e) {
  if (!e.enabled()) return "(disabled)";
  if (e.host.find(':') != std::string::npos) return fmt::format("[{}]:{}", e.host, e.port);
  return fmt::format("{}:{}", e.host, e.port);
}

std::string origin_text(const config::Origin& o) {
  if (o.detail.empty()) return std::string(config::source_name(o.source));
  return fmt::format("{} {}", config::source_name(o.source), o.detail);
}

}  // namespace

std::string usage_text(const Command* command) {
  std::string out;
  if (command != nullptr) {
    out += fmt::format("Usage: peersock [OPTIONS] {} {}\n\n{}.\n\n{}\n", command->name, command->usage,
                       command->summary, command->details);
    out += "The side given no CODE prints one (and the command for the other side).\n\n";
    out += kOptionsHelp;
    return out;
  }
  out += "peersock: live connections between two machines behind NAT, set up with\na short code.\n\n";
  out += "Usage:\n";
  for (const auto& c : commands()) {
    out += fmt::format("  peersock [OPTIONS] {} {}\n      {}\n      e.g. {}\n", c.name, c.usage, c.summary, c.example);
  }
  out += "\nThe side given no CODE prints one; give it to the other side.\n\n";
  out += kOptionsHelp;
  out += "\nMore: man peersock, and `peersock SUBCOMMAND --help`.\n";
  return out;
}

Parsed parse_args(int argc, char** argv) { return parse_args(argc, argv, config::process_environment()); }

Parsed parse_args(int argc, char** argv, const config::EnvLookup& env) {
  Parsed parsed;
  struct Positional {
    std::string text;
    int index;
  };
  std::vector<Positional> positional;
  std::optional<std::string> config_flag, code_file;
  bool join = false;
  struct Override {
    std::string name, value;
  };
  std::vector<Override> overrides;

  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") {
      for (++i; i < argc; ++i) positional.push_back({argv[i], i});
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      positional.push_back({arg, i});
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
    auto no_value = [&] {
      if (has_value) throw UsageError(fmt::format("option {} takes no value (got '{}')", name, value));
    };
    if (name == "-h" || name == "--help") {
      no_value();
      parsed.help = true;
    } else if (name == "--version") {
      no_value();
      parsed.version = true;
    } else if (name == "--print-config") {
      no_value();
      parsed.print_config = true;
    } else if (name == "--json") {
      no_value();
      parsed.json = true;
    } else if (name == "--status" || name == "--no-status") {
      no_value();
      parsed.status_line = name == "--status" ? Parsed::StatusLine::on : Parsed::StatusLine::off;
    } else if (name == "-q" || name == "--quiet") {
      no_value();
      parsed.log.quiet = true;
    } else if (name == "-v" || name == "--verbose") {
      no_value();
      parsed.log.debug_mask = ~0u;
    } else if (name == "--debug") {
      // Only `--debug=LIST`: a separate word would be ambiguous with the
      // subcommand that follows.
      parsed.log.debug_mask |= log::parse_debug_list(has_value ? value : "all");
    } else if (name == "--join") {
      no_value();
      join = true;
    } else if (name == "--code-file") {
      code_file = take();
    } else if (name == "--config") {
      config_flag = take();
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
      parsed.code_words_given = true;
    } else if (name == "--force-relay" || name == "--no-relay") {
      if (has_value) throw UsageError(fmt::format("option {} takes no value", name));
      overrides.push_back({name, {}});
    } else if (name == "--relay" || name == "--stun" || name == "--turn" || name == "--turn-user" ||
               name == "--turn-password" || name == "--congestion") {
      const int option_index = i;
      overrides.push_back({name, take()});
      if (name == "--turn-password") {
        parsed.secret_args.emplace_back(has_value ? option_index : i, has_value ? name.size() + 1 : 0);
      }
    } else {
      throw UsageError(fmt::format("unknown option '{}' (see peersock --help)", arg));
    }
  }

  // `peersock help [SUBCOMMAND]` is --help too.
  if (!positional.empty() && positional[0].text == "help") {
    parsed.help = true;
    positional.erase(positional.begin());
  }
  if (!positional.empty()) {
    for (const auto& c : commands()) {
      if (c.name == positional[0].text) parsed.command = &c;
    }
  }
  if (parsed.help || parsed.version) return parsed;

  // Settings: defaults < config file < environment < flags.
  auto& settings = parsed.options.settings;
  settings = config::defaults();
  if (config_flag) {
    parsed.config_path = *config_flag;
    parsed.config_origin = {config::Source::flag, "--config"};
  } else if (auto v = env("PEERSOCK_CONFIG"); v && !v->empty()) {
    parsed.config_path = *v;
    parsed.config_origin = {config::Source::environment, "PEERSOCK_CONFIG"};
  } else {
    parsed.config_path = config::default_path();
  }
  config::load_file(settings, parsed.config_path, &parsed.origins);
  config::apply_environment(settings, env, &parsed.origins);
  for (const auto& o : overrides) {
    const config::Origin flag{config::Source::flag, o.name};
    if (o.name == "--relay") {
      config::check_relay_url(o.value, "--relay");
      settings.relay_url = o.value;
      parsed.origins.relay_url = flag;
    } else if (o.name == "--stun") {
      settings.stun = config::parse_endpoint(o.value, config::kDefaultStunPort, "--stun");
      parsed.origins.stun = flag;
    } else if (o.name == "--turn") {
      settings.turn = config::parse_endpoint(o.value, config::kDefaultStunPort, "--turn");
      parsed.origins.turn = flag;
    } else if (o.name == "--force-relay") {
      settings.force_relay = true;
      settings.no_relay = false;
      parsed.origins.relay_policy = flag;
    } else if (o.name == "--no-relay") {
      settings.no_relay = true;
      settings.force_relay = false;
      parsed.origins.relay_policy = flag;
    } else if (o.name == "--congestion") {
      settings.congestion = config::parse_congestion(o.value, "--congestion");
      parsed.origins.congestion = flag;
    } else if (o.name == "--turn-user") {
      settings.turn_user = o.value;
      parsed.origins.turn_user = flag;
    } else {
      settings.turn_password = o.value;
      parsed.origins.turn_password = flag;
    }
  }

  if (settings.force_relay && settings.no_relay) {
    throw UsageError("force-relay and no-relay contradict each other (check the config file)");
  }
  if (settings.force_relay && !settings.turn.enabled()) {
    throw UsageError("--force-relay needs a TURN server (--turn HOST[:PORT])");
  }
  // --print-config needs no subcommand (but takes one, to show its code).
  std::vector<std::string> rest;
  size_t used = 0;
  if (positional.empty()) {
    if (!parsed.print_config) {
      std::string names;
      for (const auto& c : commands()) names += (names.empty() ? "" : ", ") + std::string(c.name);
      throw UsageError(fmt::format("missing subcommand ({}); see peersock --help", names));
    }
  } else {
    const Command* command = parsed.command;
    if (command == nullptr) {
      throw UsageError(fmt::format("unknown subcommand {}; see peersock --help", text::quote(positional[0].text)));
    }
    for (size_t k = 1; k < positional.size(); ++k) rest.push_back(positional[k].text);
    used = command->parse(rest, parsed.options.mode);
    if (rest.size() > used + 1) {
      throw UsageError(fmt::format("{}: unexpected argument {} (usage: peersock {} {})", command->name,
                                   text::quote(rest[used + 1]), command->name, command->usage));
    }
  }

  // The code: at most one of CODE / `-` / --join / --code-file; then
  // PEERSOCK_CODE; else this side generates one.
  std::optional<std::string> typed;
  // The typed code is overwritten when parsing ends (also on errors): the
  // session wipes its own copy after use, this one must not outlive us.
  struct WipeTyped {
    std::optional<std::string>& s;
    ~WipeTyped() {
      if (s) OPENSSL_cleanse(s->data(), s->capacity());
    }
  } wipe_typed{typed};
  int sources = 0;
  if (rest.size() == used + 1) {
    ++sources;
    if (rest[used] == "-") {
      parsed.code_source = CodeSource::prompt;
    } else {
      parsed.code_source = CodeSource::argv;
      parsed.code_argv_index = positional[used + 1].index;
      parsed.secret_args.emplace_back(parsed.code_argv_index, 0);
      typed = rest[used];
    }
  }
  if (join) {
    if (parsed.code_source != CodeSource::prompt) ++sources;
    parsed.code_source = CodeSource::prompt;
  }
  if (code_file) {
    ++sources;
    parsed.code_source = CodeSource::file;
    typed = read_code_file(*code_file);
  }
  if (sources > 1) throw UsageError("give the code only one way: CODE, '-' / --join, or --code-file");
  if (sources == 0) {
    if (auto v = env("PEERSOCK_CODE"); v && !text::trim_ascii_space(*v).empty()) {
      parsed.code_source = CodeSource::environment;
      typed = std::move(*v);
    }
  }
  if (typed) {
    try {
      parsed.options.code = code::parse(*typed);
    } catch (const UsageError& e) {
      if (parsed.code_source == CodeSource::argv) throw;
      throw UsageError(fmt::format("{}: {}", code_source_name(parsed.code_source), e.what()));
    }
  }
  if (parsed.code_words_given && parsed.code_source != CodeSource::generate) {
    throw UsageError(fmt::format("--code-words applies only to the side that generates the code (this side uses the code from {})",
                                 code_source_name(parsed.code_source)));
  }
  return parsed;
}

log::Format output_format(const Parsed& parsed, bool stderr_is_terminal, std::string_view term) {
  if (parsed.json) return log::Format::json;
  if (!stderr_is_terminal || term.empty() || term == "dumb") return log::Format::plain;
  const auto kind = parsed.options.mode.kind;
  const bool stdio = kind == session::ModeKind::stdio_a || kind == session::ModeKind::stdio_b;
  switch (parsed.status_line) {
    case Parsed::StatusLine::on: return log::Format::tty;
    case Parsed::StatusLine::off: return log::Format::plain;
    case Parsed::StatusLine::automatic: return stdio ? log::Format::plain : log::Format::tty;
  }
  return log::Format::plain;
}

std::string format_config(const Parsed& p, bool json) {
  const auto& s = p.options.settings;
  const auto& o = p.origins;
  const bool config_exists = access(p.config_path.c_str(), F_OK) == 0;
  const config::Origin default_origin;
  std::string code_value;
  switch (p.code_source) {
    case CodeSource::generate: code_value = "(none: this side generates one)"; break;
    case CodeSource::prompt: code_value = "(asked at the prompt)"; break;
    default: code_value = "(given, not shown)"; break;
  }
  const config::Origin code_origin =
      p.code_source == CodeSource::environment ? config::Origin{config::Source::environment, "PEERSOCK_CODE"}
      : p.code_source == CodeSource::generate  ? config::Origin{}
                                               : config::Origin{config::Source::flag, std::string(code_source_name(p.code_source))};
  struct Row {
    std::string key, value;
    config::Origin origin;
  };
  std::vector<Row> rows = {
      {"relay", s.relay_url, o.relay_url},
      {"stun", endpoint_text(s.stun), o.stun},
      {"turn", endpoint_text(s.turn), o.turn},
      {"turn-user", s.turn_user, o.turn_user},
      {"turn-password", s.turn_password.empty() ? "(empty)" : "(hidden)", o.turn_password},
      {"relay-policy", s.force_relay ? "force-relay" : s.no_relay ? "no-relay" : "any", o.relay_policy},
      {"protocol", std::to_string(s.protocol_version), o.protocol_version},
      {"congestion", std::string(config::congestion_name(s.congestion)), o.congestion},
      {"config", p.config_path + (config_exists ? "" : " (not found)"), p.config_origin},
      {"code", code_value, code_origin},
      {"code-words", std::to_string(p.options.code_words),
       p.code_words_given ? config::Origin{config::Source::flag, "--code-words"} : default_origin},
  };
  if (json) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& r : rows) {
      j[r.key] = {{"value", r.value}, {"source", config::source_name(r.origin.source)}, {"detail", r.origin.detail}};
    }
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  size_t width = 0;
  for (const auto& r : rows) width = std::max(width, r.value.size());
  std::string out;
  for (const auto& r : rows) out += fmt::format("{:<14} {:<{}}  {}\n", r.key, r.value, width, origin_text(r.origin));
  return out;
}

namespace {

// After the code (or a TURN password) has been read from argv, overwrite it
// there: /proc/PID/cmdline (what `ps` shows) reads this memory, so other local
// users can no longer see it from now on. It was visible until here, hence
// the warning for the code as well.
void scrub_argv(char** argv, const std::vector<std::pair<int, size_t>>& secrets) {
  for (auto [index, offset] : secrets) {
    if (index <= 0) continue;
    char* arg = argv[index];
    const size_t length = std::strlen(arg);
    for (size_t k = offset; k < length; ++k) arg[k] = 'x';
  }
}

void emit_exit(bool json, int status) {
  if (!json) return;
  nlohmann::json j = {{"event", "exit"},
                      {"t", std::round(log::elapsed_seconds() * 1000) / 1000},
                      {"exit_code", status},
                      {"kind", status == 130 ? std::string_view("interrupted") : exit_code_name(static_cast<ExitCode>(status))}};
  log::json_line(j.dump());
}

}  // namespace

int run(int argc, char** argv) {
  // --json also applies to errors in the command line itself, which are
  // found before parsing is done.
  bool json = false;
  for (int i = 1; i < argc && std::string_view(argv[i]) != "--"; ++i) json = json || std::string_view(argv[i]) == "--json";
  if (json) log::configure({false, 0, log::Format::json});
  int status = 0;
  try {
    Parsed parsed = parse_args(argc, argv);
    json = parsed.json;
    const char* term = std::getenv("TERM");
    parsed.log.format = output_format(parsed, isatty(STDERR_FILENO) == 1, term != nullptr ? term : "");
    log::configure(parsed.log);
    if (parsed.help) {
      fmt::print("{}", usage_text(parsed.command));
      return 0;
    }
    if (parsed.version) {
      fmt::print("peersock {} (QUIC: {})\n", PEERSOCK_VERSION, quic::engine_versions());
      return 0;
    }
    if (parsed.print_config) {
      fmt::print("{}", format_config(parsed, parsed.json));
      return 0;
    }
    scrub_argv(argv, parsed.secret_args);
    if (parsed.code_source == CodeSource::argv) {
      log::warning("code-in-argv",
                   "Note: the code was given on the command line, where other users of this machine can see it "
                   "(ps); '-' (type it at the prompt), PEERSOCK_CODE or --code-file keep it private.");
    }
    if (parsed.code_source == CodeSource::prompt) {
      const bool stdio = parsed.options.mode.kind == session::ModeKind::stdio_a ||
                         parsed.options.mode.kind == session::ModeKind::stdio_b;
      parsed.options.code = ui::prompt_code(parsed.options.settings.relay_url, stdio);
    }
    status = session::run(std::move(parsed.options));  // the session wipes the code: no copy stays here
  } catch (const Error& e) {
    log::fatal(e.code(), e.what());
    status = static_cast<int>(e.code());
  } catch (const std::exception& e) {
    log::fatal(ExitCode::failure, fmt::format("internal error: {}", e.what()));
    status = static_cast<int>(ExitCode::failure);
  }
  emit_exit(json, status);
  return status;
}

}  // namespace peersock::cli

// parse_args: argv to Parsed. Flags of settings come from config::table(),
// the others from the Option table below; then defaults < config file <
// environment < flags, the subcommand, and the code.
#include <fmt/core.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <optional>

#include <unistd.h>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "peersock/code/code.hpp"
#include "peersock/config/table.hpp"
#include "peersock/error.hpp"
#include "peersock/pairing/pairing.hpp"
#include "peersock/pairing/store.hpp"
#include "peersock/text.hpp"

namespace peersock::cli {

using text::quote;

// What the options say, before the layers of settings are combined.
struct Scan {
  Parsed parsed;
  struct Positional {
    std::string text;
    int index;
  };
  std::vector<Positional> positional;
  std::optional<std::string> config_flag, code_file;
  std::optional<std::string> bind_address;  // --bind, for listen and listen-udp
  std::optional<uint64_t> udp_idle_ns;      // --udp-idle
  std::optional<size_t> udp_max_flows;      // --udp-max-flows
  bool send_only = false, recv_only = false;
  bool join = false;
  std::optional<std::string> label;
  std::optional<std::string> peer;  // --peer NAME
  std::vector<config::FlagValue> flags;  // settings, applied after the file and the environment
};

namespace {

int code_words(std::string_view v) {
  int n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc{} || end != v.data() + v.size() || n < code::kMinWords || n > code::kMaxWords) {
    throw UsageError(
        fmt::format("--code-words: {} is not a number from {} to {}", quote(v), code::kMinWords, code::kMaxWords));
  }
  return n;
}

// --udp-idle: seconds, 0.1 to one day (decimals allowed: tests use short ones).
uint64_t udp_idle(std::string_view v) {
  double seconds = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), seconds);
  if (ec != std::errc{} || end != v.data() + v.size() || !(seconds >= 0.1 && seconds <= 86400))
    throw UsageError(fmt::format("--udp-idle: {} is not a number of seconds from 0.1 to 86400", quote(v)));
  return static_cast<uint64_t>(seconds * 1e9);
}

size_t udp_max_flows(std::string_view v) {
  size_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc{} || end != v.data() + v.size() || n < 1 || n > 65536)
    throw UsageError(fmt::format("--udp-max-flows: {} is not a number from 1 to 65536", quote(v)));
  return n;
}

using V = Option::Value;
using G = Option::Group;

constexpr auto kOptions = std::to_array<Option>({
    {.display = "CODE", .help = "the code the other side printed", .group = G::code},
    {.name = "--join",
     .display = "-, --join",
     .help = "ask for it on the terminal; Tab completes the nameplate and the words (no terminal: one line of "
             "stdin, except for stdio-a/stdio-b)",
     .group = G::code,
     .apply = [](Scan& s, std::string_view) { s.join = true; }},
    {.name = "--code-file",
     .value = V::required,
     .arg = "FILE",
     .help = "read it from the first line of FILE",
     .group = G::code,
     .apply = [](Scan& s, std::string_view v) { s.code_file = std::string(v); }},
    {.display = "PEERSOCK_CODE=CODE", .help = "take it from the environment", .group = G::code},
    {.name = "--code-words",
     .value = V::required,
     .arg = "N",
     .help = "words in a generated code (2-8, default 4)",
     .group = G::code,
     .apply =
         [](Scan& s, std::string_view v) {
           s.parsed.options.code_words = code_words(v);
           s.parsed.code_words_given = true;
         }},

    {.name = "--remember",
     .value = V::required,
     .arg = "NAME",
     .help = "once authenticated, remember the other side as NAME: later sessions need no code",
     .group = G::pairing,
     .apply = [](Scan& s, std::string_view v) { s.parsed.options.remember = std::string(v); }},
    {.name = "--peer",
     .value = V::required,
     .arg = "NAME",
     .help = "instead of a code: connect to the side remembered as NAME (it runs --peer too)",
     .group = G::pairing,
     .apply = [](Scan& s, std::string_view v) { s.peer = std::string(v); }},
    {.name = "--serve",
     .help = "with --peer, for connect and connect-unix: serve one session after another, several at once, "
             "until Ctrl-C or SIGTERM",
     .group = G::pairing,
     .apply = [](Scan& s, std::string_view) { s.parsed.serve = true; }},
    {.name = "--label",
     .value = V::required,
     .arg = "TEXT",
     .help = "with --remember: what the other side's list of pairings calls this side (default: the host name)",
     .group = G::pairing,
     .apply = [](Scan& s, std::string_view v) { s.label = std::string(v); }},

    {.name = "--bind",
     .value = V::required,
     .arg = "ADDR",
     .help = "listen: address to accept on (default 127.0.0.1)",
     .apply = [](Scan& s, std::string_view v) { s.bind_address = std::string(v); }},
    {.name = "--udp-idle",
     .value = V::required,
     .arg = "SECONDS",
     .help = "listen-udp, connect-udp: a flow ends after this long without a datagram (default 60)",
     .apply = [](Scan& s, std::string_view v) { s.udp_idle_ns = udp_idle(v); }},
    {.name = "--udp-max-flows",
     .value = V::required,
     .arg = "N",
     .help = "listen-udp, connect-udp: flows at once at most; a new one ends the least recently used (default 4096)",
     .apply = [](Scan& s, std::string_view v) { s.udp_max_flows = udp_max_flows(v); }},
    {.name = "--send-only",
     .help = "stdio: send stdin, discard what arrives (also when stdin is a terminal)",
     .apply = [](Scan& s, std::string_view) { s.send_only = true; }},
    {.name = "--recv-only",
     .help = "stdio: write what arrives, send nothing (the default when stdin is a terminal)",
     .apply = [](Scan& s, std::string_view) { s.recv_only = true; }},
    {.name = "--config",
     .value = V::required,
     .arg = "FILE",
     .help = "config file (default $XDG_CONFIG_HOME/peersock.conf)",
     .apply = [](Scan& s, std::string_view v) { s.config_flag = std::string(v); }},
    {.name = "--print-config",
     .help = "show each setting and where it came from, then exit",
     .apply = [](Scan& s, std::string_view) { s.parsed.print_config = true; }},
    {.name = "--json",
     .help = "stderr: one JSON object per line (docs/json-events.md)",
     .apply = [](Scan& s, std::string_view) { s.parsed.json = true; }},
    {.name = "--status",
     .help = "the live status line on a terminal (the default; for stdio-a/stdio-b only when stdin or stdout is "
             "a terminal too, since with both ends pipes the terminal may be ssh's)",
     .apply = [](Scan& s, std::string_view) { s.parsed.status_line = Parsed::StatusLine::on; }},
    {.name = "--no-status",
     .help = "one line per event instead, also on a terminal",
     .apply = [](Scan& s, std::string_view) { s.parsed.status_line = Parsed::StatusLine::off; }},
    {.name = "--verbose", .alias = "-v", .apply = [](Scan& s, std::string_view) { s.parsed.log.debug_mask = ~0u; }},
    // Only `--debug=LIST`: a separate word would be ambiguous with the
    // subcommand that follows.
    {.name = "--debug",
     .value = V::optional,
     .implied = "all",
     .display = "-v, --debug[=LAYERS]",
     .help = "timestamped debug logs: all layers, or some of rendezvous,ice,quic,auth,forward,session",
     .apply = [](Scan& s, std::string_view v) { s.parsed.log.debug_mask |= log::parse_debug_list(v); }},
    {.name = "--quiet",
     .alias = "-q",
     .help = "errors only (and the code, on the side that makes it)",
     .apply = [](Scan& s, std::string_view) { s.parsed.log.quiet = true; }},
    {.name = "--help",
     .alias = "-h",
     .help = "this help; `peersock SUBCOMMAND --help` for one",
     .apply = [](Scan& s, std::string_view) { s.parsed.help = true; }},
    {.name = "--version",
     .help = "the version (with the QUIC and TLS libraries')",
     .apply = [](Scan& s, std::string_view) { s.parsed.version = true; }},
});

const Option* find_option(std::string_view name) {
  for (const Option& o : kOptions) {
    if (!o.name.empty() && (o.name == name || (!o.alias.empty() && o.alias == name))) return &o;
  }
  return nullptr;
}

// Options anywhere on the command line; the rest are positional.
Scan scan_argv(int argc, char** argv) {
  Scan scan;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") {
      for (++i; i < argc; ++i) scan.positional.push_back({argv[i], i});
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      scan.positional.push_back({arg, i});
      continue;
    }
    std::string name = arg;
    std::optional<std::string> value;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    auto take = [&]() -> std::string {
      if (value) return *value;
      if (i + 1 >= argc) throw UsageError(fmt::format("option {} needs a value", name));
      return argv[++i];
    };
    auto no_value = [&](std::string_view implied) -> std::string {
      if (value) throw UsageError(fmt::format("option {} takes no value (got {})", name, quote(*value)));
      return std::string(implied);
    };

    if (const config::Setting* row = config::find_flag(name)) {
      scan.flags.push_back({row, row->arg.empty() ? no_value(row->implied) : take()});
      if (row->secret) scan.parsed.secret_args.emplace_back(i, value ? name.size() + 1 : 0);
    } else if (const Option* o = find_option(name)) {
      const std::string v = o->value == V::required   ? take()
                            : o->value == V::optional ? value.value_or(std::string(o->implied))
                                                      : no_value("");
      o->apply(scan, v);
    } else {
      throw UsageError(fmt::format("unknown option {} (see peersock --help)", quote(arg)));
    }
  }
  return scan;
}

// Settings: defaults < config file < environment < flags.
void combine_settings(Scan& scan, const config::EnvLookup& env) {
  Parsed& parsed = scan.parsed;
  auto& settings = parsed.options.settings;
  settings = config::defaults();
  if (scan.config_flag) {
    parsed.config_path = *scan.config_flag;
    parsed.config_origin = {config::Source::flag, "--config"};
  } else if (auto v = env("PEERSOCK_CONFIG"); v && !v->empty()) {
    parsed.config_path = *v;
    parsed.config_origin = {config::Source::environment, "PEERSOCK_CONFIG"};
  } else {
    parsed.config_path = config::default_path();
  }
  config::load_file(settings, parsed.config_path, &parsed.origins);
  config::apply_environment(settings, env, &parsed.origins);
  config::apply_flags(settings, scan.flags, &parsed.origins);
  config::check_settings(settings);
}

// --send-only / --recv-only: which directions a stdio side carries.
void apply_stdio_flags(Scan& scan) {
  Parsed& parsed = scan.parsed;
  if (!scan.send_only && !scan.recv_only) return;
  if (scan.send_only && scan.recv_only) throw UsageError("--send-only and --recv-only exclude each other");
  const char* flag = scan.send_only ? "--send-only" : "--recv-only";
  forward::StdioDirections* d = forward::mutable_stdio_directions(parsed.options.mode);
  if (d == nullptr) {
    if (parsed.command == nullptr) return;  // --print-config alone
    throw UsageError(fmt::format("{} applies to stdio-a and stdio-b only", flag));
  }
  d->send = !scan.recv_only;
  d->receive = !scan.send_only;
  parsed.stdio_directions_given = true;
}


// The subcommand's own arguments; returns them (the optional code last) and
// how many the subcommand used.
std::pair<std::vector<std::string>, size_t> subcommand_args(Scan& scan) {
  Parsed& parsed = scan.parsed;
  std::vector<std::string> rest;
  // --print-config needs no subcommand (but takes one, to show its code).
  if (scan.positional.empty()) {
    if (!parsed.print_config) {
      std::string names;
      for (const auto& c : commands()) names += (names.empty() ? "" : ", ") + std::string(c.name);
      throw UsageError(fmt::format("missing subcommand ({}); see peersock --help", names));
    }
    return {rest, 0};
  }
  const Command* command = parsed.command;
  if (command == nullptr) {
    throw UsageError(fmt::format("unknown subcommand {}; see peersock --help", quote(scan.positional[0].text)));
  }
  for (size_t k = 1; k < scan.positional.size(); ++k) rest.push_back(scan.positional[k].text);
  const size_t used = command->parse(rest, parsed.options.mode);
  if (auto* listen = std::get_if<forward::ListenTcp>(&parsed.options.mode); listen && scan.bind_address)
    listen->bind_address = *scan.bind_address;
  if (auto* listen = std::get_if<forward::ListenUdp>(&parsed.options.mode); listen && scan.bind_address)
    listen->bind_address = *scan.bind_address;
  if (scan.udp_idle_ns || scan.udp_max_flows) {
    forward::udp::FlowLimits* limits = forward::mutable_udp_limits(parsed.options.mode);
    if (limits == nullptr)
      throw UsageError(fmt::format("{}: only listen-udp and connect-udp take {}", command->name,
                                   scan.udp_idle_ns ? "--udp-idle" : "--udp-max-flows"));
    if (scan.udp_idle_ns) limits->idle_ns = *scan.udp_idle_ns;
    if (scan.udp_max_flows) limits->max_flows = *scan.udp_max_flows;
  }
  apply_stdio_flags(scan);
  if (rest.size() > used + 1) {
    throw UsageError(fmt::format("{}: unexpected argument {} (usage: peersock {} {})", command->name,
                                 quote(rest[used + 1]), command->name, command->usage));
  }
  return {rest, used};
}

// A code from a file: the first line, trimmed. Bounded, because the file
// could be anything (a device, a log).
std::string read_code_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) throw UsageError(fmt::format("--code-file: cannot open {}: {}", quote(path), std::strerror(errno)));
  config::warn_if_readable_by_others(fileno(f), "the code file", path);
  // Unbuffered: stdio's own buffer would keep a copy of the code in freed heap.
  std::setvbuf(f, nullptr, _IONBF, 0);
  char buf[512];
  size_t n = std::fread(buf, 1, sizeof buf, f);
  const bool read_error = std::ferror(f) != 0;
  std::fclose(f);
  if (read_error) throw UsageError(fmt::format("--code-file: cannot read {}", quote(path)));
  std::string_view content(buf, n);
  content = content.substr(0, content.find('\n'));
  if (n == sizeof buf && content.size() == n) {
    throw UsageError(fmt::format("--code-file: the first line of {} is too long to be a code", quote(path)));
  }
  std::string code(text::trim_ascii_space(content));
  std::memset(buf, 0, sizeof buf);
  if (code.empty()) throw UsageError(fmt::format("--code-file: {} is empty", quote(path)));
  return code;
}

// The code: at most one of CODE / `-` / --join / --code-file; then
// PEERSOCK_CODE; else this side generates one.
void resolve_code(Scan& scan, const std::vector<std::string>& rest, size_t used, const config::EnvLookup& env) {
  Parsed& parsed = scan.parsed;
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
      parsed.code_argv_index = scan.positional[used + 1].index;
      parsed.secret_args.emplace_back(parsed.code_argv_index, 0);
      typed = rest[used];
    }
  }
  if (scan.join) {
    if (parsed.code_source != CodeSource::prompt) ++sources;
    parsed.code_source = CodeSource::prompt;
  }
  if (scan.code_file) {
    ++sources;
    parsed.code_source = CodeSource::file;
    typed = read_code_file(*scan.code_file);
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
    throw UsageError(
        fmt::format("--code-words applies only to the side that generates the code (this side uses the code from {})",
                    code_source_name(parsed.code_source)));
  }
}

// `peersock peers [list]`, `peersock peers forget NAME`.
void parse_peers(Scan& scan) {
  Parsed& parsed = scan.parsed;
  std::vector<std::string> args;
  for (size_t k = 1; k < scan.positional.size(); ++k) args.push_back(scan.positional[k].text);
  PeersAction action;
  if (args.empty() || (args.size() == 1 && args[0] == "list")) {
    action.forget = false;
  } else if (args[0] == "forget" && args.size() == 2) {
    action.forget = true;
    action.name = args[1];
    pairing::check_name(action.name);
  } else if (args[0] == "forget") {
    throw UsageError("peers forget: give exactly one NAME (usage: peersock peers forget NAME)");
  } else {
    throw UsageError(fmt::format("peers: unknown action {} (usage: peersock peers [list | forget NAME])",
                                 quote(args[0])));
  }
  parsed.peers = std::move(action);
}

// Where a --serve parent passes a child its ticket: the two nonces, which
// the window mailbox shows anyway (nothing secret).
constexpr std::string_view kTicketVariable = "PEERSOCK_PAIRED_TICKET";

// --peer NAME: the pairing from the store instead of a code.
void apply_peer(Scan& scan, const config::EnvLookup& env) {
  Parsed& parsed = scan.parsed;
  session::Options& o = parsed.options;
  const std::string& name = *scan.peer;
  if (o.remember) throw UsageError("--remember pairs during a code session; --peer uses a pairing: give one of them");
  if (parsed.code_source == CodeSource::argv || parsed.code_source == CodeSource::file ||
      parsed.code_source == CodeSource::prompt)
    throw UsageError(fmt::format("--peer {} needs no code: give a code or --peer, not both", name));
  o.code.reset();  // a PEERSOCK_CODE in the environment is not for this run
  parsed.code_source = CodeSource::generate;
  if (parsed.code_words_given) throw UsageError("--code-words applies only to a code session, not to --peer");
  if (parsed.serve && !forward::is_connect(o.mode))
    throw UsageError("--serve is for connect and connect-unix (each session connects to the same target; stdio-a "
                     "has one stdin, listen one port)");
  o.peers_dir = peers_dir(env);
  auto pairing = pairing::Store(o.peers_dir).load(name);
  if (!pairing)
    throw UsageError(fmt::format("--peer: no pairing called {} (pair first: a code session with --remember {}; "
                                 "peersock peers lists them)",
                                 quote(name), name));
  session::Options::Peer peer{std::move(*pairing), std::nullopt, pairing::kWindowSeconds};
  if (auto w = env("PEERSOCK_PAIRING_WINDOW"); w && !w->empty()) {
    int64_t seconds = 0;
    auto [end, ec] = std::from_chars(w->data(), w->data() + w->size(), seconds);
    if (ec != std::errc{} || end != w->data() + w->size() || seconds < 1 || seconds > 86400)
      throw UsageError(fmt::format("PEERSOCK_PAIRING_WINDOW: {} is not a number of seconds from 1 to 86400", quote(*w)));
    peer.window_seconds = seconds;
  }
  if (auto t = env(kTicketVariable); t && !t->empty()) {
    const size_t colon = t->find(':');
    pairing::Ticket ticket{t->substr(0, colon), colon == std::string::npos ? "" : t->substr(colon + 1)};
    auto hex32 = [](const std::string& s) {
      return s.size() == pairing::kNonceHexChars &&
             std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
    };
    if (!hex32(ticket.client_nonce) || !hex32(ticket.server_nonce))
      throw UsageError(fmt::format("{}: {} is not two nonces (set by --serve, not by hand)", kTicketVariable, quote(*t)));
    peer.ticket = std::move(ticket);
  }
  o.peer = std::move(peer);
}

// --remember and --label, once the subcommand and the code are known.
void apply_pairing_flags(Scan& scan, const config::EnvLookup& env) {
  Parsed& parsed = scan.parsed;
  session::Options& o = parsed.options;
  if (scan.label && !o.remember) throw UsageError("--label applies only with --remember NAME");
  if (parsed.serve && !scan.peer) throw UsageError("--serve needs --peer NAME");
  if (scan.peer) apply_peer(scan, env);
  if (!o.remember) return;
  pairing::check_name(*o.remember);
  if (scan.label) {
    o.label = *scan.label;
  } else {
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) == 0) o.label = host;
  }
  o.peers_dir = peers_dir(env);
}

}  // namespace

std::string peers_dir(const config::EnvLookup& env) {
  auto xdg = env("XDG_DATA_HOME");
  auto home = env("HOME");
  return pairing::Store::default_dir([&](const char* name) -> const char* {
    const auto& v = std::string_view(name) == "XDG_DATA_HOME" ? xdg : home;
    return v ? v->c_str() : nullptr;
  });
}

std::span<const Option> options() { return kOptions; }

Parsed parse_args(int argc, char** argv) { return parse_args(argc, argv, config::process_environment()); }

Parsed parse_args(int argc, char** argv, const config::EnvLookup& env) {
  Scan scan = scan_argv(argc, argv);
  Parsed& parsed = scan.parsed;
  // `peersock help [SUBCOMMAND]` is --help too.
  if (!scan.positional.empty() && scan.positional[0].text == "help") {
    parsed.help = true;
    scan.positional.erase(scan.positional.begin());
  }
  if (!scan.positional.empty()) {
    for (const auto& c : commands()) {
      if (c.name == scan.positional[0].text) parsed.command = &c;
    }
  }
  if (parsed.help || parsed.version) return std::move(parsed);

  if (!scan.positional.empty() && scan.positional[0].text == "peers") {
    parse_peers(scan);
    return std::move(parsed);
  }

  combine_settings(scan, env);
  const auto [rest, used] = subcommand_args(scan);
  resolve_code(scan, rest, used, env);
  apply_pairing_flags(scan, env);
  return std::move(parsed);
}

}  // namespace peersock::cli

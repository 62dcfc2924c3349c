// The subcommand table. Each subcommand parses its own positional arguments
// into a session::Mode (one file each: listen.cpp, connect.cpp, stdio.cpp,
// listen_unix.cpp, connect_unix.cpp, listen_udp.cpp, connect_udp.cpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "peersock/config/config.hpp"
#include "peersock/log.hpp"
#include "peersock/session/session.hpp"

namespace peersock::cli {

struct Command {
  std::string_view name;
  std::string_view usage;  // positional part, e.g. "PORT [CODE]"
  std::string_view summary;
  std::string_view example;
  // Fills `mode` from the positional args (without the optional code) and
  // returns how many it used. Errors: UsageError quoting the bad argument.
  size_t (*parse)(const std::vector<std::string>& args, session::Mode& mode);
  std::string_view details;  // `peersock NAME --help`: what it does, more examples
};

size_t parse_listen(const std::vector<std::string>& args, session::Mode& mode);
size_t parse_connect(const std::vector<std::string>& args, session::Mode& mode);
size_t parse_stdio_a(const std::vector<std::string>& args, session::Mode& mode);
size_t parse_stdio_b(const std::vector<std::string>& args, session::Mode& mode);
size_t parse_listen_unix(const std::vector<std::string>& args, session::Mode& mode);
size_t parse_connect_unix(const std::vector<std::string>& args, session::Mode& mode);
size_t parse_listen_udp(const std::vector<std::string>& args, session::Mode& mode);
size_t parse_connect_udp(const std::vector<std::string>& args, session::Mode& mode);

const std::vector<Command>& commands();

// Where this side's connection code comes from (never the code itself).
enum class CodeSource {
  generate,     // none given: this side generates one
  argv,         // CODE on the command line (visible to other local users)
  file,         // --code-file FILE
  environment,  // PEERSOCK_CODE
  prompt,       // `-` or --join: asked on the terminal (or one line of stdin)
};
std::string_view code_source_name(CodeSource source);

// `peersock peers`: list the pairings, or forget one.
struct PeersAction {
  bool forget = false;
  std::string name;  // forget's NAME
};

struct Parsed {
  session::Options options;
  std::optional<PeersAction> peers;  // `peersock peers ...` instead of a session
  bool help = false, version = false, print_config = false;
  const Command* command = nullptr;  // the subcommand, if one was named
  log::Settings log;
  bool json = false;
  bool serve = false;  // --serve (with --peer)
  // --send-only / --recv-only was given (else a stdio side whose stdin is a
  // terminal does not send).
  bool stdio_directions_given = false;
  // The live status line: auto (on a terminal, except for stdio-a/stdio-b),
  // or forced on (--status) / off (--no-status).
  enum class StatusLine { automatic, on, off } status_line = StatusLine::automatic;
  CodeSource code_source = CodeSource::generate;
  int code_argv_index = -1;  // argv index of a CODE given on the command line
  // Secrets on the command line (the code, --turn-password): argv index and
  // the offset of the secret within that argument, to overwrite after use.
  std::vector<std::pair<int, size_t>> secret_args;
  config::Origins origins;  // where each setting came from
  std::string config_path;
  config::Origin config_origin;  // --config, PEERSOCK_CONFIG or default
  bool code_words_given = false;
};

// Parses the whole command line: options anywhere, then defaults < config
// file < environment < flags. Does no terminal I/O (the prompt for `-` runs
// later). Errors: UsageError quoting the bad argument or value.
Parsed parse_args(int argc, char** argv, const config::EnvLookup& env);
Parsed parse_args(int argc, char** argv);  // with the process environment
uint16_t parse_port(std::string_view text, std::string_view what);

// Where pairings are kept (pairing::Store::default_dir from `env`).
// Errors: Error(local) when neither XDG_DATA_HOME nor HOME is usable.
std::string peers_dir(const config::EnvLookup& env);

// `peersock peers ...`: prints the list (json: one JSON array) or forgets
// one pairing; returns the exit status. Errors: Error(local) from the store,
// UsageError for a NAME that is not paired.
int run_peers(const PeersAction& action, const std::string& dir, bool json);

// --serve: meets one client after another and runs each session in a child
// process (this binary, the same arguments without --serve); returns the
// exit status once stopped (130 for SIGINT/SIGTERM).
int run_serve(const Parsed& parsed, int argc, char** argv);

// `peersock --print-config`: every effective setting and where it came
// from, as aligned text or (json) one JSON object. Never the code; the TURN
// password only as "(hidden)".
std::string format_config(const Parsed& parsed, bool json);

// The stderr format: json with --json; tty (permanent lines plus the live
// status line) when stderr is a terminal that can redraw a line, unless
// --no-status, and for stdio-a/stdio-b only with --status (their stderr is
// often a terminal that another program uses: ssh's ProxyCommand); else
// plain lines.
// `stdio_on_terminal`: stdin or stdout is a terminal (stdio modes show the
// status line then: `tar c | peersock stdio-a`, `peersock stdio-b | tar x`;
// with both ends pipes the terminal may be ssh's, as a ProxyCommand).
log::Format output_format(const Parsed& parsed, bool stderr_is_terminal, std::string_view term,
                          bool stdio_on_terminal = false);

// The help text: the overview, or one subcommand's.
std::string usage_text(const Command* command);

}  // namespace peersock::cli

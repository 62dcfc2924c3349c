// run(): parse the command line, then --help, --version, --print-config or
// the session. Parsing is options.cpp, the help text help.cpp, --print-config
// print_config.cpp.
#include "cli/cli.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "peersock/error.hpp"
#include "peersock/log.hpp"
#include "peersock/quic/endpoint.hpp"
#include "peersock/rendezvous/nameplate_lister.hpp"
#include "peersock/session/session.hpp"
#include "peersock/ui/code_prompt.hpp"

#ifndef PEERSOCK_VERSION
#define PEERSOCK_VERSION "unknown"
#endif

namespace peersock::cli {

log::Format output_format(const Parsed& parsed, bool stderr_is_terminal, std::string_view term,
                          bool stdio_on_terminal) {
  if (parsed.json) return log::Format::json;
  if (!stderr_is_terminal || term.empty() || term == "dumb") return log::Format::plain;
  const bool stdio = forward::is_stdio(parsed.options.mode);
  switch (parsed.status_line) {
    case Parsed::StatusLine::on: return log::Format::tty;
    case Parsed::StatusLine::off: return log::Format::plain;
    case Parsed::StatusLine::automatic: return stdio && !stdio_on_terminal ? log::Format::plain : log::Format::tty;
  }
  return log::Format::plain;
}

namespace {

// A stdio side whose stdin is a terminal sends nothing (as --recv-only): a
// person at a terminal is receiving (`peersock stdio-b CODE | tar x`), and
// reading the terminal would keep the run open until they press Ctrl-D.
void stop_sending_from_terminal(session::Mode& mode) {
  if (auto* d = forward::mutable_stdio_directions(mode)) d->send = false;
}

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
  nlohmann::json j = {
      {"event", "exit"},
      {"t", std::round(log::elapsed_seconds() * 1000) / 1000},
      {"exit_code", status},
      {"kind", status == 130 ? std::string_view("interrupted") : exit_code_name(static_cast<ExitCode>(status))}};
  log::json_line(j.dump());
}

// Each carried connection holds a descriptor (the connecting side: one per
// stream, up to the 1024 streams QUIC allows at once), and the usual soft
// limit is 1024. Nothing here uses select(), so a higher limit is safe.
// Failing to raise it only means fewer connections at once.
void raise_descriptor_limit() {
  constexpr rlim_t kWanted = 65536;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= kWanted) return;
  limit.rlim_cur = limit.rlim_max == RLIM_INFINITY ? kWanted : std::min(limit.rlim_max, kWanted);
  setrlimit(RLIMIT_NOFILE, &limit);
}

}  // namespace

int run(int argc, char** argv) {
  raise_descriptor_limit();
  // --json also applies to errors in the command line itself, which are
  // found before parsing is done.
  bool json = false;
  for (int i = 1; i < argc && std::string_view(argv[i]) != "--"; ++i)
    json = json || std::string_view(argv[i]) == "--json";
  if (json) log::configure({false, 0, log::Format::json});
  int status = 0;
  try {
    Parsed parsed = parse_args(argc, argv);
    json = parsed.json;
    const char* term = std::getenv("TERM");
    parsed.log.format = output_format(parsed, isatty(STDERR_FILENO) == 1, term != nullptr ? term : "",
                                      isatty(STDIN_FILENO) == 1 || isatty(STDOUT_FILENO) == 1);
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
    if (parsed.peers) return run_peers(*parsed.peers, peers_dir(config::process_environment()), parsed.json);
    scrub_argv(argv, parsed.secret_args);
    if (parsed.code_source == CodeSource::argv) {
      log::warning("code-in-argv",
                   "Note: the code was given on the command line, where other users of this machine can see it "
                   "(ps); '-' (type it at the prompt), PEERSOCK_CODE or --code-file keep it private.");
    }
    if (parsed.code_source == CodeSource::prompt) {
      const bool stdio = forward::is_stdio(parsed.options.mode);
      // Tab completion lists the mailbox server's nameplates.
      rendezvous::NameplateLister mailbox(parsed.options.settings.relay_url);
      ui::NameplateListerFor lister(mailbox);
      parsed.options.code = ui::prompt_code(lister, stdio);
    }
    if (!parsed.stdio_directions_given && isatty(STDIN_FILENO) == 1) stop_sending_from_terminal(parsed.options.mode);
    if (parsed.serve && !parsed.options.peer->ticket) {
      status = run_serve(parsed, argc, argv);
      emit_exit(json, status);
      return status;
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

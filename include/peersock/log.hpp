// Everything peersock writes to stderr goes through here, in one of three
// formats chosen once by the CLI:
//   plain  one line per event (stderr is not a terminal: logs, pipes, tests)
//   tty    the same permanent lines plus one status line that is redrawn in
//          place (ui::Status); every other line first erases it, then it is
//          drawn again below, so the two never garble each other
//   json   one JSON object per line (docs/json-events.md), for programs
// User-facing lines (`say`) are printed unless --quiet; debug lines only for
// the layers enabled with --debug / -v, with a wall-clock timestamp.
// Never log the connection code or key material.
#pragma once

#include <fmt/core.h>

#include <string>
#include <string_view>

#include "peersock/error.hpp"

namespace peersock::log {

enum class Layer { rendezvous, ice, quic, auth, forward, session, count };

enum class Format { plain, tty, json };

struct Settings {
  bool quiet = false;
  unsigned debug_mask = 0;  // bit per Layer
  Format format = Format::plain;
};

// Process-wide log settings, set once by the CLI before the main loop starts.
// (Logging is the one deliberate piece of shared state: the settings are
// read-only after start-up; the only mutable part is the status line that
// is on screen, which belongs to the one stderr there is.)
void configure(const Settings& settings);
const Settings& settings();
bool debug_enabled(Layer layer);
std::string_view layer_name(Layer layer);
bool parse_layer(std::string_view name, Layer& out);

// Parses a --debug list ("all", or comma-separated layer names) into a mask.
// Errors: UsageError quoting the unknown layer.
unsigned parse_debug_list(std::string_view list);

void say_line(std::string_view line);     // informational, suppressed by --quiet
void notice_line(std::string_view line);  // informational, printed even with --quiet (the code)
// A problem that does not end the run (a refused connection, a security
// note). plain: "peersock: LINE"; json: {"event":"warning",...}.
void error_line(std::string_view line);
// A problem that plain output shows as an ordinary line without the
// "peersock: " prefix (which marks errors); json: a warning event with `kind`.
void warning(std::string_view kind, std::string_view line);
// The error that ends the run. plain: "peersock: MESSAGE"; json:
// {"event":"error","kind":"<exit_code_name>","exit_code":N,"message":...}.
void fatal(ExitCode code, std::string_view message);
void debug_line(Layer layer, std::string_view line);  // timestamped

// json format only: writes `object_text` (one serialized JSON object with an
// "event" key) as one line. Ignored in the other formats.
void json_line(std::string_view object_text);
// Seconds since the process started logging (the "t" of JSON events).
double elapsed_seconds();

// tty format only: the status line to keep at the bottom (empty = none).
// Ignored in the other formats.
void set_status_line(std::string line);
// Something else is about to write to the terminal the status line is on
// (stdio data going to a terminal stdout): erases the line, and no status
// line is drawn again in this run (it would land in the middle of that
// output). Idempotent.
void release_terminal();

template <typename... Args>
void say(fmt::format_string<Args...> f, Args&&... args) {
  say_line(fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void debug(Layer layer, fmt::format_string<Args...> f, Args&&... args) {
  if (debug_enabled(layer)) debug_line(layer, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace peersock::log

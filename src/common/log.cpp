#include "peersock/log.hpp"

#include <glib.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "peersock/text.hpp"

namespace peersock::log {
namespace {

struct State {
  Settings settings;
  std::string status;     // tty: the status line currently drawn (without newline)
  bool released = false;  // release_terminal(): no status line any more
  gint64 start_us = g_get_monotonic_time();
};

State& state() {
  static State s;
  return s;
}

constexpr std::array<std::string_view, static_cast<size_t>(Layer::count)> kLayerNames = {
    "rendezvous", "ice", "quic", "auth", "forward", "session"};

// The one place that writes stderr. In tty format a drawn status line is
// erased first ("\r" + erase-to-end-of-line) and redrawn after the line, in a
// single write so that the terminal never shows a half-updated screen.
// Every line passes text::strip_controls: many carry text from the relay or
// the peer (a motd, an error, a debug dump of a frame), and none may fake a
// line of its own (a second "Connection code:") or drive the terminal.
void write_line(std::string_view line) {
  State& s = state();
  std::string out;
  const bool tty = s.settings.format == Format::tty;
  if (tty && !s.status.empty()) out += "\r\x1b[K";
  out.append(text::strip_controls(line));
  out += '\n';
  if (tty && !s.status.empty()) out += s.status;
  std::fwrite(out.data(), 1, out.size(), stderr);
  std::fflush(stderr);
}

std::string json_event(std::string_view event, nlohmann::json fields) {
  nlohmann::json j = {{"event", event}, {"t", std::round(elapsed_seconds() * 1000) / 1000}};
  for (auto& [k, v] : fields.items()) j[k] = v;
  // Invalid UTF-8 (from a hostile server's text) becomes U+FFFD instead of
  // an exception.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

void configure(const Settings& s) { state().settings = s; }

const Settings& settings() { return state().settings; }

bool debug_enabled(Layer layer) { return (settings().debug_mask >> static_cast<unsigned>(layer)) & 1u; }

std::string_view layer_name(Layer layer) { return kLayerNames.at(static_cast<size_t>(layer)); }

bool parse_layer(std::string_view name, Layer& out) {
  for (size_t i = 0; i < kLayerNames.size(); ++i) {
    if (kLayerNames[i] == name) {
      out = static_cast<Layer>(i);
      return true;
    }
  }
  return false;
}

unsigned parse_debug_list(std::string_view list) {
  if (list == "all" || list.empty()) return ~0u;
  unsigned mask = 0;
  size_t start = 0;
  for (;;) {
    const size_t comma = list.find(',', start);
    const std::string_view item =
        list.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    Layer layer;
    if (item == "all") {
      mask = ~0u;
    } else if (parse_layer(item, layer)) {
      mask |= 1u << static_cast<unsigned>(layer);
    } else {
      std::string known;
      for (auto n : kLayerNames) known += (known.empty() ? "" : ",") + std::string(n);
      throw UsageError(fmt::format("--debug: unknown layer '{}' (layers: all,{})", item, known));
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return mask;
}

double elapsed_seconds() { return static_cast<double>(g_get_monotonic_time() - state().start_us) / 1e6; }

void say_line(std::string_view line) {
  if (settings().quiet) return;
  notice_line(line);
}

void notice_line(std::string_view line) {
  if (settings().format == Format::json) {
    write_line(json_event("info", {{"message", line}}));
  } else {
    write_line(line);
  }
}

void error_line(std::string_view line) {
  if (settings().format == Format::json) {
    write_line(json_event("warning", {{"kind", "error"}, {"message", line}}));
  } else {
    write_line(fmt::format("peersock: {}", line));
  }
}

void warning(std::string_view kind, std::string_view line) {
  if (settings().quiet) return;
  if (settings().format == Format::json) {
    write_line(json_event("warning", {{"kind", kind}, {"message", line}}));
  } else {
    write_line(line);
  }
}

void fatal(ExitCode code, std::string_view message) {
  if (settings().format == Format::json) {
    write_line(json_event(
        "error", {{"kind", exit_code_name(code)}, {"exit_code", static_cast<int>(code)}, {"message", message}}));
  } else {
    write_line(fmt::format("peersock: {}", message));
  }
}

void debug_line(Layer layer, std::string_view line) {
  if (settings().format == Format::json) {
    write_line(json_event("debug", {{"layer", layer_name(layer)}, {"message", line}}));
    return;
  }
  // Wall-clock time, so that the logs of the two machines can be compared.
  g_autoptr(GDateTime) now = g_date_time_new_now_local();
  write_line(fmt::format("[{:02}:{:02}:{:02}.{:03}] {}: {}", g_date_time_get_hour(now), g_date_time_get_minute(now),
                         g_date_time_get_second(now), g_date_time_get_microsecond(now) / 1000, layer_name(layer),
                         line));
}

void json_line(std::string_view object_text) {
  if (settings().format != Format::json) return;
  write_line(object_text);
}

void set_status_line(std::string line) {
  State& s = state();
  if (s.settings.format != Format::tty || s.released) return;
  line = text::strip_controls(line);
  if (line == s.status) return;
  std::string out = "\r\x1b[K" + line;
  s.status = std::move(line);
  std::fwrite(out.data(), 1, out.size(), stderr);
  std::fflush(stderr);
}

void release_terminal() {
  State& s = state();
  if (s.released) return;
  set_status_line({});
  s.released = true;
}

}  // namespace peersock::log

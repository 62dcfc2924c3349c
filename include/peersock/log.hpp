// Logging to stderr. User-facing lines (`say`) are always printed unless
// --quiet; debug lines only for the layers enabled with --debug / -v.
// Never log the connection code or key material.
#pragma once

#include <fmt/core.h>

#include <string_view>

namespace peersock::log {

enum class Layer { rendezvous, ice, quic, auth, forward, session, count };

struct Settings {
  bool quiet = false;
  unsigned debug_mask = 0;  // bit per Layer
};

// Process-wide log settings, set once by the CLI before the main loop starts.
// (Logging is the one deliberate piece of shared state: it is read-only after
// start-up.)
void configure(const Settings& settings);
bool debug_enabled(Layer layer);
std::string_view layer_name(Layer layer);
bool parse_layer(std::string_view name, Layer& out);

void say_line(std::string_view line);                  // informational, suppressed by --quiet
void error_line(std::string_view line);                // always printed
void debug_line(Layer layer, std::string_view line);   // timestamped

template <typename... Args>
void say(fmt::format_string<Args...> f, Args&&... args) {
  say_line(fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void debug(Layer layer, fmt::format_string<Args...> f, Args&&... args) {
  if (debug_enabled(layer)) debug_line(layer, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace peersock::log

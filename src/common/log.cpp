#include "peersock/log.hpp"

#include <glib.h>

#include <array>
#include <cstdio>

namespace peersock::log {
namespace {

Settings& settings() {
  static Settings s;
  return s;
}

constexpr std::array<std::string_view, static_cast<size_t>(Layer::count)> kLayerNames = {
    "rendezvous", "ice", "quic", "auth", "forward", "session"};

}  // namespace

void configure(const Settings& s) { settings() = s; }

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

void say_line(std::string_view line) {
  if (settings().quiet) return;
  fmt::print(stderr, "{}\n", line);
}

void error_line(std::string_view line) { fmt::print(stderr, "peersock: {}\n", line); }

void debug_line(Layer layer, std::string_view line) {
  gint64 us = g_get_monotonic_time();
  fmt::print(stderr, "[{:>6}.{:03}] {}: {}\n", us / 1000000, (us / 1000) % 1000, layer_name(layer), line);
}

}  // namespace peersock::log

#include "peersock/ui/format.hpp"

#include <fmt/core.h>

#include <cmath>

namespace peersock::ui {

std::string_view phase_name(Phase phase) {
  switch (phase) {
    case Phase::contacting: return "contacting";
    case Phase::waiting: return "waiting";
    case Phase::finding_path: return "finding-path";
    case Phase::authenticating: return "authenticating";
    case Phase::connected: return "connected";
    case Phase::closing: return "closing";
  }
  return "?";
}

std::string format_bytes(uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  // Switch units before the rounded number would show four digits.
  while (value >= 999.95 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  return fmt::format("{:.1f} {}", value, kUnits[unit]);
}

std::string format_rate(double bytes_per_second) {
  if (!(bytes_per_second > 0)) return "0 B/s";
  return format_bytes(static_cast<uint64_t>(std::llround(bytes_per_second))) + "/s";
}

std::string format_duration(double seconds) {
  const auto s = static_cast<uint64_t>(seconds < 0 ? 0 : seconds);
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
}

void RateMeter::add(int64_t now_us, uint64_t total) {
  samples_.push_back({now_us, total});
  // Keep one sample at or before the window start, so the slope spans the
  // whole window.
  while (samples_.size() > 2 && samples_[1].at_us <= now_us - window_us_) samples_.pop_front();
}

double RateMeter::bytes_per_second() const {
  if (samples_.size() < 2) return 0;
  const Sample& first = samples_.front();
  const Sample& last = samples_.back();
  if (last.at_us <= first.at_us || last.total < first.total) return 0;
  return static_cast<double>(last.total - first.total) * 1e6 / static_cast<double>(last.at_us - first.at_us);
}

// Below 10 ms with a decimal: a LAN's 0.3 ms is not "0 ms".
std::string format_rtt(double ms) { return ms < 9.95 ? fmt::format("{:.1f} ms", ms) : fmt::format("{:.0f} ms", ms); }

std::string path_line(const PathInfo& path, std::optional<double> rtt_ms) {
  const std::string rtt = rtt_ms ? ", rtt " + format_rtt(*rtt_ms) : std::string();
  if (!path.relayed) {
    return fmt::format("connected directly ({}, {} \u2194 {}){}", path.transport, path.local, path.remote, rtt);
  }
  if (path.relay_server.empty()) {
    // Only the peer relays: we talk to its TURN allocation.
    return fmt::format("connected via the peer's TURN relay {} (direct path not possible){}", path.remote, rtt);
  }
  const std::string over = path.relay_transport == "tcp" ? "over tcp; " : "";
  return fmt::format("connected via TURN relay {} ({}direct path not possible){}", path.relay_server, over, rtt);
}

double cwnd_rate(uint64_t cwnd, std::optional<double> rtt_ms) {
  if (cwnd == 0 || !rtt_ms || *rtt_ms <= 0) return 0;
  return static_cast<double>(cwnd) / (*rtt_ms / 1000.0);
}

std::string status_line(const Snapshot& s, size_t width) {
  std::string line;
  const std::string waited = format_duration(s.phase_seconds);
  const char* path = !s.relayed ? nullptr : *s.relayed ? "via TURN relay" : "direct";
  switch (s.phase) {
    case Phase::contacting: line = fmt::format("contacting the rendezvous server... {}", waited); break;
    case Phase::waiting: line = fmt::format("waiting for the other side... {}", waited); break;
    case Phase::finding_path: line = fmt::format("finding a network path... {}", waited); break;
    case Phase::authenticating:
      line = fmt::format("authenticating{}... {}", path ? fmt::format(" ({})", path) : "", waited);
      break;
    case Phase::connected:
    case Phase::closing: {
      line = s.phase == Phase::connected ? "connected" : "closing";
      if (path) line += fmt::format(", {}", path);
      if (s.silent_s) {
        line += fmt::format(", reconnecting\u2026 no answer for {:.0f} s", *s.silent_s);
      } else if (s.rtt_ms) {
        line += ", rtt " + format_rtt(*s.rtt_ms);
      }
      if (double max = cwnd_rate(s.cwnd, s.rtt_ms); max > 0) {
        line += fmt::format(", window {} ({} max), {} in flight", format_bytes(s.cwnd), format_rate(max),
                            format_bytes(s.bytes_in_flight));
      }
      line += fmt::format(" | sent {} {} | received {} {}", format_bytes(s.sent), format_rate(s.send_rate),
                          format_bytes(s.received), format_rate(s.receive_rate));
      if (s.udp) {
        line += fmt::format(" | udp {} flow{}, {} out ({:.0f}/s), {} in ({:.0f}/s), dropped {} out {} in", s.udp->flows,
                            s.udp->flows == 1 ? "" : "s", s.udp->out, s.udp_send_rate, s.udp->in, s.udp_receive_rate,
                            s.udp->out_dropped, s.udp->in_dropped);
      } else if (!s.stdio) {
        line += fmt::format(" | {} connection{}", s.open_connections, s.open_connections == 1 ? "" : "s");
      }
      break;
    }
  }
  // Leave the last column free: writing into it makes some terminals wrap.
  if (width > 1 && line.size() > width - 1) line.resize(width - 1);
  return line;
}

}  // namespace peersock::ui

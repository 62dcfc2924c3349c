#include "peersock/ui/status.hpp"

#include <string.h>

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "peersock/c_boundary.hpp"
#include "peersock/log.hpp"
#include "peersock/text.hpp"

namespace peersock::ui {
namespace {

using json = nlohmann::json;

constexpr guint kRefreshMs = 1000;

size_t terminal_width() {
  winsize ws{};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

std::string event_json(std::string_view event, json fields) {
  json j = {{"event", event}, {"t", std::round(log::elapsed_seconds() * 1000) / 1000}};
  for (auto& [k, v] : fields.items()) j[k] = v;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

Status::Status(bool stdio)
    : stdio_(stdio),
      draw_(log::settings().format == log::Format::tty && !log::settings().quiet),
      json_(log::settings().format == log::Format::json) {
  if (draw_ || json_) timer_ = g_timeout_add(kRefreshMs, &Status::on_tick, this);
}

Status::~Status() {
  if (draw_) log::set_status_line({});
}

void Status::set_sampler(Sampler sampler) { sampler_ = std::move(sampler); }

void Status::set_rtt(std::optional<double> ms) { rtt_ms_ = ms; }

void Status::set_path_sampler(PathSampler sampler) { path_sampler_ = std::move(sampler); }

void Status::set_datagram_sampler(DatagramSampler sampler) { datagram_sampler_ = std::move(sampler); }

namespace {
json udp_json(const DatagramSample& u, double send_rate, double receive_rate) {
  return {{"sent", u.out},
          {"received", u.in},
          {"sent_bytes", u.out_bytes},
          {"received_bytes", u.in_bytes},
          {"dropped_out", u.out_dropped},
          {"dropped_in", u.in_dropped},
          {"send_rate", std::llround(send_rate)},
          {"receive_rate", std::llround(receive_rate)},
          {"flows", u.flows},
          {"max_datagram", u.max_payload}};
}
}  // namespace

gboolean Status::on_tick(gpointer self) {
  return c_boundary("the status refresh", [&]() -> gboolean {
    static_cast<Status*>(self)->tick();
    return G_SOURCE_CONTINUE;
  });
}

void Status::tick() {
  sample();
  if (json_ && phase_ == Phase::connected) {
    const Snapshot s = snapshot();
    json fields = {{"sent", s.sent},
                   {"received", s.received},
                   {"send_rate", std::llround(s.send_rate)},
                   {"receive_rate", std::llround(s.receive_rate)},
                   {"connections", s.open_connections},
                   {"rtt_ms", s.rtt_ms ? json(*s.rtt_ms) : json(nullptr)},
                   {"cwnd", s.cwnd},
                   {"cwnd_rate", std::llround(cwnd_rate(s.cwnd, s.rtt_ms))},
                   {"bytes_in_flight", s.bytes_in_flight}};
    if (s.silent_s) fields["silent_s"] = std::llround(*s.silent_s);
    if (s.udp) fields["udp"] = udp_json(*s.udp, s.udp_send_rate, s.udp_receive_rate);
    log::json_line(event_json("stats", std::move(fields)));
  }
  redraw();
}

void Status::sample() {
  if (path_sampler_) {
    path_sample_ = path_sampler_();
    if (path_sample_.rtt_ms) rtt_ms_ = path_sample_.rtt_ms;
  }
  if (sampler_) {
    for (const ConnectionSample& c : sampler_()) {
      auto it = open_.find(c.id);
      if (it == open_.end()) continue;
      it->second.sent = c.sent;
      it->second.received = c.received;
    }
  }
  sent_ = closed_sent_;
  received_ = closed_received_;
  if (datagram_sampler_) udp_ = datagram_sampler_();
  if (udp_) {
    sent_ += udp_->out_bytes;
    received_ += udp_->in_bytes;
  }
  for (const auto& [id, c] : open_) {
    sent_ += c.sent;
    received_ += c.received;
  }
  const gint64 now = g_get_monotonic_time();
  send_meter_.add(now, sent_);
  receive_meter_.add(now, received_);
  if (udp_) {
    udp_send_meter_.add(now, udp_->out);
    udp_receive_meter_.add(now, udp_->in);
  }
}

Snapshot Status::snapshot() const {
  Snapshot s;
  s.phase = phase_;
  s.phase_seconds = static_cast<double>(g_get_monotonic_time() - phase_started_us_) / 1e6;
  s.relayed = relayed_;
  s.rtt_ms = rtt_ms_;
  s.cwnd = path_sample_.cwnd;
  s.bytes_in_flight = path_sample_.bytes_in_flight;
  s.silent_s = path_sample_.silent_s;
  s.sent = sent_;
  s.received = received_;
  s.send_rate = send_meter_.bytes_per_second();
  s.receive_rate = receive_meter_.bytes_per_second();
  s.open_connections = open_.size();
  s.stdio = stdio_;
  s.udp = udp_;
  s.udp_send_rate = udp_send_meter_.bytes_per_second();
  s.udp_receive_rate = udp_receive_meter_.bytes_per_second();
  return s;
}

void Status::redraw() {
  if (!draw_ || finished_) return;
  log::set_status_line(status_line(snapshot(), terminal_width()));
}

void Status::phase(Phase phase) {
  if (finished_) return;
  phase_ = phase;
  phase_started_us_ = g_get_monotonic_time();
  if (phase == Phase::connected) connected_us_ = phase_started_us_;
  if (json_) {
    log::json_line(event_json(phase_name(phase), json::object()));
  } else if (!draw_) {
    switch (phase) {
      case Phase::contacting: log::say("Contacting the rendezvous server..."); break;
      case Phase::waiting: log::say("Waiting for the other side..."); break;
      case Phase::finding_path: log::say("The other side is here; finding a network path..."); break;
      case Phase::authenticating: log::say("Authenticating..."); break;
      case Phase::connected:
      case Phase::closing: break;
    }
  }
  redraw();
}

void Status::motd(std::string_view text) {
  // The relay's text: one line (a newline would let it print a fake
  // "Connection code:" line of its own), bounded.
  constexpr size_t kMaxMotdBytes = 1000;
  std::string clean = text::strip_controls(text.substr(0, kMaxMotdBytes));
  if (text.size() > kMaxMotdBytes) clean += "...";
  if (json_) {
    log::json_line(event_json("motd", {{"message", clean}}));
  } else {
    log::say("Message from the rendezvous server: {}", clean);
  }
}

void Status::code(const std::string& code, const std::string& other_side_command) {
  // Every string that holds the code is wiped once printed: a freed heap
  // block with "...stdio-b 9-industry-initial-cancel-check" in it was found
  // by the memory scan after auth (tests/e2e/test_attacks.py).
  auto wiped = [](std::string& s) { explicit_bzero(s.data(), s.capacity()); };
  if (json_) {
    std::string line = event_json("code", {{"code", code}, {"command", other_side_command}});
    log::json_line(line);
    wiped(line);
    return;
  }
  // Printed even with --quiet: without it the other side cannot join.
  std::string code_line = fmt::format("Connection code: {}", code);
  std::string hint_line = fmt::format("On the other side run: {}", other_side_command);
  log::notice_line(code_line);
  log::notice_line(hint_line);
  log::notice_line("and type the code there (or give it with PEERSOCK_CODE or --code-file)");
  wiped(code_line);
  wiped(hint_line);
}

void Status::path(const PathInfo& path, std::optional<double> rtt_ms) {
  relayed_ = path.relayed;
  if (rtt_ms) rtt_ms_ = rtt_ms;
  if (json_) {
    log::json_line(event_json("path", {{"relayed", path.relayed},
                                       {"transport", path.transport},
                                       {"local", path.local},
                                       {"remote", path.remote},
                                       {"rtt_ms", rtt_ms ? json(*rtt_ms) : json(nullptr)}}));
  } else {
    log::say_line(path_line(path, rtt_ms));
  }
  redraw();
}

void Status::authenticated(const std::string& line) {
  if (json_) {
    log::json_line(event_json("authenticated", {{"message", line}}));
  } else {
    log::say_line(line);
  }
  phase(Phase::connected);
}

void Status::remembered(const std::string& name, const std::string& line) {
  if (json_) {
    log::json_line(event_json("remembered", {{"name", name}, {"message", line}}));
  } else {
    log::say_line(line);
  }
}

void Status::connection_opened(const void* id) {
  if (auto it = open_.find(id); it != open_.end()) {
    // The address was reused by a new connection object after the old one
    // was destroyed without a close report: count the old one as closed.
    connection_closed(id, it->second.sent, it->second.received, false);
  }
  const uint64_t number = next_number_++;
  open_.emplace(id, Connection{number});
  if (json_) log::json_line(event_json("connection-opened", {{"id", number}}));
  log::debug(log::Layer::forward, "connection {} opened", number);
  redraw();
}

void Status::connection_closed(const void* id, uint64_t sent, uint64_t received, bool clean) {
  auto it = open_.find(id);
  if (it == open_.end()) return;
  const uint64_t number = it->second.number;
  open_.erase(it);
  closed_sent_ += sent;
  closed_received_ += received;
  if (json_) {
    log::json_line(
        event_json("connection-closed", {{"id", number}, {"sent", sent}, {"received", received}, {"clean", clean}}));
  }
  log::debug(log::Layer::forward, "connection {} closed: {} bytes sent, {} received{}", number, sent, received,
             clean ? "" : " (reset)");
  sample();
  redraw();
}

void Status::peer_closed() {
  if (json_) {
    log::json_line(event_json("peer-closed", json::object()));
  } else {
    log::say("The other side closed the connection.");
  }
}

void Status::reconnecting(double silent_s, int timeout_s) {
  if (json_) {
    log::json_line(event_json("reconnecting", {{"silent_s", std::llround(silent_s)}, {"timeout_s", timeout_s}}));
  } else {
    log::say("No answer from the other side for {:.0f} s; reconnecting for up to {} s...", silent_s, timeout_s);
  }
}

void Status::reconnected(double silent_s) {
  if (json_) {
    log::json_line(event_json("reconnected", {{"silent_s", std::round(silent_s * 10) / 10}}));
  } else {
    log::say("The other side answers again (after {:.1f} s of silence).", silent_s);
  }
}

void Status::finished(ExitCode code, const std::string& message) {
  if (finished_) return;
  sample();
  if (draw_) log::set_status_line({});
  finished_ = true;
  if (code != ExitCode::ok && !message.empty()) log::fatal(code, message);
  if (connected_us_ != 0) {
    const double seconds = static_cast<double>(g_get_monotonic_time() - connected_us_) / 1e6;
    if (json_) {
      json fields = {
          {"sent", sent_},     {"received", received_},       {"send_rate", 0},
          {"receive_rate", 0}, {"connections", open_.size()}, {"rtt_ms", rtt_ms_ ? json(*rtt_ms_) : json(nullptr)},
          {"final", true}};
      if (udp_) fields["udp"] = udp_json(*udp_, 0, 0);
      log::json_line(event_json("stats", std::move(fields)));
    } else if (draw_) {
      // The average of the busier direction: what a transfer's user asks.
      const double busier = static_cast<double>(std::max(sent_, received_));
      log::say("Sent {}, received {} in {} (average {}).", format_bytes(sent_), format_bytes(received_),
               format_duration(seconds), format_rate(seconds > 0 ? busier / seconds : 0));
    }
  }
}

}  // namespace peersock::ui

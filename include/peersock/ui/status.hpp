// What the user sees while a session runs. The session reports events
// (phase changes, the code, the path, connections); Status turns them into
// the output format chosen with log::configure:
//   plain  one line per event (the lines the e2e tests and scripts rely on)
//   tty    the same permanent lines, with the transient phases and the live
//          traffic in one status line redrawn about once a second
//   json   one event object per line, plus "stats" every second once
//          connected (docs/json-events.md)
// Traffic is pulled, not pushed: the session registers a sampler that lists
// its open connections' byte counters, so the data path is never slowed
// down by reporting.
#pragma once

#include <glib.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "peersock/error.hpp"
#include "peersock/glib/raii.hpp"
#include "peersock/ui/format.hpp"

namespace peersock::ui {

struct ConnectionSample {
  const void* id;  // the connection's object (e.g. its forward::Pump)
  uint64_t sent, received;
};

class Status {
 public:
  // `stdio`: the run carries one stdin/stdout stream (no connection count).
  explicit Status(bool stdio);
  ~Status();  // stops the refresh timer and erases the status line
  Status(const Status&) = delete;
  Status& operator=(const Status&) = delete;

  using Sampler = std::function<std::vector<ConnectionSample>()>;
  void set_sampler(Sampler sampler);
  // The transport's view of the path (RTT, congestion window, bytes in
  // flight), pulled once a second like the traffic.
  using PathSampler = std::function<PathSample()>;
  void set_path_sampler(PathSampler sampler);
  // listen-udp / connect-udp: the datagram counters, pulled the same way.
  using DatagramSampler = std::function<std::optional<DatagramSample>()>;
  void set_datagram_sampler(DatagramSampler sampler);
  // Round-trip time, for whoever measures it (QUIC keep-alives); nullopt =
  // unknown. Shown in the status line and in "stats" events.
  void set_rtt(std::optional<double> ms);

  void phase(Phase phase);
  void motd(std::string_view text);
  // The generating side: the code and the command to run on the other side.
  void code(const std::string& code, const std::string& other_side_command);
  // The path ICE found: path_line() (or a "path" event); `rtt_ms`, when
  // known, also goes to set_rtt().
  void path(const PathInfo& path, std::optional<double> rtt_ms = std::nullopt);
  // `line` is the plain-text line ("authenticated; forwarding ...").
  void authenticated(const std::string& line);
  // --remember stored the pairing `name`; `line` is the plain-text line.
  void remembered(const std::string& name, const std::string& line);
  void connection_opened(const void* id);
  // Idempotent per id: only the first call for an open connection counts.
  void connection_closed(const void* id, uint64_t sent, uint64_t received, bool clean);
  void peer_closed();
  // The peer has not been heard for `silent_s` seconds; the session waits
  // up to `timeout_s` more for it (one line, and a "reconnecting" event).
  void reconnecting(double silent_s, int timeout_s);
  // It answers again after `silent_s` seconds of silence.
  void reconnected(double silent_s);
  // The session ends with `code`; `message` (if any) is the error line.
  void finished(ExitCode code, const std::string& message);

  // For tests and the final summary.
  Snapshot snapshot() const;

 private:
  struct Connection {
    uint64_t number;  // 1, 2, ... in order of opening (JSON "id")
    uint64_t sent = 0, received = 0;
  };
  static gboolean on_tick(gpointer self);
  void tick();
  void sample();
  void redraw();

  bool stdio_;
  bool draw_;  // tty format and not --quiet
  bool json_;
  glib::SourceId timer_;  // the refresh, with draw_ or json_
  Sampler sampler_;
  PathSampler path_sampler_;
  PathSample path_sample_;
  DatagramSampler datagram_sampler_;
  std::optional<DatagramSample> udp_;
  RateMeter udp_send_meter_, udp_receive_meter_;
  Phase phase_ = Phase::contacting;
  gint64 phase_started_us_ = g_get_monotonic_time();
  gint64 connected_us_ = 0;
  std::optional<bool> relayed_;
  std::optional<double> rtt_ms_;
  std::map<const void*, Connection> open_;
  uint64_t next_number_ = 1;
  uint64_t closed_sent_ = 0, closed_received_ = 0;
  uint64_t sent_ = 0, received_ = 0;
  RateMeter send_meter_, receive_meter_;
  bool finished_ = false;
};

}  // namespace peersock::ui

// Pure pieces of the live status: byte and rate formatting, a rate meter fed
// with (timestamp, total) samples, and the status line built from a snapshot.
// No I/O and no clock: times are passed in, so all of it is unit-tested.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

namespace peersock::ui {

// The states a run goes through, in order.
enum class Phase { contacting, waiting, finding_path, authenticating, connected, closing };
std::string_view phase_name(Phase phase);  // stable names used in JSON: "contacting", "finding-path", ...

// 1023 -> "1023 B", 1536 -> "1.5 KiB", 10 MiB -> "10.0 MiB"; never more than 9 characters.
std::string format_bytes(uint64_t bytes);
// bytes per second -> "340 KiB/s".
std::string format_rate(double bytes_per_second);
// 5 -> "5s", 65 -> "1m05s", 3725 -> "1h02m".
std::string format_duration(double seconds);
// An RTT: "0.4 ms" below 10 ms, "23 ms" from there on.
std::string format_rtt(double ms);

// Current rate of a growing counter: the slope over the samples of the last
// `window_us` (about two seconds), so a one-second refresh shows a steady
// number instead of jumping with every burst.
class RateMeter {
 public:
  explicit RateMeter(int64_t window_us = 2'000'000) : window_us_(window_us) {}
  // `total` must not decrease; `now_us` must not go backwards.
  void add(int64_t now_us, uint64_t total);
  double bytes_per_second() const;

 private:
  struct Sample {
    int64_t at_us;
    uint64_t total;
  };
  int64_t window_us_;
  std::deque<Sample> samples_;
};

// What the transport reports about the path, as plain numbers.
struct PathSample {
  std::optional<double> rtt_ms;  // smoothed RTT
  uint64_t cwnd = 0;
  uint64_t bytes_in_flight = 0;
  // Seconds since the peer last answered while we wait for it (bytes in
  // flight); nullopt while all is answered.
  std::optional<double> silent_s;
};

// The network path the session found (ICE's selected pair), as the user is
// told about it.
struct PathInfo {
  bool relayed = false;   // either side uses a TURN relay candidate
  std::string local;      // "addr:port"
  std::string remote;     // "addr:port"
  std::string transport;  // "udp" / "tcp"
  // When we relay through our own TURN allocation: the TURN server
  // ("addr:port") and how we reach it ("udp" / "tcp"). Empty when only the
  // peer's candidate is a relay (its server is not ours to name).
  std::string relay_server;
  std::string relay_transport;
};

// The line the user sees once connected (rtt_ms shown when known):
//   connected directly (udp, A ↔ B), rtt 12 ms
//   connected via TURN relay S (over tcp; direct path not possible), rtt 40 ms
//   connected via the peer's TURN relay B (direct path not possible)
std::string path_line(const PathInfo& path, std::optional<double> rtt_ms = std::nullopt);

// The most a congestion window of `cwnd` bytes allows per second at `rtt_ms`
// (cwnd / RTT); 0 when either is unknown.
double cwnd_rate(uint64_t cwnd, std::optional<double> rtt_ms);

// listen-udp / connect-udp: datagram counters per direction ("out": from
// local clients to the peer; "in": from the peer to local sockets).
struct DatagramSample {
  uint64_t out = 0, out_bytes = 0, in = 0, in_bytes = 0;
  uint64_t out_dropped = 0, in_dropped = 0;
  size_t flows = 0;
  size_t max_payload = 0;  // the largest local datagram the path carries now
};

struct Snapshot {
  Phase phase = Phase::contacting;
  double phase_seconds = 0;      // time spent in the current phase
  std::optional<bool> relayed;   // known once ICE has a path: true = via TURN
  std::optional<double> rtt_ms;  // when the session measures it
  uint64_t cwnd = 0;             // QUIC congestion window, bytes (0: unknown)
  uint64_t bytes_in_flight = 0;  // sent, not yet acknowledged or lost
  // The peer has not answered for this long although we wait for it; shown
  // as "no answer for N s" instead of the last RTT, which would look healthy.
  std::optional<double> silent_s;
  uint64_t sent = 0, received = 0;
  double send_rate = 0, receive_rate = 0;  // bytes per second
  size_t open_connections = 0;
  bool stdio = false;  // one stdin/stdout stream: connection count means nothing
  // UDP modes: shown instead of the connection count.
  std::optional<DatagramSample> udp;
  double udp_send_rate = 0, udp_receive_rate = 0;  // datagrams per second
};

// The status line for a terminal `width` columns wide (cut to fit: a
// wrapped line could not be redrawn in place). ASCII only.
std::string status_line(const Snapshot& snapshot, size_t width);

}  // namespace peersock::ui

// Round-trip time on the control stream (stream 0), v2 peers only.
//
// Protocol (control bytes, see control.hpp):
//   'P'  ping: the receiver answers with one 'Q' per 'P'
//   'Q'  pong
// v2 builds from before this addition ignore both (they only look for 'D'),
// so a ping may go unanswered: the caller gives up after a deadline. Never
// sent to an original (v1) peer, which does not expect bytes on stream 0.
//
// Pure logic: counts (from ControlReader) and timestamps in, bytes and
// samples out; no I/O, no clock.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "peersock/session/control.hpp"

namespace peersock::session {

class ControlPing {
 public:
  // Returns the bytes to write to start one measurement (nothing if one is
  // already outstanding).
  std::vector<uint8_t> ping(int64_t now_us) {
    if (sent_us_) return {};
    sent_us_ = now_us;
    return {kPing};
  }

  struct Result {
    std::vector<uint8_t> reply;    // pongs to write back
    std::optional<double> rtt_ms;  // a pong answered our ping
  };

  // Feeds the pings and pongs ControlReader found in one read of stream 0.
  // Bounded: one pong per ping byte received.
  Result on_control(size_t pings, size_t pongs, int64_t now_us) {
    Result r;
    if (pings > 0) {
      r.reply.assign(pings, kPong);
      pinged_by_peer_ = true;
    }
    if (pongs > 0 && sent_us_) {
      last_rtt_ms_ = static_cast<double>(now_us - *sent_us_) / 1000.0;
      r.rtt_ms = last_rtt_ms_;
      sent_us_.reset();
    }
    return r;
  }

  bool pinged_by_peer() const { return pinged_by_peer_; }
  std::optional<double> last_rtt_ms() const { return last_rtt_ms_; }

 private:
  std::optional<int64_t> sent_us_;
  std::optional<double> last_rtt_ms_;
  bool pinged_by_peer_ = false;
};

}  // namespace peersock::session

// Round-trip time on the control stream (stream 0), v2 peers only.
//
// Protocol (peersock v2 control bytes, next to 'D' = "stream delivered"):
//   'P'  ping: the receiver answers with one 'Q' per 'P'
//   'Q'  pong
// v2 builds from before this addition ignore both (they only look for 'D'),
// so a ping may go unanswered: the caller gives up after a deadline. Never
// sent to an original (v1) peer, which does not expect bytes on stream 0.
//
// Pure logic: bytes and timestamps in, bytes and samples out; no I/O, no clock.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace peersock::session {

inline constexpr uint8_t kPing = 'P';
inline constexpr uint8_t kPong = 'Q';

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
    std::vector<uint8_t> reply;        // pongs to write back
    std::optional<double> rtt_ms;      // a pong answered our ping
  };

  // Feeds bytes read from stream 0. Other bytes (e.g. 'D') are ignored here.
  Result on_bytes(std::span<const uint8_t> bytes, int64_t now_us) {
    Result r;
    for (uint8_t b : bytes) {
      if (b == kPing) {
        // Bounded: one pong per ping byte, and the caller writes them at once.
        r.reply.push_back(kPong);
        pinged_by_peer_ = true;
      } else if (b == kPong && sent_us_) {
        last_rtt_ms_ = static_cast<double>(now_us - *sent_us_) / 1000.0;
        r.rtt_ms = last_rtt_ms_;
        sent_us_.reset();
      }
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

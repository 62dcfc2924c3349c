// Per-stream credit of our own (protocol v3), next to QUIC's flow control.
//
// Why: OpenSSL 3.5 charges the bytes a stream's reader has not taken yet to
// the whole connection's receive window, and offers no API to change the
// windows. So a local reader that stops reading one connection used to stop
// every other connection of the tunnel. With credit, the receiving pump reads
// its stream eagerly (releasing QUIC's windows at once) into a buffer of its
// own, and the sender never has more than that buffer's size outstanding:
// the receiver announces on the control stream up to which total it may
// write ('C' frames, session/control.hpp). A stalled stream then holds at
// most its window here, and QUIC's windows stay open for the others.
//
// Both counts start after the stream's leading 'X'. Each direction of each
// stream starts with kInitialCredit without any message, so that data can
// flow at once; the receiver grants a full window as soon as it delivers its
// first bytes.
//
// Pure logic: byte counts and timestamps in, limits out; no I/O, no clock.
#pragma once

#include <cstdint>
#include <optional>

namespace peersock::forward {

// Small on purpose: until the acceptor has connected to its target, the
// stream's bytes sit in OpenSSL and count against the connection window
// (768 KiB at first), so pending streams must not be able to fill it.
inline constexpr uint64_t kInitialCredit = 64 * 1024;
inline constexpr uint64_t kFirstWindow = 1 << 20;  // after the first delivery
inline constexpr uint64_t kMaxWindow = 16 << 20;   // auto-tuned up to this
// All windows of a session beyond kFirstWindow together: bounds the memory a
// session can be made to hold when many fast streams stall at once.
inline constexpr uint64_t kGrowthBudget = 64 << 20;

// The growth budget of one session, shared by its pumps.
class WindowBudget {
 public:
  explicit WindowBudget(uint64_t total = kGrowthBudget) : left_(total) {}
  bool take(uint64_t n) {
    if (n > left_) return false;
    left_ -= n;
    return true;
  }
  void give_back(uint64_t n) { left_ += n; }
  uint64_t left() const { return left_; }

 private:
  uint64_t left_;
};

// The receiving side of one stream direction.
class ReceiveCredit {
 public:
  // `budget` must outlive this object.
  explicit ReceiveCredit(WindowBudget& budget) : budget_(budget) {}
  ~ReceiveCredit() { budget_.give_back(window_ - kFirstWindow); }
  ReceiveCredit(const ReceiveCredit&) = delete;
  ReceiveCredit& operator=(const ReceiveCredit&) = delete;

  // How many more bytes may be read from the stream, given the total read
  // so far: what the sender may still send under our last limit.
  uint64_t readable(uint64_t received) const { return received >= limit_ ? 0 : limit_ - received; }

  // After the local side took bytes (delivered = total so far). Returns a
  // new limit to announce when the sender has less than half a window left;
  // doubles the window (within the budget) when the last one was used up
  // within a few round trips, i.e. when the window, not the reader, is what
  // limits the speed. `rtt_us` <= 0: unknown.
  std::optional<uint64_t> on_delivered(uint64_t delivered, int64_t now_us, int64_t rtt_us);

  uint64_t window() const { return window_; }
  uint64_t limit() const { return limit_; }

 private:
  WindowBudget& budget_;
  uint64_t window_ = kFirstWindow;
  uint64_t limit_ = kInitialCredit;
  std::optional<int64_t> last_grant_us_;
};

// The sending side of one stream direction.
class SendCredit {
 public:
  // How many more bytes may be written, given the total written so far.
  uint64_t available(uint64_t sent) const { return sent >= limit_ ? 0 : limit_ - sent; }
  // A limit from the peer. Returns true if it raised ours (limits that do
  // not are stale, e.g. reordered after a larger one, and are ignored).
  bool on_grant(uint64_t limit) {
    if (limit <= limit_) return false;
    limit_ = limit;
    return true;
  }
  uint64_t limit() const { return limit_; }

 private:
  uint64_t limit_ = kInitialCredit;
};

}  // namespace peersock::forward

#include "peersock/forward/credit.hpp"

#include <algorithm>

namespace peersock::forward {

namespace {
// Round trips measured when idle understate those under load (queues fill):
// never assume less than this when judging how fast a window was used.
constexpr int64_t kMinRttUs = 2000;
constexpr int64_t kUnknownRttUs = 50000;
// A window used up within this many round trips is too small.
constexpr int64_t kGrowWithinRtts = 4;
}  // namespace

std::optional<uint64_t> ReceiveCredit::on_delivered(uint64_t delivered, int64_t now_us, int64_t rtt_us) {
  // Grant when the sender is down to half a window (or less) of credit.
  uint64_t left = limit_ > delivered ? limit_ - delivered : 0;
  if (left * 2 > window_) return std::nullopt;
  if (last_grant_us_ && window_ < kMaxWindow) {
    int64_t rtt = rtt_us > 0 ? std::max(rtt_us, kMinRttUs) : kUnknownRttUs;
    if (now_us - *last_grant_us_ < kGrowWithinRtts * rtt) {
      uint64_t grow = std::min(window_, kMaxWindow - window_);
      if (budget_.take(grow)) window_ += grow;
    }
  }
  last_grant_us_ = now_us;
  limit_ = delivered + window_;
  return limit_;
}

}  // namespace peersock::forward

#include "peersock/session/control.hpp"

#include <fmt/format.h>

#include <string_view>

#include "peersock/error.hpp"
#include "peersock/protocol/version.hpp"
#include "peersock/text.hpp"

namespace peersock::session {
namespace {

void put_u64(std::vector<uint8_t>& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

uint64_t get_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

std::vector<uint8_t> encode_credit(const CreditGrant& grant) {
  std::vector<uint8_t> out;
  out.reserve(kCreditFrameBytes);
  out.push_back(kCredit);
  put_u64(out, grant.stream_id);
  put_u64(out, grant.limit);
  return out;
}

ControlEvents ControlReader::feed(std::span<const uint8_t> bytes) {
  ControlEvents events;
  if (!protocol::has_control_stream(version_)) return events;  // v1: stream 0 carries nothing we read
  for (uint8_t b : bytes) {
    if (partial_len_ > 0) {
      partial_[partial_len_++] = b;
      if (partial_len_ < kCreditFrameBytes) continue;
      partial_len_ = 0;
      CreditGrant grant{get_u64(partial_ + 1), get_u64(partial_ + 9)};
      if (grant.stream_id > kMaxQuicValue) {
        throw CounterpartyError(
            fmt::format("control stream: credit for stream id {}, which QUIC cannot have", grant.stream_id));
      }
      if (grant.limit > kMaxQuicValue) {
        throw CounterpartyError(fmt::format("control stream: credit limit {} exceeds 2^62", grant.limit));
      }
      events.credits.push_back(grant);
      continue;
    }
    switch (b) {
      case kDoneMarker: ++events.done; break;
      case kPing: ++events.pings; break;
      case kPong: ++events.pongs; break;
      case kCredit:
        if (protocol::frames_credit(version_)) {
          partial_[0] = b;
          partial_len_ = 1;
        }
        break;
      default:
        if (protocol::frames_credit(version_)) {
          const char c = static_cast<char>(b);
          throw CounterpartyError("control stream: unknown message type " + text::quote(std::string_view(&c, 1)));
        }
        break;  // v2 ignores what it does not know
    }
  }
  return events;
}

}  // namespace peersock::session

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

std::vector<uint8_t> encode_connect_failure(uint64_t stream_id, std::string_view text) {
  if (text.empty()) text = "failed";
  text = text.substr(0, kMaxFailureText);
  std::vector<uint8_t> out;
  out.reserve(10 + text.size());
  out.push_back(kConnectFailed);
  put_u64(out, stream_id);
  out.push_back(static_cast<uint8_t>(text.size()));
  for (char c : text) out.push_back(c >= 0x20 && c <= 0x7e ? static_cast<uint8_t>(c) : uint8_t{'?'});
  return out;
}

namespace {
uint64_t checked_stream_id(uint64_t id) {
  if (id > kMaxQuicValue)
    throw CounterpartyError(fmt::format("control stream: a message for stream id {}, which QUIC cannot have", id));
  return id;
}
}  // namespace

ControlEvents ControlReader::feed(std::span<const uint8_t> bytes) {
  ControlEvents events;
  if (!protocol::has_control_stream(version_)) return events;  // v1: stream 0 carries nothing we read
  for (uint8_t b : bytes) {
    if (partial_len_ > 0) {
      partial_[partial_len_++] = b;
      if (partial_[0] == kConnectFailed && partial_len_ == 10) {
        const size_t text_len = partial_[9];
        if (text_len == 0 || text_len > kMaxFailureText)
          throw CounterpartyError(fmt::format("control stream: failure text of {} bytes", text_len));
        frame_len_ = 10 + text_len;
      }
      if (partial_len_ < frame_len_) continue;
      partial_len_ = 0;
      if (partial_[0] == kConnectFailed) {
        std::string text(reinterpret_cast<const char*>(partial_ + 10), frame_len_ - 10);
        for (char c : text) {
          if (c < 0x20 || c > 0x7e)
            throw CounterpartyError("control stream: failure text " + text::quote(text) + " is not printable ASCII");
        }
        events.failures.push_back({checked_stream_id(get_u64(partial_ + 1)), std::move(text)});
        continue;
      }
      CreditGrant grant{checked_stream_id(get_u64(partial_ + 1)), get_u64(partial_ + 9)};
      if (grant.limit > kMaxQuicValue) {
        throw CounterpartyError(fmt::format("control stream: credit limit {} exceeds 2^62", grant.limit));
      }
      events.credits.push_back(grant);
      continue;
    }
    const bool framed = protocol::frames_credit(version_);
    if (b == kDoneMarker) {
      ++events.done;
    } else if (b == kPing) {
      ++events.pings;
    } else if (b == kPong) {
      ++events.pongs;
    } else if (b == kCredit && framed) {
      partial_[0] = b;
      partial_len_ = 1;
      frame_len_ = kCreditFrameBytes;
    } else if (b == kConnectFailed && protocol::reports_connect_failures(version_)) {
      partial_[0] = b;
      partial_len_ = 1;
      frame_len_ = 10;  // until the length byte is in
    } else if (framed) {
      const char c = static_cast<char>(b);
      throw CounterpartyError("control stream: unknown message type " + text::quote(std::string_view(&c, 1)));
    }
    // v2 ignores what it does not know
  }
  return events;
}

}  // namespace peersock::session

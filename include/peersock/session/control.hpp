// The control stream (stream 0) after authentication: what each side tells
// the other outside the data streams.
//
// Wire format, by negotiated protocol version (the lower of both sides' "v"):
//   v1  nothing is sent; whatever arrives is discarded (the original).
//   v2  single bytes: 'D' = one of your streams was delivered completely,
//       'P' = ping, 'Q' = pong. Other bytes are ignored.
//   v3  v2's bytes plus one framed message:
//       'C' stream-id(u64 BE) limit(u64 BE)   17 bytes
//       "you may write data bytes (not counting the leading 'X') on stream
//       stream-id until your total reaches limit". Any other byte is a
//       protocol violation, because a v3 reader that skipped an unknown byte
//       would lose its framing.
//
// Pure logic: bytes in, events out; no I/O, no clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace peersock::session {

inline constexpr uint8_t kDoneMarker = 'D';  // v2: "I delivered one of your streams"
inline constexpr uint8_t kPing = 'P';
inline constexpr uint8_t kPong = 'Q';
inline constexpr uint8_t kCredit = 'C';  // v3
inline constexpr size_t kCreditFrameBytes = 17;

// QUIC stream ids and offsets are below 2^62 (RFC 9000 §2.1, §4.5).
inline constexpr uint64_t kMaxQuicValue = (uint64_t{1} << 62) - 1;

struct CreditGrant {
  uint64_t stream_id = 0;
  uint64_t limit = 0;
  bool operator==(const CreditGrant&) const = default;
};

struct ControlEvents {
  size_t done = 0;
  size_t pings = 0;
  size_t pongs = 0;
  std::vector<CreditGrant> credits;  // in arrival order; at most one per 17 input bytes
};

std::vector<uint8_t> encode_credit(const CreditGrant& grant);

class ControlReader {
 public:
  explicit ControlReader(int version) : version_(version) {}

  // Feeds bytes read from stream 0, split anywhere. Errors (v3 only):
  // CounterpartyError quoting the byte for an unknown message type, or
  // naming the value for a stream id or limit of 2^62 or more. After an
  // error the reader must not be fed again.
  ControlEvents feed(std::span<const uint8_t> bytes);

 private:
  int version_;
  uint8_t partial_[kCreditFrameBytes] = {};
  size_t partial_len_ = 0;  // > 0: inside a credit frame
};

}  // namespace peersock::session

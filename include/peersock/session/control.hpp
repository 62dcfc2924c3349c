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
//   v4  v3's messages plus:
//       'F' stream-id(u64 BE) length(u8) text(length bytes)
//       "I could not connect your stream stream-id to my target: text",
//       text being 1..kMaxFailureText bytes of printable ASCII (0x20-0x7e)
//       such as "127.0.0.1:5000: Connection refused"; anything else in it
//       is a protocol violation.
//
// Pure logic: bytes in, events out; no I/O, no clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace peersock::session {

inline constexpr uint8_t kDoneMarker = 'D';  // v2: "I delivered one of your streams"
inline constexpr uint8_t kPing = 'P';
inline constexpr uint8_t kPong = 'Q';
inline constexpr uint8_t kCredit = 'C';  // v3
inline constexpr size_t kCreditFrameBytes = 17;
inline constexpr uint8_t kConnectFailed = 'F';  // v4
inline constexpr size_t kMaxFailureText = 200;

// QUIC stream ids and offsets are below 2^62 (RFC 9000 §2.1, §4.5).
inline constexpr uint64_t kMaxQuicValue = (uint64_t{1} << 62) - 1;

struct CreditGrant {
  uint64_t stream_id = 0;
  uint64_t limit = 0;
  bool operator==(const CreditGrant&) const = default;
};

struct ConnectFailure {
  uint64_t stream_id = 0;
  std::string text;  // validated: printable ASCII, 1..kMaxFailureText bytes
  bool operator==(const ConnectFailure&) const = default;
};

struct ControlEvents {
  size_t done = 0;
  size_t pings = 0;
  size_t pongs = 0;
  std::vector<CreditGrant> credits;      // in arrival order; at most one per 17 input bytes
  std::vector<ConnectFailure> failures;  // v4 'F', in arrival order
};

std::vector<uint8_t> encode_credit(const CreditGrant& grant);
// `text` is cut to kMaxFailureText bytes and every byte outside 0x20-0x7e
// becomes '?' (a GLib message may be localised UTF-8); an empty text
// becomes "failed".
std::vector<uint8_t> encode_connect_failure(uint64_t stream_id, std::string_view text);

class ControlReader {
 public:
  explicit ControlReader(int version) : version_(version) {}

  // Feeds bytes read from stream 0, split anywhere. Errors (v3 and later):
  // CounterpartyError quoting the byte for an unknown message type, naming
  // the value for a stream id or limit of 2^62 or more, or (v4) for an 'F'
  // text that is empty or not printable ASCII. After an error the reader
  // must not be fed again.
  ControlEvents feed(std::span<const uint8_t> bytes);

 private:
  int version_;
  // Inside a framed message: its bytes so far (type byte first) and how
  // many it has in all (known once its header is in).
  uint8_t partial_[1 + 8 + 1 + 255] = {};
  size_t partial_len_ = 0;  // > 0: inside a frame
  size_t frame_len_ = 0;
};

}  // namespace peersock::session

// The send side of one QUIC stream: every byte the application wrote, from
// the lowest offset the peer has not acknowledged yet. ngtcp2 keeps pointers
// into it for retransmission until the acknowledgement arrives, so chunks
// never move and are freed only once acknowledged.
//
// Pure bookkeeping: no I/O, no clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>

namespace peersock::quic {

class SendBuffer {
 public:
  static constexpr size_t kChunk = 64 * 1024;
  // Copies all of `data`.
  void append(std::span<const uint8_t> data);
  // Up to `max` unsent runs from the first unsent byte. Returns how many.
  size_t unsent(std::span<std::span<const uint8_t>> out) const;
  void mark_sent(size_t n) { sent_ += n; }
  // The peer acknowledged everything below `offset`.
  void acked_to(uint64_t offset);
  uint64_t written() const { return written_; }
  uint64_t sent() const { return sent_; }
  uint64_t acked() const { return acked_; }
  size_t unsent_bytes() const { return static_cast<size_t>(written_ - sent_); }
  void clear();

 private:
  std::deque<std::unique_ptr<uint8_t[]>> chunks_;
  uint64_t base_ = 0;  // stream offset of chunks_.front()[0]
  uint64_t acked_ = 0, sent_ = 0, written_ = 0;
};

}  // namespace peersock::quic

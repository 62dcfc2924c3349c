// One QUIC stream as the layers above see it: a move-only handle whose bytes
// live in the quic::Endpoint that made it (endpoint.hpp). Dropping the handle
// releases the stream; one not finished both ways is reset.
//
// Nothing above quic/ sees ngtcp2 or OpenSSL: forwarding, auth and the
// control channel move bytes only through these calls.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>

#include "peersock/quic/endpoint.hpp"

namespace peersock::quic {

class Stream {
 public:
  Stream() = default;
  Stream(Endpoint& endpoint, int64_t id) : endpoint_(&endpoint), id_(id) {}
  ~Stream() { release(); }
  Stream(Stream&& other) noexcept : endpoint_(std::exchange(other.endpoint_, nullptr)), id_(other.id_) {}
  Stream& operator=(Stream&& other) noexcept {
    if (this != &other) {
      release();
      endpoint_ = std::exchange(other.endpoint_, nullptr);
      id_ = other.id_;
    }
    return *this;
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  explicit operator bool() const { return endpoint_ != nullptr; }
  int64_t id() const { return id_; }

  // ok with bytes > 0, would_block, fin (all read, peer finished) or reset.
  IoResult read(std::span<uint8_t> out) { return endpoint_->read(id_, out); }
  std::span<const uint8_t> peek() const { return endpoint_->peek(id_); }
  void consume(size_t n) { endpoint_->consume(id_, n); }
  IoStatus read_status() const { return endpoint_->read_status(id_); }

  // ok with the bytes taken (0 < bytes <= data.size()), would_block or reset.
  IoResult write(std::span<const uint8_t> data) { return endpoint_->write(id_, data); }
  void conclude() { endpoint_->conclude(id_); }
  void reset(uint64_t app_error = 0) { endpoint_->reset(id_, app_error); }

  // Bytes written but not yet acknowledged by the peer.
  uint64_t unacked() const {
    const StreamState* s = endpoint_->stream(id_);
    return s ? s->tx.written() - s->tx.acked() : 0;
  }

 private:
  void release() {
    if (endpoint_) endpoint_->release(id_);
    endpoint_ = nullptr;
  }

  Endpoint* endpoint_ = nullptr;
  int64_t id_ = -1;
};

}  // namespace peersock::quic

// The streams' application side of the endpoint: open, accept, read,
// write, conclude, reset, release (used through quic::Stream).
#include <ngtcp2/ngtcp2.h>

#include <algorithm>
#include <cstring>

#include "internal.hpp"
#include "peersock/quic/endpoint.hpp"

namespace peersock::quic {

// ---- streams ---------------------------------------------------------------

StreamState* Endpoint::find(int64_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : &it->second;
}

const StreamState* Endpoint::stream(int64_t id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : &it->second;
}

void Endpoint::mark_ready(StreamState& s) {
  if (s.ready || s.released) return;
  s.ready = true;
  ready_.push_back(s.id);
}

void Endpoint::queue_send(StreamState& s) {
  if (s.queued) return;
  s.queued = true;
  sendable_.push_back(s.id);
}

std::vector<int64_t> Endpoint::take_ready() {
  std::vector<int64_t> out;
  out.swap(ready_);
  for (int64_t id : out) {
    if (StreamState* s = find(id)) s->ready = false;
  }
  return out;
}

std::optional<int64_t> Endpoint::open_stream() {
  if (!conn_ || !app_keys_ready() || closed_) return std::nullopt;
  int64_t id = -1;
  if (ngtcp2_conn_open_bidi_stream(conn_, &id, nullptr) != 0) return std::nullopt;
  streams_[id].id = id;
  return id;
}

uint64_t Endpoint::streams_left() const {
  return conn_ && app_keys_ready() && !closed_ ? ngtcp2_conn_get_streams_bidi_left(conn_) : 0;
}

std::optional<int64_t> Endpoint::accept_stream() {
  while (!accept_queue_.empty()) {
    int64_t id = accept_queue_.front();
    accept_queue_.pop_front();
    if (find(id)) return id;
  }
  return std::nullopt;
}

// Bytes the application consumed (or that we dropped unread) give their
// room back. The connection's window is credited even when ngtcp2 has
// already closed the stream (every byte and the FIN arrived, ours were
// acknowledged) while its bytes still waited here for a slow local reader:
// skipping that leaked the bytes from the connection window for good, and
// after enough such streams every stream stalled (seen once in ~110 runs of
// the 200-connection test).
void Endpoint::extend_read(StreamState& s, size_t n) {
  if (n == 0 || !conn_ || closed_) return;
  if (!s.closed) ngtcp2_conn_extend_max_stream_offset(conn_, s.id, n);
  ngtcp2_conn_extend_max_offset(conn_, n);
}

IoStatus Endpoint::read_status(int64_t id) const {
  const StreamState* s = stream(id);
  if (s == nullptr) return IoStatus::reset;
  if (!s->rx.empty()) return IoStatus::ok;
  if (s->rx_reset || s->rx_stopped) return IoStatus::reset;
  if (s->rx_fin) return IoStatus::fin;
  if (closed_) return IoStatus::reset;
  return IoStatus::would_block;
}

IoResult Endpoint::read(int64_t id, std::span<uint8_t> out) {
  StreamState* s = find(id);
  IoStatus status = read_status(id);
  if (status != IoStatus::ok) return {status, 0};
  size_t total = 0;
  while (total < out.size() && !s->rx.empty()) {
    auto run = s->rx.front();
    size_t take = std::min(run.size(), out.size() - total);
    std::memcpy(out.data() + total, run.data(), take);
    s->rx.consume(take);
    total += take;
  }
  extend_read(*s, total);
  return {IoStatus::ok, total};
}

std::span<const uint8_t> Endpoint::peek(int64_t id) const {
  const StreamState* s = stream(id);
  return s ? s->rx.front() : std::span<const uint8_t>();
}

void Endpoint::consume(int64_t id, size_t n) {
  StreamState* s = find(id);
  if (s == nullptr) return;
  n = std::min(n, s->rx.front().size());
  s->rx.consume(n);
  extend_read(*s, n);
}

IoResult Endpoint::write(int64_t id, std::span<const uint8_t> data) {
  StreamState* s = find(id);
  if (s == nullptr || s->tx_reset || s->closed || s->fin_wanted || closed_ || close_requested_)
    return {IoStatus::reset, 0};
  size_t unsent = s->tx.unsent_bytes();
  if (unsent >= kMaxUnsent) {
    s->want_write = true;
    return {IoStatus::would_block, 0};
  }
  size_t take = std::min(data.size(), kMaxUnsent - unsent);
  s->tx.append(data.first(take));
  s->want_write = take < data.size();
  if (take > 0) queue_send(*s);
  return {IoStatus::ok, take};
}

void Endpoint::conclude(int64_t id) {
  StreamState* s = find(id);
  if (s == nullptr || s->fin_wanted || s->tx_reset) return;
  s->fin_wanted = true;
  queue_send(*s);
}

void Endpoint::reset(int64_t id, uint64_t app_error) {
  StreamState* s = find(id);
  if (s == nullptr) return;
  if (conn_ && !s->closed && !closed_) ngtcp2_conn_shutdown_stream(conn_, 0, id, app_error);
  s->tx_reset = true;
  s->rx_stopped = true;
  s->tx.clear();
  drop_unread(*s);
}

void Endpoint::drop_unread(StreamState& s) {
  size_t unread = s.rx.size();
  s.rx.clear();
  if (unread > 0 && conn_ && !closed_) ngtcp2_conn_extend_max_offset(conn_, unread);
}

void Endpoint::release(int64_t id) {
  StreamState* s = find(id);
  if (s == nullptr) return;
  bool tx_done = s->tx_reset || s->fin_wanted;
  bool rx_done = s->rx_reset || s->rx_stopped || (s->rx_fin && s->rx.empty());
  if (!(tx_done && rx_done)) reset(id, 0);
  s->released = true;
  drop_unread(*s);
  maybe_erase(id);
}

void Endpoint::sweep() {
  for (int64_t id : graveyard_) maybe_erase(id);
  graveyard_.clear();
}

void Endpoint::maybe_erase(int64_t id) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  // Kept while ngtcp2 may still call back for it (retransmitting from its
  // send buffer) or while the application holds its handle.
  if (it->second.released && (it->second.closed || closed_)) streams_.erase(it);
}

}  // namespace peersock::quic

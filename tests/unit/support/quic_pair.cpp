#include "quic_pair.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace peersock::sim {
namespace {

// std::*_heap keep the largest on top: "later" puts the earliest there.
constexpr auto later = [](const auto& a, const auto& b) { return a.at != b.at ? a.at > b.at : a.seq > b.seq; };

// A step loop that never moves the clock is a timer the endpoint keeps
// asking for without acting on it: fail loudly instead of spinning forever.
constexpr uint64_t kMaxStepsAtSameTime = 100'000;

}  // namespace

bool Link::chance(double p) {
  if (p <= 0) return false;
  // 53 random bits as a double in [0, 1): the same on every platform, unlike
  // std::uniform_real_distribution.
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53 < p;
}

void Link::send(std::span<const uint8_t> datagram, Timestamp now) {
  ++stats_.offered;
  stats_.bytes_offered += datagram.size();
  if (observer) observer(datagram);
  if (chance(options_.loss)) {
    ++stats_.lost;
    return;
  }
  Timestamp leaves = now;
  if (options_.bits_per_second > 0) {
    // The bottleneck sends one datagram after the other at its rate; what
    // waits is its queue, and a full queue drops the newcomer.
    Timestamp start = std::max(now, busy_until_);
    uint64_t queued = (start - now) * options_.bits_per_second / 8 / kSec;
    if (options_.queue_bytes > 0 && queued + datagram.size() > options_.queue_bytes) {
      ++stats_.overflowed;
      return;
    }
    busy_until_ = start + datagram.size() * 8 * kSec / options_.bits_per_second;
    leaves = busy_until_;
  }
  Timestamp at = leaves + options_.delay;
  if (chance(options_.reorder) && options_.reorder_delay > 0) at += 1 + rng_() % options_.reorder_delay;
  heap_.push_back({at, seq_++, Bytes(datagram.begin(), datagram.end())});
  std::push_heap(heap_.begin(), heap_.end(), later);
}

std::optional<Timestamp> Link::next_arrival() const {
  if (heap_.empty()) return std::nullopt;
  return heap_.front().at;
}

std::optional<Bytes> Link::pop_due(Timestamp now) {
  while (!heap_.empty() && heap_.front().at <= now) {
    std::pop_heap(heap_.begin(), heap_.end(), later);
    InFlight d = std::move(heap_.back());
    heap_.pop_back();
    if (dead_) continue;
    ++stats_.delivered;
    stats_.bytes_delivered += d.bytes.size();
    return std::move(d.bytes);
  }
  return std::nullopt;
}

QuicPair::QuicPair(const PairOptions& options)
    : options_(options), now_(options.start), up_(options.up), down_(options.down) {
  client_ = std::make_unique<quic::Endpoint>(quic::Role::client, transmit_to(up_), options_.client, now_);
  server_ = std::make_unique<quic::Endpoint>(quic::Role::server, transmit_to(down_), options_.server, now_);
}

QuicPair::~QuicPair() = default;

quic::Endpoint::Transmit QuicPair::transmit_to(Link& link) {
  // `now_` is the time of the call that is sending: every endpoint call is
  // made with it.
  return [this, &link](const quic::Endpoint::Batch& batch) {
    size_t at = 0;
    for (size_t size : batch.sizes) {
      link.send(batch.bytes.subspan(at, size), now_);
      at += size;
    }
  };
}

bool QuicPair::step(Timestamp limit) {
  // A write pass first: the application may have written or read since the
  // last step (quic::Driver kicks after that), and what arrived in the last
  // step wants acknowledging. The clock has not moved since.
  client_->write(now_);
  server_->write(now_);

  std::optional<Timestamp> next;
  auto consider = [&](std::optional<Timestamp> t) {
    if (t) next = std::min(next.value_or(*t), *t);
  };
  consider(up_.next_arrival());
  consider(down_.next_arrival());
  consider(client_->expiry());
  consider(server_->expiry());
  if (options_.max_step > 0) consider(now_ + options_.max_step);
  if (!next || *next > limit) {
    now_ = std::max(now_, limit);
    return next.has_value();
  }
  Timestamp t = std::max(now_, *next);  // an expiry in the past is due now
  steps_at_same_time_ = t == now_ ? steps_at_same_time_ + 1 : 0;
  if (steps_at_same_time_ > kMaxStepsAtSameTime)
    throw std::runtime_error("the clock is stuck at " + std::to_string(t) + ": a timer is never handled");
  now_ = t;
  ++steps_;

  while (auto d = up_.pop_due(now_)) server_->receive_datagram(*d, now_);
  while (auto d = down_.pop_due(now_)) client_->receive_datagram(*d, now_);
  for (quic::Endpoint* e : {client_.get(), server_.get()}) {
    auto expiry = e->expiry();
    if (expiry && *expiry <= now_) e->handle_expiry(now_);  // writes, too
  }
  return true;
}

bool QuicPair::run_until(const std::function<bool()>& done, Timestamp budget) {
  const Timestamp deadline = now_ + budget;
  while (!done()) {
    if (now_ >= deadline) return done();
    step(deadline);
  }
  return true;
}

void QuicPair::run_for(Timestamp duration, const std::function<void()>& each) {
  run_until(
      [&] {
        if (each) each();
        return false;
      },
      duration);
}

bool QuicPair::handshake(Timestamp budget) {
  return run_until([&] { return client_->handshake_done() && server_->handshake_done(); }, budget);
}

void QuicPair::inject_to_server(std::span<const uint8_t> datagram) {
  server_->receive_datagram(datagram, now_);
  server_->write(now_);
}

void QuicPair::inject_to_client(std::span<const uint8_t> datagram) {
  client_->receive_datagram(datagram, now_);
  client_->write(now_);
}

Bytes random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Bytes out(n);
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    for (size_t j = 0; j < 8 && i + j < n; ++j) out[i + j] = static_cast<uint8_t>(v >> (8 * j));
  }
  return out;
}

}  // namespace peersock::sim

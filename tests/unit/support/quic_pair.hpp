// Two quic::Endpoint back to back over a simulated path, in virtual time.
//
// Why virtual time: the engine keeps no clock (every call takes a
// Timestamp), so a test can be its own clock. A transfer at 50 ms RTT with
// loss then takes as long as the CPU needs to process its packets, never the
// seconds the real path would, and a timing bound ("finished within N s")
// is a statement about the protocol, not about how busy the test machine is.
//
// The loop (QuicPair::step) plays the part of quic::Driver: a write pass on
// both endpoints (for what the application did since the last step, and to
// answer what arrived), then the clock jumps to the earliest of the next
// datagram arrival and both endpoints' expiry(), what is due is delivered
// and the timers that are due run. The test's own code (run_until's done())
// runs between steps, so it reads what arrived before the answering write
// pass, as an application on quic::Driver does.
//
// Each direction of the path is a Link: a one-way delay, random loss and
// reordering from a seeded PRNG (the same seed drops the same datagrams of
// the same traffic), and optionally a bottleneck with a rate and a drop-tail
// buffer, which is what congestion control is about.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <vector>

#include "peersock/quic/endpoint.hpp"

namespace peersock::sim {

using quic::Timestamp;
using Bytes = std::vector<uint8_t>;

inline constexpr Timestamp kUs = 1'000;
inline constexpr Timestamp kMs = 1'000'000;
inline constexpr Timestamp kSec = 1'000'000'000;

struct LinkOptions {
  Timestamp delay = 25 * kMs;          // one way: 50 ms RTT with the default both ways
  double loss = 0;                     // probability that a datagram is lost
  double reorder = 0;                  // probability that a datagram is held back...
  Timestamp reorder_delay = 10 * kMs;  // ...by up to this much, so later ones overtake it
  uint64_t bits_per_second = 0;        // bottleneck rate; 0: unlimited
  size_t queue_bytes = 0;              // bottleneck buffer (drop-tail), the datagram on the
                                       // wire included; 0: unbounded
  uint64_t seed = 1;
};

// One direction of the path.
class Link {
 public:
  explicit Link(const LinkOptions& options) : options_(options), rng_(options.seed) {}

  // A datagram leaves the sender at `now`.
  void send(std::span<const uint8_t> datagram, Timestamp now);
  std::optional<Timestamp> next_arrival() const;
  // The next datagram due at `now` or earlier, in arrival order.
  std::optional<Bytes> pop_due(Timestamp now);

  // Cut (or restore) the path: while dead, nothing is delivered, including
  // what was already on its way.
  void set_dead(bool dead) { dead_ = dead; }
  // Loss, delay etc. for what is sent from now on.
  LinkOptions& options() { return options_; }
  // Sees every datagram offered to the link, lost or not (tests use it to
  // collect real packets to mangle).
  std::function<void(std::span<const uint8_t>)> observer;

  struct Stats {
    uint64_t offered = 0, lost = 0, overflowed = 0, delivered = 0;
    uint64_t bytes_offered = 0, bytes_delivered = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  bool chance(double p);

  struct InFlight {
    Timestamp at;
    uint64_t seq;  // ties keep send order
    Bytes bytes;
  };
  LinkOptions options_;
  std::mt19937_64 rng_;
  std::vector<InFlight> heap_;  // min-heap on (at, seq)
  Timestamp busy_until_ = 0;    // the bottleneck is sending until then
  uint64_t seq_ = 0;
  bool dead_ = false;
  Stats stats_;
};

struct PairOptions {
  quic::EndpointOptions client, server;
  LinkOptions up, down;  // client -> server, server -> client
  // Far from zero on purpose: nothing may assume the clock starts at 0.
  Timestamp start = 1000 * kSec;
  // Never advance the clock by more than this per step (0: jump straight to
  // the next event). Tests that also do I/O outside QUIC (local sockets)
  // set it, so that their side gets a turn at least this often.
  Timestamp max_step = 0;
};

class QuicPair {
 public:
  explicit QuicPair(const PairOptions& options = {});
  ~QuicPair();
  QuicPair(const QuicPair&) = delete;
  QuicPair& operator=(const QuicPair&) = delete;

  quic::Endpoint& client() { return *client_; }
  quic::Endpoint& server() { return *server_; }
  Link& up() { return up_; }
  Link& down() { return down_; }
  Timestamp now() const { return now_; }

  // One event (see the top of the file), never past `limit`. Returns false
  // if nothing at all was scheduled before it (the clock is then at `limit`).
  bool step(Timestamp limit);

  // Calls done() (which may do application I/O) before every step until it
  // returns true, or until `budget` of virtual time has passed. Returns
  // done()'s last answer.
  bool run_until(const std::function<bool()>& done, Timestamp budget = 60 * kSec);
  // Runs for `duration` of virtual time, calling `each` (if any) every step.
  void run_for(Timestamp duration, const std::function<void()>& each = {});
  bool handshake(Timestamp budget = 10 * kSec);

  // A datagram that did not come over the link, delivered now, followed by
  // a write pass as after any delivery.
  void inject_to_server(std::span<const uint8_t> datagram);
  void inject_to_client(std::span<const uint8_t> datagram);

  uint64_t steps() const { return steps_; }

 private:
  quic::Endpoint::Transmit transmit_to(Link& link);

  PairOptions options_;
  Timestamp now_;
  // The links outlive the endpoints, whose Transmit callbacks point at them.
  Link up_, down_;
  std::unique_ptr<quic::Endpoint> client_, server_;
  uint64_t steps_ = 0;
  uint64_t steps_at_same_time_ = 0;
};

// Deterministic pseudo-random bytes.
Bytes random_bytes(size_t n, uint64_t seed);

}  // namespace peersock::sim

// Drives a quic::Endpoint from a GLib main loop with exactly one timer: a
// timerfd armed at the endpoint's expiry, which carries ngtcp2's pacing as
// well as its loss-detection, ACK-delay, idle and keep-alive timers.
//
// Why a timerfd and not g_timeout_add: GLib's timeouts have millisecond
// granularity, and pacing wants the next packets a few hundred microseconds
// after the last ones. ngtcp2 sends at most its send quantum (64 KiB) per
// write pass, so waking on the next millisecond would cap a connection near
// 64 MB/s (ngtcp2's lateness compensation lifts that only to about twice).
//
// The datagram path is: the ICE agent's receive callback -> receive() ->
// ngtcp2_conn_read_pkt at once; one write pass once the main loop has
// dispatched everything that was ready (kick_soon), so a burst of received
// datagrams is answered by one pass and one batch of sends.
#pragma once

#include <glib.h>

#include <cstdint>
#include <functional>
#include <span>

#include "peersock/glib/raii.hpp"
#include "peersock/quic/endpoint.hpp"

namespace peersock::quic {

// Now on the monotonic clock GLib uses, in ngtcp2's nanoseconds.
Timestamp now();

class Driver {
 public:
  // `after_events` runs after every write pass and timer run, so the owner
  // can read streams, react to the handshake or to a close; after received
  // datagrams also once before the write pass (the data they brought is
  // delivered before it is acknowledged).
  // Errors: Error(failure) if the timerfd cannot be made.
  Driver(Endpoint& endpoint, std::function<void()> after_events);
  ~Driver();
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  // A datagram from the path: read now, answered after the batch.
  void receive(std::span<const uint8_t> datagram);

  // A write pass now (after the application wrote or read stream data).
  void kick();

  // A write pass once the main loop has dispatched what is ready now.
  void kick_soon();

 private:
  static gboolean on_timer(gint fd, GIOCondition, gpointer self);
  static gboolean on_soon(gpointer self);
  void run(bool expired);
  void rearm();

  Endpoint& endpoint_;
  std::function<void()> after_events_;
  int timer_fd_ = -1;
  glib::SourceId timer_watch_;
  glib::SourceId soon_;
  Timestamp armed_ = 0;  // the timerfd's deadline, 0: disarmed (may be earlier than expiry())
  bool running_ = false, again_ = false;
  bool received_ = false;  // datagrams read since the last run
};

}  // namespace peersock::quic

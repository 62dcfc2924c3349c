// Drives a quic::Endpoint from a GLib main loop: exactly one timer source,
// re-armed from OpenSSL's event timeout after every run (never piled up), and
// a zero timeout means "run again as soon as the loop is idle".
#pragma once

#include <glib.h>

#include <functional>

#include "ossl_quic/endpoint.hpp"

namespace peersock::ossl_quic {

class Driver {
 public:
  // `after_events` runs after every handle_events() so the owner can read
  // streams, react to the handshake or to a close.
  Driver(Endpoint& endpoint, std::function<void()> after_events);
  ~Driver();
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  // Run OpenSSL now (after input arrived or the application wrote).
  void kick();

  // Run OpenSSL once the main loop has dispatched what is ready now: every
  // datagram that arrives in the meantime joins the same run. One run per
  // datagram costs several times the crypto (measured with perf: OpenSSL's
  // per-run demux and error-queue work dominated the receiving side).
  void kick_soon();

 private:
  static gboolean on_timer(gpointer self);
  void rearm();

  Endpoint& endpoint_;
  std::function<void()> after_events_;
  guint timer_id_ = 0;
  guint soon_id_ = 0;              // pending kick_soon() source
  gint64 armed_deadline_us_ = -1;  // of the armed source; 0 = idle source
  bool running_ = false;
  bool kick_again_ = false;
};

}  // namespace peersock::ossl_quic

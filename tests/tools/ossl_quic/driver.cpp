#include "ossl_quic/driver.hpp"

namespace peersock::ossl_quic {

Driver::Driver(Endpoint& endpoint, std::function<void()> after_events)
    : endpoint_(endpoint), after_events_(std::move(after_events)) {}

Driver::~Driver() {
  if (timer_id_ != 0) g_source_remove(timer_id_);
  if (soon_id_ != 0) g_source_remove(soon_id_);
}

void Driver::kick_soon() {
  if (soon_id_ != 0) return;
  // Default priority, not idle priority: under load some socket is always
  // ready, and an idle source would starve.
  soon_id_ = g_idle_add_full(
      G_PRIORITY_DEFAULT,
      [](gpointer self) -> gboolean {
        auto* driver = static_cast<Driver*>(self);
        driver->soon_id_ = 0;
        driver->kick();
        return G_SOURCE_REMOVE;
      },
      this, nullptr);
}

void Driver::kick() {
  // after_events_ may write to streams and call kick() again; run the loop
  // once more instead of recursing.
  if (running_) {
    kick_again_ = true;
    return;
  }
  running_ = true;
  if (soon_id_ != 0) {  // this run covers it
    g_source_remove(soon_id_);
    soon_id_ = 0;
  }
  do {
    kick_again_ = false;
    endpoint_.handle_events();
    after_events_();
  } while (kick_again_);
  running_ = false;
  rearm();
}

// Called after every run, i.e. per datagram: keep the armed source when the
// deadline has not moved, instead of removing and re-adding it each time.
void Driver::rearm() {
  auto timeout = endpoint_.next_timeout();
  gint64 deadline = -1;  // -1: no timer; 0: run when idle; else monotonic us
  if (timeout) deadline = timeout->count() <= 0 ? 0 : g_get_monotonic_time() + timeout->count() * 1000;
  bool same = timer_id_ != 0 && ((deadline == 0 && armed_deadline_us_ == 0) ||
                                 (deadline > 0 && armed_deadline_us_ > 0 && deadline - armed_deadline_us_ < 1000 &&
                                  armed_deadline_us_ - deadline < 1000));
  if (same) return;
  if (timer_id_ != 0) {
    g_source_remove(timer_id_);
    timer_id_ = 0;
  }
  armed_deadline_us_ = deadline;
  if (deadline < 0) return;
  if (deadline == 0) {
    timer_id_ = g_idle_add(&Driver::on_timer, this);
  } else {
    timer_id_ = g_timeout_add(static_cast<guint>(timeout->count()), &Driver::on_timer, this);
  }
}

gboolean Driver::on_timer(gpointer self) {
  auto* driver = static_cast<Driver*>(self);
  driver->timer_id_ = 0;  // this source ends by returning G_SOURCE_REMOVE
  driver->kick();
  return G_SOURCE_REMOVE;
}

}  // namespace peersock::ossl_quic

#include "peersock/quic/driver.hpp"

namespace peersock::quic {

Driver::Driver(Endpoint& endpoint, std::function<void()> after_events)
    : endpoint_(endpoint), after_events_(std::move(after_events)) {}

Driver::~Driver() {
  if (timer_id_ != 0) g_source_remove(timer_id_);
}

void Driver::kick() {
  // after_events_ may write to streams and call kick() again; run the loop
  // once more instead of recursing.
  if (running_) {
    kick_again_ = true;
    return;
  }
  running_ = true;
  do {
    kick_again_ = false;
    endpoint_.handle_events();
    after_events_();
  } while (kick_again_);
  running_ = false;
  rearm();
}

void Driver::rearm() {
  if (timer_id_ != 0) {
    g_source_remove(timer_id_);
    timer_id_ = 0;
  }
  auto timeout = endpoint_.next_timeout();
  if (!timeout) return;
  auto ms = timeout->count();
  if (ms <= 0) {
    timer_id_ = g_idle_add(&Driver::on_timer, this);
  } else {
    timer_id_ = g_timeout_add(static_cast<guint>(ms), &Driver::on_timer, this);
  }
}

gboolean Driver::on_timer(gpointer self) {
  auto* driver = static_cast<Driver*>(self);
  driver->timer_id_ = 0;  // this source ends by returning G_SOURCE_REMOVE
  driver->kick();
  return G_SOURCE_REMOVE;
}

}  // namespace peersock::quic

#include "peersock/quic/driver.hpp"

#include <glib-unix.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "peersock/c_boundary.hpp"
#include "peersock/error.hpp"

namespace peersock::quic {

Timestamp now() { return static_cast<Timestamp>(g_get_monotonic_time()) * 1000; }

Driver::Driver(Endpoint& endpoint, std::function<void()> after_events)
    : endpoint_(endpoint), after_events_(std::move(after_events)) {
  // CLOCK_MONOTONIC is the clock g_get_monotonic_time() reads.
  timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (timer_fd_ < 0) throw Error(ExitCode::failure, std::string("timerfd_create: ") + std::strerror(errno));
  timer_watch_ = glib::add_fd_watch(timer_fd_, G_IO_IN, &Driver::on_timer, this);
}

Driver::~Driver() {
  soon_.reset();
  timer_watch_.reset();  // before the fd it watches
  if (timer_fd_ >= 0) close(timer_fd_);
}

void Driver::receive(std::span<const uint8_t> datagram) {
  endpoint_.receive_datagram(datagram, now());
  received_ = true;
  kick_soon();
}

void Driver::kick_soon() {
  if (soon_) return;
  // Default priority, not idle priority: under load some socket is always
  // ready, and an idle source would starve.
  soon_ = g_idle_add_full(G_PRIORITY_DEFAULT, &Driver::on_soon, this, nullptr);
}

gboolean Driver::on_soon(gpointer self) {
  return c_boundary("the QUIC driver", [&]() -> gboolean {
    auto* driver = static_cast<Driver*>(self);
    driver->soon_.fired();
    driver->run(false);
    return G_SOURCE_REMOVE;
  });
}

void Driver::kick() { run(false); }

gboolean Driver::on_timer(gint fd, GIOCondition, gpointer self) {
  return c_boundary("the QUIC timer", [&]() -> gboolean {
    uint64_t expirations = 0;
    // EAGAIN: a re-arm since the poll reset it; it has not fired.
    if (read(fd, &expirations, sizeof expirations) < 0) return G_SOURCE_CONTINUE;
    auto* driver = static_cast<Driver*>(self);
    const Timestamp fired_for = driver->armed_;
    driver->armed_ = 0;
    // Armed for an earlier deadline that has since moved later (rearm keeps
    // such a timer rather than reprogramming it): nothing is due yet.
    auto expiry = driver->endpoint_.expiry();
    if (expiry && *expiry > fired_for && *expiry > now()) {
      driver->rearm();
      return G_SOURCE_CONTINUE;
    }
    driver->run(true);
    return G_SOURCE_CONTINUE;
  });
}

void Driver::run(bool expired) {
  // after_events_ may write to streams and kick again: loop, don't recurse.
  if (running_) {
    again_ = true;
    return;
  }
  running_ = true;
  soon_.reset();  // this run covers it
  bool first = true;
  do {
    again_ = false;
    // What the datagrams brought goes to the local sockets before the write
    // pass: on a request/response exchange the pass would otherwise send
    // the ACK first, and the response reached the local client one sendmsg
    // later. The pass then also carries the window the reader freed.
    if (std::exchange(received_, false)) after_events_();
    Timestamp t = now();
    auto expiry = endpoint_.expiry();
    if ((expired && first) || (expiry && *expiry <= t)) endpoint_.handle_expiry(t);  // also writes
    else endpoint_.write(t);
    first = false;
    after_events_();
  } while (again_);
  running_ = false;
  rearm();
}

// Reprogramming a timerfd is a system call and, in a VM, an exit to the
// hypervisor; the deadline moves after nearly every run (pacing, the ACK
// delay, loss detection), and re-arming after each run was 8-10 % of a bulk
// transfer's CPU. So the timer is reprogrammed only when the deadline moved
// earlier than what it is armed for (or it is not armed); one armed too
// early fires, finds nothing due and is armed again (on_timer).
void Driver::rearm() {
  auto expiry = endpoint_.expiry();
  Timestamp target = expiry ? std::max<Timestamp>(*expiry, 1) : 0;
  if (target == armed_) return;
  if (target != 0 && armed_ != 0 && armed_ < target) return;  // fires early, re-arms then
  armed_ = target;
  itimerspec spec{};
  if (target != 0) {
    // An absolute deadline in the past fires at once, which is what we want.
    spec.it_value.tv_sec = static_cast<time_t>(target / 1'000'000'000ULL);
    spec.it_value.tv_nsec = static_cast<long>(target % 1'000'000'000ULL);
  }
  timerfd_settime(timer_fd_, target != 0 ? TFD_TIMER_ABSTIME : 0, &spec, nullptr);
}

}  // namespace peersock::quic

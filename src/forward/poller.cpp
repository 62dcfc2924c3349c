#include "peersock/forward/poller.hpp"

#include <errno.h>
#include <fmt/core.h>
#include <glib-unix.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <array>

#include "peersock/c_boundary.hpp"
#include "peersock/error.hpp"

namespace peersock::forward {
namespace {

struct PollerSource {
  GSource base;
  void* poller;
};

// Ready fds taken per dispatch; more wait for the next loop iteration.
constexpr int kEventsPerDispatch = 256;

}  // namespace

Poller::Poller() {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) throw Error(ExitCode::failure, fmt::format("epoll_create1: {}", g_strerror(errno)));
  static GSourceFuncs funcs = {nullptr, nullptr, &Poller::dispatch, nullptr, nullptr, nullptr};
  source_.reset(g_source_new(&funcs, sizeof(PollerSource)));
  reinterpret_cast<PollerSource*>(source_.get())->poller = this;
  g_source_add_unix_fd(source_.get(), epfd_, G_IO_IN);
  glib::keep_polled_while_dispatching(source_.get());
  g_source_attach(source_.get(), nullptr);
}

Poller::~Poller() {
  entries_.clear();  // their fallback watches
  source_.reset();   // before its fd closes
  close(epfd_);
}

void Poller::set(int fd, bool want_read, bool want_write, Handler* handler) {
  auto it = entries_.find(fd);
  if (!want_read && !want_write) {
    if (it == entries_.end()) return;
    if (it->second.in_epoll) epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
    entries_.erase(it);  // and its fallback watch
    return;
  }
  Entry& entry = entries_[fd];
  if (entry.handler == handler && entry.read == want_read && entry.write == want_write &&
      (entry.in_epoll || entry.fallback)) {
    return;
  }
  entry.handler = handler;
  entry.read = want_read;
  entry.write = want_write;
  if (!entry.fallback) {
    epoll_event ev{};
    ev.events = (want_read ? EPOLLIN | EPOLLRDHUP : 0u) | (want_write ? EPOLLOUT : 0u);
    ev.data.fd = fd;
    if (epoll_ctl(epfd_, entry.in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) == 0) {
      entry.in_epoll = true;
      return;
    }
    if (entry.in_epoll) epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
    entry.in_epoll = false;
  } else {
    entry.fallback.reset();
  }
  // epoll refused the fd (EPERM: a regular file; or a bad fd): a GLib watch
  // reports it ready, and the handler's read or write finds out the rest.
  auto condition =
      static_cast<GIOCondition>((want_read ? G_IO_IN : 0) | (want_write ? G_IO_OUT : 0) | G_IO_HUP | G_IO_ERR);
  entry.fallback = glib::add_fd_watch(fd, condition, &Poller::on_fallback, this);
}

gboolean Poller::dispatch(GSource* source, GSourceFunc, gpointer) {
  return c_boundary("the socket poller", [&]() -> gboolean {
    static_cast<Poller*>(reinterpret_cast<PollerSource*>(source)->poller)->dispatch_ready();
    return G_SOURCE_CONTINUE;
  });
}

void Poller::dispatch_ready() {
  std::array<epoll_event, kEventsPerDispatch> events;
  int n = epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), 0);
  for (int i = 0; i < n; ++i) {
    int fd = events[i].data.fd;
    // A handler may have removed this fd (or others) meanwhile: look again.
    auto it = entries_.find(fd);
    if (it == entries_.end()) continue;
    uint32_t e = events[i].events;
    bool failed = (e & (EPOLLERR | EPOLLHUP)) != 0;
    bool readable = it->second.read && ((e & (EPOLLIN | EPOLLRDHUP)) != 0 || failed);
    bool writable = it->second.write && ((e & EPOLLOUT) != 0 || failed);
    if (readable || writable) it->second.handler->on_ready(fd, readable, writable);
  }
}

gboolean Poller::on_fallback(gint fd, GIOCondition condition, gpointer self) {
  return c_boundary("the socket poller", [&]() -> gboolean {
    auto* poller = static_cast<Poller*>(self);
    auto it = poller->entries_.find(fd);
    if (it == poller->entries_.end()) return G_SOURCE_CONTINUE;  // removed meanwhile (set() removes the source)
    bool failed = (condition & (G_IO_HUP | G_IO_ERR)) != 0;
    bool readable = it->second.read && ((condition & G_IO_IN) != 0 || failed);
    bool writable = it->second.write && ((condition & G_IO_OUT) != 0 || failed);
    if (readable || writable) it->second.handler->on_ready(fd, readable, writable);
    return G_SOURCE_CONTINUE;
  });
}

}  // namespace peersock::forward

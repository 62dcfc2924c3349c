// Readiness of many local fds through one epoll instance, dispatched from
// one GLib source. A GLib fd watch per connection makes every main-loop
// iteration poll() every fd and walk every source: with 1000 open
// connections that cost more than moving the data (measured with perf:
// sock_poll/tcp_poll/g_main_context_check on top). Here the loop watches
// one fd, and only ready fds cost anything.
//
// Level-triggered, like GLib's watches. Regular files and other fds epoll
// refuses (stdin redirected from a file) fall back to a GLib watch of their
// own.
#pragma once

#include <glib.h>

#include <cstdint>
#include <unordered_map>

#include "peersock/glib/raii.hpp"

namespace peersock::forward {

class Poller {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    // fd is readable (or hung up / failed) and/or writable.
    virtual void on_ready(int fd, bool readable, bool writable) = 0;
  };

  // Errors: Error(failure) if epoll cannot be created.
  Poller();
  ~Poller();
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  // Sets what `handler` wants to hear about fd; both false removes fd. Call
  // with both false before closing fd. Never throws for a bad fd: it is
  // reported ready, so the handler's read or write sees the error itself.
  void set(int fd, bool want_read, bool want_write, Handler* handler);

 private:
  struct Entry {
    Handler* handler = nullptr;
    bool read = false, write = false;
    bool in_epoll = false;
    glib::SourceId fallback;  // GLib watch when epoll refused the fd
  };
  static gboolean dispatch(GSource* source, GSourceFunc, gpointer);
  static gboolean on_fallback(gint fd, GIOCondition condition, gpointer self);
  void dispatch_ready();

  int epfd_ = -1;
  glib::SourcePtr source_;  // watches epfd_
  std::unordered_map<int, Entry> entries_;
};

}  // namespace peersock::forward

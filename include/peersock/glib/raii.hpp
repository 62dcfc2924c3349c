// Owners for GLib handles, so that no layer frees one by hand.
//
// Why: with raw `guint` source ids every g_source_remove site also had to
// reset its id to 0 (24 such pairs once), and a source whose callback
// returns G_SOURCE_REMOVE must not be removed again. SourceId keeps both
// rules in one place: the destructor removes a live source, and a callback
// that ends its own source calls fired() first.
#pragma once

#include <gio/gio.h>
#include <glib-object.h>
#include <glib.h>
#include <glib-unix.h>

#include <memory>
#include <utility>

namespace peersock::glib {

// A GSource id on the default main context. Move-only.
class SourceId {
 public:
  SourceId() = default;
  explicit SourceId(guint id) : id_(id) {}
  ~SourceId() { reset(); }
  SourceId(SourceId&& other) noexcept : id_(std::exchange(other.id_, 0)) {}
  SourceId& operator=(SourceId&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, 0);
    }
    return *this;
  }
  SourceId(const SourceId&) = delete;
  SourceId& operator=(const SourceId&) = delete;

  // Replaces the source (removing the old one, if any).
  SourceId& operator=(guint id) {
    reset();
    id_ = id;
    return *this;
  }
  explicit operator bool() const { return id_ != 0; }
  guint get() const { return id_; }

  // Removes the source now (nothing if none).
  void reset() {
    if (id_ != 0) g_source_remove(id_);
    id_ = 0;
  }
  // From within the source's own callback, before it returns
  // G_SOURCE_REMOVE: GLib destroys the source itself.
  void fired() { id_ = 0; }

 private:
  guint id_ = 0;
};

// GLib takes a source's descriptors out of the poll set while it dispatches
// it and puts them back afterwards, unless the source may recurse; each of
// those two changes writes the context's wakeup eventfd (GLib 2.74), which
// the next poll() then reports and GLib drains with a read(): two writes,
// one poll and one read per dispatch. A 64-byte round trip through the
// tunnel dispatched the QUIC timer and the socket poller once or more on
// each side. Sources that never run the main loop from their callback
// (ours never do) can simply stay in the poll set.
inline void keep_polled_while_dispatching(GSource* source) { g_source_set_can_recurse(source, TRUE); }

// g_unix_fd_add on the default context, kept in the poll set while
// dispatching (above).
inline guint add_fd_watch(int fd, GIOCondition condition, GUnixFDSourceFunc callback, gpointer data) {
  GSource* source = g_unix_fd_source_new(fd, condition);
  keep_polled_while_dispatching(source);
  g_source_set_callback(source, reinterpret_cast<GSourceFunc>(reinterpret_cast<void (*)()>(callback)), data, nullptr);
  guint id = g_source_attach(source, nullptr);
  g_source_unref(source);
  return id;
}

struct ObjectUnref {
  void operator()(gpointer object) const { g_object_unref(object); }
};
// Owns one reference to a GObject.
template <typename T>
using ObjectPtr = std::unique_ptr<T, ObjectUnref>;

struct MainLoopUnref {
  void operator()(GMainLoop* loop) const { g_main_loop_unref(loop); }
};
using MainLoopPtr = std::unique_ptr<GMainLoop, MainLoopUnref>;

inline MainLoopPtr new_main_loop() { return MainLoopPtr(g_main_loop_new(nullptr, FALSE)); }

struct SourceDestroy {
  void operator()(GSource* source) const {
    g_source_destroy(source);
    g_source_unref(source);
  }
};
// A GSource made with g_source_new (custom source functions) and attached:
// detached (destroyed) and released together.
using SourcePtr = std::unique_ptr<GSource, SourceDestroy>;

// A GCancellable for the async calls an object starts; cancelled when the
// object goes away, so that a callback still pending sees
// G_IO_ERROR_CANCELLED and knows not to touch it.
class Cancellable {
 public:
  Cancellable() : cancellable_(g_cancellable_new()) {}
  ~Cancellable() { cancel(); }
  Cancellable(const Cancellable&) = delete;
  Cancellable& operator=(const Cancellable&) = delete;

  GCancellable* get() const { return cancellable_.get(); }
  void cancel() { g_cancellable_cancel(cancellable_.get()); }

 private:
  ObjectPtr<GCancellable> cancellable_;
};

}  // namespace peersock::glib

// Owners for GLib handles, so that no layer frees one by hand.
//
// Why: with raw `guint` source ids every g_source_remove site also had to
// reset its id to 0 (24 such pairs once), and a source whose callback
// returns G_SOURCE_REMOVE must not be removed again. SourceId keeps both
// rules in one place: the destructor removes a live source, and a callback
// that ends its own source calls fired() first.
#pragma once

#include <glib-object.h>
#include <glib.h>

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

}  // namespace peersock::glib

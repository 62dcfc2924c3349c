#include "peersock/forward/pump.hpp"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peersock/log.hpp"

namespace peersock::forward {

using log::Layer;

namespace {
void set_nonblocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}
}  // namespace

Pump::Pump(quic::SslPtr stream, PumpOptions options, PumpEvents events)
    : stream_(std::move(stream)),
      options_(options),
      events_(std::move(events)),
      out_(std::make_unique<std::array<uint8_t, kBufferBytes>>()),
      in_(std::make_unique<std::array<uint8_t, kBufferBytes>>()) {
  SSL_set_mode(stream_.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  set_nonblocking(options_.read_fd);
  set_nonblocking(options_.write_fd);
  update_watches();
}

Pump::~Pump() {
  if (read_watch_ != 0) g_source_remove(read_watch_);
  if (write_watch_ != 0) g_source_remove(write_watch_);
  if (options_.owns_fds) {
    close(options_.read_fd);
    if (options_.write_fd != options_.read_fd) close(options_.write_fd);
  }
}

void Pump::update_watches() {
  bool want_read = !aborted_ && !local_eof_ && out_len_ == 0;
  if (want_read && read_watch_ == 0) {
    read_watch_ = g_unix_fd_add(options_.read_fd, static_cast<GIOCondition>(G_IO_IN | G_IO_HUP | G_IO_ERR),
                                &Pump::on_readable, this);
  } else if (!want_read && read_watch_ != 0) {
    g_source_remove(read_watch_);
    read_watch_ = 0;
  }
  bool want_write = !aborted_ && !local_write_closed_ && in_len_ > 0;
  if (want_write && write_watch_ == 0) {
    write_watch_ = g_unix_fd_add(options_.write_fd, static_cast<GIOCondition>(G_IO_OUT | G_IO_HUP | G_IO_ERR),
                                 &Pump::on_writable, this);
  } else if (!want_write && write_watch_ != 0) {
    g_source_remove(write_watch_);
    write_watch_ = 0;
  }
}

// update_watches() removes or replaces a watch itself (g_source_remove is
// safe on the source being dispatched), so the callbacks always return
// CONTINUE: a source that was removed is gone whatever we return. The owner
// destroys a finished pump only from an idle callback, never inside these.
gboolean Pump::on_readable(gint, GIOCondition, gpointer self) {
  auto* pump = static_cast<Pump*>(self);
  pump->read_local();
  pump->update_watches();
  if (pump->events_.wants_io) pump->events_.wants_io();
  return G_SOURCE_CONTINUE;
}

gboolean Pump::on_writable(gint, GIOCondition, gpointer self) {
  auto* pump = static_cast<Pump*>(self);
  pump->poll();
  if (pump->events_.wants_io) pump->events_.wants_io();
  return G_SOURCE_CONTINUE;
}

void Pump::read_local() {
  if (aborted_ || local_eof_ || out_len_ > 0) return;
  ssize_t n = read(options_.read_fd, out_->data(), out_->size());
  if (n > 0) {
    out_off_ = 0;
    out_len_ = static_cast<size_t>(n);
    flush_to_stream();
  } else if (n == 0) {
    local_eof_ = true;
    flush_to_stream();
  } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    log::debug(Layer::forward, "local read failed: {}", g_strerror(errno));
    abort(true);
  }
}

// Returns true if anything moved.
bool Pump::flush_to_stream() {
  bool progress = false;
  while (!aborted_ && out_len_ > 0) {
    size_t written = 0;
    if (SSL_write_ex(stream_.get(), out_->data() + out_off_, out_len_, &written) == 1) {
      out_off_ += written;
      out_len_ -= written;
      bytes_sent_ += written;
      progress = true;
      continue;
    }
    int err = SSL_get_error(stream_.get(), 0);
    if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) break;
    log::debug(Layer::forward, "stream write failed (peer reset or connection gone)");
    abort(false);
    return true;
  }
  if (!aborted_ && local_eof_ && out_len_ == 0 && !fin_sent_) {
    if (options_.peer_supports_fin) {
      SSL_stream_conclude(stream_.get(), 0);
      fin_sent_ = true;
      progress = true;
      check_finished();
    } else if (events_.local_eof_without_fin) {
      fin_sent_ = true;
      events_.local_eof_without_fin();
    }
  }
  return progress;
}

bool Pump::pull_from_stream() {
  if (aborted_ || peer_fin_ || in_len_ > 0) return false;
  size_t n = 0;
  if (SSL_read_ex(stream_.get(), in_->data(), in_->size(), &n) == 1) {
    in_off_ = 0;
    in_len_ = n;
    bytes_received_ += n;
    return n > 0;
  }
  int err = SSL_get_error(stream_.get(), 0);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return false;
  if (err == SSL_ERROR_ZERO_RETURN) {
    peer_fin_ = true;
    return true;
  }
  log::debug(Layer::forward, "stream read failed (peer reset or connection gone)");
  abort(false);
  return true;
}

bool Pump::flush_to_local() {
  bool progress = false;
  while (!aborted_ && in_len_ > 0 && !local_write_closed_) {
    ssize_t n = write(options_.write_fd, in_->data() + in_off_, in_len_);
    if (n > 0) {
      in_off_ += static_cast<size_t>(n);
      in_len_ -= static_cast<size_t>(n);
      progress = true;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      break;
    } else {
      log::debug(Layer::forward, "local write failed: {}", g_strerror(errno));
      abort(true);
      return true;
    }
  }
  if (!aborted_ && peer_fin_ && in_len_ == 0 && !local_write_closed_) {
    local_write_closed_ = true;
    if (options_.is_socket) {
      shutdown(options_.write_fd, SHUT_WR);
    } else {
      // Replace stdout with /dev/null: the reader sees EOF, the fd stays valid.
      int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
      if (null_fd >= 0) {
        dup2(null_fd, options_.write_fd);
        close(null_fd);
      }
    }
    progress = true;
    check_finished();
  }
  return progress;
}

void Pump::poll() {
  if (in_poll_ || finished_) return;
  in_poll_ = true;
  bool progress = true;
  while (progress && !aborted_) {
    progress = false;
    progress |= flush_to_stream();
    progress |= flush_to_local();
    progress |= pull_from_stream();
  }
  in_poll_ = false;
  update_watches();
  check_finished();
}

void Pump::abort(bool reset_stream) {
  if (aborted_) return;
  aborted_ = true;
  if (reset_stream) SSL_stream_reset(stream_.get(), nullptr, 0);
  if (options_.is_socket) {
    // Abortive close so the local peer sees a reset, not a clean EOF.
    struct linger lg = {1, 0};
    setsockopt(options_.read_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    shutdown(options_.read_fd, SHUT_RDWR);
  }
  check_finished();
}

void Pump::check_finished() {
  if (finished_) return;
  bool done = aborted_ || (fin_sent_ && local_write_closed_);
  if (!done) return;
  finished_ = true;
  clean_ = !aborted_;
  if (read_watch_ != 0) {
    g_source_remove(read_watch_);
    read_watch_ = 0;
  }
  if (write_watch_ != 0) {
    g_source_remove(write_watch_);
    write_watch_ = 0;
  }
  if (events_.finished) events_.finished();
}

}  // namespace peersock::forward

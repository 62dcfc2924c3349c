#include "peersock/forward/pump.hpp"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>
#include <openssl/err.h>

#include <algorithm>
#include <cstdint>

#include "peersock/log.hpp"

namespace peersock::forward {

using log::Layer;

namespace {
void set_nonblocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

// Local reads per readable event while the stream takes everything: enough
// to amortise one QUIC run over several chunks, few enough to stay fair to
// the other connections on the loop.
constexpr int kReadsPerWakeup = 4;
}  // namespace

Pump::Pump(quic::SslPtr stream, PumpOptions options, PumpEvents events, Scratch& scratch, Poller& poller,
           CreditContext* credit)
    : stream_(std::move(stream)),
      stream_id_(SSL_get_stream_id(stream_.get())),
      options_(options),
      events_(std::move(events)),
      scratch_(scratch),
      poller_(poller),
      credit_(credit) {
  if (credit_) receive_credit_.emplace(credit_->budget);
  last_progress_us_ = g_get_monotonic_time();  // a new connection counts as busy
  SSL_set_mode(stream_.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  set_nonblocking(options_.read_fd);
  set_nonblocking(options_.write_fd);
  update_watches();
}

Pump::~Pump() {
  unwatch();
  if (options_.owns_fds) close_fds();
}

void Pump::unwatch() {
  if (options_.read_fd >= 0) poller_.set(options_.read_fd, false, false, this);
  if (options_.write_fd >= 0) poller_.set(options_.write_fd, false, false, this);
  watch_read_ = watch_write_ = false;
}

void Pump::close_fds() {
  unwatch();
  if (options_.read_fd >= 0) close(options_.read_fd);
  if (options_.write_fd >= 0 && options_.write_fd != options_.read_fd) close(options_.write_fd);
  options_.read_fd = options_.write_fd = -1;
}

void Pump::update_watches() {
  if (finished_ || options_.read_fd < 0) return;  // unwatch() ran
  bool want_read = may_read_local();
  bool want_write = !aborted_ && !local_write_closed_ && !in_.empty();
  if (want_read == watch_read_ && want_write == watch_write_) return;
  watch_read_ = want_read;
  watch_write_ = want_write;
  if (options_.read_fd == options_.write_fd) {
    poller_.set(options_.read_fd, want_read, want_write, this);
  } else {
    poller_.set(options_.read_fd, want_read, false, this);
    poller_.set(options_.write_fd, false, want_write, this);
  }
}

// The owner destroys a finished pump only from an idle callback, never
// inside these, so `this` stays valid throughout.
void Pump::on_ready(int fd, bool readable, bool writable) {
  if (readable && fd == options_.read_fd) on_readable();
  if (writable && fd == options_.write_fd && !finished_) on_writable();
}

void Pump::on_readable() {
  for (int i = 0; i < kReadsPerWakeup && read_local(); ++i) {
  }
  update_watches();
  check_finished();
  if (events_.wants_io) events_.wants_io();
}

void Pump::on_writable() {
  poll();
  if (events_.wants_io) events_.wants_io();
}

bool Pump::may_read_local() const {
  if (aborted_ || local_eof_ || !out_.empty()) return false;
  // Out of credit: stop reading, so that TCP slows the local writer. (EOF
  // is noticed once credit returns; a FIN needs no credit, but we cannot
  // tell EOF from data without reading.)
  return !credit_ || send_credit_.available(bytes_sent_) > 0;
}

// One read from the local side, passed straight to the stream. Returns true
// if it is worth reading again right away (all of a full chunk went out).
bool Pump::read_local() {
  if (!may_read_local()) return false;
  size_t want = scratch_.size();
  if (credit_) want = static_cast<size_t>(std::min<uint64_t>(want, send_credit_.available(bytes_sent_)));
  ssize_t n = read(options_.read_fd, scratch_.data(), want);
  if (n >= 0) last_progress_us_ = g_get_monotonic_time();
  if (n > 0) {
    size_t written = 0;
    if (!write_stream(scratch_.data(), static_cast<size_t>(n), written)) return false;
    if (written < static_cast<size_t>(n)) out_.append(scratch_.data() + written, static_cast<size_t>(n) - written);
    return out_.empty() && static_cast<size_t>(n) == want;
  }
  if (n == 0) {
    // After an RST, Linux may report end-of-file first and keep the reset in
    // SO_ERROR: look, so that a reset is passed on as a reset, not as a FIN.
    int err = 0;
    socklen_t len = sizeof err;
    if (options_.is_socket && getsockopt(options_.read_fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
      log::debug(Layer::forward, "local connection reset: {}", g_strerror(err));
      abort(true);
      return false;
    }
    local_eof_ = true;
    conclude_if_done();
    return false;
  }
  if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    log::debug(Layer::forward, "local read failed: {}", g_strerror(errno));
    abort(true);
  }
  return false;
}

// Writes as much as the stream takes. False if the stream failed (aborted).
bool Pump::write_stream(const uint8_t* data, size_t len, size_t& written) {
  written = 0;
  while (written < len) {
    size_t n = 0;
    if (SSL_write_ex(stream_.get(), data + written, len - written, &n) == 1) {
      written += n;
      bytes_sent_ += n;
      continue;
    }
    int err = SSL_get_error(stream_.get(), 0);
    if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) break;
    log::debug(Layer::forward, "stream write failed (peer reset or connection gone)");
    abort(false);
    return false;
  }
  return true;
}

// Returns true if anything moved.
bool Pump::flush_to_stream() {
  bool progress = false;
  while (!aborted_ && !out_.empty()) {
    auto run = out_.front();
    size_t written = 0;
    if (!write_stream(run.data(), run.size(), written)) return true;
    out_.consume(written);
    progress |= written > 0;
    if (written < run.size()) break;  // the stream is full
  }
  return conclude_if_done() || progress;
}

bool Pump::conclude_if_done() {
  if (aborted_ || !local_eof_ || !out_.empty() || fin_sent_) return false;
  fin_sent_ = true;
  if (options_.peer_supports_fin) {
    SSL_stream_conclude(stream_.get(), 0);
    check_finished();
  } else if (events_.local_eof_without_fin) {
    events_.local_eof_without_fin();
  }
  return true;
}

bool Pump::may_read_stream() const {
  if (aborted_ || peer_fin_) return false;
  // v3: up to the limit we announced, whatever we hold; older peers: only
  // when we hold nothing, so that QUIC flow control does the back-pressure.
  return receive_credit_ ? receive_credit_->readable(bytes_received_) > 0 : in_.empty();
}

bool Pump::pull_from_stream() {
  if (!may_read_stream()) return false;
  size_t limit = receive_credit_ ? static_cast<size_t>(std::min<uint64_t>(receive_credit_->readable(bytes_received_), SIZE_MAX))
                                 : SIZE_MAX;
  size_t n = 0;
  if (!in_.empty()) {
    // Behind a slow local reader: straight into our queue, no scratch copy.
    auto room = in_.tail_room();
    if (SSL_read_ex(stream_.get(), room.data(), std::min(room.size(), limit), &n) == 1) {
      bytes_received_ += n;
      in_.commit(n);
      return n > 0;
    }
  } else if (SSL_read_ex(stream_.get(), scratch_.data(), std::min(scratch_.size(), limit), &n) == 1) {
    bytes_received_ += n;
    size_t written = 0;
    if (!write_local(scratch_.data(), n, written)) return true;
    if (written < n) in_.append(scratch_.data() + written, n - written);
    delivered(written);
    return n > 0;
  }
  int err = SSL_get_error(stream_.get(), 0);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return false;
  if (err == SSL_ERROR_ZERO_RETURN) {
    peer_fin_ = true;
    close_local_write_if_done();
    return true;
  }
  log::debug(Layer::forward, "stream read failed (peer reset or connection gone)");
  abort(false);
  return true;
}

// Writes as much as the local side takes. False if it failed (aborted).
bool Pump::write_local(const uint8_t* data, size_t len, size_t& written) {
  written = 0;
  while (written < len && !local_write_closed_) {
    ssize_t n = write(options_.write_fd, data + written, len - written);
    if (n > 0) {
      written += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      break;
    } else {
      log::debug(Layer::forward, "local write failed: {}", g_strerror(errno));
      abort(true);
      return false;
    }
  }
  return true;
}

bool Pump::flush_to_local() {
  size_t total = 0;
  while (!aborted_ && !in_.empty()) {
    auto run = in_.front();
    size_t written = 0;
    if (!write_local(run.data(), run.size(), written)) return true;
    in_.consume(written);
    total += written;
    if (written < run.size()) break;  // the local side is full
  }
  delivered(total);
  close_local_write_if_done();
  return total > 0;
}

// The local side took n more bytes: v3 peers may get more credit.
void Pump::delivered(size_t n) {
  if (n == 0 || aborted_) return;
  bytes_delivered_ += n;
  if (!receive_credit_) return;
  if (auto limit = receive_credit_->on_delivered(bytes_delivered_, g_get_monotonic_time(), credit_->rtt_us)) {
    if (events_.grant) events_.grant(stream_id_, *limit);
  }
}

std::string Pump::describe() const {
  uint64_t wsize = 0, wused = 0, wavail = 0;
  SSL_get_stream_write_buf_size(stream_.get(), &wsize);
  SSL_get_stream_write_buf_used(stream_.get(), &wused);
  SSL_get_stream_write_buf_avail(stream_.get(), &wavail);
  ERR_clear_error();
  return fmt::format("[wbuf size {} used {} avail {}] ", wsize, wused, wavail) + fmt::format(
      "stream {}: sent {} (limit {}), received {} (limit {}), delivered {}, held out {} in {}, "
      "eof {} fin_sent {} peer_fin {} write_closed {} aborted {} finished {}, watching r{} w{}, interest {:#x}",
      stream_id_, bytes_sent_, credit_ ? send_credit_.limit() : 0, bytes_received_,
      receive_credit_ ? receive_credit_->limit() : 0, bytes_delivered_, out_.size(), in_.size(), local_eof_, fin_sent_,
      peer_fin_, local_write_closed_, aborted_, finished_, watch_read_, watch_write_, poll_interest());
}

void Pump::on_grant(uint64_t limit) {
  if (finished_ || !credit_ || !send_credit_.on_grant(limit)) return;
  update_watches();
}

void Pump::close_local_write_if_done() {
  if (aborted_ || !peer_fin_ || !in_.empty() || local_write_closed_) return;
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
  check_finished();
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
    if (progress) last_progress_us_ = g_get_monotonic_time();
  }
  in_poll_ = false;
  update_watches();
  check_finished();
}

uint64_t Pump::poll_interest() const {
  if (finished_ || aborted_) return 0;
  uint64_t events = SSL_POLL_EVENT_ER | SSL_POLL_EVENT_EW;
  if (may_read_stream()) events |= SSL_POLL_EVENT_R;
  if (!out_.empty() || (local_eof_ && !fin_sent_)) events |= SSL_POLL_EVENT_W;
  return events;
}

// Pumps that moved data within this window count as busy.
constexpr gint64 kBusyWindowUs = 200 * 1000;

StreamPoller::~StreamPoller() {
  if (timer_id_ != 0) g_source_remove(timer_id_);
}

void StreamPoller::after_quic_run() {
  gint64 now = g_get_monotonic_time();
  bool everyone = now - last_full_us_ >= kIdleCheckUs;
  poll(everyone);
  if (everyone) {
    last_full_us_ = now;
  } else if (timer_id_ == 0) {
    // This run may have brought data for an idle stream: look within 2 ms.
    timer_id_ = g_timeout_add(static_cast<guint>(kIdleCheckUs / 1000), &StreamPoller::on_timer, this);
  }
}

gboolean StreamPoller::on_timer(gpointer self) {
  auto* poller = static_cast<StreamPoller*>(self);
  poller->timer_id_ = 0;
  poller->last_full_us_ = g_get_monotonic_time();
  poller->poll(true);
  return G_SOURCE_REMOVE;
}

void StreamPoller::poll(bool everyone) {
  gint64 busy_since = g_get_monotonic_time() - kBusyWindowUs;
  items_.clear();
  asked_.clear();
  for (const auto& pump : pumps_) {
    if (!everyone && !pump->active_since(busy_since)) continue;
    uint64_t events = pump->poll_interest();
    if (events == 0) continue;
    SSL_POLL_ITEM item{};
    item.desc = SSL_as_poll_descriptor(pump->stream());
    item.events = events;
    items_.push_back(item);
    asked_.push_back(pump.get());
  }
  if (items_.empty()) return;
  timeval now{0, 0};
  size_t ready = 0;
  if (SSL_poll(items_.data(), items_.size(), sizeof(SSL_POLL_ITEM), &now, SSL_POLL_FLAG_NO_HANDLE_EVENTS, &ready) != 1) {
    ERR_clear_error();
    // Could not ask: poll them all, as slow as that is.
    for (auto& item : items_) item.revents = item.events;
  }
  // A pump's callbacks never add or destroy pumps synchronously (finished
  // pumps are swept from an idle callback), so the pointers stay valid.
  for (size_t i = 0; i < items_.size(); ++i) {
    if (items_[i].revents != 0) asked_[i]->poll();
  }
}

void Pump::abort(bool reset_stream) {
  if (aborted_) return;
  aborted_ = true;
  if (reset_stream) SSL_stream_reset(stream_.get(), nullptr, 0);
  if (options_.is_socket) {
    // Abortive close so the local peer sees a reset, not a clean EOF: with a
    // zero linger time close() sends an RST (a shutdown() first would send a
    // FIN, which the local peer could take for a clean end).
    struct linger lg = {1, 0};
    setsockopt(options_.read_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    if (options_.owns_fds) close_fds();
  }
  out_.clear();
  in_.clear();
  check_finished();
}

void Pump::check_finished() {
  if (finished_) return;
  bool done = aborted_ || (fin_sent_ && local_write_closed_);
  if (!done) return;
  finished_ = true;
  clean_ = !aborted_;
  unwatch();
  if (events_.finished) events_.finished();
}

}  // namespace peersock::forward

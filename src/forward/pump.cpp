#include "peersock/forward/pump.hpp"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

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

Pump::Pump(quic::Stream stream, PumpOptions options, PumpEvents events, Scratch& scratch, Poller& poller,
           CreditContext* credit)
    : stream_(std::move(stream)),
      stream_id_(static_cast<uint64_t>(stream_.id())),
      options_(options),
      events_(std::move(events)),
      scratch_(scratch),
      poller_(poller),
      credit_(credit) {
  if (credit_) receive_credit_.emplace(credit_->budget);
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
  bool want_write = !aborted_ && !local_write_closed_ && local_full_;
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
  local_full_ = false;
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
    auto r = stream_.write({data + written, len - written});
    if (r.status == quic::IoStatus::ok && r.bytes > 0) {
      written += r.bytes;
      bytes_sent_ += r.bytes;
      continue;
    }
    if (r.status != quic::IoStatus::reset) break;  // the stream is full for now
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
    stream_.conclude();
    check_finished();
  } else if (events_.local_eof_without_fin) {
    events_.local_eof_without_fin();
  }
  return true;
}

bool Pump::may_read_stream() const {
  if (aborted_ || peer_fin_ || local_full_) return false;
  // v3 peers: up to the limit we announced (a peer that sends more finds its
  // bytes left unread, and QUIC flow control holds it back).
  return !receive_credit_ || receive_credit_->readable(bytes_received_) > 0;
}

// Moves received bytes straight from the QUIC endpoint's receive buffer to
// the local side (no copy of ours); what the local side does not take stays
// there, held back by QUIC flow control. Returns true if anything changed.
bool Pump::pull_from_stream() {
  if (!may_read_stream()) return false;
  switch (stream_.read_status()) {
    case quic::IoStatus::would_block: return false;
    case quic::IoStatus::fin:
      peer_fin_ = true;
      close_local_write_if_done();
      return true;
    case quic::IoStatus::reset:
      log::debug(Layer::forward, "stream read failed (peer reset or connection gone)");
      abort(false);
      return true;
    case quic::IoStatus::ok: break;
  }
  auto data = stream_.peek();
  size_t take = data.size();
  if (receive_credit_) take = static_cast<size_t>(std::min<uint64_t>(take, receive_credit_->readable(bytes_received_)));
  size_t written = 0;
  if (!write_local(data.data(), take, written)) return true;
  stream_.consume(written);
  bytes_received_ += written;
  if (written < take) local_full_ = true;
  delivered(written);
  return written > 0;
}

// Writes as much as the local side takes. False if it failed (aborted).
bool Pump::write_local(const uint8_t* data, size_t len, size_t& written) {
  written = 0;
  if (len > 0 && options_.writes_to_terminal) log::release_terminal();
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
  return fmt::format(
      "stream {}: sent {} (limit {}, unacknowledged {}), received {} (limit {}), delivered {}, held out {}, "
      "eof {} fin_sent {} peer_fin {} local_full {} write_closed {} aborted {} finished {}, watching r{} w{}",
      stream_id_, bytes_sent_, credit_ ? send_credit_.limit() : 0, stream_.unacked(), bytes_received_,
      receive_credit_ ? receive_credit_->limit() : 0, bytes_delivered_, out_.size(), local_eof_, fin_sent_, peer_fin_,
      local_full_, local_write_closed_, aborted_, finished_, watch_read_, watch_write_);
}

void Pump::on_grant(uint64_t limit) {
  if (finished_ || !credit_ || !send_credit_.on_grant(limit)) return;
  update_watches();
}

void Pump::close_local_write_if_done() {
  if (aborted_ || !peer_fin_ || local_write_closed_) return;
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
    progress |= pull_from_stream();
  }
  in_poll_ = false;
  update_watches();
  check_finished();
}

void Pump::abort(bool reset_stream) {
  if (aborted_) return;
  aborted_ = true;
  if (reset_stream) stream_.reset();
  if (options_.is_socket) {
    // Abortive close so the local peer sees a reset, not a clean EOF: with a
    // zero linger time close() sends an RST (a shutdown() first would send a
    // FIN, which the local peer could take for a clean end).
    struct linger lg = {1, 0};
    setsockopt(options_.read_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    if (options_.owns_fds) close_fds();
  }
  out_.clear();
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

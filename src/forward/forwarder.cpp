#include "peersock/forward/forwarder.hpp"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <glib-unix.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/core.h>

#include <algorithm>
#include <cstring>

#include "peersock/c_boundary.hpp"
#include "peersock/error.hpp"
#include "peersock/forward/stream_header.hpp"
#include "peersock/log.hpp"

namespace peersock::forward {

using log::Layer;

Forwarder::Forwarder(LocalEnd local, ForwarderEvents events)
    : local_(std::move(local)), events_(std::move(events)), cancellable_(g_cancellable_new()) {
  if (const auto* tcp = std::get_if<ListenTcp>(&local_)) {
    listener_.emplace(LocalListener::tcp(tcp->bind_address, tcp->port));
  } else if (const auto* unix_socket = std::get_if<ListenUnix>(&local_)) {
    listener_.emplace(LocalListener::unix_socket(unix_socket->path));
  } else if (is_udp(local_)) {
    udp_ = std::make_unique<UdpRelay>(
        local_,
        [this] {
          if (events_.wants_io) events_.wants_io();
        },
        [this](std::exception_ptr e) {
          if (events_.failed) events_.failed(e);
        });
  }
}

Forwarder::~Forwarder() {
  // Pending connects end with G_IO_ERROR_CANCELLED and do not touch `this`.
  g_cancellable_cancel(cancellable_.get());
  accept_watch_.reset();
  fd_retry_.reset();
  sweep_.reset();
  pending_.clear();
  pumps_.clear();
  udp_.reset();
}

std::string Forwarder::listener_description() const {
  if (udp_) return udp_->description();
  return listener_ ? listener_->description() : std::string();
}

std::optional<UdpCounts> Forwarder::udp_counts() const {
  if (!udp_) return std::nullopt;
  return udp_->counts();
}

namespace {
// Puts /dev/null in place of stdin (reads: EOF at once) or stdout (writes
// vanish), so that the pump needs no special case for a direction it does
// not carry.
void replace_with_null(int fd) {
  int null_fd = open("/dev/null", (fd == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC);
  if (null_fd < 0) throw Error(ExitCode::local, fmt::format("cannot open /dev/null: {}", g_strerror(errno)));
  dup2(null_fd, fd);
  ::close(null_fd);
}
}  // namespace

void Forwarder::start(quic::Endpoint& endpoint, Capabilities caps) {
  endpoint_ = &endpoint;
  caps_ = caps;
  if (udp_) {
    udp_->start(endpoint);
    return;
  }
  if (is_stdio()) {
    const StdioDirections d = stdio_directions(local_);
    if (!d.send) replace_with_null(0);
    if (!d.receive) replace_with_null(1);
  }
  if (listener_) {
    accept_watch_ = g_unix_fd_add(listener_->fd(), G_IO_IN, &Forwarder::on_accept, this);
  } else if (std::holds_alternative<StdioB>(local_)) {
    auto stream = open_data_stream();
    if (!stream) throw Error(ExitCode::peer_gone, "cannot open a stream to the peer");
    make_pump(std::move(stream), 0, 1, false, false);
  }
}

// ---- opener --------------------------------------------------------------

quic::Stream Forwarder::open_data_stream() {
  auto id = endpoint_->open_stream();
  if (!id) return {};
  quic::Stream stream(*endpoint_, *id);
  auto r = stream.write(std::span<const uint8_t>(&kDataStreamMagic, 1));
  if (r.status != quic::IoStatus::ok || r.bytes != 1) throw Error(ExitCode::peer_gone, "cannot write to the peer");
  if (events_.wants_io) events_.wants_io();
  return stream;
}

gboolean Forwarder::on_accept(gint fd, GIOCondition, gpointer self) {
  return c_boundary("accepting a local connection", [&]() -> gboolean {
    auto* f = static_cast<Forwarder*>(self);
    f->guarded([&] { f->accept_local(fd); });
    return G_SOURCE_CONTINUE;
  });
}

// The forwarder's own entry points from the GLib loop: an exception must not
// cross GLib's C frames; the session turns it into its exit.
template <typename F>
void Forwarder::guarded(F&& f) {
  try {
    f();
  } catch (...) {
    if (events_.failed) events_.failed(std::current_exception());
  }
}

void Forwarder::accept_local(int fd) {
  for (;;) {
    if (caps_.several_connections && !stream_credit()) {
      pause_accepting();
      break;
    }
    int client = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (client < 0) {
      if (errno == EMFILE || errno == ENFILE) wait_for_descriptors();
      break;
    }
    // This one is carried; the next ones wait if it took one of the last.
    const bool reserve_reached = in_descriptor_reserve(client);
    if (!caps_.several_connections && connections_ >= 1) {
      log::error_line("refusing another connection: the other side runs the original peersock, which carries one");
      ::close(client);
      continue;
    }
    auto stream = open_data_stream();
    if (!stream) {
      log::error_line("refusing a connection: the peer allows no more streams right now");
      ::close(client);
      continue;
    }
    make_pump(std::move(stream), client, client, true, true);
    if (reserve_reached) {
      wait_for_descriptors();
      break;
    }
  }
}

// Descriptors are handed out lowest first, so a new one numbered within
// kDescriptorReserve of the limit means at most that many are left. They
// are kept for the rest of the run (the relay's websocket after a lost
// connection, ICE's and TURN's sockets, the connecting side's dials, the
// sanitizer's own pipe): a process with none left fails in places that have
// nothing to do with the connection that took the last one.
bool Forwarder::in_descriptor_reserve(int fd) const {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return false;
  return static_cast<rlim_t>(fd) + static_cast<rlim_t>(kDescriptorReserve) >= limit.rlim_cur;
}

// The peer limits how many streams may be open at once (we grant 1024,
// OpenSSL 100 and more as they are used; one more as each ends). At the limit we stop accepting: further
// connections wait in the kernel's accept queue, a bounded queue that costs
// us nothing, instead of being refused.
bool Forwarder::stream_credit() const { return endpoint_->streams_left() > 0; }

void Forwarder::pause_accepting() {
  if (!accept_watch_) return;
  log::debug(Layer::forward, "the peer allows no more streams for now; new connections wait");
  accept_watch_.reset();
  accept_paused_ = true;
}

// Out of file descriptors (or down to the reserve), the listening socket
// stays readable: without a pause accept_local would run again at once,
// spinning a core until some connection ends. The connection waits in the
// kernel's accept queue, and we look again a quarter of a second later.
void Forwarder::wait_for_descriptors() {
  if (!fd_warning_given_) {
    fd_warning_given_ = true;
    rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    log::warning("out-of-descriptors",
                 fmt::format("running out of file descriptors (ulimit -n is {}): new local connections wait until "
                             "one ends",
                             static_cast<unsigned long long>(limit.rlim_cur)));
  }
  accept_watch_.reset();
  accept_paused_ = true;
  fd_retry_ = g_timeout_add(250, &Forwarder::on_fd_retry, this);
}

gboolean Forwarder::on_fd_retry(gpointer self) {
  return c_boundary("resuming accepting", [&]() -> gboolean {
    auto* f = static_cast<Forwarder*>(self);
    f->fd_retry_.fired();
    f->guarded([&] {
      // The lowest free descriptor tells whether one outside the reserve is
      // free again (a connection ended).
      int probe = fcntl(f->listener_->fd(), F_DUPFD_CLOEXEC, 0);
      const bool still_short = probe < 0 || f->in_descriptor_reserve(probe);
      if (probe >= 0) ::close(probe);
      if (still_short) f->fd_retry_ = g_timeout_add(250, &Forwarder::on_fd_retry, f);
      else f->resume_accepting_if_possible();
    });
    return G_SOURCE_REMOVE;
  });
}

void Forwarder::resume_accepting_if_possible() {
  if (!accept_paused_ || stopped_ || fd_retry_ || !stream_credit()) return;
  accept_paused_ = false;
  accept_watch_ = g_unix_fd_add(listener_->fd(), G_IO_IN, &Forwarder::on_accept, this);
}

void Forwarder::close(ExitCode why) {
  if (stopped_) return;
  stopped_ = true;
  accept_watch_.reset();
  fd_retry_.reset();
  if (udp_) udp_->close();
  if (why == ExitCode::ok || is_stdio()) return;
  // The run ends with connections open: each local program must see an
  // error (RST), not a clean end that would pass a cut-short transfer for a
  // complete one. Streams still waiting for their local connect go too.
  pending_.clear();
  for (auto& p : pumps_)
    if (!p->finished()) p->cancel();
  sweep_.reset();
  sweep();
}

// ---- acceptor ------------------------------------------------------------

void Forwarder::on_stream(quic::Stream stream) {
  bool single = is_stdio() || !caps_.several_connections;
  if (is_opener(local_) || udp_ || (single && connections_ + pending_.size() >= 1)) {
    log::debug(Layer::forward, "rejecting unexpected stream {}", stream.id());
    stream.reset();
    return;
  }
  pending_.push_back(std::make_unique<Pending>(Pending{std::move(stream)}));
}

void Forwarder::poll_pending() {
  for (auto it = pending_.begin(); it != pending_.end();) {
    Pending& p = **it;
    if (!p.header_seen) {
      uint8_t byte = 0;
      auto r = p.stream.read({&byte, 1});
      if (r.status == quic::IoStatus::ok) {
        check_data_stream_magic(byte);
        p.header_seen = true;
      } else if (r.status != quic::IoStatus::would_block) {
        it = pending_.erase(it);
        continue;
      }
    }
    if (p.header_seen && !p.connecting) {
      if (is_stdio()) {
        make_pump(std::move(p.stream), 0, 1, false, false);
        it = pending_.erase(it);
        continue;
      }
      p.connecting = true;
      start_connect(it->get());
    }
    ++it;
  }
}

void Forwarder::start_connect(Pending* pending) {
  glib::ObjectPtr<GSocketClient> client(g_socket_client_new());
  // connect-unix: a unix socket address; connect: HOST:PORT, resolved by GIO.
  const std::string where = connect_target(local_);
  glib::ObjectPtr<GSocketConnectable> target(std::holds_alternative<ConnectUnix>(local_)
                                                 ? G_SOCKET_CONNECTABLE(g_unix_socket_address_new(where.c_str()))
                                                 : g_network_address_parse(where.c_str(), 0, nullptr));
  if (!target) throw UsageError(fmt::format("connect: '{}' is not HOST:PORT", where));
  struct Ctx {
    Forwarder* forwarder;
    Pending* pending;
  };
  g_socket_client_connect_async(
      client.get(), target.get(), cancellable_.get(),
      [](GObject* source, GAsyncResult* result, gpointer data) {
        c_boundary("a local connect", [&] {
          std::unique_ptr<Ctx> ctx(static_cast<Ctx*>(data));
          GError* error = nullptr;
          glib::ObjectPtr<GSocketConnection> connection(
              g_socket_client_connect_finish(G_SOCKET_CLIENT(source), result, &error));
          std::string message = error ? error->message : "";
          bool cancelled = error && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
          if (error) g_error_free(error);
          if (cancelled) return;
          // Keep our own descriptor; the GSocketConnection closes its copy.
          int fd = -1;
          if (connection) {
            fd = fcntl(g_socket_get_fd(g_socket_connection_get_socket(connection.get())), F_DUPFD_CLOEXEC, 3);
            if (fd < 0) message = fmt::format("cannot keep the connection: {}", g_strerror(errno));
          }
          Forwarder* f = ctx->forwarder;
          f->guarded([&] { f->on_connected(ctx->pending, fd, message.empty() ? "failed" : message); });
        });
      },
      new Ctx{this, pending});
}

void Forwarder::on_connected(Pending* pending, int fd, const std::string& error) {
  auto it = std::find_if(pending_.begin(), pending_.end(), [&](auto& p) { return p.get() == pending; });
  if (it == pending_.end()) {
    if (fd >= 0) ::close(fd);
    return;
  }
  quic::Stream stream = std::move((*it)->stream);
  pending_.erase(it);
  if (fd < 0) {
    std::string message = fmt::format("cannot connect to {}: {}", connect_target(local_), error);
    if (events_.connect_failed)
      events_.connect_failed(static_cast<uint64_t>(stream.id()), fmt::format("{}: {}", connect_target(local_), error));
    // The original peersock carries one connection: nothing left to do.
    if (!caps_.several_connections) throw Error(ExitCode::local, message);
    log::error_line(message);
    stream.reset();
    if (events_.wants_io) events_.wants_io();
    return;
  }
  make_pump(std::move(stream), fd, fd, true, true);
  if (events_.wants_io) events_.wants_io();
}

// ---- pumps ---------------------------------------------------------------

void Forwarder::make_pump(quic::Stream stream, int read_fd, int write_fd, bool is_socket, bool owns) {
  ++connections_;
  PumpOptions opts{read_fd, write_fd, is_socket, owns, caps_.fin};
  opts.writes_to_terminal = !is_socket && isatty(write_fd) == 1;
  PumpEvents events{
      [this] {
        if (events_.wants_io) events_.wants_io();
      },
      [this] { on_pump_finished(); },
      [this] {
        if (events_.eof_ends_session) events_.eof_ends_session();
      },
      [this](uint64_t id, uint64_t limit) {
        if (events_.grant) events_.grant(id, limit);
      },
  };
  pumps_.push_back(std::make_unique<Pump>(std::move(stream), opts, std::move(events), scratch_, poller_,
                                          caps_.credit ? &credit_ : nullptr));
  Pump* pump = pumps_.back().get();
  pumps_by_stream_[pump->stream_id()] = pump;
  if (events_.opened) events_.opened(*pump);
  pump->poll();
  if (events_.wants_io) events_.wants_io();
}

void Forwarder::on_pump_finished() {
  if (!sweep_) sweep_ = g_idle_add(&Forwarder::on_sweep, this);
  if (stopped_) return;  // cut short by close(): nothing was delivered
  // stdio has exactly one pump, and so has a run with the original. If it
  // ended in a reset (the peer reset the stream, or the local end failed),
  // some data was not delivered: saying "D" or exiting 0 would hide a lost
  // tail from the user.
  const bool single = is_stdio() || !caps_.several_connections;
  if (single && !pumps_.empty() && !pumps_.front()->clean()) {
    if (!is_stdio()) reset_to_report_ = true;  // on_sweep says it
    else if (events_.only_stream_reset) events_.only_stream_reset();
    return;
  }
  if (is_stdio()) stdio_delivered_ = true;
  if (events_.delivered) events_.delivered();
}

// Finished pumps are destroyed here, from an idle callback, never inside
// their own callbacks.
gboolean Forwarder::on_sweep(gpointer self) {
  return c_boundary("the connection sweep", [&]() -> gboolean {
    auto* f = static_cast<Forwarder*>(self);
    f->sweep_.fired();
    if (f->reset_to_report_) {
      f->reset_to_report_ = false;
      if (f->events_.only_stream_reset) f->events_.only_stream_reset();
    }
    f->sweep();
    return G_SOURCE_REMOVE;
  });
}

void Forwarder::sweep() {
  for (auto& p : pumps_) {
    if (!p->finished()) continue;
    if (events_.closed) events_.closed(*p);
    // stdio keeps its one pump: its counters are the run's summary.
    if (!is_stdio()) pumps_by_stream_.erase(p->stream_id());
  }
  if (!is_stdio()) {
    std::erase_if(pumps_, [](auto& p) { return p->finished(); });
  }
}

// Only the pumps whose streams changed since the last run: polling every
// pump after every run made each run's cost grow with the number of open
// connections (measured: 62 MB/s through one connection fell to 7 MB/s with
// 1000 idle ones open).
void Forwarder::after_quic_run() {
  if (!endpoint_) return;
  if (udp_) udp_->after_quic_run();
  poll_pending();
  for (int64_t id : endpoint_->take_ready()) {
    auto it = pumps_by_stream_.find(static_cast<uint64_t>(id));
    if (it != pumps_by_stream_.end()) it->second->poll();
  }
  resume_accepting_if_possible();
}

void Forwarder::on_grant(uint64_t stream_id, uint64_t limit) {
  if (auto it = pumps_by_stream_.find(stream_id); it != pumps_by_stream_.end()) it->second->on_grant(limit);
}

std::vector<Forwarder::Sample> Forwarder::samples() const {
  std::vector<Sample> out;
  out.reserve(pumps_.size());
  for (const auto& p : pumps_) out.push_back({p.get(), p->bytes_sent(), p->bytes_received()});
  return out;
}

std::vector<std::string> Forwarder::describe() const {
  std::vector<std::string> out;
  for (const auto& p : pumps_) out.push_back(p->describe());
  return out;
}

}  // namespace peersock::forward

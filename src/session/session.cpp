#include "peersock/session/session.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <glib-unix.h>
#include <netdb.h>
#include <signal.h>
#include <sys/socket.h>
#include <openssl/crypto.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "peersock/auth/smp.hpp"
#include "peersock/forward/local_socket.hpp"
#include "peersock/forward/pump.hpp"
#include "peersock/ice/agent.hpp"
#include "peersock/ice/body.hpp"
#include "peersock/log.hpp"
#include "peersock/protocol/version.hpp"
#include "peersock/quic/driver.hpp"
#include "peersock/quic/endpoint.hpp"
#include "peersock/quic/stream.hpp"
#include "peersock/rendezvous/client.hpp"
#include "peersock/rendezvous/protocol.hpp"
#include "peersock/session/control.hpp"
#include "peersock/session/ping.hpp"
#include "peersock/session/stream_header.hpp"
#include "peersock/ui/status.hpp"

namespace peersock::session {
namespace {

using log::Layer;

// Phase deadlines: once both sides are present nothing may wait forever.
constexpr guint kIceDeadlineMs = 30000;
constexpr guint kHandshakeAndAuthDeadlineMs = 20000;
constexpr guint kShutdownDeadlineMs = 5000;
constexpr guint kPathReportWaitMs = 3000;  // longest wait for the RTT before the path line
// Unsent control-stream bytes beyond this mean the peer no longer reads it
// (it reads stream 0 eagerly; a grant is 17 bytes per half window).
constexpr size_t kMaxControlBacklog = 1 << 20;


std::string hint_for_other_side(const Mode& mode, const std::string& code) {
  switch (mode.kind) {
    case ModeKind::listen: return fmt::format("peersock connect HOST:PORT {}", code);
    case ModeKind::connect: {
      auto colon = mode.target.rfind(':');
      std::string port = colon == std::string::npos ? "PORT" : mode.target.substr(colon + 1);
      return fmt::format("peersock listen {} {}", port, code);
    }
    case ModeKind::stdio_a: return fmt::format("peersock stdio-b {}", code);
    case ModeKind::stdio_b: return fmt::format("peersock stdio-a {}", code);
  }
  return {};
}

class Session {
 public:
  explicit Session(Options options) : options_(std::move(options)), status_(is_stdio()) {}
  ~Session() {
    if (deadline_id_ != 0) g_source_remove(deadline_id_);
    if (accept_watch_ != 0) g_source_remove(accept_watch_);
    if (sweep_id_ != 0) g_source_remove(sweep_id_);
    if (finish_poll_id_ != 0) g_source_remove(finish_poll_id_);
    if (path_report_id_ != 0) g_source_remove(path_report_id_);
    for (auto id : signal_ids_) g_source_remove(id);
    g_cancellable_cancel(cancellable_);
    g_object_unref(cancellable_);
    pending_.clear();
    pumps_.clear();
    control_ = {};  // streams before the endpoint that holds their bytes
    auth_ = {};
    driver_.reset();
    endpoint_.reset();
    agent_.reset();
    client_.reset();
    listener_.reset();
    g_main_loop_unref(loop_);
  }

  int run() {
    guarded([&] { start(); });
    if (!quit_) g_main_loop_run(loop_);
    return exit_status_;
  }

 private:
  // Every callback from the loop goes through here: an exception ends the
  // session with its exit code and one line on stderr, never a crash.
  template <typename F>
  void guarded(F&& f) {
    try {
      f();
    } catch (const CounterpartyError& e) {
      finish(e.code(), fmt::format("the peer or relay sent invalid data: {}", e.what()));
    } catch (const Error& e) {
      finish(e.code(), e.what());
    } catch (const std::exception& e) {
      finish(ExitCode::failure, fmt::format("internal error: {}", e.what()));
    }
  }

  bool is_stdio() const { return options_.mode.kind == ModeKind::stdio_a || options_.mode.kind == ModeKind::stdio_b; }
  bool generator() const { return !options_.code.has_value(); }
  quic::Role quic_role() const { return generator() ? quic::Role::server : quic::Role::client; }

  void start() {
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
      signal_ids_.push_back(g_unix_signal_add(sig, &Session::on_signal, this));
    }
    // SIGUSR1: one line per open connection on stderr (for bug reports).
    signal_ids_.push_back(g_unix_signal_add(SIGUSR1, &Session::on_dump_signal, this));
    if (options_.mode.kind == ModeKind::listen) {
      listener_.emplace(options_.mode.unix_path.empty()
                            ? forward::LocalListener::tcp(options_.mode.bind_address, options_.mode.port)
                            : forward::LocalListener::unix_socket(options_.mode.unix_path));
    }

    // ICE gathers while the rendezvous runs: both sides in parallel.
    agent_ = std::make_unique<ice::Agent>(generator(), options_.settings,
                                          ice::AgentCallbacks{
                                              [this] { guarded([&] { on_gathering_done(); }); },
                                              [this](const ice::SelectedPath& p) { guarded([&] { on_ice_connected(p); }); },
                                              [this] { guarded([&] { on_ice_failed(); }); },
                                              [this](std::span<const uint8_t> d) { guarded([&] { on_datagram(d); }); },
                                              [this](const Error& e) { finish(e.code(), e.what()); },
                                              [this] { guarded([&] { start_rendezvous(); }); },
                                          });
    protocol_ = std::make_unique<rendezvous::Protocol>(
        generator() ? rendezvous::Role::generator : rendezvous::Role::consumer, rendezvous::random_side(),
        generator() ? std::string() : options_.code->nameplate);
    if (!generator()) code_text_ = options_.code->text;
    status_.phase(ui::Phase::contacting);
    status_.set_sampler([this] {
      std::vector<ui::ConnectionSample> samples;
      for (const auto& p : pumps_) samples.push_back({p.get(), p->bytes_sent(), p->bytes_received()});
      return samples;
    });
    status_.set_path_sampler([this] {
      ui::PathSample p;
      if (!endpoint_ || !endpoint_->handshake_done()) return p;
      auto st = endpoint_->stats();
      if (st.rtt_ms >= 0) p.rtt_ms = st.rtt_ms;
      p.cwnd = st.cwnd;
      p.bytes_in_flight = st.bytes_in_flight;
      return p;
    });
    agent_->gather();
  }

  // Only once the STUN/TURN names resolved: a name that does not resolve is
  // bad input, and bad input must fail before we contact anyone (and before
  // a code is shown). ICE gathering then runs while the rendezvous does.
  void start_rendezvous() {
    if (client_ || finishing_) return;
    client_ = std::make_unique<rendezvous::Client>(
        options_.settings.relay_url,
        rendezvous::ClientCallbacks{
            nullptr,
            [this](std::string_view text) { guarded([&] { handle(protocol_->on_text(text)); }); },
            [this](const Error& e) { guarded([&] { on_relay_failed(e); }); },
        });
  }

  // ---- rendezvous -------------------------------------------------------
  void handle(const rendezvous::Output& out) {
    client_->send(out.to_send);
    for (const auto& event : out.events) {
      if (auto* motd = std::get_if<rendezvous::event::Motd>(&event)) {
        status_.motd(motd->text);
      } else if (auto* allocated = std::get_if<rendezvous::event::NameplateAllocated>(&event)) {
        code_text_ = code::generate(allocated->nameplate, options_.code_words);
        status_.code(code_text_, hint_for_other_side(options_.mode, code_text_));
      } else if (std::holds_alternative<rendezvous::event::MailboxOpen>(event)) {
        status_.phase(ui::Phase::waiting);
      } else if (auto* ice = std::get_if<rendezvous::event::PeerIce>(&event)) {
        on_peer_ice(ice->body);
      }
    }
  }

  void on_relay_failed(const Error& e) {
    // Once both descriptions are exchanged the mailbox is no longer needed.
    if (protocol_ && protocol_->peer_ice_received() && ice_sent_) {
      log::debug(Layer::rendezvous, "rendezvous connection ended: {}", e.what());
      return;
    }
    // Not rethrown: `e` is a reference to a possibly derived error, and a
    // rethrow by value would slice it. Its code and text are all we need.
    finish(e.code(), e.what());
  }

  void on_gathering_done() {
    if (ice_sent_) return;
    ice_sent_ = true;
    auto description = agent_->local_description();
    log::debug(Layer::ice, "sending {} local candidates", description.candidates.size());
    handle(protocol_->send_ice(ice::encode(description)));
  }

  void on_peer_ice(const std::string& body) {
    auto remote = ice::decode(body);
    // Both sides use the lower of the two versions announced.
    version_ = std::min(remote.version, std::min(ice::kOurVersion, options_.settings.protocol_version));
    control_reader_.emplace(version_);
    status_.phase(ui::Phase::finding_path);
    log::debug(Layer::ice, "peer protocol version {}, {} candidates", remote.version, remote.candidates.size());
    make_endpoint();
    set_deadline(kIceDeadlineMs, ExitCode::no_path,
                 fmt::format("no network path to the peer (tried: {})", agent_->tried()));
    agent_->set_remote(remote);
  }

  // ---- ICE ----------------------------------------------------------------
  void on_ice_failed() {
    throw Error(ExitCode::no_path, fmt::format("no network path to the peer (tried: {})", agent_->tried()));
  }

  void on_ice_connected(const ice::SelectedPath& path) {
    // The user-facing path line waits for authentication and the RTT
    // (report_path); libnice may still switch to a better pair until then.
    log::debug(Layer::ice, "first pair connected: {}", ice::describe(path, -1));
    set_deadline(kHandshakeAndAuthDeadlineMs, ExitCode::no_path, "the QUIC handshake or authentication with the peer timed out");
    if (driver_) driver_->kick();  // the client starts its handshake now
  }

  void on_datagram(std::span<const uint8_t> datagram) {
    if (!driver_) return;  // before the peer's description: not ours to read
    driver_->receive(datagram);
  }

  // ---- QUIC ---------------------------------------------------------------
  void make_endpoint() {
    if (endpoint_) return;
    quic::EndpointOptions options;
    options.congestion =
        options_.settings.congestion == config::Congestion::cubic ? quic::Congestion::cubic : quic::Congestion::bbr;
    endpoint_ = std::make_unique<quic::Endpoint>(
        quic_role(), [this](const quic::Endpoint::Batch& b) { agent_->send_batch(b.bytes, b.sizes); }, options,
        quic::now());
    driver_ = std::make_unique<quic::Driver>(*endpoint_, [this] { guarded([&] { on_quic_events(); }); });
  }

  void on_quic_events() {
    if (finishing_) return;
    if (endpoint_->closed()) {
      on_quic_closed(*endpoint_->closed());
      return;
    }
    if (!endpoint_->handshake_done()) return;
    if (!handshake_handled_) on_handshake_done();
    accept_streams();
    poll_auth();
    if (finishing_) return;
    poll_control();
    poll_pending();
    poll_ready_pumps();
    resume_accepting_if_possible();
  }

  void on_quic_closed(const quic::CloseInfo& info) {
    if (info.is_app && info.error_code == quic::kErrorAuthFailed) {
      finish(ExitCode::code_mismatch, "connection code mismatch: the other side typed a different code");
      return;
    }
    if (info.is_app && info.error_code == quic::kErrorProtocol) {
      finish(ExitCode::protocol, fmt::format("the peer ended the connection: it received invalid data ({})", info.reason));
      return;
    }
    if (!authenticated_) {
      finish(ExitCode::no_path, fmt::format("the QUIC connection to the peer failed{}", info.reason.empty() ? "" : ": " + info.reason));
      return;
    }
    if (info.is_app && info.error_code == quic::kErrorNone) {
      bool complete = !is_stdio() || !protocol::has_control_stream(version_) || stdio_done_;
      if (complete) {
        status_.peer_closed();
        finish(ExitCode::ok, {});
      } else {
        finish(ExitCode::peer_gone, "the other side closed the connection before all data was delivered");
      }
      return;
    }
    finish(ExitCode::peer_gone,
           fmt::format("connection to the peer lost{}", info.by_peer ? " (the peer aborted)" : " (no answer from the peer)"));
  }

  void on_handshake_done() {
    handshake_handled_ = true;
    auto exporter = endpoint_->export_keying_material(auth::kExporterLabel, auth::kExporterBytes);
    auth::Secret secret = auth::derive_secret(exporter, code_text_);
    // One session, one derivation: the code is not needed any more (issue 5).
    auth::wipe(code_text_);
    if (options_.code) {
      auth::wipe(options_.code->text);
      for (auto& word : options_.code->words) auth::wipe(word);
    }
    OPENSSL_cleanse(exporter.data(), exporter.size());
    auto role = quic_role() == quic::Role::client ? auth::Role::alice : auth::Role::bob;
    smp_ = std::make_unique<auth::Smp>(role, secret);
    OPENSSL_cleanse(secret.data(), secret.size());
    log::debug(Layer::quic, "handshake complete; authenticating");
    log::debug(Layer::auth, "SMP as {}, secret bound to the TLS exporter", role == auth::Role::alice ? "initiator" : "responder");
    status_.phase(ui::Phase::authenticating);
    if (role == auth::Role::alice) {
      // Stream 0 (keep-alive / control) and stream 4 (auth), as the original.
      auto control = endpoint_->open_stream();
      auto auth = endpoint_->open_stream();
      if (!control || !auth) throw Error(ExitCode::failure, "cannot open the QUIC auth stream");
      control_ = quic::Stream(*endpoint_, *control);
      auth_ = quic::Stream(*endpoint_, *auth);
      write_all(auth_, auth::encode_frame(smp_->start()));
    } else {
      smp_->start();
    }
  }

  // Auth messages and the stream header are small: the stream always has
  // room for them, or it is gone.
  void write_all(quic::Stream& stream, std::span<const uint8_t> bytes) {
    auto r = stream.write(bytes);
    if (r.status != quic::IoStatus::ok || r.bytes != bytes.size()) {
      throw Error(ExitCode::peer_gone, "cannot write to the peer");
    }
    driver_->kick();
  }

  void accept_streams() {
    // Alice opens streams 0 and 4 herself and has no reason to take a peer
    // stream before auth; leaving them queued avoids the original's race
    // (protocol-v1 §7.4).
    if (quic_role() == quic::Role::client && !authenticated_) {
      // ...but the server can only have verified us after our msg3: a
      // stream it opened before that is data before auth (issue 5).
      if (smp_ && !smp_->peer_can_have_succeeded() && endpoint_->accept_queue_size() > 0) {
        throw CounterpartyError("the peer opened a stream before authentication");
      }
      return;
    }
    while (auto accepted = endpoint_->accept_stream()) {
      quic::Stream stream(*endpoint_, *accepted);
      auto id = stream.id();
      if (id == 0 && !control_) {
        control_ = std::move(stream);
      } else if (id == 4 && !auth_ && !authenticated_) {
        auth_ = std::move(stream);
      } else if (!authenticated_) {
        throw CounterpartyError(fmt::format("the peer opened stream {} before authentication", id));
      } else {
        on_data_stream(std::move(stream));
      }
    }
  }

  // ---- auth -----------------------------------------------------------------
  void poll_auth() {
    if (!auth_ || authenticated_ || !smp_) return;
    uint8_t buf[4096];
    for (;;) {
      auto r = auth_.read(buf);
      if (r.status == quic::IoStatus::would_block) break;
      if (r.status != quic::IoStatus::ok) throw CounterpartyError("the peer closed the authentication stream");
      frames_.feed({buf, r.bytes});
      while (auto frame = frames_.next()) {
        auto step = smp_->on_message(*frame);
        log::debug(Layer::auth, "SMP message of {} bytes in, {} bytes out", frame->size(), step.reply.size());
        if (!step.reply.empty()) write_all(auth_, auth::encode_frame(step.reply));
        if (step.status == auth::Status::mismatch) {
          smp_.reset();  // wipes the secret
          finish(ExitCode::code_mismatch, "connection code mismatch: the other side typed a different code");
          return;
        }
        if (step.status == auth::Status::success) {
          on_authenticated();
          return;
        }
      }
    }
  }

  void on_authenticated() {
    authenticated_ = true;
    smp_.reset();  // wipes the secret
    clear_deadline();
    start_path_report();
    // The mailbox has done its job: release the nameplate, close happily.
    if (client_) {
      client_->send(protocol_->finish("happy").to_send);
      client_->close();
    }
    switch (options_.mode.kind) {
      case ModeKind::listen:
        status_.authenticated(
            fmt::format("authenticated; forwarding connections to {} to the other side", listener_->description()));
        accept_watch_ = g_unix_fd_add(listener_->fd(), G_IO_IN, &Session::on_accept, this);
        break;
      case ModeKind::connect:
        status_.authenticated(fmt::format("authenticated; the other side's connections go to {}", options_.mode.target));
        break;
      case ModeKind::stdio_b: {
        status_.authenticated("authenticated; forwarding stdin/stdout");
        auto stream = open_data_stream();
        if (!stream) throw Error(ExitCode::peer_gone, "cannot open a stream to the peer");
        make_pump(std::move(stream), 0, 1, false, false);
        break;
      }
      case ModeKind::stdio_a:
        status_.authenticated("authenticated; forwarding stdin/stdout");
        break;
    }
    accept_streams();
  }

  // ---- forwarding -----------------------------------------------------------
  quic::Stream open_data_stream() {
    auto id = endpoint_->open_stream();
    if (!id) return {};
    quic::Stream stream(*endpoint_, *id);
    write_all(stream, std::span<const uint8_t>(&kDataStreamMagic, 1));
    return stream;
  }

  static gboolean on_accept(gint fd, GIOCondition, gpointer self) {
    auto* session = static_cast<Session*>(self);
    session->guarded([&] {
      for (;;) {
        if (protocol::several_connections(session->version_) && !session->stream_credit()) {
          session->pause_accepting();
          break;
        }
        int client = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (client < 0) break;
        if (!protocol::several_connections(session->version_) && session->connections_ >= 1) {
          log::error_line("refusing another connection: the other side runs the original peersock, which carries one");
          close(client);
          continue;
        }
        auto stream = session->open_data_stream();
        if (!stream) {
          log::error_line("refusing a connection: the peer allows no more streams right now");
          close(client);
          continue;
        }
        session->make_pump(std::move(stream), client, client, true, true);
      }
    });
    return G_SOURCE_CONTINUE;
  }

  // The peer limits how many streams may be open at once (we and OpenSSL
  // grant 100, and one more as each ends). At the limit we stop accepting:
  // further connections wait in the kernel's accept queue, a bounded queue
  // that costs us nothing, instead of being refused.
  bool stream_credit() const { return endpoint_->streams_left() > 0; }
  void pause_accepting() {
    if (accept_watch_ == 0) return;
    log::debug(Layer::forward, "the peer allows no more streams for now; new connections wait");
    g_source_remove(accept_watch_);
    accept_watch_ = 0;
    accept_paused_ = true;
  }
  void resume_accepting_if_possible() {
    if (!accept_paused_ || finishing_ || !stream_credit()) return;
    accept_paused_ = false;
    accept_watch_ = g_unix_fd_add(listener_->fd(), G_IO_IN, &Session::on_accept, this);
  }

  void on_data_stream(quic::Stream stream) {
    bool single = is_stdio() || !protocol::several_connections(version_);
    if (options_.mode.opener() || (single && connections_ + pending_.size() >= 1)) {
      log::debug(Layer::forward, "rejecting unexpected stream {}", stream.id());
      stream.reset();
      return;
    }
    pending_.push_back(std::make_unique<Pending>(Pending{std::move(stream)}));
  }

  struct Pending {
    quic::Stream stream;
    bool magic_seen = false;
    bool connecting = false;
  };

  void poll_pending() {
    for (auto it = pending_.begin(); it != pending_.end();) {
      Pending& p = **it;
      if (!p.magic_seen) {
        uint8_t byte = 0;
        auto r = p.stream.read({&byte, 1});
        if (r.status == quic::IoStatus::ok) {
          check_data_stream_magic(byte);
          p.magic_seen = true;
        } else if (r.status != quic::IoStatus::would_block) {
          it = pending_.erase(it);
          continue;
        }
      }
      if (p.magic_seen && !p.connecting) {
        if (options_.mode.kind == ModeKind::stdio_a) {
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

  void start_connect(Pending* pending) {
    g_autoptr(GSocketClient) socket_client = g_socket_client_new();
    struct Ctx {
      Session* session;
      Pending* pending;
    };
    // connect-unix: a unix socket address; connect: HOST:PORT, resolved by GIO.
    g_autoptr(GSocketConnectable) target =
        options_.mode.unix_path.empty()
            ? g_network_address_parse(options_.mode.target.c_str(), 0, nullptr)
            : G_SOCKET_CONNECTABLE(g_unix_socket_address_new(options_.mode.unix_path.c_str()));
    if (target == nullptr) throw UsageError(fmt::format("connect: '{}' is not HOST:PORT", options_.mode.target));
    auto* ctx = new Ctx{this, pending};
    g_socket_client_connect_async(
        socket_client, target, cancellable_,
        [](GObject* source, GAsyncResult* result, gpointer data) {
          std::unique_ptr<Ctx> ctx(static_cast<Ctx*>(data));
          g_autoptr(GError) error = nullptr;
          g_autoptr(GSocketConnection) connection =
              g_socket_client_connect_finish(G_SOCKET_CLIENT(source), result, &error);
          if (error && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) return;
          ctx->session->guarded([&] { ctx->session->on_connected(ctx->pending, connection, error); });
        },
        ctx);
  }

  void on_connected(Pending* pending, GSocketConnection* connection, GError* error) {
    auto it = std::find_if(pending_.begin(), pending_.end(), [&](auto& p) { return p.get() == pending; });
    if (it == pending_.end()) return;
    quic::Stream stream = std::move((*it)->stream);
    pending_.erase(it);
    if (connection == nullptr) {
      std::string message = fmt::format("cannot connect to {}: {}", options_.mode.target, error ? error->message : "failed");
      if (!protocol::several_connections(version_)) throw Error(ExitCode::local, message);
      log::error_line(message);
      stream.reset();
      driver_->kick();
      return;
    }
    // Keep our own descriptor; the GSocketConnection closes its copy.
    int fd = fcntl(g_socket_get_fd(g_socket_connection_get_socket(connection)), F_DUPFD_CLOEXEC, 3);
    if (fd < 0) throw Error(ExitCode::local, fmt::format("cannot keep the connection: {}", g_strerror(errno)));
    make_pump(std::move(stream), fd, fd, true, true);
    driver_->kick();
  }

  void make_pump(quic::Stream stream, int read_fd, int write_fd, bool is_socket, bool owns) {
    ++connections_;
    forward::PumpOptions opts{read_fd, write_fd, is_socket, owns, protocol::has_fin(version_)};
    forward::PumpEvents events{
        [this] { if (driver_) driver_->kick(); },
        [this] { guarded([&] { on_pump_finished(); }); },
        [this] { guarded([&] { finish(ExitCode::ok, {}); }); },
        [this](uint64_t id, uint64_t limit) { guarded([&] { send_control(encode_credit({id, limit})); }); },
    };
    pumps_.push_back(std::make_unique<forward::Pump>(std::move(stream), opts, std::move(events), scratch_, poller_,
                                                     protocol::uses_credit(version_) ? &credit_ : nullptr));
    pumps_by_stream_[pumps_.back()->stream_id()] = pumps_.back().get();
    status_.connection_opened(pumps_.back().get());
    pumps_.back()->poll();
    driver_->kick();
  }

  // Only the pumps whose streams changed since the last run: polling every
  // pump after every run made each run's cost grow with the number of open
  // connections (measured: 62 MB/s through one connection fell to 7 MB/s
  // with 1000 idle ones open).
  void poll_ready_pumps() {
    for (int64_t id : endpoint_->take_ready()) {
      auto it = pumps_by_stream_.find(static_cast<uint64_t>(id));
      if (it != pumps_by_stream_.end()) it->second->poll();
    }
  }

  void on_pump_finished() {
    if (sweep_id_ == 0) sweep_id_ = g_idle_add(&Session::on_sweep, this);
    // stdio has exactly one pump. If it ended in a reset (the peer reset the
    // stream, or stdin/stdout failed), some data was not delivered: saying "D"
    // or exiting 0 would hide a lost tail from the user.
    if (is_stdio() && !pumps_.empty() && !pumps_.front()->clean()) {
      finish(ExitCode::peer_gone, "the data stream was reset before all data was delivered");
      return;
    }
    if (!protocol::has_control_stream(version_)) {
      finish(ExitCode::ok, {});
      return;
    }
    // Tell the peer that one stream was delivered completely, so that a
    // stdio peer knows it may close the connection without losing a tail.
    ++markers_to_send_;
    if (is_stdio()) stdio_done_ = true;
    flush_markers();
    maybe_close_after_stdio();
  }

  static gboolean on_sweep(gpointer self) {
    auto* session = static_cast<Session*>(self);
    session->sweep_id_ = 0;
    auto& pumps = session->pumps_;
    for (auto& p : pumps) {
      if (!p->finished()) continue;
      session->status_.connection_closed(p.get(), p->bytes_sent(), p->bytes_received(), p->clean());
      if (!session->is_stdio()) session->pumps_by_stream_.erase(p->stream_id());
    }
    if (!session->is_stdio()) pumps.erase(std::remove_if(pumps.begin(), pumps.end(), [](auto& p) { return p->finished(); }), pumps.end());
    return G_SOURCE_REMOVE;
  }

  // v2: each side writes one 'D' on stream 0 per data stream it delivered
  // completely (peer FIN seen and everything written locally). A stdio side
  // closes the connection only when it has delivered its stream and the peer
  // has said the same, so no tail is lost. Markers wait until stream 0 exists
  // (the server only sees it once the client writes to it).
  void flush_markers() {
    if (!control_ || markers_to_send_ == 0) return;
    std::vector<uint8_t> markers(markers_to_send_, kDoneMarker);
    markers_to_send_ = 0;
    send_control(markers);
    if (stdio_done_) done_sent_ = true;
  }

  // Everything we say on stream 0 goes through one bounded queue: the
  // stream may not take it all at once (QUIC flow control), and on the
  // server it exists only once the client has written to it. The peer
  // reads stream 0 eagerly, so a queue that keeps growing means it stopped.
  void send_control(std::span<const uint8_t> bytes) {
    control_out_.insert(control_out_.end(), bytes.begin(), bytes.end());
    flush_control();
  }
  void flush_control() {
    if (!control_ || control_out_.empty()) return;
    auto r = control_.write(control_out_);
    if (r.status == quic::IoStatus::ok) {
      control_out_.erase(control_out_.begin(), control_out_.begin() + static_cast<std::ptrdiff_t>(r.bytes));
      driver_->kick();
    } else if (r.status == quic::IoStatus::reset) {
      throw Error(ExitCode::peer_gone, "cannot write to the peer");
    }
    if (control_out_.size() > kMaxControlBacklog) {
      throw Error(ExitCode::peer_gone, "the peer stopped reading the control stream");
    }
  }

  void poll_control() {
    if (!control_) return;
    uint8_t buf[4096];
    quic::IoResult r;
    while (control_reader_ && (r = control_.read(buf)).status == quic::IoStatus::ok) {
      auto events = control_reader_->feed({buf, r.bytes});
      if (events.done > 0) peer_done_ = true;
      for (const auto& grant : events.credits) {
        // Grants for streams already gone (or never ours) are stale or
        // meaningless: nothing to do.
        if (auto it = pumps_by_stream_.find(grant.stream_id); it != pumps_by_stream_.end()) it->second->on_grant(grant.limit);
      }
      on_control_ping(events.pings, events.pongs);
    }
    flush_control();
    flush_markers();
    maybe_close_after_stdio();
  }

  void maybe_close_after_stdio() {
    if (is_stdio() && stdio_done_ && peer_done_ && done_sent_) finish(ExitCode::ok, {});
  }

  // ---- path report (issue 3): one line once authenticated, with the RTT ----
  // v2 peers: the client pings on stream 0 right after auth (the server only
  // sees stream 0 once the client wrote to it) and the server pings back.
  // v1 peers get no ping; the line then has no RTT.
  void start_path_report() {
    if (protocol::has_control_stream(version_) && control_ && quic_role() == quic::Role::client) {
      send_control(ping_.ping(g_get_monotonic_time()));
    }
    if (!protocol::has_control_stream(version_)) {
      report_path(-1);
      return;
    }
    if (path_reported_) return;  // the server may have its RTT before its own auth ends
    path_report_id_ = g_timeout_add(kPathReportWaitMs, &Session::on_path_report_timeout, this);
  }

  void on_control_ping(size_t pings, size_t pongs) {
    auto result = ping_.on_control(pings, pongs, g_get_monotonic_time());
    if (!result.reply.empty()) send_control(result.reply);
    if (quic_role() == quic::Role::server && ping_.pinged_by_peer() && !server_pinged_) {
      server_pinged_ = true;
      send_control(ping_.ping(g_get_monotonic_time()));
    }
    if (result.rtt_ms) {
      credit_.rtt_us = static_cast<int64_t>(*result.rtt_ms * 1000.0);
      report_path(*result.rtt_ms);
    }
  }

  static gboolean on_path_report_timeout(gpointer self) {
    auto* session = static_cast<Session*>(self);
    session->path_report_id_ = 0;
    session->report_path(-1);
    return G_SOURCE_REMOVE;
  }

  void report_path(double rtt_ms) {
    if (path_reported_ || finishing_) return;
    path_reported_ = true;
    if (path_report_id_ != 0) g_source_remove(path_report_id_);
    path_report_id_ = 0;
    if (auto path = agent_->selected_path()) {
      status_.path(*path, rtt_ms < 0 ? std::nullopt : std::optional<double>(rtt_ms), ice::describe(*path, rtt_ms));
    }
  }

  // ---- deadlines, signals, teardown ---------------------------------------
  void set_deadline(guint ms, ExitCode code, std::string message) {
    clear_deadline();
    deadline_code_ = code;
    deadline_message_ = std::move(message);
    deadline_id_ = g_timeout_add(ms, &Session::on_deadline, this);
  }
  void clear_deadline() {
    if (deadline_id_ != 0) g_source_remove(deadline_id_);
    deadline_id_ = 0;
  }
  static gboolean on_deadline(gpointer self) {
    auto* session = static_cast<Session*>(self);
    session->deadline_id_ = 0;
    session->finish(session->deadline_code_, session->deadline_message_);
    return G_SOURCE_REMOVE;
  }

  static gboolean on_dump_signal(gpointer self) {
    auto* session = static_cast<Session*>(self);
    fmt::print(stderr, "peersock: state: protocol v{}, {} connections, {} control bytes unsent\n", session->version_,
               session->pumps_.size(), session->control_out_.size());
    for (const auto& p : session->pumps_) fmt::print(stderr, "peersock: state: {}\n", p->describe());
    return G_SOURCE_CONTINUE;
  }

  static gboolean on_signal(gpointer self) {
    auto* session = static_cast<Session*>(self);
    session->finish(ExitCode::ok, {});
    session->exit_status_ = 130;
    return G_SOURCE_CONTINUE;
  }

  // Ends the session: the first reason wins. Closes top-down: QUIC (flushing
  // streams), then the mailbox with a mood, then waits briefly for both.
  void finish(ExitCode code, const std::string& message) {
    if (finishing_) return;
    finishing_ = true;
    log::debug(Layer::session, "ending: {}", exit_code_name(code));
    exit_status_ = static_cast<int>(code);
    clear_deadline();
    status_.finished(code, message);
    if (accept_watch_ != 0) {
      g_source_remove(accept_watch_);
      accept_watch_ = 0;
    }
    if (endpoint_ && !endpoint_->closed()) {
      uint64_t app = code == ExitCode::ok ? quic::kErrorNone
                     : code == ExitCode::code_mismatch ? quic::kErrorAuthFailed
                     : code == ExitCode::protocol ? quic::kErrorProtocol
                                                  : quic::kErrorLocal;
      endpoint_->close(app, code == ExitCode::ok ? "done" : std::string(exit_code_name(code)), quic::now());
      driver_->kick();
    }
    if (client_ && protocol_) {
      const char* mood = code == ExitCode::ok ? (protocol_->peer_ice_received() ? "happy" : "lonely")
                         : code == ExitCode::code_mismatch ? "scary"
                                                           : "errory";
      try {
        client_->send(protocol_->finish(mood).to_send);
      } catch (const std::exception&) {
      }
      client_->close();
    }
    finish_started_us_ = g_get_monotonic_time();
    finish_poll_id_ = g_timeout_add(20, &Session::on_finish_poll, this);
  }

  static gboolean on_finish_poll(gpointer self) {
    auto* session = static_cast<Session*>(self);
    bool quic_done = !session->endpoint_ || session->endpoint_->shutdown_complete();
    bool relay_done = !session->client_ || session->client_->closed();
    bool late = g_get_monotonic_time() - session->finish_started_us_ > kShutdownDeadlineMs * 1000LL;
    if ((quic_done && relay_done) || late) {
      session->finish_poll_id_ = 0;
      session->quit_ = true;
      g_main_loop_quit(session->loop_);
      return G_SOURCE_REMOVE;
    }
    if (session->driver_ && !quic_done) session->driver_->kick();
    return G_SOURCE_CONTINUE;
  }

  Options options_;
  ui::Status status_;
  GMainLoop* loop_ = g_main_loop_new(nullptr, FALSE);
  GCancellable* cancellable_ = g_cancellable_new();
  int exit_status_ = 0;
  bool finishing_ = false, quit_ = false;
  gint64 finish_started_us_ = 0;
  guint finish_poll_id_ = 0;
  std::vector<guint> signal_ids_;

  std::optional<forward::LocalListener> listener_;
  guint accept_watch_ = 0;
  bool accept_paused_ = false;  // waiting for the peer to allow another stream

  std::unique_ptr<rendezvous::Protocol> protocol_;
  std::unique_ptr<rendezvous::Client> client_;
  std::string code_text_;
  bool ice_sent_ = false;

  std::unique_ptr<ice::Agent> agent_;
  int version_ = 1;  // negotiated: the lower of ours and the peer's
  std::optional<ControlReader> control_reader_;  // set with version_
  std::vector<uint8_t> control_out_;

  std::unique_ptr<quic::Endpoint> endpoint_;
  std::unique_ptr<quic::Driver> driver_;
  quic::Stream control_, auth_;
  std::unique_ptr<auth::Smp> smp_;
  auth::FrameReader frames_;
  bool handshake_handled_ = false;
  bool authenticated_ = false;

  std::vector<std::unique_ptr<Pending>> pending_;
  forward::Scratch scratch_;  // before pumps_: they use these until destroyed
  forward::Poller poller_;
  forward::CreditContext credit_;  // before pumps_: they use it until destroyed
  std::vector<std::unique_ptr<forward::Pump>> pumps_;
  std::unordered_map<uint64_t, forward::Pump*> pumps_by_stream_;  // v3 grants find their pump
  size_t connections_ = 0;
  guint sweep_id_ = 0;
  bool stdio_done_ = false, peer_done_ = false, done_sent_ = false;
  size_t markers_to_send_ = 0;

  ControlPing ping_;
  bool server_pinged_ = false, path_reported_ = false;
  guint path_report_id_ = 0;

  guint deadline_id_ = 0;
  ExitCode deadline_code_ = ExitCode::failure;
  std::string deadline_message_;
};

}  // namespace

int run(Options options) {
  signal(SIGPIPE, SIG_IGN);
  Session session(std::move(options));
  return session.run();
}

}  // namespace peersock::session

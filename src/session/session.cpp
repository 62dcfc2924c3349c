// The session: a phase sequencer over the stages below it. It brings them up
// bottom-up as each one completes, owns the deadlines, and ends the run with
// one exit code, closing the stack top-down (forwarding, QUIC, mailbox).
//
//   rendezvous   rendezvous::Protocol + Client (mailbox, the code)
//   link         ICE agent + QUIC endpoint + driver (link.hpp)
//   auth         AuthGate: SMP on stream 4, stream admission (auth_gate.hpp)
//   control      ControlChannel: stream 0 (control_channel.hpp)
//   forwarding   forward::Forwarder: local connections <-> data streams
#include "peersock/session/session.hpp"

#include <glib-unix.h>
#include <signal.h>

#include <memory>
#include <optional>
#include <utility>

#include "peersock/auth/smp.hpp"
#include "peersock/forward/forwarder.hpp"
#include "peersock/glib/raii.hpp"
#include "peersock/ice/body.hpp"
#include "peersock/log.hpp"
#include "peersock/protocol/sides.hpp"
#include "peersock/protocol/version.hpp"
#include "peersock/quic/stream.hpp"
#include "peersock/rendezvous/client.hpp"
#include "peersock/rendezvous/protocol.hpp"
#include "peersock/session/auth_gate.hpp"
#include "peersock/session/control_channel.hpp"
#include "peersock/session/link.hpp"
#include "peersock/session/mode.hpp"
#include "peersock/text.hpp"
#include "peersock/ui/status.hpp"

namespace peersock::session {
namespace {

using log::Layer;

// Phase deadlines: once both sides are present nothing may wait forever.
constexpr guint kIceDeadlineMs = 30000;
constexpr guint kHandshakeAndAuthDeadlineMs = 20000;
constexpr gint64 kShutdownDeadlineUs = 5'000'000;

enum class Phase {
  rendezvous,      // contacting the mailbox, waiting for the peer
  connecting,      // the peer's description arrived: ICE, then the QUIC handshake
  authenticating,  // SMP
  forwarding,
  finishing,  // closing top-down; the loop quits when all is closed
};

ui::PathInfo path_info(const ice::SelectedPath& p) {
  return {p.relayed, p.local, p.remote, p.transport, p.relay_server, p.relay_transport};
}

uint64_t close_code(ExitCode code) {
  switch (code) {
    case ExitCode::ok: return quic::kErrorNone;
    case ExitCode::code_mismatch: return quic::kErrorAuthFailed;
    case ExitCode::protocol: return quic::kErrorProtocol;
    default: return quic::kErrorLocal;
  }
}

class Session {
 public:
  explicit Session(Options options)
      : options_(std::move(options)), sides_{!options_.code.has_value(), forward::is_opener(options_.mode)}, status_(is_stdio()) {}

  ~Session() {
    // Top down: forwarding and the streams it holds, the stages on stream 0
    // and 4, then the link (QUIC, ICE), then the mailbox.
    forwarder_.reset();
    control_.reset();
    gate_.reset();
    link_.reset();
    client_.reset();
  }

  int run() {
    guarded([&] { start(); });
    if (!quit_) g_main_loop_run(loop_.get());
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
  void rethrow_guarded(std::exception_ptr e) {
    guarded([&] { std::rethrow_exception(e); });
  }

  bool is_stdio() const { return forward::is_stdio(options_.mode); }
  bool finishing() const { return phase_ == Phase::finishing; }

  void start() {
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) signals_.emplace_back(g_unix_signal_add(sig, &Session::on_signal, this));
    // SIGUSR1: one line per open connection on stderr (for bug reports).
    signals_.emplace_back(g_unix_signal_add(SIGUSR1, &Session::on_dump_signal, this));
    // The local side first: a port in use fails before anyone is contacted.
    forwarder_ = std::make_unique<forward::Forwarder>(options_.mode, forwarder_events());
    // ICE gathers while the rendezvous runs: both sides in parallel.
    link_ = std::make_unique<Link>(sides_.ice_controlling(), options_.settings,
                                   LinkEvents{
                                       [this] { guarded([&] { start_rendezvous(); }); },
                                       [this] { guarded([&] { on_gathering_done(); }); },
                                       [this](const ice::SelectedPath& p) { guarded([&] { on_ice_connected(p); }); },
                                       [this] { guarded([&] { on_ice_failed(); }); },
                                       [this](const Error& e) { finish(e.code(), e.what()); },
                                       [this] { guarded([&] { on_quic_ran(); }); },
                                   });
    protocol_ = std::make_unique<rendezvous::Protocol>(
        sides_.generator ? rendezvous::Role::generator : rendezvous::Role::consumer, rendezvous::random_side(),
        sides_.generator ? std::string() : options_.code->nameplate);
    if (!sides_.generator) code_text_ = options_.code->text;
    status_.phase(ui::Phase::contacting);
    status_.set_sampler([this] {
      std::vector<ui::ConnectionSample> out;
      for (const auto& s : forwarder_->samples()) out.push_back({s.id, s.sent, s.received});
      return out;
    });
    status_.set_path_sampler([this] { return path_sample(); });
    link_->ice().gather();
  }

  forward::ForwarderEvents forwarder_events() {
    return forward::ForwarderEvents{
        [this] { link_->kick(); },
        [this](const forward::Pump& p) { status_.connection_opened(&p); },
        [this](const forward::Pump& p) {
          status_.connection_closed(&p, p.bytes_sent(), p.bytes_received(), p.clean());
        },
        [this] { guarded([&] { on_delivered(); }); },
        [this] { finish(ExitCode::peer_gone, "the data stream was reset before all data was delivered"); },
        [this] { finish(ExitCode::ok, {}); },
        [this](uint64_t id, uint64_t limit) { guarded([&] { control_->send_grant(id, limit); }); },
        [this](std::exception_ptr e) { rethrow_guarded(e); },
    };
  }

  ui::PathSample path_sample() const {
    ui::PathSample p;
    quic::Endpoint* q = link_ ? link_->quic() : nullptr;
    if (q == nullptr || !q->handshake_done()) return p;
    auto st = q->stats();
    if (st.rtt_ms >= 0) p.rtt_ms = st.rtt_ms;
    p.cwnd = st.cwnd;
    p.bytes_in_flight = st.bytes_in_flight;
    return p;
  }

  // ---- rendezvous ---------------------------------------------------------
  // Only once the STUN/TURN names resolved: a name that does not resolve is
  // bad input, and bad input must fail before we contact anyone (and before
  // a code is shown).
  void start_rendezvous() {
    if (client_ || finishing()) return;
    client_ = std::make_unique<rendezvous::Client>(
        options_.settings.relay_url,
        rendezvous::ClientCallbacks{
            nullptr,
            [this](std::string_view text) { guarded([&] { handle(protocol_->on_text(text)); }); },
            [this](const Error& e) { guarded([&] { on_relay_failed(e); }); },
        });
  }

  void handle(const rendezvous::Output& out) {
    client_->send(out.to_send);
    for (const auto& event : out.events) {
      if (auto* motd = std::get_if<rendezvous::event::Motd>(&event)) {
        status_.motd(motd->text);
      } else if (auto* allocated = std::get_if<rendezvous::event::NameplateAllocated>(&event)) {
        code_text_ = code::generate(allocated->nameplate, options_.code_words);
        std::string hint = hint_for_other_side(options_.mode, code_text_);
        status_.code(code_text_, hint);
        auth::wipe(hint);
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
    finish(e.code(), e.what());
  }

  void on_gathering_done() {
    if (ice_sent_) return;
    ice_sent_ = true;
    auto description = link_->ice().local_description();
    log::debug(Layer::ice, "sending {} local candidates", description.candidates.size());
    handle(protocol_->send_ice(ice::encode(description)));
  }

  void on_peer_ice(const std::string& body) {
    auto remote = ice::decode(body);
    // Both sides use the lower of the two versions announced.
    version_ = std::min(remote.version, std::min(ice::kOurVersion, options_.settings.protocol_version));
    log::debug(Layer::ice, "peer protocol version {}, {} candidates", remote.version, remote.candidates.size());
    phase_ = Phase::connecting;
    status_.phase(ui::Phase::finding_path);
    quic::EndpointOptions quic_options;
    quic_options.congestion =
        options_.settings.congestion == config::Congestion::cubic ? quic::Congestion::cubic : quic::Congestion::bbr;
    link_->start_quic(sides_.quic_server() ? quic::Role::server : quic::Role::client, quic_options);
    set_deadline(kIceDeadlineMs, ExitCode::no_path,
                 fmt::format("no network path to the peer (tried: {})", link_->ice().tried()));
    link_->ice().set_remote(remote);
  }

  // ---- ICE and QUIC ---------------------------------------------------------
  void on_ice_failed() {
    throw Error(ExitCode::no_path, fmt::format("no network path to the peer (tried: {})", link_->ice().tried()));
  }

  void on_ice_connected(const ice::SelectedPath& path) {
    // The user-facing path line waits for authentication; libnice may still
    // switch to a better pair until then.
    log::debug(Layer::ice, "first pair connected: {}", ui::path_line(path_info(path), std::nullopt));
    set_deadline(kHandshakeAndAuthDeadlineMs, ExitCode::no_path,
                 "the QUIC handshake or authentication with the peer timed out");
    link_->kick();  // the client starts its handshake now
  }

  void on_quic_ran() {
    if (finishing()) return;
    quic::Endpoint& q = *link_->quic();
    if (q.closed()) {
      on_quic_closed(*q.closed());
      return;
    }
    if (!q.handshake_done()) return;
    if (phase_ == Phase::connecting) begin_auth(q);
    admit_streams();
    if (phase_ == Phase::authenticating) {
      auto verdict = gate_->poll();
      if (verdict == AuthGate::Verdict::mismatch) {
        finish(ExitCode::code_mismatch, "connection code mismatch: the other side typed a different code");
        return;
      }
      if (verdict == AuthGate::Verdict::success) {
        on_authenticated();
        admit_streams();  // data streams that came with the last SMP message
      }
    }
    if (finishing()) return;
    control_->poll(g_get_monotonic_time());
    forwarder_->after_quic_run();
    maybe_close_after_stdio();
  }

  void admit_streams() {
    gate_->admit([this](quic::Stream s) { control_->attach(std::move(s)); },
                 [this](quic::Stream s) { forwarder_->on_stream(std::move(s)); });
  }

  void on_quic_closed(const quic::CloseInfo& info) {
    const std::string reason = text::quote(info.reason);  // the peer's words
    if (info.is_app && info.error_code == quic::kErrorAuthFailed) {
      finish(ExitCode::code_mismatch, "connection code mismatch: the other side typed a different code");
    } else if (info.is_app && info.error_code == quic::kErrorProtocol) {
      finish(ExitCode::protocol, fmt::format("the peer ended the connection: it received invalid data ({})", reason));
    } else if (phase_ != Phase::forwarding) {
      finish(ExitCode::no_path,
             fmt::format("the QUIC connection to the peer failed{}", info.reason.empty() ? "" : ": " + reason));
    } else if (info.is_app && info.error_code == quic::kErrorNone) {
      bool complete = !is_stdio() || !protocol::has_control_stream(version_) || forwarder_->stdio_delivered();
      if (complete) {
        status_.peer_closed();
        finish(ExitCode::ok, {});
      } else {
        finish(ExitCode::peer_gone, "the other side closed the connection before all data was delivered");
      }
    } else {
      finish(ExitCode::peer_gone, fmt::format("connection to the peer lost{}",
                                              info.by_peer ? " (the peer aborted)" : " (no answer from the peer)"));
    }
  }

  // ---- auth -------------------------------------------------------------------
  void begin_auth(quic::Endpoint& q) {
    phase_ = Phase::authenticating;
    gate_ = std::make_unique<AuthGate>(q, sides_, [this] { link_->kick(); });
    control_ = std::make_unique<ControlChannel>(
        version_, sides_.quic_server(),
        ControlChannelEvents{
            [this] { link_->kick(); },
            [this] { peer_delivered_ = true; },
            [this](double rtt_ms) { forwarder_->set_rtt_us(static_cast<int64_t>(rtt_ms * 1000.0)); },
            [this](uint64_t id, uint64_t limit) { forwarder_->on_grant(id, limit); },
        });
    log::debug(Layer::quic, "handshake complete (ALPN '{}'); authenticating", q.alpn());
    status_.phase(ui::Phase::authenticating);
    quic::Stream control = gate_->begin(code_text_);
    // The code is not needed any more: no copy of it outlives the derivation.
    if (options_.code) {
      auth::wipe(options_.code->text);
      for (auto& word : options_.code->words) auth::wipe(word);
    }
    if (control) control_->attach(std::move(control));
  }

  void on_authenticated() {
    phase_ = Phase::forwarding;
    clear_deadline();
    // The mailbox has done its job: release the nameplate, close happily.
    if (client_) {
      client_->send(protocol_->finish("happy").to_send);
      client_->close();
    }
    // v2/v3 peers measure their RTT with a ping on stream 0, the client
    // first; ours comes from QUIC itself.
    if (!sides_.quic_server() && protocol::has_control_stream(version_) && version_ < 4)
      control_->start_ping(g_get_monotonic_time());
    auto stats = link_->quic()->stats();
    if (stats.rtt_ms > 0) forwarder_->set_rtt_us(static_cast<int64_t>(stats.rtt_ms * 1000.0));
    status_.authenticated(authenticated_line(options_.mode, forwarder_->listener_description()));
    report_path(stats.rtt_ms);
    forwarder_->start(*link_->quic(),
                      forward::Capabilities{protocol::has_fin(version_), protocol::several_connections(version_),
                                            protocol::uses_credit(version_)});
  }

  // One line once authenticated, with QUIC's RTT (rtt_ms < 0: unknown).
  void report_path(double rtt_ms) {
    if (auto path = link_->ice().selected_path()) {
      status_.path(path_info(*path), rtt_ms < 0 ? std::nullopt : std::optional<double>(rtt_ms));
    }
  }

  // ---- ending a stdio run (docs/protocol.md §8.1) -----------------------------
  // Each side writes one 'D' on stream 0 per data stream it delivered
  // completely. A stdio side closes the connection only when it has
  // delivered its stream and the peer has said the same, so no tail is lost.
  void on_delivered() {
    if (!protocol::has_control_stream(version_)) {
      finish(ExitCode::ok, {});  // the original: one connection, then done
      return;
    }
    control_->send_delivered();
    maybe_close_after_stdio();
  }

  void maybe_close_after_stdio() {
    if (is_stdio() && forwarder_->stdio_delivered() && peer_delivered_ && control_->delivered_sent())
      finish(ExitCode::ok, {});
  }

  // ---- deadlines, signals, teardown ---------------------------------------
  void set_deadline(guint ms, ExitCode code, std::string message) {
    deadline_code_ = code;
    deadline_message_ = std::move(message);
    deadline_ = g_timeout_add(ms, &Session::on_deadline, this);
  }
  void clear_deadline() { deadline_.reset(); }
  static gboolean on_deadline(gpointer self) {
    auto* session = static_cast<Session*>(self);
    session->deadline_.fired();
    session->finish(session->deadline_code_, session->deadline_message_);
    return G_SOURCE_REMOVE;
  }

  static gboolean on_dump_signal(gpointer self) {
    auto* s = static_cast<Session*>(self);
    // No exception may cross GLib's C frames: a failing stderr write is not
    // worth dying for.
    try {
      fmt::print(stderr, "peersock: state: protocol v{}, {} connections, {} control bytes unsent\n", s->version_,
                 s->forwarder_->open_connections(), s->control_ ? s->control_->unsent() : 0);
      for (const auto& line : s->forwarder_->describe()) fmt::print(stderr, "peersock: state: {}\n", line);
    } catch (const std::exception&) {
    }
    return G_SOURCE_CONTINUE;
  }

  static gboolean on_signal(gpointer self) {
    auto* session = static_cast<Session*>(self);
    session->finish(ExitCode::ok, {});
    session->exit_status_ = 130;
    return G_SOURCE_CONTINUE;
  }

  // Ends the session: the first reason wins. Closes top-down: forwarding
  // stops accepting, QUIC closes (flushing streams), then the mailbox closes
  // with a mood; the loop quits once both are closed, or after 5 s.
  void finish(ExitCode code, const std::string& message) {
    if (finishing()) return;
    bool had_peer = protocol_ && protocol_->peer_ice_received();
    phase_ = Phase::finishing;
    log::debug(Layer::session, "ending: {}", exit_code_name(code));
    exit_status_ = static_cast<int>(code);
    clear_deadline();
    status_.finished(code, message);
    if (forwarder_) forwarder_->stop_accepting();
    if (link_ && link_->quic() && !link_->quic()->closed()) {
      link_->close(close_code(code), code == ExitCode::ok ? "done" : std::string(exit_code_name(code)));
    }
    if (client_ && protocol_) {
      const char* mood = code == ExitCode::ok              ? (had_peer ? "happy" : "lonely")
                         : code == ExitCode::code_mismatch ? "scary"
                                                           : "errory";
      try {
        client_->send(protocol_->finish(mood).to_send);
      } catch (const std::exception&) {
      }
      client_->close();
    }
    finish_started_us_ = g_get_monotonic_time();
    finish_poll_ = g_timeout_add(20, &Session::on_finish_poll, this);
  }

  static gboolean on_finish_poll(gpointer self) {
    auto* s = static_cast<Session*>(self);
    bool quic_done = !s->link_ || s->link_->closed_down();
    bool relay_done = !s->client_ || s->client_->closed();
    bool late = g_get_monotonic_time() - s->finish_started_us_ > kShutdownDeadlineUs;
    if ((quic_done && relay_done) || late) {
      s->finish_poll_.fired();
      s->quit_ = true;
      g_main_loop_quit(s->loop_.get());
      return G_SOURCE_REMOVE;
    }
    if (!quic_done) s->link_->kick();
    return G_SOURCE_CONTINUE;
  }

  Options options_;
  const protocol::Sides sides_;
  ui::Status status_;
  glib::MainLoopPtr loop_ = glib::new_main_loop();
  Phase phase_ = Phase::rendezvous;
  int exit_status_ = 0;
  bool quit_ = false;
  gint64 finish_started_us_ = 0;
  glib::SourceId finish_poll_;
  std::vector<glib::SourceId> signals_;

  std::unique_ptr<rendezvous::Protocol> protocol_;
  std::unique_ptr<rendezvous::Client> client_;
  std::string code_text_;
  bool ice_sent_ = false;

  int version_ = 1;  // negotiated: the lower of ours and the peer's
  std::unique_ptr<Link> link_;
  std::unique_ptr<AuthGate> gate_;
  std::unique_ptr<ControlChannel> control_;
  std::unique_ptr<forward::Forwarder> forwarder_;
  bool peer_delivered_ = false;  // a 'D' arrived

  glib::SourceId deadline_;
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

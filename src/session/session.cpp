// The session: a phase sequencer over the stages below it. It brings them up
// bottom-up as each one completes, owns the deadlines, and ends the run with
// one exit code, closing the stack top-down (forwarding, QUIC, mailbox):
// every stage is a Stage (stage.hpp), closed in the order of top_down().
//
//   rendezvous   Mailbox: rendezvous::Protocol + Client (mailbox.hpp)
//   link         ICE agent + QUIC endpoint + driver (link.hpp)
//   auth         AuthGate: SMP on stream 4, stream admission (auth_gate.hpp)
//   control      ControlChannel: stream 0 (control_channel.hpp)
//   forwarding   forward::Forwarder: local connections <-> data streams
#include "peersock/session/session.hpp"

#include <glib-unix.h>
#include <signal.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>

#include "peersock/c_boundary.hpp"
#include "peersock/auth/smp.hpp"
#include "peersock/forward/forwarder.hpp"
#include "peersock/glib/raii.hpp"
#include "peersock/ice/body.hpp"
#include "peersock/log.hpp"
#include "peersock/pake/channel.hpp"
#include "peersock/protocol/sides.hpp"
#include "peersock/protocol/version.hpp"
#include "peersock/quic/stream.hpp"
#include "peersock/session/auth_gate.hpp"
#include "peersock/session/control_channel.hpp"
#include "peersock/session/ending.hpp"
#include "peersock/session/link.hpp"
#include "peersock/session/mailbox.hpp"
#include "peersock/pairing/store.hpp"
#include "peersock/session/meeting.hpp"
#include "peersock/session/mode.hpp"
#include "peersock/session/remember.hpp"
#include "peersock/text.hpp"
#include "peersock/ui/status.hpp"

namespace peersock::session {
namespace {

using log::Layer;

// Phase deadlines: once both sides are present nothing may wait forever.
constexpr guint kIceDeadlineMs = 30000;
constexpr guint kHandshakeAndAuthDeadlineMs = 20000;
constexpr gint64 kShutdownDeadlineUs = 5'000'000;
// An original responder answers msg3 with msg4 as soon as it has it (one
// modular exponentiation step, milliseconds), or exits silently on a
// mismatch. Once msg3 is acknowledged, 5 s without msg4 is its verdict:
// generous for retransmissions on a bad path, and much sooner than the
// 20 s auth deadline or the idle timeout.
constexpr guint kOriginalVerdictMs = 5000;
// Liveness once forwarding (reconnect-timeout > 0, peers on v4 and later):
// checked four times a second. A healthy path is never silent for much
// more than quic::kResumeKeepAliveNs (3 s: the peer's PING or the ACK of
// ours), so 5 s of silence is said out loud as "reconnecting", and from then
// on we keep trying for reconnect-timeout seconds: with the default 60, a
// 60 s outage survives and a vanished peer is given up on after 65 s.
constexpr guint kLivenessCheckMs = 250;
constexpr int kSilentNoticeS = 5;
// While the path stays silent, a new ICE restart this often: one needs a
// mailbox round trip, gathering (up to libnice's 2 s STUN/TURN timeouts
// where they do not answer) and the checks; a pending one that has not
// connected by then is replaced.
constexpr gint64 kRestartEveryS = 10;
// QUIC's idle timeout stays above that, so that the session's own
// deadline, with its message, is what ends a silent run.
constexpr int kIdleMarginS = 10;

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

class Session {
 public:
  explicit Session(Options options)
      : options_(std::move(options)),
        // A paired session has no code generator: the side that accepts
        // the streams takes the generator's part (pairing/hello.hpp).
        sides_{options_.peer ? !forward::is_opener(options_.mode) : !options_.code.has_value(),
               forward::is_opener(options_.mode)},
        status_(is_stdio()) {}

  ~Session() {
    // Top down: forwarding and the streams it holds, the stages on stream 0
    // and 4, then the link (QUIC, ICE), then the mailbox.
    forwarder_.reset();
    control_.reset();
    gate_.reset();
    link_.reset();
    mailbox_.reset();
    meeting_.reset();
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
    for (int sig : {SIGINT, SIGTERM}) signals_.emplace_back(g_unix_signal_add(sig, &Session::on_signal, this));
    signals_.emplace_back(g_unix_signal_add(SIGHUP, &Session::on_hangup, this));
    // SIGUSR1: one line per open connection on stderr (for bug reports).
    signals_.emplace_back(g_unix_signal_add(SIGUSR1, &Session::on_dump_signal, this));
    if (options_.remember)
      remember_.emplace(*options_.remember, options_.label, pairing::Store(options_.peers_dir));
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
                                       [this](uint32_t g) { guarded([&] { on_restart_gathered(g); }); },
                                       [this](const ice::SelectedPath& p) { guarded([&] { on_path_changed(p); }); },
                                   });
    if (options_.peer) {
      start_paired();
    } else {
      mailbox_ = std::make_unique<Mailbox>(
          sides_.generator, sides_.generator ? std::string() : options_.code->nameplate,
          sides_.generator ? std::string() : options_.code->text,
          PakeOptions{options_.settings.allow_original, options_.settings.protocol_version > 1}, mailbox_events());
      if (!sides_.generator) code_text_ = options_.code->text;
    }
    status_.phase(ui::Phase::contacting);
    status_.set_sampler([this] {
      std::vector<ui::ConnectionSample> out;
      for (const auto& s : forwarder_->samples()) out.push_back({s.id, s.sent, s.received});
      return out;
    });
    status_.set_path_sampler([this] { return path_sample(); });
    if (forward::is_udp(options_.mode)) {
      status_.set_datagram_sampler([this]() -> std::optional<ui::DatagramSample> {
        auto c = forwarder_ ? forwarder_->udp_counts() : std::nullopt;
        if (!c) return std::nullopt;
        return ui::DatagramSample{c->out,         c->out_bytes,  c->in,    c->in_bytes,
                                  c->out_dropped, c->in_dropped, c->flows, c->max_payload};
      });
    }
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
        [this](uint64_t id, const std::string& text) {
          guarded([&] {
            if (control_) control_->send_connect_failure(id, text);
          });
        },
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
    // Waiting for the peer (data or a keep-alive PING in flight) and nothing
    // heard for over a second and 4 RTTs: say so, instead of an RTT sample
    // that stays healthy until the idle timeout ends the run.
    const double silent = static_cast<double>(quic::now() - st.last_received) / 1e9;
    const double rtt_s = st.rtt_ms > 0 ? st.rtt_ms / 1000 : 0;
    if (st.bytes_in_flight > 0 && st.last_received != 0 && silent > std::max(1.0, 4 * rtt_s)) p.silent_s = silent;
    return p;
  }

  // ---- rendezvous ---------------------------------------------------------
  // Only once the STUN/TURN lookups ended: a name that does not resolve is
  // warned about before we contact anyone (and before a code is shown).
  void start_rendezvous() {
    if (finishing()) return;
    rendezvous_started_ = true;
    if (mailbox_) mailbox_->connect(options_.settings.relay_url);
    if (meeting_) meeting_->connect(options_.settings.relay_url);
  }

  MailboxEvents mailbox_events() {
    return MailboxEvents{
        [this](const rendezvous::Event& e) { guarded([&] { on_mailbox_event(e); }); },
        [this](std::exception_ptr e) { rethrow_guarded(e); },
        [this](uint32_t generation, std::string body) { guarded([&] { on_peer_restart(generation, body); }); },
    };
  }

  // ---- --peer ---------------------------------------------------------------
  std::string mismatch_message() const {
    if (!options_.peer) return std::string(kMismatchMessage);
    return fmt::format("the pairing {} does not match the other side's (forgotten or made again there?): pair "
                       "again with a code and --remember",
                       options_.peer->pairing.name);
  }

  // --peer: the pairing was used now (peersock peers shows it).
  void note_pairing_used() {
    pairing::Pairing p = options_.peer->pairing;
    p.last_used = g_get_real_time() / 1'000'000;
    try {
      pairing::Store(options_.peers_dir).save(p);
    } catch (const Error& e) {
      log::debug(Layer::session, "could not note the pairing's use: {}", e.what());
    }
  }

  // The meeting stands where the nameplate stands in a code session: once it
  // has a ticket, the session runs in the ticket's own mailbox with the
  // ticket's code (session/meeting.hpp).
  void start_paired() {
    const auto& peer = *options_.peer;
    if (peer.ticket) {
      begin_paired_session(*peer.ticket);
      return;
    }
    auto role = sides_.generator ? pairing::Hello::Role::server : pairing::Hello::Role::client;
    meeting_ = std::make_unique<Meeting>(
        role, peer.pairing, false, peer.window_seconds,
        MeetingEvents{
            [this](const pairing::Ticket& t) { guarded([&] { begin_paired_session(t); }); },
            [this](std::exception_ptr e) { rethrow_guarded(e); },
        });
  }

  void begin_paired_session(const pairing::Ticket& ticket) {
    const auto& pairing = options_.peer->pairing;
    if (!pairing.secret)
      throw Error(ExitCode::code_mismatch, fmt::format("the pairing {} was forgotten here", pairing.name));
    if (meeting_) meeting_->close(ExitCode::ok);
    code_text_ = pairing::session_code(*pairing.secret, ticket.client_nonce, ticket.server_nonce);
    // The original cannot pair: a peer without the PAKE is refused here.
    mailbox_ = std::make_unique<Mailbox>(sides_.generator,
                                         Mailbox::Paired{pairing::session_mailbox_id(pairing.mailbox_key, ticket)},
                                         code_text_, PakeOptions{false, true}, mailbox_events());
    log::debug(Layer::rendezvous, "met the other side; the session's own mailbox next");
    if (!pending_ice_.empty()) mailbox_->send_ice(std::move(pending_ice_));
    if (rendezvous_started_) mailbox_->connect(options_.settings.relay_url);
  }

  void on_mailbox_event(const rendezvous::Event& event) {
    if (auto* motd = std::get_if<rendezvous::event::Motd>(&event)) {
      status_.motd(motd->text);
    } else if (auto* allocated = std::get_if<rendezvous::event::NameplateAllocated>(&event)) {
      code_text_ = code::generate(allocated->nameplate, options_.code_words);
      mailbox_->set_code(code_text_);
      status_.code(code_text_, hint_for_other_side(options_.mode, options_.settings.relay_url));
    } else if (std::holds_alternative<rendezvous::event::MailboxOpen>(event)) {
      status_.phase(ui::Phase::waiting);
    } else if (auto* ice = std::get_if<rendezvous::event::PeerIce>(&event)) {
      on_peer_ice(ice->body);
    }
  }

  void on_gathering_done() {
    auto description = link_->ice().local_description();
    description.mode = forward::mode_name(options_.mode);
    if (remember_) description.label = remember_->label();
    log::debug(Layer::ice, "sending {} local candidates", description.candidates.size());
    if (mailbox_) mailbox_->send_ice(ice::encode(description));
    else pending_ice_ = ice::encode(description);  // --peer: the session's mailbox comes after the meeting
  }

  void on_peer_ice(const std::string& body) {
    auto remote = ice::decode(body);
    if (mailbox_->signaling_in_clear() && !original_notice_said_) {
      // Said now, not after authentication: the addresses are out already.
      original_notice_said_ = true;
      log::warning("original-peer", original_peer_notice(true, remote.version == 1));
    }
    try {
      check_roles(options_.mode, remote.mode);  // before anything is connected
    } catch (const UsageError&) {
      on_gathering_done();  // the other side learns it from our body, even if gathering is not done
      throw;
    }
    // The lower of the two versions announced, until the handshake's ALPN
    // negotiation settles it (begin_auth; docs/protocol.md §3.1).
    peer_body_version_ = remote.version;
    version_ = std::min(remote.version, our_max_version());
    if (remember_) remember_->check_peer(version_);
    peer_label_ = remote.label;
    log::debug(Layer::ice, "peer protocol version {}, {} candidates", remote.version, remote.candidates.size());
    phase_ = Phase::connecting;
    status_.phase(ui::Phase::finding_path);
    quic::EndpointOptions quic_options;
    quic_options.congestion =
        options_.settings.congestion == config::Congestion::cubic ? quic::Congestion::cubic : quic::Congestion::bbr;
    quic_options.max_version = our_max_version();
    quic_options.peer_body_version = remote.version;
    if (options_.settings.reconnect_timeout_s > 0)
      quic_options.idle_timeout =
          std::chrono::seconds(kSilentNoticeS + options_.settings.reconnect_timeout_s + kIdleMarginS);
    quic_options.datagrams = forward::is_udp(options_.mode);
    link_->start_quic(sides_.quic_server() ? quic::Role::server : quic::Role::client, quic_options);
    set_deadline(kIceDeadlineMs, ExitCode::no_path,
                 fmt::format("no network path to the peer (tried: {})", link_->ice().tried()));
    link_->ice().set_remote(remote);
  }

  // The highest version we speak: protocol::kCurrent, or lower by
  // PEERSOCK_PROTOCOL / [protocol] version.
  int our_max_version() const { return std::min(ice::kOurVersion, options_.settings.protocol_version); }

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
    if (!q.handshake_done() && !(phase_ == Phase::connecting && starts_smp_early(q))) return;
    if (phase_ == Phase::connecting) {
      if (!smp_after_write()) return;
      begin_auth(q);
    }
    admit_streams();
    if (phase_ == Phase::authenticating) {
      if (gate_->has_input() && !smp_after_write()) return;
      auto verdict = gate_->poll();
      if (verdict == AuthGate::Verdict::pending && negotiated_.peer_is_original && !awaiting_original_verdict_ &&
          gate_->awaiting_verdict() && gate_->sent_acknowledged()) {
        awaiting_original_verdict_ = true;
        set_deadline(kOriginalVerdictMs, ExitCode::code_mismatch, kOriginalMismatchMessage);
      }
      if (verdict == AuthGate::Verdict::mismatch) {
        finish(ExitCode::code_mismatch, mismatch_message());
        return;
      }
      if (verdict == AuthGate::Verdict::success && negotiated_.version_changed) {
        // Only now: before SMP the ALPN result could be a man in the
        // middle's, and the message would blame the wrong party.
        link_->set_close_reason(std::string(kVersionChangedReason));
        finish(ExitCode::protocol, kVersionChangedMessage);
        return;
      }
      if (verdict == AuthGate::Verdict::success && forward::is_udp(options_.mode) && !protocol::carries_udp(version_)) {
        link_->set_close_reason(std::string(kNoUdpReason));
        finish(ExitCode::protocol, no_udp_message(version_));
        return;
      }
      if (verdict == AuthGate::Verdict::success) {
        on_authenticated();
        admit_streams();  // data streams that came with the last SMP message
      }
    }
    if (finishing()) return;
    if (forwarding_deferred_ && gate_->sent_acknowledged()) start_forwarding();
    control_->poll(g_get_monotonic_time());
    forwarder_->after_quic_run();
    maybe_close_after_stdio();
  }

  // SMP's arithmetic (10 to 50 ms a step here) waits for the write pass of
  // the run whose datagrams brought its input: that pass carries our ACKs
  // and the client's Finished, and the peer's RTT sample (the one the path
  // line shows) would otherwise include the arithmetic -- a v7 server
  // reported 40 ms on a 3 ms path. The driver calls us before and after
  // each write pass; a kick during a run makes it loop once more (quic/driver).
  bool smp_after_write() {
    if (std::exchange(smp_waited_for_write_, false)) return true;
    smp_waited_for_write_ = true;
    link_->kick();
    return false;
  }

  // From v7 the server starts SMP with its first flight, before its
  // handshake is done (docs/protocol.md §5.3): its keys and the exporter are
  // there once it has sent its Finished, and the version is the one it chose.
  bool starts_smp_early(const quic::Endpoint& q) const {
    return sides_.quic_server() && q.app_keys_ready() && protocol::server_starts_smp(q.negotiated().version);
  }

  void admit_streams() {
    gate_->admit([this](quic::Stream s) { control_->attach(std::move(s)); },
                 [this](quic::Stream s) { forwarder_->on_stream(std::move(s)); });
  }

  void on_quic_closed(const quic::CloseInfo& info) {
    if (auto why = original_went_silent(info.by_peer)) {
      finish(ExitCode::code_mismatch, *why);
      return;
    }
    if (relay_added_version(info)) {
      finish(ExitCode::protocol, kVersionChangedMessage);
      return;
    }
    if (negotiated_.peer_is_original && phase_ == Phase::forwarding && !is_stdio() && !info.by_peer &&
        !info.is_app) {
      finish(ExitCode::peer_gone, kOriginalSilentMessage);
      return;
    }
    const bool complete = !is_stdio() || !protocol::has_control_stream(version_) || forwarder_->stdio_delivered();
    Ending ending = ending_for_close(info, phase_ == Phase::forwarding, complete, forwarder_->open_connections());
    if (ending.code == ExitCode::code_mismatch) ending.message = mismatch_message();
    if (ending.peer_closed) status_.peer_closed();
    finish(ending.code, ending.message);
  }

  // An original responder (QUIC server) that found a mismatch exits without
  // a word (v1 doc §5.3): silence once our last SMP message is out (the idle
  // timeout, or the auth deadline) is its verdict, not a network failure.
  std::optional<std::string> original_went_silent(bool closed_by_peer) const {
    if (phase_ != Phase::authenticating || !negotiated_.peer_is_original || closed_by_peer || !gate_ ||
        !gate_->awaiting_verdict())
      return std::nullopt;
    return std::string(kOriginalMismatchMessage);
  }

  // Our server presented its own certificate to a client that offered only
  // plain x-peersock because that client's body announced a version (a
  // release before ALPN negotiation, which verifies no certificate). Alert
  // 48 (unknown_ca) back means the client was the original, which pins its
  // own certificate and writes no "v": the relay added it.
  bool relay_added_version(const quic::CloseInfo& info) const {
    const quic::Endpoint* q = link_ ? link_->quic() : nullptr;
    if (q == nullptr || !sides_.quic_server() || q->handshake_done() || !info.by_peer || info.is_app ||
        info.error_code != kUnknownCaError || peer_body_version_ <= 1)
      return false;
    auto selection = q->selection();
    return selection && selection->client_max == 0 && !q->presented_original_identity();
  }

  // ---- auth -------------------------------------------------------------------
  void begin_auth(quic::Endpoint& q) {
    phase_ = Phase::authenticating;
    // The version is the handshake's from here on (docs/protocol.md §3.1);
    // whether the bodies agreed with it is judged after SMP.
    negotiated_ = q.negotiated();
    version_ = negotiated_.version;
    log::debug(Layer::quic, "negotiated protocol version {} (ALPN '{}'; peer's body: {}){}{}", version_, q.alpn(),
               peer_body_version_, negotiated_.peer_is_original ? "; the peer is the original" : "",
               negotiated_.version_changed ? "; the body disagrees" : "");
    gate_ = std::make_unique<AuthGate>(q, sides_, version_, [this] { link_->kick(); });
    control_ = std::make_unique<ControlChannel>(
        version_, sides_.quic_server(),
        ControlChannelEvents{
            [this] { link_->kick(); },
            [this] { peer_delivered_ = true; },
            [this](double rtt_ms) { forwarder_->set_rtt_us(static_cast<int64_t>(rtt_ms * 1000.0)); },
            [this](uint64_t id, uint64_t limit) { forwarder_->on_grant(id, limit); },
            [](const ConnectFailure& f) {
              log::warning("remote-connect-failed",
                           fmt::format("peersock: the other side could not connect to {}", f.text));
            },
        });
    log::debug(Layer::quic, "{} (ALPN '{}'); authenticating",
               q.handshake_done() ? "handshake complete" : "keys ready, handshake not yet confirmed", q.alpn());
    status_.phase(ui::Phase::authenticating);
    quic::Stream control = gate_->begin(code_text_, remember_.has_value());
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
    // The mailbox has done its job: release the nameplate, and close it
    // happily -- or keep it for ICE restarts (v6, docs/protocol.md §2.11).
    if (restarts_enabled()) {
      mailbox_->keep_open();
    } else {
      mailbox_->release();
    }
    control_->start_reading();  // stream 0 is read only now (docs/protocol.md §5.5)
    // The client pings on stream 0 (docs/protocol.md §6.4): v2/v3 peers get
    // their RTT from it (ours comes from QUIC itself), and the server sees
    // stream 0 only once the client has written to it -- until then it
    // could tell us nothing ('D', v4 'F').
    if (!sides_.quic_server() && protocol::has_control_stream(version_)) control_->start_ping(g_get_monotonic_time());
    auto stats = link_->quic()->stats();
    if (stats.rtt_ms > 0) forwarder_->set_rtt_us(static_cast<int64_t>(stats.rtt_ms * 1000.0));
    status_.authenticated(authenticated_line(options_.mode, forwarder_->listener_description()));
    if (options_.peer) note_pairing_used();
    if (negotiated_.peer_is_original && !original_notice_said_) {
      log::warning("original-peer", original_peer_notice(false, true));
    }
    if (remember_ && gate_->pairing_secret()) {
      try {
        status_.remembered(*options_.remember,
                           remember_->save(*gate_->pairing_secret(), peer_label_, g_get_real_time() / 1'000'000));
      } catch (const Error& e) {
        log::warning("not-remembered", fmt::format("peersock: could not remember the other side: {}", e.what()));
      }
      gate_->drop_pairing_secret();  // on disk or lost: no copy stays in memory
    }
    // The least sample: the others of the handshake and SMP include the
    // peer's SMP arithmetic (up to 50 ms a step) or its ACK delay.
    report_path(stats.min_rtt_ms);
    start_liveness();
    // An original client handles a stream that arrives with msg4 before
    // msg4 itself, and exits (v1 doc §7.4, §8 item 9): as the server and
    // opener, open nothing until msg4 is acknowledged.
    if (negotiated_.peer_is_original && sides_.quic_server() && sides_.opener && !gate_->sent_acknowledged()) {
      forwarding_deferred_ = true;
      return;
    }
    start_forwarding();
  }

  void start_forwarding() {
    forwarding_deferred_ = false;
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

  // ---- liveness (docs/protocol.md §4.5) --------------------------------------
  // A silent peer is not yet a dead one: the path may come back (an outage,
  // a router that drops everything for a while), and the QUIC connection
  // survives it (quic::kResumeAfterNs). We give up after reconnect-timeout
  // seconds without a packet; until then the local connections stay open
  // and what they write waits under back-pressure. Towards peers before v4
  // (OpenSSL's stack) QUIC's idle timeout decides, as it always did.
  void start_liveness() {
    if (options_.settings.reconnect_timeout_s <= 0 || version_ < 4) return;
    link_->quic()->enable_path_resumption();
    last_heard_ = link_->quic()->stats().last_received;
    liveness_ = g_timeout_add(kLivenessCheckMs, &Session::on_liveness, this);
  }
  static gboolean on_liveness(gpointer self) {
    return c_boundary("the liveness check", [&]() -> gboolean {
      static_cast<Session*>(self)->check_liveness();
      return G_SOURCE_CONTINUE;
    });
  }
  void check_liveness() {
    if (finishing() || !link_->quic()) return;
    const quic::Timestamp heard = link_->quic()->stats().last_received;
    if (heard > last_heard_) {
      if (reconnecting_) status_.reconnected(static_cast<double>(heard - last_heard_) / 1e9);
      reconnecting_ = false;
      last_heard_ = heard;
    }
    const double silent = static_cast<double>(quic::now() - last_heard_) / 1e9;
    const int timeout = options_.settings.reconnect_timeout_s;
    if (!reconnecting_ && silent >= kSilentNoticeS) {
      reconnecting_ = true;
      status_.reconnecting(silent, timeout);
    }
    if (reconnecting_) maybe_restart();
    if (silent >= kSilentNoticeS + timeout) {
      finish(ExitCode::peer_gone,
             fmt::format("connection to the peer lost (no answer for {} s)", kSilentNoticeS + timeout));
    }
  }

  // ---- ICE restarts (docs/protocol.md §2.11) ----------------------------------
  // A path silent for kSilentNoticeS may be gone for good (a new address, a
  // NAT that rebound): while it stays silent, every kRestartEveryS one side
  // or the other offers a fresh ICE description through the mailbox, and
  // the other answers with its own. Generations order the attempts: an
  // offer above ours replaces what we had pending, one below is stale.
  bool restarts_enabled() const {
    return protocol::restarts_ice(version_) && options_.settings.reconnect_timeout_s > 0 && mailbox_ != nullptr;
  }

  void maybe_restart() {
    if (!restarts_enabled() || !mailbox_->can_restart()) return;
    mailbox_->check_alive();  // what broke the path may have broken the websocket too
    const gint64 now = g_get_monotonic_time();
    if (last_restart_us_ != 0 && now - last_restart_us_ < kRestartEveryS * G_USEC_PER_SEC) return;
    if (restart_generation_ >= pake::kMaxRestartGeneration) return;
    last_restart_us_ = now;
    ++restart_generation_;
    log::debug(Layer::session, "the path is silent: offering ICE restart {}", restart_generation_);
    link_->begin_restart(restart_generation_);
  }

  void on_restart_gathered(uint32_t generation) {
    if (finishing() || generation != link_->restart_generation()) return;
    auto description = link_->restart_description();
    description.mode = forward::mode_name(options_.mode);
    log::debug(Layer::ice, "restart {}: sending {} local candidates", generation, description.candidates.size());
    mailbox_->send_restart(generation, ice::encode(description));
  }

  void on_peer_restart(uint32_t generation, const std::string& body) {
    if (finishing() || !restarts_enabled()) return;
    auto remote = ice::decode(body);
    if (generation < restart_generation_) return;  // we offered a newer one since
    restart_generation_ = generation;
    if (link_->restart_generation() != generation) {
      // The peer's offer: answer it with a fresh agent of our own.
      last_restart_us_ = g_get_monotonic_time();
      link_->begin_restart(generation);
    }
    link_->set_restart_remote(generation, remote);
  }

  void on_path_changed(const ice::SelectedPath& path) {
    if (finishing()) return;
    auto stats = link_->quic() ? link_->quic()->stats() : quic::ConnStats{};
    status_.path(path_info(path), stats.rtt_ms < 0 ? std::nullopt : std::optional<double>(stats.rtt_ms));
  }

  // ---- deadlines, signals, teardown ---------------------------------------
  void set_deadline(guint ms, ExitCode code, std::string message) {
    deadline_code_ = code;
    deadline_message_ = std::move(message);
    deadline_ = g_timeout_add(ms, &Session::on_deadline, this);
  }
  void clear_deadline() { deadline_.reset(); }
  static gboolean on_deadline(gpointer self) {
    return c_boundary("a session deadline", [&]() -> gboolean {
      auto* session = static_cast<Session*>(self);
      session->deadline_.fired();
      if (auto why = session->original_went_silent(false)) {
        session->finish(ExitCode::code_mismatch, *why);
        return G_SOURCE_REMOVE;
      }
      session->finish(session->deadline_code_, session->deadline_message_);
      return G_SOURCE_REMOVE;
    });
  }

  static gboolean on_dump_signal(gpointer self) {
    return c_boundary("the SIGUSR1 dump", [&]() -> gboolean {
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
    });
  }

  static gboolean on_signal(gpointer self) {
    return c_boundary("a signal", [&]() -> gboolean {
      static_cast<Session*>(self)->interrupted(false);
      return G_SOURCE_CONTINUE;
    });
  }
  static gboolean on_hangup(gpointer self) {
    return c_boundary("a signal", [&]() -> gboolean {
      static_cast<Session*>(self)->interrupted(true);
      return G_SOURCE_CONTINUE;
    });
  }

  // With connections open the peer must learn that they were cut short
  // (ExitCode::interrupted: its local programs get a reset); with none,
  // this is how a tunnel is meant to end. A stdio side is cut short only
  // while its input has not all gone out, and never by SIGHUP: that is how
  // ssh ends its ProxyCommand once it has closed the pipes (a race with our
  // reading their EOF).
  void interrupted(bool hangup) {
    bool open = forwarder_ && forwarder_->open_connections() > 0;
    if (is_stdio()) open = open && !hangup && !forwarder_->stdio_input_done();
    finish(open ? ExitCode::interrupted : ExitCode::ok, {});
    exit_status_ = 130;
  }

  // Ends the session: the first reason wins. Closes the stack top-down:
  // forwarding stops accepting, the control channel and the auth gate stop,
  // QUIC closes (flushing streams), the mailbox closes with a mood; the loop
  // quits once every stage is closed, or after 5 s.
  void finish(ExitCode code, const std::string& message) {
    if (finishing()) return;
    phase_ = Phase::finishing;
    log::debug(Layer::session, "ending: {}", exit_code_name(code));
    exit_status_ = static_cast<int>(code);
    clear_deadline();
    liveness_.reset();
    // The stack first, so that the connections it cuts are reported before
    // the last line.
    for (Stage* stage : top_down()) stage->close(code);
    status_.finished(code, message);
    finish_started_us_ = g_get_monotonic_time();
    finish_poll_ = g_timeout_add(20, &Session::on_finish_poll, this);
  }

  // The stack, top first: the order in which it closes.
  std::vector<Stage*> top_down() const {
    std::vector<Stage*> out;
    for (Stage* s :
         {static_cast<Stage*>(forwarder_.get()), static_cast<Stage*>(control_.get()), static_cast<Stage*>(gate_.get()),
          static_cast<Stage*>(link_.get()), static_cast<Stage*>(mailbox_.get()), static_cast<Stage*>(meeting_.get())})
      if (s != nullptr) out.push_back(s);
    return out;
  }

  static gboolean on_finish_poll(gpointer self) {
    return c_boundary("the session teardown", [&]() -> gboolean {
      auto* s = static_cast<Session*>(self);
      const auto stack = s->top_down();
      const bool all_closed = std::all_of(stack.begin(), stack.end(), [](const Stage* st) { return st->closed(); });
      const bool late = g_get_monotonic_time() - s->finish_started_us_ > kShutdownDeadlineUs;
      if (all_closed || late) {
        s->finish_poll_.fired();
        s->quit_ = true;
        g_main_loop_quit(s->loop_.get());
        return G_SOURCE_REMOVE;
      }
      if (s->link_ && !s->link_->closed()) s->link_->kick();
      return G_SOURCE_CONTINUE;
    });
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

  std::unique_ptr<Mailbox> mailbox_;
  std::unique_ptr<Meeting> meeting_;  // --peer, until it has a ticket
  std::string pending_ice_;           // --peer: our body, until the session's mailbox exists
  bool rendezvous_started_ = false;
  std::string code_text_;
  bool original_notice_said_ = false;

  int version_ = 1;            // negotiated (docs/protocol.md §3.1)
  int peer_body_version_ = 1;  // the "v" of the peer's ice body (1: absent)
  quic::alpn::Outcome negotiated_;
  bool forwarding_deferred_ = false;        // waiting for msg4's acknowledgement (on_authenticated)
  bool smp_waited_for_write_ = false;       // smp_after_write()
  bool awaiting_original_verdict_ = false;  // msg3 acknowledged by an original responder
  std::optional<Remember> remember_;
  std::string peer_label_;  // the peer's "n", for --remember
  std::unique_ptr<Link> link_;
  std::unique_ptr<AuthGate> gate_;
  std::unique_ptr<ControlChannel> control_;
  std::unique_ptr<forward::Forwarder> forwarder_;
  bool peer_delivered_ = false;  // a 'D' arrived

  glib::SourceId deadline_;
  glib::SourceId liveness_;
  quic::Timestamp last_heard_ = 0;  // the peer's last packet, as of the last check
  bool reconnecting_ = false;
  uint32_t restart_generation_ = 0;  // the highest offered, by either side
  gint64 last_restart_us_ = 0;       // when we last began one
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

// psk-attacker: the hostile relay and the hostile peer of the attack tests
// (tests/e2e/test_attacks.py), and an honest OpenSSL-QUIC peer for the interop
// tests (tests/e2e/test_interop.py). A test tool built from peersock's own
// layers (ice::Agent, rendezvous::Protocol/Client, auth::Smp, the stream-0
// reader session::ControlReader) and the previous QUIC engine, OpenSSL 3.5's
// own QUIC stack (tests/tools/ossl_quic, namespace ossl_quic), which lives on
// only here: every run of this tool against peersock is also an interop test
// between peersock's ngtcp2 engine and OpenSSL's. Never installed, never
// talking to anything but the test's own namespace.
//
//   psk-attacker mitm --listen-port P --upstream ws://127.0.0.1:4000/v1 --mode terminate|forward
//       A websocket proxy in front of the real mailbox server. Both peers use
//       it as their relay. It replaces the `ice` body each peer receives by
//       the description of one of its own two ICE agents, so that each peer
//       connects to the attacker instead of to the other peer:
//         leg "gen"  faces the code generator (we are QUIC client, ICE controlled)
//         leg "cons" faces the code consumer  (we are QUIC server, ICE controlling)
//       terminate: a QUIC endpoint on each leg; every stream is relayed byte
//                  for byte, and an application CONNECTION_CLOSE on one leg is
//                  passed on to the other with the same code (a transparent
//                  attacker). The peers see two different TLS sessions.
//       silent:    like terminate, but a close on one leg is not passed on:
//                  the other peer is left waiting.
//       forward:   no QUIC of its own: UDP datagrams are copied between the
//                  legs, so the peers' QUIC session runs end to end (control).
//       inject:    hostile relay input: the frame that would carry the other
//                  side's `ice` body to --inject-to consumer|generator is
//                  replaced by the contents of --frame-file (sent as a binary
//                  frame with --binary). Nothing else is touched.
//                  --phase P replaces the frame of phase P instead of `ice`.
//       drop:      a plain proxy that never delivers server -> client frames
//                  of --drop TYPE (welcome, allocated, claimed, or message:
//                  then only those from another side), to test what a
//                  relay that stalls does to the peers.
//       rewrite:   hostile relay input: the `ice` body that goes to
//                  --rewrite-to consumer|generator|both gets its "v" removed
//                  (--rewrite-version none) or set (--rewrite-version N);
//                  nothing else changes, so the peers still meet directly.
//       signal:    a relay that reads and meddles with the mailbox messages
//                  only: every message frame the server sends a peer is
//                  reported ({"event":"frame","to":...,"echo":...,"phase":...,
//                  "body":...}; echo: the recipient's own message)
//                  and forwarded, except that the first frame of --phase P
//                  from the other side to --inject-to consumer|generator gets
//                  --action drop (not forwarded), replay (forwarded twice),
//                  reorder (held back until the next message frame to that
//                  side has gone out) or truncate (its body cut to half).
//       Every rewritten body announces the protocol version ("v") of the body
//       it replaces: a relay that copies streams or datagrams byte for byte
//       carries whatever the two peers agree on. terminate, silent and
//       forward drop the peers' encrypted-signaling messages (pake, confirm,
//       sealed-ice): both peers then take the other for the original
//       peersock and send plaintext bodies, which the attacker rewrites.
//
//   psk-attacker rogue --relay URL --attack ATTACK (--code CODE | --generate) [--smp-code CODE]
//       A peer that misbehaves. With --code it joins as the consumer (QUIC
//       client); with --generate it allocates a nameplate, prints
//       "Connection code: ..." on stderr and acts as the generator (QUIC server).
//       SMP runs on --smp-code (default: a code with wrong words).
//         early-stream  open a data stream and write 'X' + payload before auth
//         garbage-auth  client: an auth frame with length 0xffff on stream 4
//         garbage-mpi   client: a correctly framed msg1 of random bytes
//         truncated-auth client: 12 bytes of a 258-byte frame, then FIN
//         stall         complete the QUIC handshake, then do nothing
//         ping-before-auth client: a 'P' and a 'D' on stream 0 with msg1
//                       (an "rtt" event shows if the server answered)
//         bad-magic     run SMP (pass the right --smp-code to authenticate),
//                       then open a data stream that starts with 'Y'
//                       (to test the stream header check after auth)
//       It announces protocol version 2 and, like a v2 peer, reads stream 0
//       and answers pings.
//
//   psk-attacker peer --relay URL (--code CODE | --generate) --mode stdio-a|stdio-b [--protocol 2]
//       An honest peer (the rogue's machinery with the right code) that
//       behaves like `peersock stdio-a` (accepts the one data stream) or
//       `peersock stdio-b` (opens it after auth) at protocol version 2, the
//       only one it implements: stdin goes to the data stream ('X' + bytes),
//       the stream to stdout, EOF becomes FIN and FIN closes stdout; on
//       stream 0 it answers 'P' with 'Q' (the client pings once after auth,
//       the server pings back once), writes one 'D' when its data stream is
//       finished (its FIN sent, the peer's FIN seen and everything written to
//       stdout), and closes the connection (application code 0) once it has
//       said 'D' and seen the peer's 'D'. Events go to stderr (stdout is the
//       data). Exit 0 only after such a clean end.
//
//   psk-attacker peer --relay URL (--code CODE | --generate) --mode listen PORT | --mode connect HOST:PORT
//       The same honest v2 peer in the TCP modes, like `peersock listen PORT`
//       (the opener: 127.0.0.1:PORT is bound at start, connections are
//       accepted after auth, each gets a new data stream starting with 'X')
//       and `peersock connect HOST:PORT` (the acceptor: every data stream the
//       peer opens is checked for its 'X', then a TCP connection to the
//       target is made for it). Per connection: socket EOF becomes FIN, FIN
//       becomes shutdown(SHUT_WR), a local error or RST resets the stream,
//       a reset closes the socket with an RST; one 64 KiB buffer per
//       direction, so TCP and QUIC flow control hold the writers back. One 'D'
//       on stream 0 per connection finished cleanly (both FINs). The opener
//       stops accepting while the peer allows no more streams. It never ends
//       the session itself: it runs until the peer closes the connection
//       (exit 0 for application code 0) or SIGTERM (it then closes with
//       code 0 itself, as peersock does on a signal, and exits 0).
//
//   psk-attacker original --relay URL (--code CODE | --generate) --mode stdio-a|stdio-b|listen PORT|connect HOST:PORT
//                         [--smp-code CODE]
//       A peer that behaves on the wire like the original peersock (v1,
//       ../shared/docs/protocol-v1.md, with the one-flag listener fix): mailbox
//       sides "initiator"/"code", a body without "v" or "m" (the generator
//       sends its body only after the consumer's arrived), 3-word codes, ALPN
//       plain x-peersock only, the original's TLS identity (as server it
//       presents the original's certificate and key; as client it trusts only
//       that certificate and aborts with alert 48 on any other), streams 0 and
//       4 (stream 0 never written), one data stream with 'X', never a FIN.
//       Like the original, and fatal (exit 1, no QUIC close) as there: a
//       stream other than 0/4 that the client sees before its own auth success
//       (it handles new streams before the SMP message that came with them,
//       v1 doc §7.4), a FIN or reset on the data stream, a second data stream,
//       and, as Bob, an SMP mismatch (it prints "connection code mismatch"
//       and exits without telling the other side). Local EOF: TCP modes exit 0
//       at once without closing QUIC; stdio modes close the connection with
//       code 0 (flushing first), then exit 0. A close from the peer: exit 0.
//       It does not reproduce the original's data loss when its send buffer
//       is full (v1 doc, head): this peer buffers. Bytes the peer writes on
//       stream 0 are counted (event "control_bytes"): a v1 peer never should.
//
// Output: one JSON object per line on stdout ({"event": ...}), flushed
// (stderr in the stdio peer modes, where stdout carries the data).
// Exit status: 0 when the run ended (the peers closed; peer mode: after every
// byte was delivered both ways), 1 on a tool error or its --timeout.
#include <gio/gio.h>
#include <glib-unix.h>
#include <libsoup/soup.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "ossl_quic/driver.hpp"
#include "ossl_quic/endpoint.hpp"
#include "peersock/auth/smp.hpp"
#include "peersock/code/code.hpp"
#include "peersock/config/config.hpp"
#include "peersock/error.hpp"
#include "peersock/forward/stream_header.hpp"
#include "peersock/ice/agent.hpp"
#include "peersock/ice/body.hpp"
#include "peersock/rendezvous/client.hpp"
#include "peersock/rendezvous/protocol.hpp"
#include "peersock/session/control.hpp"
#include "peersock/session/ping.hpp"

namespace {

using json = nlohmann::json;
using namespace peersock;

// The protocol version the rogue and the honest peer speak (and announce).
constexpr int kPeerVersion = 2;

FILE* g_events = stdout;  // stderr in peer mode, where stdout carries the data

void emit(json event) {
  std::string line = event.dump();
  std::fprintf(g_events, "%s\n", line.c_str());
  std::fflush(g_events);
}

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "psk-attacker: %s\n", why.c_str());
  std::exit(1);
}

std::string hex(std::span<const uint8_t> bytes) {
  static constexpr char k[] = "0123456789abcdef";
  std::string out;
  for (auto b : bytes) {
    out += k[b >> 4];
    out += k[b & 15];
  }
  return out;
}

config::Settings no_servers() {
  config::Settings s;  // no STUN, no TURN: host candidates inside the test namespace only
  return s;
}

// One byte pipe between two QUIC streams (terminate mode), or the read side
// of a stream the rogue only watches.
struct Relay {
  ossl_quic::SslPtr from, to;
  std::string leg_from;
  uint64_t id = 0;
  std::vector<uint8_t> pending;
  bool fin_seen = false, fin_sent = false;
  uint64_t bytes = 0;
};

// Moves what `r.from` has into `r.to`. Returns true if anything moved.
bool pump(Relay& r) {
  bool moved = false;
  for (;;) {
    if (!r.pending.empty()) {
      size_t written = 0;
      if (SSL_write_ex(r.to.get(), r.pending.data(), r.pending.size(), &written) != 1) break;
      r.pending.erase(r.pending.begin(), r.pending.begin() + static_cast<ptrdiff_t>(written));
      moved = true;
      continue;
    }
    if (r.fin_seen) {
      if (!r.fin_sent) {
        SSL_stream_conclude(r.to.get(), 0);
        r.fin_sent = true;
        moved = true;
      }
      break;
    }
    uint8_t buf[16384];
    size_t n = 0;
    if (SSL_read_ex(r.from.get(), buf, sizeof buf, &n) == 1) {
      r.pending.assign(buf, buf + n);
      r.bytes += n;
      moved = true;
      continue;
    }
    int err = SSL_get_error(r.from.get(), 0);
    if (err == SSL_ERROR_ZERO_RETURN) r.fin_seen = true;
    else break;
  }
  return moved;
}

// An ICE agent plus (optionally) a QUIC endpoint: one side of the attacker.
struct Leg {
  std::string name;
  bool controlling = false;
  ossl_quic::Role role = ossl_quic::Role::client;
  std::unique_ptr<ice::Agent> agent;
  std::unique_ptr<ossl_quic::Endpoint> endpoint;
  std::unique_ptr<ossl_quic::Driver> driver;
  std::optional<ice::Description> local;  // set once gathered; "v" is filled in per message
  bool remote_set = false, handshake = false, close_reported = false;
  std::vector<uint8_t> exporter;
};

class Attacker;

// One TCP connection of the listen/connect peer and its data stream.
struct Flow {
  Attacker* owner = nullptr;
  int index = 0;  // 1, 2, ... in order of creation
  uint64_t id = 0;
  ossl_quic::SslPtr stream;
  int fd = -1;
  bool header_seen = false;       // acceptor: the 'X' was read (the opener writes it)
  bool connecting = false;        // acceptor: the connect to the target is under way
  std::vector<uint8_t> up, down;  // socket -> stream, stream -> socket (one chunk each)
  size_t up_off = 0, down_off = 0;
  uint64_t sent = 0, received = 0;  // data bytes, without the 'X'
  bool sock_eof = false, fin_sent = false, peer_fin = false, shut_wr = false, finished = false;
  guint watch = 0;
  GIOCondition watch_cond = GIOCondition(0);

  ~Flow() {
    if (watch != 0) g_source_remove(watch);
    if (fd >= 0) close(fd);
  }
};

class Attacker {
 public:
  Attacker(GMainLoop* loop, json opts) : loop_(loop), opts_(std::move(opts)) {}

  // ---- mitm ------------------------------------------------------------------
  void start_mitm() {
    terminate_ = opts_.value("mode", "terminate") == "terminate" || opts_.value("mode", "") == "silent";
    silent_ = opts_.value("mode", "") == "silent";
    if (opts_.value("mode", "") == "drop") {
      terminate_ = false;
      drop_type_ = opts_.value("drop", "");
      if (drop_type_.empty()) die("--mode drop needs --drop TYPE");
    }
    if (opts_.value("mode", "") == "rewrite") {
      rewrite_ = true;
      terminate_ = false;
      rewrite_to_ = opts_.value("rewrite_to", "both");
      rewrite_version_ = opts_.value("rewrite_version", "none");
      if (rewrite_to_ != "consumer" && rewrite_to_ != "generator" && rewrite_to_ != "both")
        die("--rewrite-to consumer|generator|both");
    }
    if (opts_.value("mode", "") == "signal") {
      signal_ = true;
      terminate_ = false;
      inject_to_generator_ = opts_.value("inject_to", "consumer") == "generator";
      signal_phase_ = opts_.value("phase", "pake");
      signal_action_ = opts_.value("action", "drop");
    }
    inject_phase_ = opts_.value("phase", "ice");
    if (opts_.value("mode", "") == "inject") {
      inject_ = true;
      terminate_ = false;
      inject_to_generator_ = opts_.value("inject_to", "consumer") == "generator";
      inject_binary_ = opts_.value("binary", false);
      std::string path = opts_.value("frame_file", "");
      g_autofree char* contents = nullptr;
      gsize size = 0;
      if (!g_file_get_contents(path.c_str(), &contents, &size, nullptr)) die("cannot read --frame-file " + path);
      inject_frame_.assign(contents, size);
    }
    gen_.name = "gen";
    gen_.controlling = false;
    gen_.role = ossl_quic::Role::client;
    cons_.name = "cons";
    cons_.controlling = true;
    cons_.role = ossl_quic::Role::server;
    for (Leg* leg : {&gen_, &cons_}) make_agent(*leg);
  }

  void make_agent(Leg& leg) {
    Leg* l = &leg;
    leg.agent = std::make_unique<ice::Agent>(
        leg.controlling, no_servers(),
        ice::AgentCallbacks{
            [this, l] { on_gathered(*l); },
            [l](const ice::SelectedPath& p) {
              emit({{"event", "ice_connected"}, {"leg", l->name}, {"local", p.local}, {"remote", p.remote}});
              if (l->driver) l->driver->kick();
            },
            [l] {
              emit({{"event", "ice_failed"}, {"leg", l->name}});
            },
            [this, l](std::span<const uint8_t> d) { on_datagram(*l, d); },
        });
    leg.agent->gather();
  }

  void on_gathered(Leg& leg) {
    if (leg.local) return;
    leg.local = leg.agent->local_description();
    emit({{"event", "gathered"}, {"leg", leg.name}, {"candidates", leg.local->candidates.size()}});
    if (mode_ != "mitm") {
      rogue_send_ice();
      return;
    }
    if (gen_.local && cons_.local) start_proxy();
  }

  // Our leg's body, announcing `version`.
  static std::string body_of(const Leg& leg, int version) {
    ice::Description d = *leg.local;
    d.version = version;
    return ice::encode(d);
  }

  void set_remote(Leg& leg, const ice::Description& remote) {
    if (leg.remote_set) return;
    leg.remote_set = true;
    emit({{"event", "peer_ice"}, {"leg", leg.name}, {"version", remote.version}});
    if (terminate_) make_endpoint(leg);
    leg.agent->set_remote(remote);
  }

  void make_endpoint(Leg& leg) {
    Leg* l = &leg;
    ossl_quic::EndpointOptions options;
    if (original_) {
      options.original_identity = true;
      options.idle_timeout = std::chrono::milliseconds(30000);  // OpenSSL's default, which the original keeps
    }
    leg.endpoint = std::make_unique<ossl_quic::Endpoint>(
        leg.role, [l](std::span<const uint8_t> d) { l->agent->send(d); }, options);
    leg.driver = std::make_unique<ossl_quic::Driver>(*leg.endpoint, [this] {
      try {
        on_quic();
      } catch (const std::exception& e) {
        die(std::string("QUIC: ") + e.what());
      }
    });
  }

  void on_datagram(Leg& leg, std::span<const uint8_t> d) {
    if (!terminate_ && mode_ == "mitm") {
      Leg& other = &leg == &gen_ ? cons_ : gen_;
      forwarded_[leg.name] += d.size();
      other.agent->send(d);
      return;
    }
    if (!leg.endpoint) return;
    // One OpenSSL run for all the datagrams the loop has ready (a run per
    // datagram costs several times the crypto); a full queue runs it now.
    if (!leg.endpoint->receive_datagram(d)) {
      leg.driver->kick();
      leg.endpoint->receive_datagram(d);
    }
    leg.driver->kick_soon();
  }

  // Both legs' QUIC events (terminate mode) or the rogue's one leg.
  void on_quic() {
    if (in_quic_) return;  // a kick of the other leg from inside this one
    in_quic_ = true;
    for (Leg* leg : legs()) {
      if (!leg->endpoint) continue;
      if (leg->endpoint->handshake_done() && !leg->handshake) {
        leg->handshake = true;
        leg->exporter = leg->endpoint->export_keying_material(auth::kExporterLabel, auth::kExporterBytes);
        emit({{"event", "handshake"}, {"leg", leg->name}, {"exporter", hex(leg->exporter)}});
        if (original_) client_->close();  // the original's websocket ends with its QUIC handshake
        if (mode_ != "mitm") rogue_on_handshake();
      }
      if (leg->endpoint->closed() && !leg->close_reported) {
        leg->close_reported = true;
        const auto& c = *leg->endpoint->closed();
        emit({{"event", "closed"},
              {"leg", leg->name},
              {"by_peer", c.by_peer},
              {"app", c.is_app},
              {"code", c.error_code},
              {"reason", c.reason}});
        if (honest_) on_peer_closed(c);
        if (mode_ == "mitm" && !silent_) {
          Leg& other = leg == &gen_ ? cons_ : gen_;
          if (other.endpoint && !other.endpoint->closed()) {
            other.endpoint->close(c.is_app ? c.error_code : ossl_quic::kErrorLocal, c.reason);
            other.driver->kick();
          }
        }
      }
    }
    if (mode_ == "mitm") relay_streams();
    else rogue_poll();
    in_quic_ = false;
    maybe_quit();
  }

  std::vector<Leg*> legs() { return mode_ == "mitm" ? std::vector<Leg*>{&gen_, &cons_} : std::vector<Leg*>{&gen_}; }

  void relay_streams() {
    if (!gen_.handshake || !cons_.handshake) return;
    // Streams the consumer opens (0, 4, 8...) are opened towards the
    // generator in the same order, so they get the same ids; streams the
    // generator opens (1, 5...) are opened towards the consumer.
    for (Leg* from : {&cons_, &gen_}) {
      Leg* to = from == &cons_ ? &gen_ : &cons_;
      if (from->endpoint->closed() || to->endpoint->closed()) continue;
      while (SSL* raw = SSL_accept_stream(from->endpoint->connection(), SSL_ACCEPT_STREAM_NO_BLOCK)) {
        ossl_quic::SslPtr in(raw);
        uint64_t id = SSL_get_stream_id(raw);
        ossl_quic::SslPtr out(SSL_new_stream(to->endpoint->connection(), SSL_STREAM_FLAG_NO_BLOCK));
        if (!out) die("cannot open a relayed stream");
        uint64_t out_id = SSL_get_stream_id(out.get());
        emit({{"event", "stream"}, {"from", from->name}, {"id", id}, {"relayed_as", out_id}});
        // The reverse direction of the same bidirectional stream.
        SSL* in_raw = in.get();
        SSL* out_raw = out.get();
        for (SSL* s : {in_raw, out_raw})
          SSL_set_mode(s, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        SSL_up_ref(in_raw);
        SSL_up_ref(out_raw);
        relays_.push_back(std::make_unique<Relay>(Relay{std::move(in), std::move(out), from->name, id}));
        relays_.push_back(
            std::make_unique<Relay>(Relay{ossl_quic::SslPtr(out_raw), ossl_quic::SslPtr(in_raw), to->name, id}));
      }
    }
    bool moved = false;
    for (auto& r : relays_) moved |= pump(*r);
    if (moved) {
      for (Leg* leg : {&gen_, &cons_}) leg->driver->kick();
    }
  }

  void maybe_quit() {
    bool all_closed = true;
    for (Leg* leg : legs()) {
      if (!leg->endpoint || !leg->endpoint->closed()) all_closed = false;
    }
    if (all_closed && !quitting_) {
      quitting_ = true;
      if (honest_) {  // until our CONNECTION_CLOSE is out (peersock's rule: at most 5 s)
        quit_started_us_ = g_get_monotonic_time();
        g_timeout_add(20, &Attacker::on_quit_poll, this);
        return;
      }
      g_timeout_add(
          300,
          [](gpointer self) -> gboolean {
            static_cast<Attacker*>(self)->finish(0);
            return G_SOURCE_REMOVE;
          },
          this);
    }
  }

  void finish(int status) {
    if (finished_) return;
    finished_ = true;
    emit(summary());
    status_ = status;
    g_main_loop_quit(loop_);
  }

  // The original ends the process where it stands (exit(), no QUIC close):
  // the "done" summary first, then out, without running any destructor that
  // could still send something.
  [[noreturn]] void original_exit(int status, const std::string& why) {
    std::fprintf(stderr, "%s\n", why.c_str());
    emit({{"event", "exit"}, {"status", status}, {"why", why}});
    emit(summary());
    std::fflush(nullptr);
    std::_Exit(status);
  }

  json summary() {
    json streams = json::array();
    uint64_t app_bytes = 0;
    for (auto& r : relays_) {
      streams.push_back({{"from", r->leg_from}, {"id", r->id}, {"bytes", r->bytes}});
      if (r->id != 0 && r->id != 4) app_bytes += r->bytes;
    }
    json done = {{"event", "done"},
                 {"streams", streams},
                 {"application_bytes", app_bytes},
                 {"forwarded_datagram_bytes", forwarded_}};
    if (honest_) {
      done["sent"] = sent_;
      done["received"] = received_;
      done["clean"] = peer_ok_;
    }
    if (honest_ && tcp_) {
      done["connections"] = flows_total_;
      done["connections_clean"] = flows_clean_;
      done["connections_reset"] = flows_reset_;
      done["peer_done"] = peer_done_count_;
    }
    if (original_) done["control_bytes"] = control_bytes_;
    return done;
  }

  // ---- the websocket proxy (mitm) ---------------------------------------------
  struct Conn {
    Attacker* self;
    SoupWebsocketConnection* down = nullptr;  // the peer
    SoupWebsocketConnection* up = nullptr;    // the mailbox server
    std::deque<std::string> queued;           // peer -> server before `up` exists
    bool generator = false;
    std::string side;
    int index = 0;
    bool meddled = false;  // mode signal: the one frame was meddled with
    std::string held;      // mode signal, reorder: the frame held back
  };

  void start_proxy() {
    server_ = soup_server_new(nullptr, nullptr);
    soup_server_add_websocket_handler(server_, nullptr, nullptr, nullptr, &Attacker::on_ws, this, nullptr);
    g_autoptr(GError) error = nullptr;
    int port = opts_.value("listen_port", 0);
    if (!soup_server_listen_local(server_, static_cast<guint>(port), SOUP_SERVER_LISTEN_IPV4_ONLY, &error)) {
      die(std::string("cannot listen: ") + error->message);
    }
    session_ = soup_session_new();
    emit({{"event", "listening"}, {"port", port}});
  }

  static void on_ws(SoupServer*, SoupServerMessage*, const char*, SoupWebsocketConnection* down, gpointer self_) {
    auto* self = static_cast<Attacker*>(self_);
    auto* c = new Conn{self};
    c->index = ++self->conn_count_;
    c->down = SOUP_WEBSOCKET_CONNECTION(g_object_ref(down));
    soup_websocket_connection_set_max_incoming_payload_size(down, 1 << 20);
    g_signal_connect(down, "message", G_CALLBACK(&Attacker::on_down_message), c);
    g_signal_connect(down, "closed", G_CALLBACK(&Attacker::on_down_closed), c);
    std::string url = self->opts_.value("upstream", "");
    SoupMessage* msg = soup_message_new("GET", url.c_str());
    if (msg == nullptr) die("bad --upstream URL");
    soup_session_websocket_connect_async(self->session_, msg, nullptr, nullptr, G_PRIORITY_DEFAULT, nullptr,
                                         &Attacker::on_up_connected, c);
    g_object_unref(msg);
    emit({{"event", "client"}, {"conn", c->index}});
  }

  static void on_up_connected(GObject* source, GAsyncResult* result, gpointer c_) {
    auto* c = static_cast<Conn*>(c_);
    g_autoptr(GError) error = nullptr;
    c->up = soup_session_websocket_connect_finish(SOUP_SESSION(source), result, &error);
    if (c->up == nullptr) die(std::string("cannot reach the upstream mailbox: ") + error->message);
    soup_websocket_connection_set_max_incoming_payload_size(c->up, 1 << 20);
    g_signal_connect(c->up, "message", G_CALLBACK(&Attacker::on_up_message), c);
    g_signal_connect(c->up, "closed", G_CALLBACK(&Attacker::on_up_closed), c);
    while (!c->queued.empty()) {
      soup_websocket_connection_send_text(c->up, c->queued.front().c_str());
      c->queued.pop_front();
    }
  }

  static std::string text_of(GBytes* message) {
    gsize size = 0;
    const auto* data = static_cast<const char*>(g_bytes_get_data(message, &size));
    return std::string(data, size);
  }

  static void on_down_message(SoupWebsocketConnection*, gint, GBytes* message, gpointer c_) {
    auto* c = static_cast<Conn*>(c_);
    std::string text = text_of(message);
    json j = json::parse(text, nullptr, false);
    if (j.is_object()) {
      std::string type = j.value("type", "");
      if (type == "allocate") c->generator = true;
      if (type == "bind") c->side = j.value("side", "");
    }
    if (c->up && soup_websocket_connection_get_state(c->up) == SOUP_WEBSOCKET_STATE_OPEN) {
      soup_websocket_connection_send_text(c->up, text.c_str());
    } else {
      c->queued.push_back(text);
    }
  }

  // Server -> peer: the other side's `ice` body is swapped for ours.
  static void on_up_message(SoupWebsocketConnection*, gint, GBytes* message, gpointer c_) {
    auto* c = static_cast<Conn*>(c_);
    Attacker* self = c->self;
    std::string text = text_of(message);
    json j = json::parse(text, nullptr, false);
    if (!self->drop_type_.empty()) {
      const bool drop = j.is_object() && j.value("type", "") == self->drop_type_ &&
                        (self->drop_type_ != "message" || j.value("side", "") != c->side);
      if (drop) {
        emit({{"event", "dropped"}, {"type", self->drop_type_}, {"conn", c->index}});
      } else if (soup_websocket_connection_get_state(c->down) == SOUP_WEBSOCKET_STATE_OPEN) {
        soup_websocket_connection_send_text(c->down, text.c_str());
      }
      return;
    }
    const bool peer_message = j.is_object() && j.value("type", "") == "message" && j.value("side", "") != c->side &&
                              j.contains("body") && j["body"].is_string() && j.contains("phase") &&
                              j["phase"].is_string();
    const std::string phase = peer_message ? j["phase"].get<std::string>() : std::string();
    if (self->signal_) {
      on_signal_frame(c, j, text, peer_message, phase);
      return;
    }
    if (peer_message && self->inject_ && self->inject_phase_ != "ice" && phase == self->inject_phase_ &&
        self->inject_to_generator_ == c->generator) {
      emit({{"event", "injected"}, {"to", c->generator ? "generator" : "consumer"}, {"bytes", self->inject_frame_.size()}});
      soup_websocket_connection_send_text(c->down, self->inject_frame_.c_str());
      return;
    }
    if (peer_message && !self->inject_ && (phase == "pake" || phase == "confirm" || phase == "sealed-ice")) {
      // The ICE-rewriting attacker strips the PAKE: both peers fall back to
      // plaintext, as with the original peersock.
      emit({{"event", "stripped"}, {"to", c->generator ? "generator" : "consumer"}, {"phase", phase}});
      return;
    }
    bool peer_ice = peer_message && phase == "ice";
    if (peer_ice && self->inject_ && self->inject_phase_ == "ice" && (self->inject_to_generator_ == c->generator)) {
      // Hostile relay input: the frame carrying the other side's ice body is
      // replaced by the test's frame (as text, or as a binary frame).
      emit({{"event", "injected"},
            {"to", c->generator ? "generator" : "consumer"},
            {"bytes", self->inject_frame_.size()}});
      if (self->inject_binary_) {
        soup_websocket_connection_send_binary(c->down, self->inject_frame_.data(), self->inject_frame_.size());
      } else {
        soup_websocket_connection_send_text(c->down, self->inject_frame_.c_str());
      }
      return;
    }
    if (peer_ice && self->inject_) peer_ice = false;  // the other side just gets the real body
    if (peer_ice && self->rewrite_) {
      const std::string to = c->generator ? "generator" : "consumer";
      if (self->rewrite_to_ == "both" || self->rewrite_to_ == to) {
        json body = json::parse(j["body"].get<std::string>(), nullptr, false);
        if (!body.is_object()) die("rewrite: the ice body is not a JSON object");
        json before = body.contains("v") ? body["v"] : json();
        if (self->rewrite_version_ == "none") body.erase("v");
        else body["v"] = std::stoi(self->rewrite_version_);
        j["body"] = body.dump();
        emit({{"event", "rewrote_version"}, {"to", to}, {"before", before}, {"after", body.value("v", json())}});
        text = j.dump();
      }
      peer_ice = false;
    }
    if (peer_ice) {
      // To the generator goes our "gen" leg's description (the consumer's
      // body is for our "cons" leg), and the other way round, with the
      // version the sender announced: we carry its protocol unchanged.
      Leg& faces_sender = c->generator ? self->cons_ : self->gen_;
      Leg& faces_receiver = c->generator ? self->gen_ : self->cons_;
      try {
        ice::Description original = ice::decode(j["body"].get<std::string>());
        j["body"] = body_of(faces_receiver, original.version);
        emit(
            {{"event", "rewrote_ice"}, {"to", c->generator ? "generator" : "consumer"}, {"version", original.version}});
        self->set_remote(faces_sender, original);
      } catch (const std::exception& e) {
        die(std::string("peer ice body: ") + e.what());
      }
      text = j.dump();
    }
    if (soup_websocket_connection_get_state(c->down) == SOUP_WEBSOCKET_STATE_OPEN) {
      soup_websocket_connection_send_text(c->down, text.c_str());
    }
  }

  static void send_down(Conn* c, const std::string& text) {
    if (soup_websocket_connection_get_state(c->down) == SOUP_WEBSOCKET_STATE_OPEN) {
      soup_websocket_connection_send_text(c->down, text.c_str());
    }
  }

  // Mode signal: report, forward, and meddle with one frame.
  static void on_signal_frame(Conn* c, json& j, std::string& text, bool peer_message, const std::string& phase) {
    Attacker* self = c->self;
    const char* to = c->generator ? "generator" : "consumer";
    if (j.is_object() && j.value("type", "") == "message" && j.contains("body") && j["body"].is_string()) {
      emit({{"event", "frame"},
            {"to", to},
            {"echo", j.value("side", "") == c->side},  // the recipient's own message, echoed by the server
            {"phase", j.value("phase", "")},
            {"body", j["body"]}});
    }
    const bool target = peer_message && phase == self->signal_phase_ && self->inject_to_generator_ == c->generator &&
                        !c->meddled;
    if (!target) {
      send_down(c, text);
      if (peer_message && !c->held.empty()) {
        emit({{"event", "meddled"}, {"action", "reorder"}, {"to", to}, {"phase", self->signal_phase_}});
        send_down(c, c->held);
        c->held.clear();
      }
      return;
    }
    c->meddled = true;
    const std::string& action = self->signal_action_;
    if (action == "drop") {
      emit({{"event", "meddled"}, {"action", action}, {"to", to}, {"phase", phase}});
    } else if (action == "replay") {
      send_down(c, text);
      send_down(c, text);
      emit({{"event", "meddled"}, {"action", action}, {"to", to}, {"phase", phase}});
    } else if (action == "reorder") {
      c->held = text;  // goes out after the next message frame
    } else if (action == "truncate") {
      std::string b = j["body"].get<std::string>();
      j["body"] = b.substr(0, b.size() / 2);
      send_down(c, j.dump());
      emit({{"event", "meddled"}, {"action", action}, {"to", to}, {"phase", phase}});
    } else {
      die("unknown --action " + action);
    }
  }

  static void on_down_closed(SoupWebsocketConnection*, gpointer c_) {
    auto* c = static_cast<Conn*>(c_);
    if (c->up && soup_websocket_connection_get_state(c->up) == SOUP_WEBSOCKET_STATE_OPEN) {
      soup_websocket_connection_close(c->up, SOUP_WEBSOCKET_CLOSE_NORMAL, nullptr);
    }
  }
  static void on_up_closed(SoupWebsocketConnection*, gpointer c_) {
    auto* c = static_cast<Conn*>(c_);
    if (soup_websocket_connection_get_state(c->down) == SOUP_WEBSOCKET_STATE_OPEN) {
      soup_websocket_connection_close(c->down, SOUP_WEBSOCKET_CLOSE_NORMAL, nullptr);
    }
  }

  // ---- rogue peer and honest peer ------------------------------------------------
  // One leg ("peer") towards a real peersock. The honest peer is the rogue
  // that runs SMP on the right code and then forwards stdio.
  void start_rogue(bool honest = false, bool original = false) {
    mode_ = honest ? "peer" : "rogue";
    honest_ = honest;
    original_ = original;
    terminate_ = true;
    generator_ = opts_.value("generate", false);
    attack_ = honest ? "none" : opts_.value("attack", "early-stream");
    if (!original && opts_.value("protocol", kPeerVersion) != kPeerVersion) {
      die("only protocol version " + std::to_string(kPeerVersion) + " is implemented");
    }
    if (honest) {
      std::string mode = opts_.value("mode", "");
      if (mode != "stdio-a" && mode != "stdio-b" && mode != "listen" && mode != "connect")
        die("peer: --mode stdio-a|stdio-b|listen PORT|connect HOST:PORT is required");
      opener_ = mode == "stdio-b" || mode == "listen";
      tcp_ = mode == "listen" || mode == "connect";
      if (tcp_) {
        target_ = opts_.value("target", "");
        if (mode == "listen") listen_local();
      } else {
        g_events = stderr;
        for (int fd : {0, 1}) {
          if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) die("cannot make stdin/stdout non-blocking");
        }
      }
    }
    gen_.name = "peer";
    gen_.controlling = generator_;
    gen_.role = generator_ ? ossl_quic::Role::server : ossl_quic::Role::client;
    std::string nameplate;
    if (!generator_) {
      auto code = code::parse(opts_.value("code", ""));
      nameplate = code.nameplate;
      code_ = code.text;
    }
    // The original's fixed sides (v1 doc §2.1).
    std::string side = original_ ? (generator_ ? "initiator" : "code") : rendezvous::random_side();
    protocol_ = std::make_unique<rendezvous::Protocol>(
        generator_ ? rendezvous::Role::generator : rendezvous::Role::consumer, side, nameplate);
    client_ = std::make_unique<rendezvous::Client>(
        opts_.value("relay", ""), rendezvous::ClientCallbacks{nullptr, [this](std::string_view t) { on_mailbox(t); },
                                                              [](const Error& e) {
                                                                emit({{"event", "relay_failed"}, {"error", e.what()}});
                                                              }});
    make_agent(gen_);
  }

  void rogue_send_ice() {
    if (ice_sent_ || !gen_.local) return;
    // The original generator answers the consumer's body, never before it.
    if (original_ && generator_ && !gen_.remote_set) return;
    ice_sent_ = true;
    client_->send(protocol_->send_ice(body_of(gen_, original_ ? 1 : kPeerVersion)).to_send);
  }

  void on_mailbox(std::string_view text) {
    rendezvous::Output out;
    try {
      out = protocol_->on_text(text);
    } catch (const Error& e) {
      emit({{"event", "relay_error"}, {"error", e.what()}});
      finish(1);
      return;
    }
    client_->send(out.to_send);
    for (auto& ev : out.events) {
      if (auto* a = std::get_if<rendezvous::event::NameplateAllocated>(&ev)) {
        code_ = code::generate(a->nameplate, original_ ? 3 : code::kDefaultWords);
        std::fprintf(stderr, "Connection code: %s\n", code_.c_str());
        std::fflush(stderr);
        emit({{"event", "code"}, {"code", code_}});
      } else if (auto* ice = std::get_if<rendezvous::event::PeerIce>(&ev)) {
        try {
          set_remote(gen_, ice::decode(ice->body));
        } catch (const std::exception& e) {
          die(std::string("peer ice body: ") + e.what());
        }
        rogue_send_ice();  // the original generator's answer
      }
    }
  }

  std::string smp_code() {
    if (opts_.contains("smp_code")) return opts_["smp_code"];
    if (honest_) return code_;
    // Right nameplate, words that are (almost surely) wrong.
    auto c = code::parse(code_);
    return c.nameplate + "-zoo-zoo-zoo-zoo";
  }

  void write(SSL* s, std::span<const uint8_t> bytes) {
    size_t n = 0;
    if (SSL_write_ex(s, bytes.data(), bytes.size(), &n) != 1 || n != bytes.size()) die("stream write failed");
  }

  SSL* conn() { return gen_.endpoint->connection(); }

  void rogue_early_stream() {
    ossl_quic::SslPtr s(SSL_new_stream(conn(), SSL_STREAM_FLAG_NO_BLOCK));
    if (!s) die("cannot open the early data stream");
    std::string payload = "XEARLY-DATA-BEFORE-AUTH";
    write(s.get(), {reinterpret_cast<const uint8_t*>(payload.data()), payload.size()});
    emit({{"event", "early_stream"}, {"id", SSL_get_stream_id(s.get())}, {"bytes", payload.size()}});
    early_.push_back(std::move(s));
  }

  void rogue_on_handshake() {
    if (attack_ == "stall") {  // hold the nameplate and the connection, say nothing
      emit({{"event", "attack_sent"}, {"attack", attack_}});
      return;
    }
    auth::Secret secret = auth::derive_secret(gen_.exporter, smp_code());
    smp_ = std::make_unique<auth::Smp>(generator_ ? auth::Role::bob : auth::Role::alice, secret);
    if (!generator_) {
      // The client opens stream 0 (control) and stream 4 (auth), as peersock.
      control_.reset(SSL_new_stream(conn(), 0));
      auth_.reset(SSL_new_stream(conn(), 0));
      if (!control_ || !auth_) die("cannot open streams 0 and 4");
      SSL_set_mode(control_.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
      if (attack_ == "garbage-auth") {
        std::vector<uint8_t> junk = {0xff, 0xff, 1, 2, 3, 4};
        write(auth_.get(), junk);
      } else if (attack_ == "truncated-auth") {
        // A frame that announces 256 bytes, 10 of them, then end of stream.
        std::vector<uint8_t> part = {0x01, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
        write(auth_.get(), part);
        SSL_stream_conclude(auth_.get(), 0);
      } else if (attack_ == "garbage-mpi") {
        std::vector<uint8_t> junk(600);
        RAND_bytes(junk.data(), static_cast<int>(junk.size()));
        write(auth_.get(), auth::encode_frame(junk));
      } else {
        write(auth_.get(), auth::encode_frame(smp_->start()));
      }
      if (attack_ == "early-stream") rogue_early_stream();
      // Stream 0 before auth: a 'P' (and a 'D') with msg1. A pong ("rtt"
      // event) would mean the server acts on stream 0 before its SMP
      // verdict; the wrong --smp-code then makes SMP fail.
      if (attack_ == "ping-before-auth") {
        send_control(ping_.ping(g_get_monotonic_time()));
        send_control(std::vector<uint8_t>{'D'});
      }
    } else {
      smp_->start();
      if (attack_ == "early-stream") {
        // Data before auth: the consumer cannot have been verified yet (it
        // has not even got msg2), so the stream must get us disconnected.
        smp_.reset();
        rogue_early_stream();
      }
    }
    if (!honest_) emit({{"event", "attack_sent"}, {"attack", attack_}});
    gen_.driver->kick();
  }

  // After every QUIC run: streams, SMP, stream 0, and (peer) the data.
  void rogue_poll() {
    if (!gen_.handshake || gen_.endpoint->closed()) return;
    accept_streams();
    poll_auth();
    if (gen_.endpoint->closed()) return;
    poll_control();
    if (honest_ && tcp_) {
      pump_flows();
      resume_accepting();
    } else if (honest_) {
      peer_pump();
    }
  }

  // Like peersock: the server takes streams 0 and 4 (and, after auth, the
  // acceptor its data stream); the client takes no stream before its own
  // auth (the rogue client none at all).
  void accept_streams() {
    // The original client takes every stream at once, before it reads
    // the auth stream (v1 doc §7.4).
    if (!generator_ && !(honest_ && authenticated_) && !original_) return;
    while (SSL* raw = SSL_accept_stream(conn(), SSL_ACCEPT_STREAM_NO_BLOCK)) {
      uint64_t id = SSL_get_stream_id(raw);
      if (original_ && !authenticated_ && id != 0 && id != 4) {
        original_exit(1, "Unexpected stream before auth (stream " + std::to_string(id) + ")");
      }
      if (original_ && authenticated_ && id != 0 && id != 4 && (data_ || flows_total_ > 0)) {
        original_exit(1, "a second data stream (" + std::to_string(id) + "): the original carries one");
      }
      if (id == 0 && !control_) {
        control_.reset(raw);
        SSL_set_mode(raw, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
      } else if (id == 4 && !auth_) {
        auth_.reset(raw);
      } else if (honest_ && !authenticated_) {
        SSL_free(raw);
        peer_fail(ossl_quic::kErrorProtocol, "the peer opened stream " + std::to_string(id) + " before authentication");
        return;
      } else if (honest_ && tcp_ && !opener_) {
        add_flow(ossl_quic::SslPtr(raw), -1);
      } else if (honest_ && !tcp_ && !opener_ && !data_) {
        data_.reset(raw);
        SSL_set_mode(raw, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        emit({{"event", "data_stream"}, {"id", id}, {"opened_by", "peer"}});
      } else {
        SSL_free(raw);  // not ours to read (it is reset)
      }
    }
  }

  void poll_auth() {
    if (!auth_ || !smp_) return;
    uint8_t buf[4096];
    size_t n = 0;
    while (smp_ && SSL_read_ex(auth_.get(), buf, sizeof buf, &n) == 1) {
      frames_.feed({buf, n});
      while (auto f = frames_.next()) {
        auto step = smp_->on_message(*f);
        if (!step.reply.empty()) write(auth_.get(), auth::encode_frame(step.reply));
        emit({{"event", "smp"},
              {"status", step.status == auth::Status::success    ? "success"
                         : step.status == auth::Status::mismatch ? "mismatch"
                                                                 : "in_progress"}});
        if (step.status == auth::Status::mismatch && original_) {
          // The original's Bob: a line, exit 1, msg4 not sent, no close.
          original_exit(1, "connection code mismatch");
        }
        if (step.status == auth::Status::mismatch) {
          // What peersock does too: tell the other side at once.
          gen_.endpoint->close(ossl_quic::kErrorAuthFailed, "code-mismatch");
        }
        if (step.status == auth::Status::success && attack_ == "bad-magic") {
          // Authenticated (--smp-code is the right code): now a data stream
          // that does not start with 'X'.
          ossl_quic::SslPtr s(SSL_new_stream(conn(), SSL_STREAM_FLAG_NO_BLOCK));
          if (!s) die("cannot open the data stream");
          const std::string payload = "Ynot the magic";
          write(s.get(), {reinterpret_cast<const uint8_t*>(payload.data()), payload.size()});
          emit({{"event", "bad_magic_stream"}, {"id", SSL_get_stream_id(s.get())}});
          early_.push_back(std::move(s));
        }
        gen_.driver->kick();
        if (step.status == auth::Status::success && honest_) {
          smp_.reset();
          on_peer_authenticated();
          break;
        }
      }
    }
    ERR_clear_error();
  }

  // ---- stream 0 (protocol v2): 'D' delivered, 'P' ping, 'Q' pong ----------
  void poll_control() {
    if (!control_) return;
    uint8_t buf[4096];
    size_t n = 0;
    if (original_) {  // a v1 peer never writes here: count what arrives anyway
      while (SSL_read_ex(control_.get(), buf, sizeof buf, &n) == 1) {
        control_bytes_ += n;
        emit({{"event", "control_bytes"}, {"total", control_bytes_}});
      }
      ERR_clear_error();
      return;
    }
    while (SSL_read_ex(control_.get(), buf, sizeof buf, &n) == 1) {
      auto events = control_reader_.feed({buf, n});
      if (events.done > 0) {  // one event per read that brought 'D's, with the total so far
        peer_done_ = true;
        peer_done_count_ += events.done;
        emit({{"event", "peer_done"}, {"count", peer_done_count_}});
      }
      auto now = g_get_monotonic_time();
      auto pong = ping_.on_control(events.pings, events.pongs, now);
      send_control(pong.reply);
      if (generator_ && ping_.pinged_by_peer() && !pinged_back_) {  // the server pings back once
        pinged_back_ = true;
        send_control(ping_.ping(now));
      }
      if (pong.rtt_ms) emit({{"event", "rtt"}, {"ms", *pong.rtt_ms}});
    }
    ERR_clear_error();
    flush_control();
    maybe_close_after_stdio();
  }

  void send_control(std::span<const uint8_t> bytes) {
    control_out_.insert(control_out_.end(), bytes.begin(), bytes.end());
    flush_control();
  }
  void flush_control() {
    if (!control_ || control_out_.empty()) return;
    size_t n = 0;
    if (SSL_write_ex(control_.get(), control_out_.data(), control_out_.size(), &n) == 1) {
      control_out_.erase(control_out_.begin(), control_out_.begin() + static_cast<ptrdiff_t>(n));
      gen_.driver->kick();
    }
    ERR_clear_error();
  }

  // ---- the honest peer's data stream -----------------------------------------
  void on_peer_authenticated() {
    authenticated_ = true;
    emit({{"event", "authenticated"}, {"mode", opts_.value("mode", "")}});
    if (!original_) {
      // The mailbox has done its job (as peersock: release it, happily).
      client_->send(protocol_->finish("happy").to_send);
      client_->close();
    }
    if (!generator_ && !original_) send_control(ping_.ping(g_get_monotonic_time()));  // also makes stream 0 visible to the server
    if (tcp_) {
      if (listen_fd_ >= 0) accept_watch_ = g_unix_fd_add(listen_fd_, G_IO_IN, &Attacker::on_accept, this);
    } else if (opener_) {
      data_.reset(SSL_new_stream(conn(), 0));
      if (!data_) die("cannot open the data stream");
      SSL_set_mode(data_.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
      write(data_.get(), {&forward::kDataStreamMagic, 1});
      emit({{"event", "data_stream"}, {"id", SSL_get_stream_id(data_.get())}, {"opened_by", "us"}});
    }
    accept_streams();  // a client's data stream may be queued already
    gen_.driver->kick();
  }

  void peer_fail(uint64_t app_code, const std::string& why) {
    emit({{"event", "error"}, {"error", why}});
    std::fprintf(stderr, "psk-attacker: %s\n", why.c_str());
    if (!gen_.endpoint->closed()) gen_.endpoint->close(app_code, why);
    gen_.driver->kick();
  }

  // Moves stdin -> data stream and data stream -> stdout as far as both
  // sides take, then watches whichever fd it waits for. Runs after every
  // QUIC run and from the fd watches.
  void peer_pump() {
    if (!data_ || gen_.endpoint->closed() || stdio_done_) return;
    bool wrote = false;
    for (bool moved = true; moved;) {
      moved = false;
      // stdin -> stream
      while (up_off_ < up_.size()) {
        size_t n = 0;
        if (SSL_write_ex(data_.get(), up_.data() + up_off_, up_.size() - up_off_, &n) != 1) {
          if (SSL_get_error(data_.get(), 0) != SSL_ERROR_WANT_WRITE) {
            ERR_clear_error();
            return peer_fail(ossl_quic::kErrorLocal, "the data stream cannot be written (reset by the peer?)");
          }
          ERR_clear_error();
          break;
        }
        up_off_ += n;
        sent_ += n;
        moved = wrote = true;
      }
      if (up_off_ == up_.size() && !stdin_eof_) {
        up_.resize(kChunk);
        ssize_t r = read(0, up_.data(), up_.size());
        up_.resize(r > 0 ? static_cast<size_t>(r) : 0);
        up_off_ = 0;
        if (r > 0) moved = true;
        else if (r == 0) stdin_eof_ = true;
        else if (errno != EAGAIN && errno != EINTR) die(std::string("stdin: ") + std::strerror(errno));
      }
      if (original_ && stdin_eof_ && up_off_ == up_.size()) {
        // The original's stdio end: "connection closed", then a full close
        // (code 0) after flushing; no FIN. Exit 0 once it is out.
        std::fprintf(stderr, "connection closed\n");
        emit({{"event", "closing"}, {"why", "stdin EOF"}});
        peer_ok_ = true;
        remove_watches();
        gen_.endpoint->close(ossl_quic::kErrorNone, "");
        gen_.driver->kick();
        return;
      }
      if (stdin_eof_ && up_off_ == up_.size() && !fin_sent_) {
        SSL_stream_conclude(data_.get(), 0);
        fin_sent_ = wrote = true;
        emit({{"event", "fin_sent"}, {"bytes", sent_}});
      }
      // stream -> stdout (the acceptor checks the 'X' first)
      while (down_off_ < down_.size()) {
        ssize_t w = ::write(1, down_.data() + down_off_, down_.size() - down_off_);
        if (w < 0) {
          if (errno == EAGAIN || errno == EINTR) break;
          return peer_fail(ossl_quic::kErrorLocal, std::string("stdout: ") + std::strerror(errno));
        }
        down_off_ += static_cast<size_t>(w);
        received_ += static_cast<uint64_t>(w);
        moved = true;
      }
      if (down_off_ == down_.size() && !peer_fin_) {
        down_.resize(kChunk);
        size_t n = 0;
        int ok = SSL_read_ex(data_.get(), down_.data(), down_.size(), &n);
        down_.resize(ok == 1 ? n : 0);
        down_off_ = 0;
        if (ok == 1) {
          moved = true;
          if (!opener_ && !magic_seen_) {
            magic_seen_ = true;
            if (down_[0] != forward::kDataStreamMagic) {
              return peer_fail(ossl_quic::kErrorProtocol, "the data stream does not start with 'X'");
            }
            down_off_ = 1;
          }
        } else {
          int err = SSL_get_error(data_.get(), 0);
          ERR_clear_error();
          if (err == SSL_ERROR_ZERO_RETURN) {
            if (original_) original_exit(1, "the peer sent FIN on the data stream (fatal in the original)");
            peer_fin_ = true;
            emit({{"event", "peer_fin"}, {"bytes", received_}});
          } else if (err != SSL_ERROR_WANT_READ) {
            if (original_) original_exit(1, "the data stream was reset (fatal in the original)");
            return peer_fail(ossl_quic::kErrorLocal, "the data stream was reset before all data was delivered");
          }
        }
      }
      if (peer_fin_ && down_off_ == down_.size() && !stdout_closed_) {
        // Replace stdout with /dev/null: the reader sees EOF.
        int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null_fd < 0 || dup2(null_fd, 1) < 0) die("cannot close stdout");
        close(null_fd);
        stdout_closed_ = true;
      }
    }
    watch_fd(stdin_watch_, 0, GIOCondition(G_IO_IN | G_IO_HUP | G_IO_ERR), !stdin_eof_ && up_off_ == up_.size());
    watch_fd(stdout_watch_, 1, GIOCondition(G_IO_OUT | G_IO_ERR), down_off_ < down_.size());
    if (wrote) gen_.driver->kick();
    if (fin_sent_ && stdout_closed_) {
      // Delivered completely both ways: say so once on stream 0.
      stdio_done_ = true;
      emit({{"event", "delivered"}, {"sent", sent_}, {"received", received_}});
      send_control(std::vector<uint8_t>{session::kDoneMarker});
      maybe_close_after_stdio();
    }
  }

  // The peer closed: what already arrived goes to stdout before the exit
  // (the test closes only after every byte arrived, so this is the rest of
  // one buffer at most).
  void flush_stdout_blocking() {
    if (tcp_ || stdout_closed_) return;
    while (down_off_ < down_.size()) {
      ssize_t w = ::write(1, down_.data() + down_off_, down_.size() - down_off_);
      if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
        pollfd p{1, POLLOUT, 0};
        (void)poll(&p, 1, 1000);
        continue;
      }
      if (w <= 0) return;
      down_off_ += static_cast<size_t>(w);
      received_ += static_cast<uint64_t>(w);
    }
  }

  void watch_fd(guint& id, int fd, GIOCondition cond, bool want) {
    if (want && id == 0) {
      id = g_unix_fd_add(
          fd, cond,
          [](gint fd, GIOCondition, gpointer self_) -> gboolean {
            auto* self = static_cast<Attacker*>(self_);
            (fd == 0 ? self->stdin_watch_ : self->stdout_watch_) = 0;  // peer_pump re-adds it if still needed
            self->peer_pump();
            return G_SOURCE_REMOVE;
          },
          this);
    } else if (!want && id != 0) {
      g_source_remove(id);
      id = 0;
    }
  }
  void remove_watches() {
    for (guint* id : {&stdin_watch_, &stdout_watch_}) {
      if (*id != 0) g_source_remove(*id);
      *id = 0;
    }
  }

  // peersock's rule: a stdio side closes only when it delivered its stream
  // and the peer said the same, so no tail is lost.
  void maybe_close_after_stdio() {
    if (!honest_ || !stdio_done_ || !peer_done_ || !control_out_.empty() || gen_.endpoint->closed()) return;
    emit({{"event", "closing"}});
    gen_.endpoint->close(ossl_quic::kErrorNone, "done");
    gen_.driver->kick();
  }

  void on_peer_closed(const ossl_quic::CloseInfo& c) {
    remove_watches();
    if (original_) {
      // "Quitting": exit 0 whatever the code; the local end closes with it.
      if (!peer_ok_) flush_stdout_blocking();
      peer_ok_ = true;
      return;
    }
    if (tcp_) {
      // The connection is gone: what is still open ends abortively (§7.4).
      // Only marked here; sweep_flows() frees them outside any callback.
      stop_listening();
      for (auto& f : flows_) {
        if (!f->finished) abort_flow(*f, "the QUIC connection closed");
      }
      peer_ok_ = c.is_app && c.error_code == ossl_quic::kErrorNone;
      if (!peer_ok_) {
        std::fprintf(stderr, "psk-attacker: the connection ended with code %#llx (%s)\n",
                     static_cast<unsigned long long>(c.error_code), c.reason.c_str());
      }
      return;
    }
    peer_ok_ = c.is_app && c.error_code == ossl_quic::kErrorNone && stdio_done_;
    if (!peer_ok_) {
      std::fprintf(stderr, "psk-attacker: the connection ended before all data was delivered (code %#llx, %s)\n",
                   static_cast<unsigned long long>(c.error_code), c.reason.c_str());
    }
  }

  static gboolean on_quit_poll(gpointer self_) {
    auto* self = static_cast<Attacker*>(self_);
    bool late = g_get_monotonic_time() - self->quit_started_us_ > 5 * G_USEC_PER_SEC;
    if (self->gen_.endpoint->shutdown_complete() || late) {
      self->finish(self->peer_ok_ ? 0 : 1);
      return G_SOURCE_REMOVE;
    }
    self->gen_.driver->kick();
    return G_SOURCE_CONTINUE;
  }

  // SIGTERM: the TCP peer ends like peersock on a signal, with a close of
  // code 0 (maybe_quit() exits once it is out); everything else stops at once.
  void on_sigterm() {
    if (honest_ && tcp_ && gen_.endpoint && gen_.endpoint->connection() && !gen_.endpoint->closed()) {
      emit({{"event", "closing"}, {"why", "SIGTERM"}});
      gen_.endpoint->close(ossl_quic::kErrorNone, "done");
      gen_.driver->kick();
      return;
    }
    finish(0);
  }

  // ---- the honest peer's TCP connections (listen / connect) -------------------
  void listen_local() {
    int port = 0;
    try {
      port = std::stoi(target_);
    } catch (const std::exception&) {
      die("listen: '" + target_ + "' is not a port");
    }
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        listen(listen_fd_, 64) != 0)
      die("listen on 127.0.0.1:" + target_ + ": " + std::strerror(errno));
    emit({{"event", "listening"}, {"port", port}});
  }

  void stop_listening() {
    if (accept_watch_ != 0) g_source_remove(accept_watch_);
    accept_watch_ = 0;
    if (listen_fd_ >= 0) close(listen_fd_);
    listen_fd_ = -1;
  }

  uint64_t streams_left() {
    uint64_t avail = 0;
    if (!SSL_get_quic_stream_bidi_local_avail(conn(), &avail)) avail = 0;
    ERR_clear_error();
    return avail;
  }

  static gboolean on_accept(gint, GIOCondition, gpointer self_) {
    auto* self = static_cast<Attacker*>(self_);
    bool keep = self->accept_local();
    self->sweep_flows();
    if (!keep) self->accept_watch_ = 0;
    return keep ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
  }

  // Accepts what waits; returns false (stop watching) at the peer's stream
  // limit: further connections wait in the kernel's queue, as with peersock.
  bool accept_local() {
    if (gen_.endpoint->closed()) return false;
    for (;;) {
      if (streams_left() == 0) {
        if (!accept_paused_) emit({{"event", "accept_paused"}});
        accept_paused_ = true;
        return false;
      }
      int client = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (client < 0) return true;
      ossl_quic::SslPtr s(SSL_new_stream(conn(), SSL_STREAM_FLAG_NO_BLOCK));
      if (!s) {
        ERR_clear_error();
        emit({{"event", "error"}, {"error", "cannot open a data stream; connection refused"}});
        close(client);
        continue;
      }
      write(s.get(), {&forward::kDataStreamMagic, 1});  // with the opening (§7.2)
      add_flow(std::move(s), client);
      gen_.driver->kick_soon();
      if (original_) return false;  // one accept per run: later clients wait in the backlog
    }
  }

  void resume_accepting() {
    if (!accept_paused_ || listen_fd_ < 0 || gen_.endpoint->closed() || streams_left() == 0) return;
    accept_paused_ = false;
    emit({{"event", "accept_resumed"}});
    accept_watch_ = g_unix_fd_add(listen_fd_, G_IO_IN, &Attacker::on_accept, this);
  }

  // fd >= 0: the opener's accepted socket (its 'X' is written); -1: a stream
  // the peer opened, whose 'X' is read before the target is dialled.
  void add_flow(ossl_quic::SslPtr stream, int fd) {
    auto f = std::make_unique<Flow>();
    f->owner = this;
    f->index = ++flows_total_;
    f->id = SSL_get_stream_id(stream.get());
    SSL_set_mode(stream.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    f->stream = std::move(stream);
    f->fd = fd;
    f->header_seen = fd >= 0;
    emit({{"event", "conn_open"}, {"index", f->index}, {"id", f->id}, {"opened_by", fd >= 0 ? "us" : "peer"}});
    flows_.push_back(std::move(f));
    pump_flow(*flows_.back());
  }

  void pump_flows() {
    for (size_t i = 0; i < flows_.size(); ++i) pump_flow(*flows_[i]);
    sweep_flows();
  }

  void sweep_flows() {
    std::erase_if(flows_, [](const std::unique_ptr<Flow>& f) { return f->finished; });
  }

  static gboolean on_flow_fd(gint, GIOCondition, gpointer flow) {
    auto* f = static_cast<Flow*>(flow);
    Attacker* self = f->owner;
    f->watch = 0;  // this source ends; pump_flow adds what it still needs
    f->watch_cond = GIOCondition(0);
    if (f->connecting) self->connect_done(*f);
    self->pump_flow(*f);
    self->sweep_flows();
    return G_SOURCE_REMOVE;
  }

  void watch_flow(Flow& f) {
    unsigned cond = 0;
    if (f.connecting || f.down_off < f.down.size()) cond |= G_IO_OUT;
    if (!f.connecting && !f.sock_eof && f.up_off == f.up.size()) cond |= G_IO_IN;
    if (cond != 0) cond |= G_IO_ERR | G_IO_HUP;
    if (GIOCondition(cond) == f.watch_cond) return;
    if (f.watch != 0) g_source_remove(f.watch);
    f.watch = 0;
    f.watch_cond = GIOCondition(cond);
    if (cond != 0) f.watch = g_unix_fd_add(f.fd, GIOCondition(cond), &Attacker::on_flow_fd, &f);
  }

  // The acceptor dials its target for each stream after its 'X' (§7.1).
  void start_connect(Flow& f) {
    auto colon = target_.rfind(':');
    if (colon == std::string::npos) die("connect: '" + target_ + "' is not HOST:PORT");
    std::string host = target_.substr(0, colon), port = target_.substr(colon + 1);
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr)
      return connect_failed(f, "cannot resolve " + target_);
    f.fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int r = f.fd < 0 ? -1 : connect(f.fd, res->ai_addr, res->ai_addrlen);
    int err = errno;
    freeaddrinfo(res);
    if (r == 0) return emit({{"event", "conn_connected"}, {"index", f.index}});
    if (err != EINPROGRESS) return connect_failed(f, std::strerror(err));
    f.connecting = true;
  }

  void connect_done(Flow& f) {
    f.connecting = false;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(f.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) return connect_failed(f, std::strerror(err));
    emit({{"event", "conn_connected"}, {"index", f.index}});
  }

  // v >= 2: a failed target connection resets that stream only (§7.3).
  void connect_failed(Flow& f, const std::string& why) {
    emit({{"event", "conn_failed"}, {"index", f.index}, {"error", why}});
    abort_flow(f, "cannot connect to " + target_ + ": " + why);
  }

  // Reset (RESET_STREAM now, STOP_SENDING when OpenSSL frees a stream whose
  // receiving part has not ended) and an RST on the socket (§7.4).
  void abort_flow(Flow& f, const std::string& why) {
    if (f.finished) return;
    f.finished = true;
    ++flows_reset_;
    emit({{"event", "conn_reset"},
          {"index", f.index},
          {"id", f.id},
          {"why", why},
          {"sent", f.sent},
          {"received", f.received}});
    if (f.stream) (void)SSL_stream_reset(f.stream.get(), nullptr, 0);
    ERR_clear_error();
    f.stream.reset();
    if (f.fd >= 0) {
      linger l{1, 0};
      setsockopt(f.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      close(f.fd);
      f.fd = -1;
    }
    if (gen_.driver) gen_.driver->kick_soon();
  }

  // Moves socket -> stream and stream -> socket as far as both sides take.
  void pump_flow(Flow& f) {
    if (f.finished || !gen_.endpoint || gen_.endpoint->closed()) return;
    SSL* s = f.stream.get();
    if (!f.header_seen) {
      uint8_t magic = 0;
      size_t n = 0;
      if (SSL_read_ex(s, &magic, 1, &n) != 1) {
        int err = SSL_get_error(s, 0);
        ERR_clear_error();
        if (err == SSL_ERROR_WANT_READ) return;
        // Ended before its first byte: dropped without an error (§7.2).
        emit({{"event", "conn_dropped"}, {"index", f.index}, {"id", f.id}});
        f.finished = true;
        f.stream.reset();
        return;
      }
      if (magic != forward::kDataStreamMagic)
        return peer_fail(ossl_quic::kErrorProtocol, "data stream " + std::to_string(f.id) + " does not start with 'X'");
      f.header_seen = true;
      start_connect(f);
      if (f.finished) return;
    }
    if (f.connecting) return watch_flow(f);
    bool wrote = false;
    for (bool moved = true; moved;) {
      moved = false;
      // socket -> stream
      while (f.up_off < f.up.size()) {
        size_t n = 0;
        if (SSL_write_ex(s, f.up.data() + f.up_off, f.up.size() - f.up_off, &n) != 1) {
          int err = SSL_get_error(s, 0);
          ERR_clear_error();
          if (err == SSL_ERROR_WANT_WRITE) break;
          return abort_flow(f, "the stream cannot be written (reset by the peer?)");
        }
        f.up_off += n;
        f.sent += n;
        moved = wrote = true;
      }
      if (f.up_off == f.up.size() && !f.sock_eof) {
        f.up.resize(kChunk);
        ssize_t r = ::read(f.fd, f.up.data(), f.up.size());
        f.up.resize(r > 0 ? static_cast<size_t>(r) : 0);
        f.up_off = 0;
        if (r > 0) moved = true;
        else if (r == 0) f.sock_eof = true;
        else if (errno != EAGAIN && errno != EINTR) return abort_flow(f, std::string("read: ") + std::strerror(errno));
      }
      if (original_ && f.sock_eof && f.up_off == f.up.size()) {
        // The original's TCP end: "connection close", exit(0) at once,
        // no QUIC close (the peer notices by its idle timeout).
        original_exit(0, "connection close");
      }
      if (f.sock_eof && f.up_off == f.up.size() && !f.fin_sent) {
        SSL_stream_conclude(s, 0);
        f.fin_sent = wrote = true;
      }
      // stream -> socket
      while (f.down_off < f.down.size()) {
        ssize_t w = ::send(f.fd, f.down.data() + f.down_off, f.down.size() - f.down_off, MSG_NOSIGNAL);
        if (w < 0) {
          if (errno == EAGAIN || errno == EINTR) break;
          return abort_flow(f, std::string("write: ") + std::strerror(errno));
        }
        f.down_off += static_cast<size_t>(w);
        f.received += static_cast<uint64_t>(w);
        moved = true;
      }
      if (f.down_off == f.down.size() && !f.peer_fin) {
        f.down.resize(kChunk);
        size_t n = 0;
        int ok = SSL_read_ex(s, f.down.data(), f.down.size(), &n);
        f.down.resize(ok == 1 ? n : 0);
        f.down_off = 0;
        if (ok == 1) {
          moved = true;
        } else {
          int err = SSL_get_error(s, 0);
          ERR_clear_error();
          if (err == SSL_ERROR_ZERO_RETURN && original_)
            original_exit(1, "the peer sent FIN on the data stream (fatal in the original)");
          if (err == SSL_ERROR_ZERO_RETURN) f.peer_fin = true;
          else if (err != SSL_ERROR_WANT_READ && original_) original_exit(1, "the data stream was reset (fatal in the original)");
          else if (err != SSL_ERROR_WANT_READ) return abort_flow(f, "the stream was reset by the peer");
        }
      }
      if (f.peer_fin && f.down_off == f.down.size() && !f.shut_wr) {
        shutdown(f.fd, SHUT_WR);
        f.shut_wr = true;
      }
    }
    if (wrote) gen_.driver->kick_soon();
    if (f.fin_sent && f.shut_wr) return finish_flow(f);
    watch_flow(f);
  }

  // Both directions ended with FIN: one 'D' on stream 0 (§8.2).
  void finish_flow(Flow& f) {
    f.finished = true;
    ++flows_clean_;
    emit({{"event", "conn_done"}, {"index", f.index}, {"id", f.id}, {"sent", f.sent}, {"received", f.received}});
    if (f.watch != 0) g_source_remove(f.watch);
    f.watch = 0;
    close(f.fd);
    f.fd = -1;
    f.stream.reset();  // FIN sent: OpenSSL delivers the rest and then forgets the stream
    send_control(std::vector<uint8_t>{session::kDoneMarker});
  }

  int status() const { return status_; }

 private:
  GMainLoop* loop_;
  json opts_;
  std::string mode_ = "mitm";
  bool terminate_ = true;
  bool in_quic_ = false, quitting_ = false, finished_ = false;
  bool inject_ = false, inject_to_generator_ = false, inject_binary_ = false, signal_ = false;
  std::string inject_phase_ = "ice", signal_phase_, signal_action_;
  bool silent_ = false;
  std::string inject_frame_;
  std::string drop_type_;  // --mode drop: the server frame type never delivered
  bool rewrite_ = false;
  std::string rewrite_to_, rewrite_version_;
  int status_ = 1;
  Leg gen_, cons_;
  std::vector<std::unique_ptr<Relay>> relays_;
  std::map<std::string, uint64_t> forwarded_;
  SoupServer* server_ = nullptr;
  SoupSession* session_ = nullptr;
  int conn_count_ = 0;

  // rogue
  bool generator_ = false, ice_sent_ = false;
  std::string attack_, code_;
  std::unique_ptr<rendezvous::Protocol> protocol_;
  std::unique_ptr<rendezvous::Client> client_;
  std::unique_ptr<auth::Smp> smp_;
  auth::FrameReader frames_;
  bool authenticated_ = false;
  session::ControlReader control_reader_{kPeerVersion};
  session::ControlPing ping_;
  bool pinged_back_ = false, peer_done_ = false;
  std::vector<uint8_t> control_out_;
  // streams before gen_ (below in destruction order): they are freed first
  ossl_quic::SslPtr control_, auth_;
  std::vector<ossl_quic::SslPtr> early_;

  // honest peer (stdio-a / stdio-b)
  static constexpr size_t kChunk = 64 * 1024;
  bool honest_ = false, opener_ = false, peer_ok_ = false;
  ossl_quic::SslPtr data_;
  std::vector<uint8_t> up_, down_;  // stdin -> stream, stream -> stdout (one chunk each)
  size_t up_off_ = 0, down_off_ = 0;
  uint64_t sent_ = 0, received_ = 0;  // data bytes, without the 'X'
  bool stdin_eof_ = false, fin_sent_ = false, peer_fin_ = false, stdout_closed_ = false, magic_seen_ = false;
  bool stdio_done_ = false;
  guint stdin_watch_ = 0, stdout_watch_ = 0;

  // honest peer (listen / connect)
  bool tcp_ = false, accept_paused_ = false;
  std::string target_;  // listen: PORT; connect: HOST:PORT
  int listen_fd_ = -1;
  guint accept_watch_ = 0;
  std::vector<std::unique_ptr<Flow>> flows_;
  int flows_total_ = 0, flows_clean_ = 0, flows_reset_ = 0;
  uint64_t peer_done_count_ = 0;
  gint64 quit_started_us_ = 0;

  // original-like peer
  bool original_ = false;
  uint64_t control_bytes_ = 0;
};

json parse_args(int argc, char** argv) {
  if (argc < 2) die("usage: psk-attacker mitm|rogue|peer|original [options] (see the comment at the top of attacker.cpp)");
  json o;
  o["command"] = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--listen-port") o["listen_port"] = std::stoi(next());
    else if (a == "--upstream") o["upstream"] = next();
    else if (a == "--mode") {
      o["mode"] = next();
      if (o["mode"] == "listen" || o["mode"] == "connect") o["target"] = next();  // PORT, HOST:PORT
    } else if (a == "--relay") o["relay"] = next();
    else if (a == "--code") o["code"] = next();
    else if (a == "--generate") o["generate"] = true;
    else if (a == "--attack") o["attack"] = next();
    else if (a == "--smp-code") o["smp_code"] = next();
    else if (a == "--timeout") o["timeout"] = std::stoi(next());
    else if (a == "--inject-to") o["inject_to"] = next();
    else if (a == "--drop") o["drop"] = next();
    else if (a == "--frame-file") o["frame_file"] = next();
    else if (a == "--binary") o["binary"] = true;
    else if (a == "--phase") o["phase"] = next();
    else if (a == "--action") o["action"] = next();
    else if (a == "--protocol") o["protocol"] = std::stoi(next());
    else if (a == "--rewrite-to") o["rewrite_to"] = next();
    else if (a == "--rewrite-version") o["rewrite_version"] = next();
    else die("unknown option " + a);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  json opts = parse_args(argc, argv);
  GMainLoop* loop = g_main_loop_new(nullptr, FALSE);
  int status = 1;
  {
    Attacker attacker(loop, opts);
    try {
      if (opts["command"] == "mitm") attacker.start_mitm();
      else if (opts["command"] == "rogue") attacker.start_rogue();
      else if (opts["command"] == "peer") attacker.start_rogue(/*honest=*/true);
      else if (opts["command"] == "original") attacker.start_rogue(/*honest=*/true, /*original=*/true);
      else die("unknown command");
    } catch (const std::exception& e) {
      die(e.what());
    }
    // Both end with the "done" summary (relayed bytes per stream).
    g_timeout_add_seconds(
        static_cast<guint>(opts.value("timeout", 60)),
        [](gpointer a) -> gboolean {
          emit({{"event", "timeout"}});
          static_cast<Attacker*>(a)->finish(1);
          return G_SOURCE_REMOVE;
        },
        &attacker);
    g_unix_signal_add(
        SIGTERM,
        [](gpointer a) -> gboolean {
          static_cast<Attacker*>(a)->on_sigterm();
          return G_SOURCE_REMOVE;
        },
        &attacker);
    g_main_loop_run(loop);
    status = attacker.status();
  }
  g_main_loop_unref(loop);
  return status;
}

// psk-attacker: the hostile relay and the hostile peer of the attack tests
// (tests/e2e/test_attacks.py). A test tool built from peersock's own layers
// (ice::Agent, quic::Endpoint, rendezvous::Protocol/Client, auth::Smp), never
// installed, never talking to anything but the test's own namespace.
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
//         bad-magic     run SMP (pass the right --smp-code to authenticate),
//                       then open a data stream that starts with 'Y'
//                       (to test the stream header check after auth)
//
// Output: one JSON object per line on stdout ({"event": ...}), flushed.
// Exit status: 0 when the run ended (the peers closed), 1 on a tool error or
// its --timeout.
#include <gio/gio.h>
#include <glib-unix.h>
#include <libsoup/soup.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

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

#include "peersock/auth/smp.hpp"
#include "peersock/code/code.hpp"
#include "peersock/config/config.hpp"
#include "peersock/error.hpp"
#include "peersock/ice/agent.hpp"
#include "peersock/ice/body.hpp"
#include "peersock/quic/driver.hpp"
#include "peersock/quic/endpoint.hpp"
#include "peersock/rendezvous/client.hpp"
#include "peersock/rendezvous/protocol.hpp"

namespace {

using json = nlohmann::json;
using namespace peersock;

void emit(json event) {
  std::string line = event.dump();
  std::fprintf(stdout, "%s\n", line.c_str());
  std::fflush(stdout);
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
  quic::SslPtr from, to;
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
  quic::Role role = quic::Role::client;
  std::unique_ptr<ice::Agent> agent;
  std::unique_ptr<quic::Endpoint> endpoint;
  std::unique_ptr<quic::Driver> driver;
  std::optional<std::string> local_body;
  bool remote_set = false, handshake = false, close_reported = false;
  std::vector<uint8_t> exporter;
};

class Attacker {
 public:
  Attacker(GMainLoop* loop, json opts) : loop_(loop), opts_(std::move(opts)) {}

  // ---- mitm ------------------------------------------------------------------
  void start_mitm() {
    terminate_ = opts_.value("mode", "terminate") == "terminate" || opts_.value("mode", "") == "silent";
    silent_ = opts_.value("mode", "") == "silent";
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
    gen_.role = quic::Role::client;
    cons_.name = "cons";
    cons_.controlling = true;
    cons_.role = quic::Role::server;
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
            [l] { emit({{"event", "ice_failed"}, {"leg", l->name}}); },
            [this, l](std::span<const uint8_t> d) { on_datagram(*l, d); },
        });
    leg.agent->gather();
  }

  void on_gathered(Leg& leg) {
    if (leg.local_body) return;
    auto d = leg.agent->local_description();
    d.version = ice::kOurVersion;
    leg.local_body = ice::encode(d);
    emit({{"event", "gathered"}, {"leg", leg.name}, {"candidates", d.candidates.size()}});
    if (mode_ == "rogue") {
      rogue_send_ice();
      return;
    }
    if (gen_.local_body && cons_.local_body) start_proxy();
  }

  void set_remote(Leg& leg, const std::string& body) {
    if (leg.remote_set) return;
    leg.remote_set = true;
    emit({{"event", "peer_ice"}, {"leg", leg.name}});
    auto remote = ice::decode(body);
    if (terminate_) make_endpoint(leg);
    leg.agent->set_remote(remote);
  }

  void make_endpoint(Leg& leg) {
    Leg* l = &leg;
    leg.endpoint = std::make_unique<quic::Endpoint>(leg.role, [l](std::span<const uint8_t> d) { l->agent->send(d); });
    leg.driver = std::make_unique<quic::Driver>(*leg.endpoint, [this] {
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
    leg.endpoint->receive_datagram(d);
    leg.driver->kick();
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
        if (mode_ == "rogue") rogue_on_handshake();
      }
      if (leg->endpoint->closed() && !leg->close_reported) {
        leg->close_reported = true;
        const auto& c = *leg->endpoint->closed();
        emit({{"event", "closed"}, {"leg", leg->name}, {"by_peer", c.by_peer}, {"app", c.is_app},
              {"code", c.error_code}, {"reason", c.reason}});
        if (mode_ == "mitm" && !silent_) {
          Leg& other = leg == &gen_ ? cons_ : gen_;
          if (other.endpoint && !other.endpoint->closed()) {
            other.endpoint->close(c.is_app ? c.error_code : quic::kErrorLocal, c.reason);
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
        quic::SslPtr in(raw);
        uint64_t id = SSL_get_stream_id(raw);
        quic::SslPtr out(SSL_new_stream(to->endpoint->connection(), SSL_STREAM_FLAG_NO_BLOCK));
        if (!out) die("cannot open a relayed stream");
        uint64_t out_id = SSL_get_stream_id(out.get());
        emit({{"event", "stream"}, {"from", from->name}, {"id", id}, {"relayed_as", out_id}});
        // The reverse direction of the same bidirectional stream.
        SSL* in_raw = in.get();
        SSL* out_raw = out.get();
        for (SSL* s : {in_raw, out_raw}) SSL_set_mode(s, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        SSL_up_ref(in_raw);
        SSL_up_ref(out_raw);
        relays_.push_back(std::make_unique<Relay>(Relay{std::move(in), std::move(out), from->name, id}));
        relays_.push_back(std::make_unique<Relay>(Relay{quic::SslPtr(out_raw), quic::SslPtr(in_raw), to->name, id}));
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
      g_timeout_add(300, [](gpointer self) -> gboolean {
        static_cast<Attacker*>(self)->finish(0);
        return G_SOURCE_REMOVE;
      }, this);
    }
  }

  void finish(int status) {
    if (finished_) return;
    finished_ = true;
    json streams = json::array();
    uint64_t app_bytes = 0;
    for (auto& r : relays_) {
      streams.push_back({{"from", r->leg_from}, {"id", r->id}, {"bytes", r->bytes}});
      if (r->id != 0 && r->id != 4) app_bytes += r->bytes;
    }
    emit({{"event", "done"}, {"streams", streams}, {"application_bytes", app_bytes},
          {"forwarded_datagram_bytes", forwarded_}});
    status_ = status;
    g_main_loop_quit(loop_);
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
    bool peer_ice = j.is_object() && j.value("type", "") == "message" && j.value("phase", "") == "ice" &&
                    j.value("side", "") != c->side && j.contains("body") && j["body"].is_string();
    if (peer_ice && self->inject_ && (self->inject_to_generator_ == c->generator)) {
      // Hostile relay input: the frame carrying the other side's ice body is
      // replaced by the test's frame (as text, or as a binary frame).
      emit({{"event", "injected"}, {"to", c->generator ? "generator" : "consumer"}, {"bytes", self->inject_frame_.size()}});
      if (self->inject_binary_) {
        soup_websocket_connection_send_binary(c->down, self->inject_frame_.data(), self->inject_frame_.size());
      } else {
        soup_websocket_connection_send_text(c->down, self->inject_frame_.c_str());
      }
      return;
    }
    if (peer_ice && self->inject_) peer_ice = false;  // the other side just gets the real body
    if (peer_ice) {
      std::string original = j["body"];
      // To the generator goes our "gen" leg's description (the consumer's
      // body is for our "cons" leg), and the other way round.
      Leg& faces_sender = c->generator ? self->cons_ : self->gen_;
      Leg& faces_receiver = c->generator ? self->gen_ : self->cons_;
      j["body"] = *faces_receiver.local_body;
      emit({{"event", "rewrote_ice"}, {"to", c->generator ? "generator" : "consumer"}});
      try {
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

  // ---- rogue peer ------------------------------------------------------------
  void start_rogue() {
    mode_ = "rogue";
    terminate_ = true;
    generator_ = opts_.value("generate", false);
    attack_ = opts_.value("attack", "early-stream");
    gen_.name = "peer";
    gen_.controlling = generator_;
    gen_.role = generator_ ? quic::Role::server : quic::Role::client;
    std::string nameplate;
    if (!generator_) {
      auto code = code::parse(opts_.value("code", ""));
      nameplate = code.nameplate;
      code_ = code.text;
    }
    protocol_ = std::make_unique<rendezvous::Protocol>(
        generator_ ? rendezvous::Role::generator : rendezvous::Role::consumer, rendezvous::random_side(), nameplate);
    client_ = std::make_unique<rendezvous::Client>(
        opts_.value("relay", ""),
        rendezvous::ClientCallbacks{nullptr, [this](std::string_view t) { on_mailbox(t); },
                                    [](const Error& e) { emit({{"event", "relay_failed"}, {"error", e.what()}}); }});
    make_agent(gen_);
  }

  void rogue_send_ice() {
    if (ice_sent_) return;
    ice_sent_ = true;
    client_->send(protocol_->send_ice(*gen_.local_body).to_send);
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
        code_ = code::generate(a->nameplate);
        std::fprintf(stderr, "Connection code: %s\n", code_.c_str());
        std::fflush(stderr);
        emit({{"event", "code"}, {"code", code_}});
      } else if (auto* ice = std::get_if<rendezvous::event::PeerIce>(&ev)) {
        set_remote(gen_, ice->body);
      }
    }
  }

  std::string smp_code() {
    if (opts_.contains("smp_code")) return opts_["smp_code"];
    // Right nameplate, words that are (almost surely) wrong.
    auto c = code::parse(code_);
    return c.nameplate + "-zoo-zoo-zoo-zoo";
  }

  void write(SSL* s, std::span<const uint8_t> bytes) {
    size_t n = 0;
    if (SSL_write_ex(s, bytes.data(), bytes.size(), &n) != 1 || n != bytes.size()) die("stream write failed");
  }

  void rogue_early_stream() {
    quic::SslPtr s(SSL_new_stream(gen_.endpoint->connection(), SSL_STREAM_FLAG_NO_BLOCK));
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
      control_.reset(SSL_new_stream(gen_.endpoint->connection(), 0));
      auth_.reset(SSL_new_stream(gen_.endpoint->connection(), 0));
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
    } else {
      smp_->start();
      if (attack_ == "early-stream") {
        // Data before auth: the consumer cannot have been verified yet (it
        // has not even got msg2), so the stream must get us disconnected.
        smp_.reset();
        rogue_early_stream();
      }
    }
    emit({{"event", "attack_sent"}, {"attack", attack_}});
    gen_.driver->kick();
  }

  void rogue_poll() {
    if (!gen_.handshake || gen_.endpoint->closed()) return;
    if (generator_ && !auth_) {
      while (SSL* raw = SSL_accept_stream(gen_.endpoint->connection(), SSL_ACCEPT_STREAM_NO_BLOCK)) {
        uint64_t id = SSL_get_stream_id(raw);
        if (id == 4) auth_.reset(raw);
        else if (id == 0) control_.reset(raw);
        else SSL_free(raw);
      }
    }
    if (!auth_ || !smp_) return;
    uint8_t buf[4096];
    size_t n = 0;
    while (SSL_read_ex(auth_.get(), buf, sizeof buf, &n) == 1) {
      frames_.feed({buf, n});
      while (auto f = frames_.next()) {
        auto step = smp_->on_message(*f);
        if (!step.reply.empty()) write(auth_.get(), auth::encode_frame(step.reply));
        emit({{"event", "smp"}, {"status", step.status == auth::Status::success ? "success"
                                          : step.status == auth::Status::mismatch ? "mismatch" : "in_progress"}});
        if (step.status == auth::Status::mismatch) {
          // What peersock does too: tell the other side at once.
          gen_.endpoint->close(quic::kErrorAuthFailed, "code-mismatch");
        }
        if (step.status == auth::Status::success && attack_ == "bad-magic") {
          // Authenticated (--smp-code is the right code): now a data stream
          // that does not start with 'X'.
          quic::SslPtr s(SSL_new_stream(gen_.endpoint->connection(), SSL_STREAM_FLAG_NO_BLOCK));
          if (!s) die("cannot open the data stream");
          const std::string payload = "Ynot the magic";
          write(s.get(), {reinterpret_cast<const uint8_t*>(payload.data()), payload.size()});
          emit({{"event", "bad_magic_stream"}, {"id", SSL_get_stream_id(s.get())}});
          early_.push_back(std::move(s));
        }
        gen_.driver->kick();
      }
    }
  }

  int status() const { return status_; }

 private:
  GMainLoop* loop_;
  json opts_;
  std::string mode_ = "mitm";
  bool terminate_ = true;
  bool in_quic_ = false, quitting_ = false, finished_ = false;
  bool inject_ = false, inject_to_generator_ = false, inject_binary_ = false;
  bool silent_ = false;
  std::string inject_frame_;
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
  quic::SslPtr control_, auth_;
  std::vector<quic::SslPtr> early_;
};

json parse_args(int argc, char** argv) {
  if (argc < 2) die("usage: psk-attacker mitm|rogue [options] (see the comment at the top of attacker.cpp)");
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
    else if (a == "--mode") o["mode"] = next();
    else if (a == "--relay") o["relay"] = next();
    else if (a == "--code") o["code"] = next();
    else if (a == "--generate") o["generate"] = true;
    else if (a == "--attack") o["attack"] = next();
    else if (a == "--smp-code") o["smp_code"] = next();
    else if (a == "--timeout") o["timeout"] = std::stoi(next());
    else if (a == "--inject-to") o["inject_to"] = next();
    else if (a == "--frame-file") o["frame_file"] = next();
    else if (a == "--binary") o["binary"] = true;
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
      else die("unknown command");
    } catch (const std::exception& e) {
      die(e.what());
    }
    // Both end with the "done" summary (relayed bytes per stream).
    g_timeout_add_seconds(static_cast<guint>(opts.value("timeout", 60)), [](gpointer a) -> gboolean {
      emit({{"event", "timeout"}});
      static_cast<Attacker*>(a)->finish(1);
      return G_SOURCE_REMOVE;
    }, &attacker);
    g_unix_signal_add(SIGTERM, [](gpointer a) -> gboolean {
      static_cast<Attacker*>(a)->finish(0);
      return G_SOURCE_REMOVE;
    }, &attacker);
    g_main_loop_run(loop);
    status = attacker.status();
  }
  g_main_loop_unref(loop);
  return status;
}

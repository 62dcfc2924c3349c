// session stages: AuthGate (SMP on stream 4, stream admission before auth),
// ControlChannel (stream 0) and the Forwarder's acceptor, each over a real
// ngtcp2 client/server pair in virtual time (support/quic_pair.hpp).
#include <arpa/inet.h>
#include <fcntl.h>
#include <glib.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "peersock/error.hpp"
#include "peersock/forward/forwarder.hpp"
#include "peersock/protocol/sides.hpp"
#include "peersock/quic/stream.hpp"
#include "peersock/session/auth_gate.hpp"
#include "peersock/session/control_channel.hpp"
#include "support/quic_pair.hpp"

namespace peersock::session {
namespace {

using quic::IoStatus;
using quic::Stream;
using sim::kMs;
using sim::kSec;
using sim::QuicPair;

constexpr protocol::Sides kServerSides{.generator = true, .opener = false};
constexpr protocol::Sides kClientSides{.generator = false, .opener = true};

bool wiped(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == '\0'; });
}

void write_all(Stream& s, const std::string& bytes) {
  auto r = s.write(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  ASSERT_EQ(r.status, IoStatus::ok);
  ASSERT_EQ(r.bytes, bytes.size());
}

std::string read_some(Stream& s) {
  std::string out;
  uint8_t buf[4096];
  for (;;) {
    auto r = s.read(buf);
    if (r.status != IoStatus::ok) break;
    out.append(reinterpret_cast<const char*>(buf), r.bytes);
  }
  return out;
}

// ---- AuthGate --------------------------------------------------------------

// Up to v6 the client starts SMP on its stream 4 once its handshake is
// done; from v7 the server starts it on its stream 1 in its first flight.
constexpr int kClientStarts = 6;
constexpr int kServerStarts = 7;

struct GateSide {
  GateSide(quic::Endpoint& e, protocol::Sides sides, int version = kClientStarts) : gate(e, sides, version, [] {}) {}
  void admit() {
    gate.admit([this](Stream s) { control.push_back(std::move(s)); },
               [this](Stream s) { data.push_back(std::move(s)); });
  }
  AuthGate gate;
  std::vector<Stream> control, data;
  AuthGate::Verdict verdict = AuthGate::Verdict::pending;
};

// Admits and polls both sides until both have a verdict.
bool run_to_verdicts(QuicPair& pair, GateSide& client, GateSide& server) {
  return pair.run_until([&] {
    for (GateSide* s : {&client, &server}) {
      s->admit();
      s->verdict = s->gate.poll();
    }
    return client.verdict != AuthGate::Verdict::pending && server.verdict != AuthGate::Verdict::pending;
  });
}

// Runs until side.admit() throws CounterpartyError; false if it never does.
bool admit_throws(QuicPair& pair, GateSide& side) {
  bool threw = false;
  pair.run_until([&] {
    try {
      side.admit();
    } catch (const CounterpartyError&) {
      threw = true;
    }
    return threw;
  });
  return threw;
}

// Both gates of one pair; the client's begin() result is kept in client_control.
struct GateRig {
  GateRig() : client(pair.client(), kClientSides), server(pair.server(), kServerSides) {
    if (!pair.handshake()) ADD_FAILURE() << "no handshake";
  }
  void begin(std::string client_code, std::string server_code) {
    client_control = client.gate.begin(client_code);
    EXPECT_TRUE(client.gate.begun());
    EXPECT_TRUE(wiped(client_code)) << "the client's code is not wiped";
    Stream none = server.gate.begin(server_code);
    EXPECT_FALSE(none) << "the responder opens no stream";
    EXPECT_TRUE(wiped(server_code)) << "the server's code is not wiped";
  }
  bool run_to_verdicts() { return session::run_to_verdicts(pair, client, server); }
  QuicPair pair;
  GateSide client, server;
  Stream client_control;
};

TEST(AuthGate, SameCodeSucceedsOnBothSidesAndWipesTheCode) {
  GateRig rig;
  rig.begin("7-guitarist-revenge", "7-guitarist-revenge");
  ASSERT_TRUE(rig.client_control);
  EXPECT_EQ(rig.client_control.id(), 0) << "the initiator's begin() returns stream 0";
  ASSERT_TRUE(rig.run_to_verdicts());
  EXPECT_EQ(rig.client.verdict, AuthGate::Verdict::success);
  EXPECT_EQ(rig.server.verdict, AuthGate::Verdict::success);
  EXPECT_TRUE(rig.client.gate.authenticated());
  EXPECT_TRUE(rig.server.gate.authenticated());
  // Verdicts are sticky.
  EXPECT_EQ(rig.client.gate.poll(), AuthGate::Verdict::success);
  EXPECT_EQ(rig.server.gate.poll(), AuthGate::Verdict::success);
  EXPECT_TRUE(rig.client.control.empty()) << "the initiator opened stream 0 itself";
  EXPECT_TRUE(rig.server.data.empty());
  EXPECT_TRUE(rig.client.data.empty());
}

// docs/protocol.md §5.4: Bob's step4 fails and he sends no msg4 (the session
// then closes with 0x50534d01, which is how Alice learns it). So the gate
// alone yields mismatch on the server and leaves the client pending.
TEST(AuthGate, DifferentCodesMismatchOnTheServerAndTheClientHearsNothing) {
  GateRig rig;
  rig.begin("7-guitarist-revenge", "7-guitarist-revenue");
  ASSERT_TRUE(rig.pair.run_until([&] {
    for (GateSide* s : {&rig.client, &rig.server}) {
      s->admit();
      s->verdict = s->gate.poll();
    }
    return rig.server.verdict != AuthGate::Verdict::pending;
  }));
  EXPECT_EQ(rig.server.verdict, AuthGate::Verdict::mismatch);
  EXPECT_FALSE(rig.server.gate.authenticated());
  rig.pair.run_for(2 * kSec, [&] {
    rig.client.admit();
    rig.client.verdict = rig.client.gate.poll();
  });
  EXPECT_EQ(rig.client.verdict, AuthGate::Verdict::pending) << "Bob must not send msg4 on a mismatch";
  EXPECT_FALSE(rig.client.gate.authenticated());
  EXPECT_EQ(rig.server.gate.poll(), AuthGate::Verdict::mismatch) << "the verdict is sticky";
}

TEST(AuthGate, ServerHandsStreamZeroToControlOnceTheClientWritesIt) {
  GateRig rig;
  rig.begin("3-abc", "3-abc");
  write_all(rig.client_control, "D");
  ASSERT_TRUE(rig.run_to_verdicts());
  ASSERT_TRUE(rig.pair.run_until([&] {
    rig.server.admit();
    return !rig.server.control.empty();
  }));
  ASSERT_EQ(rig.server.control.size(), 1u);
  EXPECT_EQ(rig.server.control[0].id(), 0);
  EXPECT_TRUE(rig.server.data.empty()) << "stream 0 is not data";
  EXPECT_EQ(read_some(rig.server.control[0]), "D");
}

TEST(AuthGate, ServerTakesStreamZeroBeforeItsVerdictToo) {
  GateRig rig;
  rig.begin("3-abc", "3-abc");
  write_all(rig.client_control, "D");
  // Only the server admits, nobody polls: SMP cannot finish.
  ASSERT_TRUE(rig.pair.run_until([&] {
    rig.server.admit();
    return !rig.server.control.empty();
  }));
  EXPECT_FALSE(rig.server.gate.authenticated());
  EXPECT_EQ(rig.server.control[0].id(), 0);
}

TEST(AuthGate, AdmitBeforeBeginTakesNothing) {
  QuicPair pair;
  ASSERT_TRUE(pair.handshake());
  GateSide server(pair.server(), kServerSides);
  auto id = pair.client().open_stream();
  ASSERT_TRUE(id);
  Stream s(pair.client(), *id);
  write_all(s, "x");
  ASSERT_TRUE(pair.run_until([&] { return pair.server().accept_queue_size() > 0; }));
  server.admit();  // not begun: no verdict possible, so nothing is judged yet
  EXPECT_EQ(pair.server().accept_queue_size(), 1u);
  EXPECT_TRUE(server.control.empty());
  EXPECT_TRUE(server.data.empty());
}

TEST(AuthGate, ClientRejectsADataStreamTheServerOpenedBeforeItCouldHaveSucceeded) {
  GateRig rig;
  rig.begin("3-abc", "3-abc");
  // The server cannot have verified us before our msg3: nobody polls, so
  // SMP stays at msg1.
  auto id = rig.pair.server().open_stream();
  ASSERT_TRUE(id);
  Stream early(rig.pair.server(), *id);
  write_all(early, "X");
  ASSERT_TRUE(rig.pair.run_until([&] { return rig.pair.client().accept_queue_size() > 0; }));
  EXPECT_THROW(rig.client.admit(), CounterpartyError);
}

TEST(AuthGate, ServerRejectsAnotherStreamTheClientOpenedBeforeAuth) {
  GateRig rig;
  rig.begin("3-abc", "3-abc");
  auto id = rig.pair.client().open_stream();  // stream 8
  ASSERT_TRUE(id);
  EXPECT_EQ(*id, 8);
  Stream early(rig.pair.client(), *id);
  write_all(early, "X");
  EXPECT_TRUE(admit_throws(rig.pair, rig.server)) << "the server admitted stream 8 before authentication";
  EXPECT_TRUE(rig.server.data.empty());
}

TEST(AuthGate, AfterSuccessNewStreamsAreData) {
  GateRig rig;
  rig.begin("3-abc", "3-abc");
  ASSERT_TRUE(rig.run_to_verdicts());
  ASSERT_EQ(rig.client.verdict, AuthGate::Verdict::success);
  ASSERT_EQ(rig.server.verdict, AuthGate::Verdict::success);

  auto cid = rig.pair.client().open_stream();
  auto sid = rig.pair.server().open_stream();
  ASSERT_TRUE(cid && sid);
  Stream from_client(rig.pair.client(), *cid), from_server(rig.pair.server(), *sid);
  write_all(from_client, "Xc");
  write_all(from_server, "Xs");
  ASSERT_TRUE(rig.pair.run_until([&] {
    rig.client.admit();
    rig.server.admit();
    return !rig.client.data.empty() && !rig.server.data.empty();
  }));
  ASSERT_EQ(rig.server.data.size(), 1u);
  ASSERT_EQ(rig.client.data.size(), 1u);
  EXPECT_EQ(rig.server.data[0].id(), *cid);
  EXPECT_EQ(rig.client.data[0].id(), *sid);
  EXPECT_TRUE(rig.client.control.empty());
  EXPECT_EQ(read_some(rig.server.data[0]), "Xc");
  EXPECT_EQ(read_some(rig.client.data[0]), "Xs");
}

// ---- AuthGate from v7: the server starts SMP in its first flight -----------

// A pair whose server gate begins as soon as its 1-RTT keys are there, as
// the session does (docs/protocol.md §5.3); the client's once its handshake
// is done.
struct EarlyGateRig {
  EarlyGateRig() : client(pair.client(), kClientSides, kServerStarts), server(pair.server(), kServerSides, kServerStarts) {}
  // Runs until both have begun. Returns false if the server never got its
  // keys or the client's handshake never finished.
  bool begin(std::string client_code, std::string server_code) {
    if (!pair.run_until([&] { return pair.server().app_keys_ready(); })) return false;
    server_began_before_handshake = !pair.server().handshake_done();
    server_auth = server.gate.begin(server_code);
    if (!pair.run_until([&] { return pair.client().handshake_done(); })) return false;
    // What had arrived for the client when its handshake completed.
    msg1_with_handshake = pair.client().accept_queue_size() > 0;
    client_control = client.gate.begin(client_code);
    return true;
  }
  bool run_to_verdicts() { return session::run_to_verdicts(pair, client, server); }
  QuicPair pair;
  GateSide client, server;
  Stream server_auth, client_control;
  bool server_began_before_handshake = false, msg1_with_handshake = false;
};

TEST(AuthGateV7, TheServerSendsMsg1WithItsHandshakeFlight) {
  EarlyGateRig rig;
  ASSERT_TRUE(rig.begin("7-guitarist-revenge", "7-guitarist-revenge"));
  EXPECT_TRUE(rig.server_began_before_handshake) << "the server waited for the client's Finished";
  EXPECT_FALSE(rig.server_auth) << "the server's begin() returns no control stream";
  EXPECT_TRUE(rig.msg1_with_handshake) << "msg1 did not arrive with the server's handshake flight";
  ASSERT_TRUE(rig.client_control);
  EXPECT_EQ(rig.client_control.id(), 0) << "the client opens stream 0 for control";
  ASSERT_TRUE(rig.run_to_verdicts());
  EXPECT_EQ(rig.client.verdict, AuthGate::Verdict::success);
  EXPECT_EQ(rig.server.verdict, AuthGate::Verdict::success);
  EXPECT_TRUE(rig.client.control.empty()) << "the client opened stream 0 itself";
  EXPECT_TRUE(rig.client.data.empty()) << "the auth stream (1) is not data";
  EXPECT_TRUE(rig.server.data.empty());
}

// The responder is the client now: its step4 fails, it sends no msg4, and
// the server (the initiator) hears nothing from the gate.
TEST(AuthGateV7, DifferentCodesMismatchOnTheClientAndTheServerHearsNothing) {
  EarlyGateRig rig;
  ASSERT_TRUE(rig.begin("7-guitarist-revenge", "7-guitarist-revenue"));
  ASSERT_TRUE(rig.pair.run_until([&] {
    for (GateSide* s : {&rig.client, &rig.server}) {
      s->admit();
      s->verdict = s->gate.poll();
    }
    return rig.client.verdict != AuthGate::Verdict::pending;
  }));
  EXPECT_EQ(rig.client.verdict, AuthGate::Verdict::mismatch);
  rig.pair.run_for(2 * kSec, [&] {
    rig.server.admit();
    rig.server.verdict = rig.server.gate.poll();
  });
  EXPECT_EQ(rig.server.verdict, AuthGate::Verdict::pending) << "the responder must not send msg4 on a mismatch";
  EXPECT_TRUE(rig.server.gate.awaiting_verdict());
}

TEST(AuthGateV7, TheClientRejectsAnotherServerStreamBeforeItsOwnSuccess) {
  EarlyGateRig rig;
  ASSERT_TRUE(rig.begin("3-abc", "3-abc"));
  auto id = rig.pair.server().open_stream();  // stream 5: data before auth
  ASSERT_TRUE(id);
  EXPECT_EQ(*id, 5);
  Stream early(rig.pair.server(), *id);
  write_all(early, "X");
  EXPECT_TRUE(admit_throws(rig.pair, rig.client)) << "the client admitted stream 5 before authentication";
}

TEST(AuthGateV7, TheServerRejectsAClientStreamBeforeTheClientCouldHaveSucceeded) {
  EarlyGateRig rig;
  ASSERT_TRUE(rig.begin("3-abc", "3-abc"));
  auto id = rig.pair.client().open_stream();  // stream 4: the client has not seen msg3
  ASSERT_TRUE(id);
  EXPECT_EQ(*id, 4);
  Stream early(rig.pair.client(), *id);
  write_all(early, "X");
  ASSERT_TRUE(rig.pair.run_until([&] { return rig.pair.server().accept_queue_size() > 0; }));
  EXPECT_THROW(rig.server.admit(), CounterpartyError);
}

TEST(AuthGateV7, StreamZeroAndDataThatCameWithMsg4WaitForTheServersSuccess) {
  EarlyGateRig rig;
  ASSERT_TRUE(rig.begin("3-abc", "3-abc"));
  // The client, authenticated first, writes on stream 0 and opens a data
  // stream at once; the server takes both only after its own success.
  ASSERT_TRUE(rig.pair.run_until([&] {
    rig.client.admit();
    rig.client.verdict = rig.client.gate.poll();
    rig.server.admit();
    rig.server.verdict = rig.server.gate.poll();
    return rig.client.verdict == AuthGate::Verdict::success;
  }));
  EXPECT_EQ(rig.server.verdict, AuthGate::Verdict::pending);
  write_all(rig.client_control, "P");
  auto id = rig.pair.client().open_stream();
  ASSERT_TRUE(id);
  Stream data(rig.pair.client(), *id);
  write_all(data, "X");
  ASSERT_TRUE(rig.pair.run_until([&] {
    rig.server.admit();
    rig.server.verdict = rig.server.gate.poll();
    if (rig.server.verdict == AuthGate::Verdict::pending) {
      EXPECT_TRUE(rig.server.control.empty() && rig.server.data.empty()) << "a stream was taken before success";
    }
    return rig.server.verdict != AuthGate::Verdict::pending && !rig.server.control.empty() &&
           !rig.server.data.empty();
  }));
  EXPECT_EQ(rig.server.verdict, AuthGate::Verdict::success);
  EXPECT_EQ(rig.server.control[0].id(), 0);
  EXPECT_EQ(rig.server.data[0].id(), *id);
}


// A raw client (no gate): streams 0 and 4 opened by hand, so that the test
// decides what stream 4 carries to the server's gate.
struct RawClientRig {
  RawClientRig() : server(pair.server(), kServerSides) {
    if (!pair.handshake()) ADD_FAILURE() << "no handshake";
    auto c = pair.client().open_stream();
    auto a = pair.client().open_stream();
    if (!c || !a || *c != 0 || *a != 4) ADD_FAILURE() << "streams 0 and 4";
    control = Stream(pair.client(), c.value_or(0));
    auth = Stream(pair.client(), a.value_or(4));
    std::string code = "3-abc";
    server.gate.begin(code);
  }
  // Admits and polls the server until it throws CounterpartyError.
  bool server_rejects() {
    bool threw = false;
    pair.run_until(
        [&] {
          try {
            server.admit();
            server.gate.poll();
          } catch (const CounterpartyError&) {
            threw = true;
          }
          return threw;
        },
        5 * kSec);
    return threw;
  }
  QuicPair pair;
  GateSide server;
  Stream control, auth;
};

TEST(AuthGate, ServerRejectsAZeroLengthAuthFrame) {
  RawClientRig rig;
  const uint8_t frame[] = {0, 0};
  ASSERT_EQ(rig.auth.write(frame).status, IoStatus::ok);
  EXPECT_TRUE(rig.server_rejects());
  EXPECT_FALSE(rig.server.gate.authenticated());
}

TEST(AuthGate, ServerRejectsAClosedAuthStream) {
  RawClientRig rig;
  const uint8_t partial[] = {0};  // half a length prefix, then FIN
  ASSERT_EQ(rig.auth.write(partial).status, IoStatus::ok);
  rig.auth.conclude();
  EXPECT_TRUE(rig.server_rejects());
}

TEST(AuthGate, ServerRejectsAnotherStreamOnceItHasItsAuthStream) {
  // The responder takes stream 4 once; anything else before auth (here
  // stream 8, carrying a valid-looking frame) is rejected even though 4 is set.
  RawClientRig rig;
  const uint8_t frame[] = {0, 1, 0x42};
  ASSERT_EQ(rig.auth.write(frame).status, IoStatus::ok);
  auto extra = rig.pair.client().open_stream();
  ASSERT_TRUE(extra);
  Stream s(rig.pair.client(), *extra);
  ASSERT_EQ(s.write(frame).status, IoStatus::ok);
  EXPECT_TRUE(rig.server_rejects());
}

// ---- ControlChannel ----------------------------------------------------------

struct ChannelSide {
  ChannelSide(int version, bool quic_server)
      : channel(version, quic_server,
                ControlChannelEvents{
                    [] {},
                    [this] { ++delivered; },
                    [this](double ms) { rtts.push_back(ms); },
                    [this](uint64_t id, uint64_t limit) {
                      grants.push_back({id, limit});
                    },
                }) {}
  ControlChannel channel;
  int delivered = 0;
  std::vector<double> rtts;
  std::vector<CreditGrant> grants;
};

// The client attaches stream 0 at once; the server once it has arrived.
struct ChannelRig {
  // `authenticated`: both sides read stream 0 (start_reading) from the start.
  explicit ChannelRig(int version, bool authenticated = true) : client(version, false), server(version, true) {
    if (!pair.handshake()) ADD_FAILURE() << "no handshake";
    if (authenticated) {
      client.channel.start_reading();
      server.channel.start_reading();
    }
  }
  void attach_client() {
    auto id = pair.client().open_stream();
    ASSERT_TRUE(id);
    ASSERT_EQ(*id, 0);
    client.channel.attach(Stream(pair.client(), *id));
  }
  int64_t now_us() const { return static_cast<int64_t>(pair.now() / 1000); }
  // One session round on both sides; the server attaches stream 0 when it shows up.
  void service() {
    if (!server.channel.attached()) {
      if (auto id = pair.server().accept_stream()) {
        EXPECT_EQ(*id, 0);
        server.channel.attach(Stream(pair.server(), *id));
      }
    }
    client.channel.poll(now_us());
    server.channel.poll(now_us());
  }
  bool run_until(const std::function<bool()>& done, sim::Timestamp budget = 10 * kSec) {
    return pair.run_until(
        [&] {
          service();
          return done();
        },
        budget);
  }
  QuicPair pair;
  ChannelSide client, server;
};

TEST(ControlChannel, MarkersQueuedBeforeAttachAreDeliveredAfterIt) {
  ChannelRig rig(2);
  rig.client.channel.send_delivered();
  rig.client.channel.send_delivered();
  rig.server.channel.send_delivered();
  EXPECT_EQ(rig.client.channel.unsent(), 2u);
  EXPECT_EQ(rig.server.channel.unsent(), 1u);
  EXPECT_FALSE(rig.client.channel.delivered_sent()) << "not attached yet";
  EXPECT_FALSE(rig.server.channel.delivered_sent()) << "not attached yet";
  rig.pair.run_for(200 * kMs, [&] { rig.service(); });
  EXPECT_EQ(rig.server.delivered, 0) << "nothing can arrive before the client attaches";
  EXPECT_FALSE(rig.server.channel.attached()) << "the server sees stream 0 only once the client wrote to it";

  rig.attach_client();
  EXPECT_EQ(rig.client.channel.unsent(), 0u);
  EXPECT_TRUE(rig.client.channel.delivered_sent());
  ASSERT_TRUE(rig.run_until([&] { return rig.server.delivered == 2 && rig.client.delivered == 1; }));
  EXPECT_TRUE(rig.server.channel.attached());
  EXPECT_TRUE(rig.server.channel.delivered_sent());
  EXPECT_EQ(rig.server.channel.unsent(), 0u);
  rig.pair.run_for(200 * kMs, [&] { rig.service(); });
  EXPECT_EQ(rig.server.delivered, 2) << "each 'D' raises peer_delivered once";
  EXPECT_EQ(rig.client.delivered, 1);
}

TEST(ControlChannel, NothingIsReadOrAnsweredBeforeAuthentication) {
  // The server has not authenticated the client yet: the client's 'P' and
  // 'D' get no pong, no RTT and no delivery until start_reading().
  ChannelRig rig(3, /*authenticated=*/false);
  rig.client.channel.start_reading();
  rig.attach_client();
  rig.client.channel.start_ping(rig.now_us());
  rig.client.channel.send_delivered();
  rig.client.channel.send_grant(8, 1 << 20);
  rig.pair.run_for(1000 * kMs, [&] { rig.service(); });
  EXPECT_TRUE(rig.server.channel.attached());
  EXPECT_EQ(rig.server.delivered, 0) << "a 'D' was acted on before authentication";
  EXPECT_TRUE(rig.server.grants.empty()) << "a grant was acted on before authentication";
  EXPECT_TRUE(rig.client.rtts.empty()) << "the server answered a ping before authentication";
  EXPECT_TRUE(rig.server.rtts.empty());

  rig.server.channel.start_reading();
  ASSERT_TRUE(rig.run_until([&] { return rig.server.delivered == 1 && !rig.client.rtts.empty(); }));
  EXPECT_EQ(rig.server.grants.size(), 1u);
}

TEST(ControlChannel, DeliveredSentNeedsAMarker) {
  ChannelRig rig(3);
  rig.attach_client();
  EXPECT_FALSE(rig.client.channel.delivered_sent()) << "attached, empty queue, but no 'D' queued";
  rig.client.channel.start_ping(rig.now_us());
  EXPECT_FALSE(rig.client.channel.delivered_sent()) << "a ping is not a marker";
  rig.client.channel.send_delivered();
  EXPECT_TRUE(rig.client.channel.delivered_sent());
}

TEST(ControlChannel, PingFromTheClientMeasuresRttAndTheServerPingsBackOnce) {
  ChannelRig rig(2);  // default path: 25 ms each way
  rig.attach_client();
  rig.client.channel.start_ping(rig.now_us());
  ASSERT_TRUE(rig.run_until([&] { return !rig.client.rtts.empty() && !rig.server.rtts.empty(); }));
  ASSERT_EQ(rig.client.rtts.size(), 1u);
  EXPECT_GE(rig.client.rtts[0], 50.0);
  EXPECT_LT(rig.client.rtts[0], 200.0);
  ASSERT_EQ(rig.server.rtts.size(), 1u) << "the server pinged back";
  EXPECT_GE(rig.server.rtts[0], 50.0);
  EXPECT_LT(rig.server.rtts[0], 200.0);

  // A second client ping is answered, but the server does not ping again.
  rig.client.channel.start_ping(rig.now_us());
  ASSERT_TRUE(rig.run_until([&] { return rig.client.rtts.size() == 2; }));
  rig.pair.run_for(500 * kMs, [&] { rig.service(); });
  EXPECT_EQ(rig.client.rtts.size(), 2u);
  EXPECT_EQ(rig.server.rtts.size(), 1u) << "the server pings back only once";
  EXPECT_EQ(rig.client.delivered + rig.server.delivered, 0);
}

TEST(ControlChannel, GrantsRoundTripAtV3) {
  ChannelRig rig(3);
  rig.attach_client();
  rig.client.channel.send_grant(1, 123456);
  rig.client.channel.send_delivered();
  rig.client.channel.send_grant(kMaxQuicValue, kMaxQuicValue);
  ASSERT_TRUE(rig.run_until([&] { return rig.server.grants.size() == 2 && rig.server.delivered == 1; }));
  EXPECT_EQ(rig.server.grants[0], (CreditGrant{1, 123456}));
  EXPECT_EQ(rig.server.grants[1], (CreditGrant{kMaxQuicValue, kMaxQuicValue}));

  rig.server.channel.send_grant(8, 65536);
  ASSERT_TRUE(rig.run_until([&] { return rig.client.grants.size() == 1; }));
  EXPECT_EQ(rig.client.grants[0], (CreditGrant{8, 65536}));
}

TEST(ControlChannel, MalformedByteAtV3ThrowsInPoll) {
  QuicPair pair;
  ASSERT_TRUE(pair.handshake());
  ChannelSide server(3, true);
  server.channel.start_reading();
  auto id = pair.client().open_stream();
  ASSERT_TRUE(id);
  Stream raw(pair.client(), *id);
  write_all(raw, "DZ");
  bool threw = false;
  pair.run_until([&] {
    if (!server.channel.attached()) {
      if (auto sid = pair.server().accept_stream()) server.channel.attach(Stream(pair.server(), *sid));
    }
    try {
      server.channel.poll(static_cast<int64_t>(pair.now() / 1000));
    } catch (const CounterpartyError&) {
      threw = true;
    }
    return threw;
  });
  EXPECT_TRUE(threw);
}

TEST(ControlChannel, UnknownByteAtV2IsIgnored) {
  QuicPair pair;
  ASSERT_TRUE(pair.handshake());
  ChannelSide server(2, true);
  server.channel.start_reading();
  auto id = pair.client().open_stream();
  ASSERT_TRUE(id);
  Stream raw(pair.client(), *id);
  write_all(raw, "ZDZ");
  ASSERT_TRUE(pair.run_until([&] {
    if (!server.channel.attached()) {
      if (auto sid = pair.server().accept_stream()) server.channel.attach(Stream(pair.server(), *sid));
    }
    server.channel.poll(static_cast<int64_t>(pair.now() / 1000));
    return server.delivered == 1;
  }));
}

TEST(ControlChannel, ABacklogBeyondTheLimitEndsTheSession) {
  // The server never reads stream 0: flow control stops the client's writes
  // (after the 1 MiB initial stream window and the endpoint's 512 KiB of
  // unsent bytes), the queue grows, and past kMaxBacklog the channel gives up.
  ChannelRig rig(3);
  rig.attach_client();
  bool threw = false;
  size_t sent = 0;
  try {
    while (sent < 8 * ControlChannel::kMaxBacklog / kCreditFrameBytes) {
      for (int i = 0; i < 1000; ++i, ++sent) rig.client.channel.send_grant(1, sent);
      rig.pair.run_for(5 * kMs, [&] { rig.client.channel.poll(rig.now_us()); });
    }
  } catch (const CounterpartyError&) {
    ADD_FAILURE() << "a stalled peer is not a protocol violation";
  } catch (const Error& e) {
    threw = true;
    EXPECT_EQ(e.code(), ExitCode::peer_gone) << e.what();
  }
  EXPECT_TRUE(threw) << "queued " << rig.client.channel.unsent() << " bytes without giving up";
  EXPECT_GT(sent * kCreditFrameBytes, ControlChannel::kMaxBacklog);
  EXPECT_LT(sent * kCreditFrameBytes, 4 * ControlChannel::kMaxBacklog) << "the backlog was not bounded near the limit";
}

TEST(ControlChannel, V1SendsNothing) {
  ChannelRig rig(1);
  rig.client.channel.send_delivered();
  rig.client.channel.start_ping(rig.now_us());
  rig.server.channel.send_delivered();
  rig.server.channel.start_ping(rig.now_us());
  EXPECT_EQ(rig.client.channel.unsent(), 0u);
  EXPECT_EQ(rig.server.channel.unsent(), 0u);
  rig.attach_client();
  EXPECT_FALSE(rig.client.channel.delivered_sent()) << "v1: no marker was queued";
  rig.pair.run_for(500 * kMs, [&] { rig.service(); });
  EXPECT_FALSE(rig.server.channel.attached()) << "the client wrote nothing on stream 0";
  EXPECT_EQ(rig.pair.server().accept_queue_size(), 0u);
  EXPECT_TRUE(rig.client.rtts.empty());
  EXPECT_EQ(rig.server.delivered, 0);
}

TEST(ControlChannel, V1ReaderDiscardsWhatArrives) {
  QuicPair pair;
  ASSERT_TRUE(pair.handshake());
  ChannelSide server(1, true);
  auto id = pair.client().open_stream();
  ASSERT_TRUE(id);
  Stream raw(pair.client(), *id);
  write_all(raw, "DPZC");
  pair.run_for(300 * kMs, [&] {
    if (!server.channel.attached()) {
      if (auto sid = pair.server().accept_stream()) server.channel.attach(Stream(pair.server(), *sid));
    }
    server.channel.poll(static_cast<int64_t>(pair.now() / 1000));
  });
  EXPECT_TRUE(server.channel.attached());
  EXPECT_EQ(server.delivered, 0);
  EXPECT_EQ(server.channel.unsent(), 0u) << "v1: no pong";
  EXPECT_TRUE(server.grants.empty());
}

}  // namespace
}  // namespace peersock::session

// ---- Forwarder (acceptor) -------------------------------------------------------

namespace peersock::forward {
namespace {

using quic::IoStatus;
using quic::Stream;
using sim::kMs;
using sim::kSec;

std::string read_all(Stream& s) {
  std::string out;
  uint8_t buf[4096];
  for (;;) {
    auto r = s.read(buf);
    if (r.status != IoStatus::ok) break;
    out.append(reinterpret_cast<const char*>(buf), r.bytes);
  }
  return out;
}

// A loopback TCP listener on an ephemeral port.
struct Listener {
  Listener() {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 8) != 0) ADD_FAILURE() << "listen";
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~Listener() {
    if (conn >= 0) close(conn);
    close(fd);
  }
  void try_accept() {
    if (conn < 0) conn = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  }
  void read_available() {
    if (conn < 0) return;
    char buf[4096];
    ssize_t n;
    while ((n = read(conn, buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
  }
  int fd = -1, conn = -1;
  uint16_t port = 0;
  std::string got;
};

struct AcceptorRig {
  static sim::PairOptions defaults() {
    sim::PairOptions o;
    o.up.delay = o.down.delay = 5 * kMs;
    o.max_step = 1 * kMs;  // the local sockets get a turn every millisecond
    return o;
  }
  AcceptorRig() : pair(defaults()) {
    if (!pair.handshake()) ADD_FAILURE() << "no handshake";
    LocalEnd local = ConnectTcp{"127.0.0.1:" + std::to_string(listener.port)};
    ForwarderEvents events;
    events.wants_io = [] {};
    events.opened = [this](const Pump&) { ++opened; };
    events.failed = [this](std::exception_ptr e) { failure = e; };
    forwarder = std::make_unique<Forwarder>(local, std::move(events));
    forwarder->start(pair.server(), Capabilities{});
  }
  ~AcceptorRig() { forwarder.reset(); }
  // What a session does between QUIC runs: GLib, new peer streams, the forwarder.
  void service() {
    for (int i = 0; i < 1000 && g_main_context_iteration(nullptr, FALSE); ++i) {
    }
    while (auto id = pair.server().accept_stream()) forwarder->on_stream(Stream(pair.server(), *id));
    forwarder->after_quic_run();
    listener.try_accept();
    listener.read_available();
  }
  bool run_until(const std::function<bool()>& done, sim::Timestamp budget = 20 * kSec) {
    return pair.run_until(
        [&] {
          service();
          return done();
        },
        budget);
  }

  Listener listener;
  sim::QuicPair pair;
  std::unique_ptr<Forwarder> forwarder;
  int opened = 0;
  std::exception_ptr failure;
};

TEST(ForwarderAcceptor, ConnectsAStreamWithTheHeaderAndCarriesBytesBothWays) {
  AcceptorRig rig;
  auto id = rig.pair.client().open_stream();
  ASSERT_TRUE(id);
  Stream s(rig.pair.client(), *id);
  ASSERT_EQ(s.write(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>("Xhello"), 6)).status, IoStatus::ok);
  ASSERT_TRUE(rig.run_until([&] { return rig.listener.got == "hello" || rig.failure; }));
  ASSERT_FALSE(rig.failure);
  EXPECT_EQ(rig.opened, 1);
  EXPECT_EQ(rig.forwarder->open_connections(), 1u);
  EXPECT_EQ(rig.listener.got, "hello") << "the 'X' header is not forwarded";

  ASSERT_EQ(write(rig.listener.conn, "world", 5), 5);
  std::string back;
  ASSERT_TRUE(rig.run_until([&] {
    uint8_t buf[256];
    for (;;) {
      auto r = s.read(buf);
      if (r.status != IoStatus::ok) break;
      back.append(reinterpret_cast<const char*>(buf), r.bytes);
    }
    return back == "world";
  }));
}

TEST(ForwarderAcceptor, AStreamWithoutTheHeaderIsACounterpartyError) {
  AcceptorRig rig;
  auto id = rig.pair.client().open_stream();
  ASSERT_TRUE(id);
  Stream s(rig.pair.client(), *id);
  ASSERT_EQ(s.write(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>("Yhello"), 6)).status, IoStatus::ok);
  bool threw = false;
  rig.pair.run_until(
      [&] {
        try {
          rig.service();
        } catch (const CounterpartyError&) {
          threw = true;
        }
        return threw;
      },
      5 * kSec);
  EXPECT_TRUE(threw) << "after_quic_run() accepted a stream starting with 'Y'";
  EXPECT_EQ(rig.opened, 0);
  rig.listener.try_accept();
  EXPECT_LT(rig.listener.conn, 0) << "nothing was connected";
}

// A port that was free a moment ago (the forwarder binds it itself).
uint16_t free_port() {
  Listener probe;
  return probe.port;
}

int connect_loopback(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

struct OpenerRig {
  OpenerRig() : pair(AcceptorRig::defaults()) {
    if (!pair.handshake()) ADD_FAILURE() << "no handshake";
    port = free_port();
    LocalEnd local = ListenTcp{.port = port};
    ForwarderEvents events;
    events.wants_io = [] {};
    events.opened = [this](const Pump&) { ++opened; };
    events.failed = [this](std::exception_ptr e) { failure = e; };
    forwarder = std::make_unique<Forwarder>(local, std::move(events));
    forwarder->start(pair.client(), Capabilities{});
  }
  ~OpenerRig() {
    forwarder.reset();
    for (int fd : locals) close(fd);
  }
  void service() {
    for (int i = 0; i < 1000 && g_main_context_iteration(nullptr, FALSE); ++i) {
    }
    forwarder->after_quic_run();
    while (auto id = pair.server().accept_stream()) peer.emplace_back(pair.server(), *id);
  }
  bool run_until(const std::function<bool()>& done, sim::Timestamp budget = 20 * kSec) {
    return pair.run_until(
        [&] {
          service();
          return done();
        },
        budget);
  }
  sim::QuicPair pair;
  uint16_t port = 0;
  std::unique_ptr<Forwarder> forwarder;
  std::vector<int> locals;
  std::vector<Stream> peer;  // the server's side of the data streams
  int opened = 0;
  std::exception_ptr failure;
};

TEST(ForwarderOpener, ALocalConnectionOpensAStreamWithTheHeader) {
  OpenerRig rig;
  EXPECT_EQ(rig.forwarder->listener_description(), "127.0.0.1:" + std::to_string(rig.port));
  int fd = connect_loopback(rig.port);
  ASSERT_GE(fd, 0);
  rig.locals.push_back(fd);
  ASSERT_EQ(write(fd, "hello", 5), 5);
  std::string got;
  ASSERT_TRUE(rig.run_until([&] {
    for (auto& s : rig.peer) got += read_all(s);
    return got == "Xhello" || rig.failure;
  }));
  ASSERT_FALSE(rig.failure);
  EXPECT_EQ(rig.opened, 1);
  ASSERT_EQ(rig.peer.size(), 1u);
  const std::string back = "world";
  ASSERT_EQ(
      rig.peer[0].write(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(back.data()), back.size())).status,
      IoStatus::ok);
  std::string local;
  ASSERT_TRUE(rig.run_until([&] {
    char buf[64];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) local.append(buf, static_cast<size_t>(n));
    return local == back;
  }));
}

TEST(ForwarderOpener, AtThePeersStreamLimitNewConnectionsWaitInsteadOfBeingRefused) {
  // Both ends of each local connection live in this process: room for
  // twice the peer's limit (the product raises its own limit the same way).
  rlimit fds{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &fds), 0);
  fds.rlim_cur = std::min<rlim_t>(fds.rlim_max, 8192);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &fds), 0);
  OpenerRig rig;
  const size_t limit = rig.pair.client().streams_left();
  ASSERT_GT(limit, 0u);
  ASSERT_LE(limit, 1024u);
  ASSERT_LT(2 * limit + 64, fds.rlim_cur) << "this machine's hard descriptor limit is too low for the test";
  for (size_t i = 0; i < limit + 2; ++i) {
    int fd = connect_loopback(rig.port);  // completes in the kernel's accept queue
    ASSERT_GE(fd, 0);
    rig.locals.push_back(fd);
  }
  ASSERT_TRUE(rig.run_until([&] { return rig.peer.size() == limit || rig.failure; }));
  ASSERT_FALSE(rig.failure);
  rig.pair.run_for(500 * kMs, [&] { rig.service(); });
  EXPECT_EQ(rig.peer.size(), limit) << "opened beyond the peer's stream limit";
  EXPECT_EQ(static_cast<size_t>(rig.opened), limit);
  EXPECT_EQ(rig.pair.client().streams_left(), 0u);
  // None of the waiting connections was refused (closed): nothing to read, no EOF.
  for (size_t i = limit; i < rig.locals.size(); ++i) {
    char c;
    EXPECT_EQ(read(rig.locals[i], &c, 1), -1) << "connection " << i << " was closed";
    EXPECT_EQ(errno, EAGAIN);
  }
  // The server finishes two streams: the peer allows two more, and the
  // waiting connections are accepted.
  for (int i = 0; i < 2; ++i) {
    rig.peer[static_cast<size_t>(i)].reset();
  }
  ASSERT_TRUE(rig.run_until([&] { return rig.peer.size() == limit + 2 || rig.failure; }));
  ASSERT_FALSE(rig.failure);
  EXPECT_EQ(static_cast<size_t>(rig.opened), limit + 2);
}

}  // namespace
}  // namespace peersock::forward

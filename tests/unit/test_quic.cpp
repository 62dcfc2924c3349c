// quic::Endpoint (ngtcp2) client and server back to back over a simulated
// path in virtual time (support/quic_pair.hpp): handshake, exporter, stream
// data both ways under loss and reordering, resets, flow control per stream,
// closing, idle timeout, stream limits, readiness, junk input and congestion
// control. Virtual time makes a 50 ms RTT cost nothing and makes every time
// bound a statement about the protocol, not about the test machine.
#include <fmt/core.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "peersock/auth/smp.hpp"
#include "peersock/error.hpp"
#include "peersock/quic/endpoint.hpp"
#include "peersock/quic/stream.hpp"
#include "support/quic_pair.hpp"

namespace peersock::quic {
namespace {

using sim::Bytes;
using sim::kMs;
using sim::kSec;
using sim::LinkOptions;
using sim::PairOptions;
using sim::QuicPair;

constexpr Timestamp kRtt = 50 * kMs;  // the pair's default: 25 ms each way
constexpr size_t kMiB = 1 << 20;

PairOptions lossy(double loss, double reorder = 0, uint64_t seed = 1) {
  PairOptions o;
  o.up.loss = o.down.loss = loss;
  o.up.reorder = o.down.reorder = reorder;
  o.up.seed = seed;
  o.down.seed = seed + 1000;
  return o;
}

// Feeds `data` into a stream as fast as the stream takes it, then (if
// `finish`) concludes it.
struct Writer {
  Bytes data;
  bool finish = true;
  size_t offset = 0;
  bool concluded = false, saw_reset = false;

  void run(Stream& s) {
    while (offset < data.size() && !saw_reset) {
      size_t n = std::min<size_t>(data.size() - offset, 100'000);  // not a multiple of anything
      IoResult r = s.write(std::span<const uint8_t>(data).subspan(offset, n));
      if (r.status == IoStatus::reset) saw_reset = true;
      if (r.status != IoStatus::ok) break;
      EXPECT_GT(r.bytes, 0u);
      EXPECT_LE(r.bytes, n);
      offset += r.bytes;
    }
    if (finish && offset == data.size() && !concluded && !saw_reset) {
      s.conclude();
      concluded = true;
    }
  }
  bool done() const { return offset == data.size() && (concluded || !finish); }
};

// Reads everything a stream has, remembering how it ended.
struct Reader {
  Bytes got;
  bool fin = false, reset = false;

  void run(Stream& s) { run_up_to(s, UINT64_MAX); }
  // Reads until FIN, reset or nothing more for now, but stops once `limit`
  // bytes have been read in all.
  void run_up_to(Stream& s, uint64_t limit) {
    uint8_t buf[40'000];
    while (!fin && !reset && got.size() < limit) {
      size_t want = std::min<uint64_t>(sizeof buf, limit - got.size());
      IoResult r = s.read(std::span<uint8_t>(buf, want));
      if (r.status == IoStatus::ok) {
        EXPECT_GT(r.bytes, 0u);
        got.insert(got.end(), buf, buf + r.bytes);
      } else if (r.status == IoStatus::fin) {
        fin = true;
      } else if (r.status == IoStatus::reset) {
        reset = true;
      } else {
        break;
      }
    }
  }
};

// One client-opened stream carrying `up` to the server and `down` back, both
// with FIN, both sides reading as they go.
struct Exchange {
  Exchange(QuicPair& p, Bytes up, Bytes down) : p(p) {
    client_writer.data = std::move(up);
    server_writer.data = std::move(down);
  }
  bool step() {
    if (!cs) {
      if (auto id = p.client().open_stream()) cs = Stream(p.client(), *id);
    }
    if (!ss) {
      if (auto id = p.server().accept_stream()) ss = Stream(p.server(), *id);
    }
    if (cs) {
      client_writer.run(cs);
      client_reader.run(cs);
    }
    if (ss) {
      server_writer.run(ss);
      server_reader.run(ss);
    }
    return done();
  }
  bool done() const { return client_writer.done() && server_writer.done() && client_reader.fin && server_reader.fin; }
  bool run(Timestamp budget) {
    return p.run_until([&] { return step(); }, budget);
  }
  void expect_exact() const {
    EXPECT_FALSE(client_reader.reset);
    EXPECT_FALSE(server_reader.reset);
    EXPECT_EQ(server_reader.got.size(), client_writer.data.size());
    EXPECT_TRUE(server_reader.got == client_writer.data) << "client -> server bytes differ";
    EXPECT_EQ(client_reader.got.size(), server_writer.data.size());
    EXPECT_TRUE(client_reader.got == server_writer.data) << "server -> client bytes differ";
  }

  QuicPair& p;
  Stream cs, ss;
  Writer client_writer, server_writer;
  Reader client_reader, server_reader;
};

void expect_open(QuicPair& p) {
  EXPECT_FALSE(p.client().closed().has_value()) << p.client().closed()->reason;
  EXPECT_FALSE(p.server().closed().has_value()) << p.server().closed()->reason;
}

// ---- the simulated path itself ---------------------------------------------------
// The tests below rely on it: a "2 % loss" test that lost nothing would
// prove nothing.

std::vector<std::pair<Timestamp, uint8_t>> drain(sim::Link& link, Timestamp until) {
  std::vector<std::pair<Timestamp, uint8_t>> out;
  while (auto t = link.next_arrival()) {
    if (*t > until) break;
    auto d = link.pop_due(*t);
    if (d) out.emplace_back(*t, (*d)[0]);
  }
  return out;
}

TEST(SimLink, DelaysEachDatagramByTheOneWayDelay) {
  sim::Link link(LinkOptions{});
  const uint8_t a[] = {1}, b[] = {2};
  link.send(a, 1000 * kSec);
  link.send(b, 1000 * kSec + 3 * kMs);
  EXPECT_FALSE(link.pop_due(1000 * kSec + 24 * kMs).has_value());
  auto got = drain(link, 2000 * kSec);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], std::pair(1000 * kSec + 25 * kMs, uint8_t{1}));
  EXPECT_EQ(got[1], std::pair(1000 * kSec + 28 * kMs, uint8_t{2}));
}

TEST(SimLink, BottleneckSpacesDatagramsAndDropsWhenItsQueueIsFull) {
  LinkOptions o;
  o.delay = 0;
  o.bits_per_second = 8'000'000;  // one byte per microsecond
  o.queue_bytes = 3000;
  sim::Link link(o);
  Bytes d(1000, 7);
  for (int i = 0; i < 6; ++i) link.send(d, 1000 * kSec);
  auto got = drain(link, 2000 * kSec);
  // 3000 bytes fit (the one on the wire included), the rest is dropped.
  ASSERT_EQ(got.size(), 3u);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].first, 1000 * kSec + (i + 1) * 1000 * sim::kUs);
  EXPECT_EQ(link.stats().overflowed, 3u);
  // Once the queue has drained, the bottleneck takes datagrams again.
  link.send(d, 1000 * kSec + 10 * kMs);
  EXPECT_EQ(drain(link, 2000 * kSec).size(), 1u);
}

TEST(SimLink, LossFollowsItsRateAndItsSeed) {
  auto pattern = [](uint64_t seed) {
    LinkOptions o;
    o.loss = 0.02;
    o.seed = seed;
    sim::Link link(o);
    const uint8_t d[] = {0};
    std::vector<bool> kept;
    for (int i = 0; i < 20000; ++i) {
      uint64_t before = link.stats().lost;
      link.send(d, 1000 * kSec);
      kept.push_back(link.stats().lost == before);
    }
    return std::pair(kept, link.stats().lost);
  };
  auto [a, lost] = pattern(1);
  EXPECT_GT(lost, 300u);  // 2 % of 20000 is 400
  EXPECT_LT(lost, 500u);
  EXPECT_EQ(pattern(1).first, a) << "the same seed must drop the same datagrams";
  EXPECT_NE(pattern(2).first, a);
}

TEST(SimLink, ReorderingLetsLaterDatagramsOvertake) {
  LinkOptions o;
  o.reorder = 0.1;
  sim::Link link(o);
  for (int i = 0; i < 200; ++i) {
    const uint8_t d[] = {static_cast<uint8_t>(i)};
    link.send(d, 1000 * kSec + static_cast<Timestamp>(i) * 100 * sim::kUs);
  }
  auto got = drain(link, 2000 * kSec);
  ASSERT_EQ(got.size(), 200u);
  int overtaken = 0;
  for (size_t i = 1; i < got.size(); ++i) overtaken += got[i].second < got[i - 1].second;
  EXPECT_GT(overtaken, 5);
  EXPECT_TRUE(std::is_sorted(got.begin(), got.end(), [](auto& x, auto& y) { return x.first < y.first; }));
}

TEST(SimLink, ADeadLinkDropsWhatIsAlreadyOnItsWay) {
  sim::Link link(LinkOptions{});
  const uint8_t d[] = {1};
  link.send(d, 1000 * kSec);
  link.set_dead(true);
  EXPECT_FALSE(link.pop_due(2000 * kSec).has_value());
  link.set_dead(false);
  link.send(d, 2000 * kSec);
  EXPECT_TRUE(link.pop_due(2001 * kSec).has_value());
}

// ---- handshake ---------------------------------------------------------------

TEST(QuicHandshake, CompletesWithEqualExportersOnBothSides) {
  QuicPair p;
  const Timestamp start = p.now();
  EXPECT_FALSE(p.client().handshake_done());
  ASSERT_TRUE(p.handshake());
  // 1-RTT handshake: the server is done when the client's Finished arrives,
  // 1.5 RTT after the start. No retransmission timer may be involved.
  EXPECT_LE(p.now() - start, 2 * kRtt);
  expect_open(p);
  // Both at the default cap, 1: the versioned name for it.
  EXPECT_EQ(p.client().alpn(), "x-peersock/1");
  EXPECT_EQ(p.server().alpn(), "x-peersock/1");
  EXPECT_NEAR(p.client().stats().rtt_ms, 50.0, 5.0);

  auto c = p.client().export_keying_material(auth::kExporterLabel, auth::kExporterBytes);
  auto s = p.server().export_keying_material(auth::kExporterLabel, auth::kExporterBytes);
  ASSERT_EQ(c.size(), auth::kExporterBytes);
  EXPECT_EQ(c, s);
  EXPECT_NE(c, Bytes(auth::kExporterBytes, 0));
  EXPECT_NE(p.client().export_keying_material("another label", auth::kExporterBytes), c);

  // Another connection, another secret.
  QuicPair q;
  ASSERT_TRUE(q.handshake());
  auto c2 = q.client().export_keying_material(auth::kExporterLabel, auth::kExporterBytes);
  EXPECT_EQ(c2, q.server().export_keying_material(auth::kExporterLabel, auth::kExporterBytes));
  EXPECT_NE(c2, c);
}

TEST(QuicStats, LastReceivedFollowsThePeersPackets) {
  QuicPair p;
  EXPECT_EQ(p.client().stats().last_received, 0u);
  ASSERT_TRUE(p.handshake());
  const Timestamp first = p.client().stats().last_received;
  EXPECT_GT(first, 0u);
  EXPECT_LE(first, p.now());
  p.run_for(2 * kSec, [] {});
  EXPECT_GE(p.client().stats().last_received, first);
}

TEST(QuicHandshake, ExporterBeforeTheHandshakeThrows) {
  QuicPair p;
  EXPECT_THROW(p.client().export_keying_material(auth::kExporterLabel, auth::kExporterBytes), Error);
  EXPECT_THROW(p.server().export_keying_material(auth::kExporterLabel, auth::kExporterBytes), Error);
}

TEST(QuicHandshake, CompletesDespiteHeavyLoss) {
  QuicPair p(lossy(0.3, 0, 7));
  ASSERT_TRUE(p.handshake(20 * kSec));
  EXPECT_GT(p.up().stats().lost + p.down().stats().lost, 0u) << "the seed dropped nothing: pick another";
  EXPECT_EQ(p.client().export_keying_material(auth::kExporterLabel, 32),
            p.server().export_keying_material(auth::kExporterLabel, 32));
}

// ---- version negotiation by ALPN (alpn.hpp; the pure choice: test_alpn.cpp) ----

PairOptions versions(int client_cap, int server_cap, int client_body, int server_body) {
  PairOptions o;
  o.client.max_version = client_cap;
  o.client.peer_body_version = server_body;
  o.server.max_version = server_cap;
  o.server.peer_body_version = client_body;
  return o;
}

TEST(QuicNegotiation, TwoCurrentPeersAgreeOnTheLowerCapInTheHandshake) {
  QuicPair p(versions(4, 3, 4, 3));
  ASSERT_TRUE(p.handshake());
  EXPECT_EQ(p.client().alpn(), "x-peersock/3");
  for (Endpoint* e : {&p.client(), &p.server()}) {
    auto o = e->negotiated();
    EXPECT_EQ(o.version, 3);
    EXPECT_FALSE(o.peer_is_original);
    EXPECT_FALSE(o.version_changed);
  }
  EXPECT_FALSE(p.server().presented_original_identity());
}

TEST(QuicNegotiation, AStrippedBodyIsSeenByTheSideThatReadsIt) {
  // The client's body reached the server without "v": its offer says 4.
  QuicPair p(versions(4, 4, 1, 4));
  ASSERT_TRUE(p.handshake());
  EXPECT_TRUE(p.server().negotiated().version_changed);
  EXPECT_FALSE(p.client().negotiated().version_changed);
  EXPECT_EQ(p.server().negotiated().version, 4) << "the authenticated offer wins, not the body";
  // The server's body reached the client without "v".
  QuicPair q(versions(4, 4, 4, 1));
  ASSERT_TRUE(q.handshake());
  EXPECT_TRUE(q.client().negotiated().version_changed);
  EXPECT_FALSE(q.server().negotiated().version_changed);
}

PairOptions original_client(int body) {
  PairOptions o;
  o.client.client_alpn = "x-peersock";  // all the original offers
  o.server.max_version = 4;
  o.server.peer_body_version = body;
  o.client.peer_body_version = 4;
  return o;
}

TEST(QuicNegotiation, APlainOnlyClientWithoutVGetsTheOriginalsCertificate) {
  QuicPair p(original_client(1));
  ASSERT_TRUE(p.handshake());
  EXPECT_EQ(p.server().alpn(), "x-peersock");
  EXPECT_TRUE(p.server().presented_original_identity());
  EXPECT_TRUE(p.server().negotiated().peer_is_original);
  EXPECT_EQ(p.server().negotiated().version, 1);
  // Our client recognises that certificate (it is how it knows the original).
  EXPECT_TRUE(p.client().negotiated().peer_is_original);
  EXPECT_EQ(p.client().export_keying_material(auth::kExporterLabel, 32),
            p.server().export_keying_material(auth::kExporterLabel, 32));
}

TEST(QuicNegotiation, APlainOnlyClientThatAnnouncedAVersionIsAnOlderReleaseOfOurs) {
  QuicPair p(original_client(3));
  ASSERT_TRUE(p.handshake());
  EXPECT_FALSE(p.server().presented_original_identity());
  EXPECT_EQ(p.server().negotiated().version, 3);
  EXPECT_FALSE(p.server().negotiated().peer_is_original);
  EXPECT_FALSE(p.client().negotiated().peer_is_original);
}

PairOptions wrong_alpn() {
  PairOptions o;
  o.client.client_alpn = "x-notpeersock";
  return o;
}

TEST(QuicHandshake, WrongAlpnFailsOnBothSidesWithoutHanging) {
  QuicPair p(wrong_alpn());
  const Timestamp start = p.now();
  // Both ends learn it within a few round trips, not an idle timeout.
  ASSERT_TRUE(p.run_until([&] { return p.client().closed() && p.server().closed(); }, 1 * kSec));
  EXPECT_LE(p.now() - start, 4 * kRtt);
  EXPECT_FALSE(p.client().handshake_done());
  EXPECT_FALSE(p.server().handshake_done());
  const CloseInfo& server = *p.server().closed();
  EXPECT_FALSE(server.by_peer);
  EXPECT_FALSE(server.is_app);
  const CloseInfo& client = *p.client().closed();
  EXPECT_TRUE(client.by_peer) << "the server's CONNECTION_CLOSE must reach the client";
  EXPECT_FALSE(client.is_app);
  EXPECT_TRUE(p.run_until([&] { return p.client().shutdown_complete() && p.server().shutdown_complete(); }, 1 * kSec));
  EXPECT_FALSE(p.client().open_stream().has_value());
  EXPECT_EQ(p.client().streams_left(), 0u);
  EXPECT_THROW(p.client().export_keying_material(auth::kExporterLabel, 32), Error);
  // Nothing keeps running once both are closed.
  p.run_for(30 * kSec);
  EXPECT_FALSE(p.client().expiry().has_value());
  EXPECT_FALSE(p.server().expiry().has_value());
}

// A wrong ALPN ends in CRYPTO_ERROR with TLS alert 120
// (no_application_protocol, RFC 9001 §4.8), not a bare protocol violation:
// the client's user learns why.
TEST(QuicHandshake, WrongAlpnTellsTheClientNoApplicationProtocol) {
  QuicPair p(wrong_alpn());
  ASSERT_TRUE(p.run_until([&] { return p.client().closed().has_value(); }, 1 * kSec));
  EXPECT_EQ(p.client().closed()->error_code, 0x100u + 120u) << p.client().closed()->reason;
}

TEST(QuicHandshake, ServerCloseBeforeAnyClientCompletesAtOnce) {
  Endpoint server(
      Role::server, [](const Endpoint::Batch&) { ADD_FAILURE() << "nobody to send to"; }, {}, 1000 * kSec);
  EXPECT_FALSE(server.shutdown_complete());
  server.close(kErrorLocal, "giving up", 1000 * kSec);
  EXPECT_TRUE(server.shutdown_complete());
  ASSERT_TRUE(server.closed().has_value());
  EXPECT_FALSE(server.closed()->by_peer);
  EXPECT_FALSE(server.expiry().has_value());
}

TEST(QuicHandshake, ClientCloseBeforeTheServerAnswersEndsAtOnce) {
  PairOptions o;
  QuicPair p(o);
  p.up().set_dead(true);
  p.run_for(10 * kMs);  // the Initial went out and got lost
  p.client().close(kErrorLocal, "giving up", p.now());
  ASSERT_TRUE(p.client().closed().has_value());
  EXPECT_EQ(p.client().closed()->error_code, kErrorLocal);
  EXPECT_TRUE(p.run_until([&] { return p.client().shutdown_complete(); }, 1 * kSec));
  EXPECT_FALSE(p.client().handshake_done());
}

TEST(QuicHandshake, ClientCloseDuringTheHandshakeReachesTheServer) {
  QuicPair p;
  // Until the server has answered the client's Initial: the server has a
  // connection, the client has no 1-RTT keys yet.
  ASSERT_TRUE(p.run_until([&] { return p.down().stats().offered > 0; }, 1 * kSec));
  ASSERT_FALSE(p.client().handshake_done());
  p.client().close(kErrorLocal, "giving up", p.now());
  ASSERT_TRUE(p.run_until([&] { return p.server().closed().has_value(); }, 2 * kSec));
  const CloseInfo& ci = *p.server().closed();
  EXPECT_TRUE(ci.by_peer);
  // RFC 9000 §10.2.3: an application close cannot go out in Initial or
  // Handshake packets; it becomes transport error APPLICATION_ERROR (0x0c).
  EXPECT_TRUE((ci.is_app && ci.error_code == kErrorLocal) || (!ci.is_app && ci.error_code == 0x0c))
      << "is_app=" << ci.is_app << " code=" << ci.error_code << " reason=" << ci.reason;
  EXPECT_TRUE(p.run_until([&] { return p.client().shutdown_complete() && p.server().shutdown_complete(); }, 5 * kSec));
}

// ---- stream data ---------------------------------------------------------------

struct PathCase {
  const char* name;
  double loss, reorder;
};

class QuicTransfer : public ::testing::TestWithParam<PathCase> {};

TEST_P(QuicTransfer, EightMiBEachWayWithFinByteExact) {
  QuicPair p(lossy(GetParam().loss, GetParam().reorder, 42));
  ASSERT_TRUE(p.handshake(20 * kSec));
  Exchange x(p, sim::random_bytes(8 * kMiB, 1), sim::random_bytes(8 * kMiB, 2));
  ASSERT_TRUE(x.run(120 * kSec)) << "client sent " << x.client_writer.offset << ", server got "
                                 << x.server_reader.got.size() << "; server sent " << x.server_writer.offset
                                 << ", client got " << x.client_reader.got.size();
  x.expect_exact();
  expect_open(p);
  if (GetParam().loss > 0) {
    EXPECT_GT(p.up().stats().lost, 100u);
  }
}

INSTANTIATE_TEST_SUITE_P(Quic, QuicTransfer,
                         ::testing::Values(PathCase{"Lossless", 0, 0}, PathCase{"Loss2Percent", 0.02, 0},
                                           PathCase{"Reordered", 0, 0.05},
                                           PathCase{"Loss2PercentReordered", 0.02, 0.05}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(QuicStreams, ResetInEitherDirectionIsSeenByThePeer) {
  QuicPair p;
  ASSERT_TRUE(p.handshake());
  // Stream A: the client resets; stream B: the server resets.
  Stream ca(p.client(), *p.client().open_stream());
  Stream cb(p.client(), *p.client().open_stream());
  const Bytes hello = {'h', 'i'};
  ASSERT_EQ(ca.write(hello).status, IoStatus::ok);
  ASSERT_EQ(cb.write(hello).status, IoStatus::ok);
  Stream sa, sb;
  ASSERT_TRUE(p.run_until([&] {
    while (auto id = p.server().accept_stream()) (*id == ca.id() ? sa : sb) = Stream(p.server(), *id);
    return sa && sb && sa.read_status() == IoStatus::ok && sb.read_status() == IoStatus::ok;
  }));
  uint8_t buf[16];
  ASSERT_EQ(sa.read(buf).bytes, 2u);
  ASSERT_EQ(sb.read(buf).bytes, 2u);

  ca.reset(7);
  sb.reset(9);
  // Our own side of a stream we reset is over at once.
  EXPECT_EQ(ca.read_status(), IoStatus::reset);
  EXPECT_EQ(ca.write(hello).status, IoStatus::reset);
  // The peer sees both directions end: reading says reset, and so does
  // writing (STOP_SENDING), once it has tried.
  IoStatus sa_write = IoStatus::ok, cb_write = IoStatus::ok;
  ASSERT_TRUE(p.run_until(
      [&] {
        if (sa_write != IoStatus::reset) sa_write = sa.write(hello).status;
        if (cb_write != IoStatus::reset) cb_write = cb.write(hello).status;
        return sa.read_status() == IoStatus::reset && cb.read_status() == IoStatus::reset &&
               sa_write == IoStatus::reset && cb_write == IoStatus::reset;
      },
      2 * kSec))
      << "server read " << static_cast<int>(sa.read_status()) << " write " << static_cast<int>(sa_write)
      << "; client read " << static_cast<int>(cb.read_status()) << " write " << static_cast<int>(cb_write);
  EXPECT_EQ(sa.read(buf).status, IoStatus::reset);
  EXPECT_EQ(cb.read(buf).status, IoStatus::reset);
  expect_open(p);  // a stream reset is not a connection error
}

TEST(QuicStreams, AReaderThatStopsHoldsBackOnlyItsOwnStream) {
  QuicPair p;
  ASSERT_TRUE(p.handshake());
  const Bytes stalled_data = sim::random_bytes(4 * kMiB, 3), busy_data = sim::random_bytes(16 * kMiB, 4);
  Stream c_stalled(p.client(), *p.client().open_stream());
  Stream c_busy(p.client(), *p.client().open_stream());
  Writer w_stalled{stalled_data}, w_busy{busy_data};
  Stream s_stalled, s_busy;
  Reader r_busy;
  ASSERT_TRUE(p.run_until(
      [&] {
        w_stalled.run(c_stalled);
        w_busy.run(c_busy);
        while (auto id = p.server().accept_stream())
          (*id == c_stalled.id() ? s_stalled : s_busy) = Stream(p.server(), *id);
        if (s_busy) r_busy.run(s_busy);  // s_stalled is never read here
        return r_busy.fin;
      },
      60 * kSec))
      << "the busy stream got " << r_busy.got.size() << " bytes";
  EXPECT_TRUE(r_busy.got == busy_data);
  // The stalled stream holds at most its flow-control window at the reader
  // (1 MiB at first; it grows only while its reader keeps up).
  ASSERT_TRUE(s_stalled);
  const StreamState* st = p.server().stream(s_stalled.id());
  ASSERT_NE(st, nullptr);
  EXPECT_GT(st->rx.size(), 0u);
  EXPECT_LE(st->rx.size(), 1 * kMiB);
  EXPECT_LT(w_stalled.offset, stalled_data.size());

  // Once read again, it delivers everything.
  Reader r_stalled;
  ASSERT_TRUE(p.run_until(
      [&] {
        w_stalled.run(c_stalled);
        r_stalled.run(s_stalled);
        return r_stalled.fin;
      },
      60 * kSec));
  EXPECT_TRUE(r_stalled.got == stalled_data);
  expect_open(p);
}

// A reader that kept up for a while (its local socket buffers filling, as
// in test_slow_reader) and then stopped: its stream's window has grown, and
// what it leaves unread counts against the connection window. The other
// stream must still get its 32 MiB through while it stays stalled. (With an
// auto-tuned connection window that began at 8 MiB, the stall after 12 MiB
// took all of it: the busy stream never finished.)
class QuicStalledAfterGrowth : public ::testing::TestWithParam<uint64_t> {};

TEST_P(QuicStalledAfterGrowth, TheOtherStreamStillFinishes) {
  const uint64_t read_before_stall = GetParam();
  PairOptions o;
  o.up.delay = o.down.delay = 5 * kMs;
  o.up.bits_per_second = o.down.bits_per_second = 1'000'000'000;
  QuicPair p(o);
  ASSERT_TRUE(p.handshake());
  const Bytes stalled_data = sim::random_bytes(64 * kMiB, 5), busy_data = sim::random_bytes(32 * kMiB, 6);
  Stream c_stalled(p.client(), *p.client().open_stream());
  Writer w_stalled{stalled_data};
  Stream s_stalled;
  Reader r_stalled;
  // The stalled stream's reader keeps up until it has read_before_stall.
  ASSERT_TRUE(p.run_until(
      [&] {
        w_stalled.run(c_stalled);
        if (!s_stalled)
          if (auto id = p.server().accept_stream()) s_stalled = Stream(p.server(), *id);
        if (s_stalled && r_stalled.got.size() < read_before_stall) r_stalled.run_up_to(s_stalled, read_before_stall);
        return r_stalled.got.size() >= read_before_stall;
      },
      60 * kSec));
  // Now it stops reading; a second stream carries 32 MiB.
  Stream c_busy(p.client(), *p.client().open_stream());
  Writer w_busy{busy_data};
  Stream s_busy;
  Reader r_busy;
  ASSERT_TRUE(p.run_until(
      [&] {
        w_stalled.run(c_stalled);
        w_busy.run(c_busy);
        while (auto id = p.server().accept_stream()) s_busy = Stream(p.server(), *id);
        if (s_busy) r_busy.run(s_busy);
        return r_busy.fin;
      },
      60 * kSec))
      << "the busy stream got " << r_busy.got.size() / kMiB << " MiB while the other one held "
      << p.server().stream(s_stalled.id())->rx.size() / kMiB << " MiB unread";
  EXPECT_TRUE(r_busy.got == busy_data);
  EXPECT_LE(p.server().stream(s_stalled.id())->rx.size(), 16 * kMiB);
  // Read again, the stalled stream delivers everything.
  ASSERT_TRUE(p.run_until(
      [&] {
        w_stalled.run(c_stalled);
        r_stalled.run(s_stalled);
        return r_stalled.fin;
      },
      60 * kSec));
  EXPECT_TRUE(r_stalled.got == stalled_data);
  expect_open(p);
}

INSTANTIATE_TEST_SUITE_P(ReadBeforeStall, QuicStalledAfterGrowth,
                         ::testing::Values(2 * kMiB, 6 * kMiB, 12 * kMiB, 24 * kMiB, 40 * kMiB),
                         [](const auto& info) { return std::to_string(info.param / kMiB) + "MiB"; });

TEST(QuicStreams, LimitIs1024AndOneMoreOpensWhenOneCloses) {
  QuicPair p;
  ASSERT_TRUE(p.handshake());
  EXPECT_EQ(p.client().streams_left(), 1024u);
  std::vector<Stream> streams;
  while (auto id = p.client().open_stream()) {
    streams.emplace_back(p.client(), *id);
    ASSERT_LE(streams.size(), 1024u);
  }
  EXPECT_EQ(streams.size(), 1024u);
  EXPECT_EQ(p.client().streams_left(), 0u);
  // The server grants its own 1024 as well.
  EXPECT_EQ(p.server().streams_left(), 1024u);

  // Finish the first stream both ways (FIN each way, all read).
  streams.front().conclude();
  Stream accepted;
  Reader client_side, server_side;
  ASSERT_TRUE(p.run_until([&] {
    if (!accepted) {
      if (auto id = p.server().accept_stream()) {
        accepted = Stream(p.server(), *id);
        accepted.conclude();
      }
    }
    if (accepted) server_side.run(accepted);
    client_side.run(streams.front());
    return client_side.fin && server_side.fin;
  }));
  EXPECT_EQ(accepted.id(), streams.front().id());
  // The server grants one more once the stream is closed on its side.
  ASSERT_TRUE(p.run_until([&] { return p.client().streams_left() > 0; }, 2 * kSec));
  EXPECT_EQ(p.client().streams_left(), 1u);
  auto id = p.client().open_stream();
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(*id, streams.back().id() + 4) << "client bidi stream ids go up by 4";
  EXPECT_EQ(p.client().streams_left(), 0u);
  EXPECT_FALSE(p.client().open_stream().has_value());
  expect_open(p);
}

TEST(QuicStreams, TakeReadyReportsArrivalsAndRoomToWriteOnce) {
  QuicPair p;
  ASSERT_TRUE(p.handshake());
  p.client().take_ready();
  p.server().take_ready();
  Stream cs(p.client(), *p.client().open_stream());
  const Bytes hello = {'h', 'e', 'l', 'l', 'o'};
  ASSERT_EQ(cs.write(hello).bytes, hello.size());
  std::vector<int64_t> ready;
  ASSERT_TRUE(p.run_until([&] {
    auto r = p.server().take_ready();
    ready.insert(ready.end(), r.begin(), r.end());
    return !ready.empty();
  }));
  EXPECT_EQ(ready, std::vector<int64_t>{cs.id()});
  EXPECT_TRUE(p.server().take_ready().empty()) << "each once";
  Stream ss(p.server(), *p.server().accept_stream());
  uint8_t buf[16];
  EXPECT_EQ(ss.read(buf).bytes, hello.size());

  // Fill the client's stream until it refuses, then it must be reported
  // once there is room again.
  const Bytes chunk(256 * 1024, 0x5a);
  size_t written = 0;
  while (cs.write(chunk).status == IoStatus::ok) {
    written += chunk.size();
    ASSERT_LT(written, 64 * kMiB) << "write() never says would_block";
  }
  EXPECT_EQ(cs.write(chunk).status, IoStatus::would_block);
  p.client().take_ready();
  bool reported = false;
  Reader server_side;
  ASSERT_TRUE(p.run_until([&] {
    server_side.run(ss);
    for (int64_t id : p.client().take_ready()) reported |= id == cs.id();
    return reported;
  }));
  EXPECT_EQ(cs.write(chunk).status, IoStatus::ok) << "reported ready but still no room";
}

TEST(QuicStreams, ReleasingAnUnfinishedStreamResetsItOnThePeer) {
  QuicPair p;
  ASSERT_TRUE(p.handshake());
  const Bytes data = sim::random_bytes(1000, 5);
  auto cs = std::make_unique<Stream>(p.client(), *p.client().open_stream());
  ASSERT_EQ(cs->write(data).bytes, data.size());  // no FIN
  Stream ss;
  Reader r;
  ASSERT_TRUE(p.run_until([&] {
    if (!ss) {
      if (auto id = p.server().accept_stream()) ss = Stream(p.server(), *id);
    }
    if (ss) r.run(ss);
    return r.got.size() == data.size();
  }));
  cs.reset();  // the handle goes away
  IoStatus write_status = IoStatus::ok;
  ASSERT_TRUE(p.run_until(
      [&] {
        r.run(ss);
        if (write_status != IoStatus::reset) write_status = ss.write(data).status;
        return r.reset && write_status == IoStatus::reset;
      },
      2 * kSec))
      << "the peer never learned the stream was abandoned";
  EXPECT_FALSE(r.fin);
  EXPECT_TRUE(r.got == data);
  expect_open(p);
}

TEST(QuicStreams, ReleasingAFinishedStreamIsClean) {
  QuicPair p(lossy(0.05, 0, 11));
  ASSERT_TRUE(p.handshake(20 * kSec));
  const Bytes data = sim::random_bytes(300'000, 6);
  auto cs = std::make_unique<Stream>(p.client(), *p.client().open_stream());
  ASSERT_EQ(cs->write(data).bytes, data.size());
  cs->conclude();
  Stream ss;
  Reader server_side, client_side;
  // The server finishes its direction at once; the client drops its handle
  // as soon as it has read that FIN, with its own data maybe still unacked.
  ASSERT_TRUE(p.run_until(
      [&] {
        if (!ss) {
          if (auto id = p.server().accept_stream()) {
            ss = Stream(p.server(), *id);
            ss.conclude();
          }
        }
        if (cs) {
          client_side.run(*cs);
          if (client_side.fin) cs.reset();
        }
        if (ss) server_side.run(ss);
        return server_side.fin || server_side.reset;
      },
      30 * kSec));
  EXPECT_FALSE(server_side.reset);
  EXPECT_TRUE(server_side.got == data);
  expect_open(p);
}

// Streams discarded with unread bytes at the reader (reset or released by
// the application) must give those bytes back to the connection's
// flow-control window: else every such stream shrinks it for good, and once
// the discarded bytes add up to the window, no stream moves at all. (Checked
// to fail at the ninth stream when the streams are kept open unread.)
void discard_streams_with_unread_data(bool by_release) {
  QuicPair p;
  ASSERT_TRUE(p.handshake());
  const Bytes data = sim::random_bytes(1 * kMiB, 9);  // one stream window each
  for (int i = 0; i < 12; ++i) {                      // 12 MiB in all, beyond the 8 MiB connection window
    SCOPED_TRACE(i);
    Stream cs(p.client(), *p.client().open_stream());
    Writer w{data, /*finish=*/false};
    Stream ss;
    ASSERT_TRUE(p.run_until(
        [&] {
          w.run(cs);
          if (!ss) {
            if (auto id = p.server().accept_stream()) ss = Stream(p.server(), *id);
          }
          // The server does not read: it waits until the stream's window is full.
          return ss && p.server().stream(ss.id())->rx.size() >= data.size() / 2;
        },
        10 * kSec))
        << "stream " << i << " never got data: the connection window is gone";
    if (by_release) {
      ss = Stream();  // dropped unread
    } else {
      ss.reset(1);
    }
    cs.reset(1);
  }
  expect_open(p);
}

// A stream can be finished for ngtcp2 (every byte and the FIN received, our
// own FIN acknowledged: it calls stream_close) while its bytes still wait in
// our receive queue for a slow local reader. Reading them afterwards must
// still give their room back to the connection's window, or the window
// shrinks by a stream's worth each time: with 12 such streams of 1 MiB
// against the 8 MiB connection window, the ninth never got its data.
TEST(QuicStreams, StreamsClosedBeforeTheyAreReadGiveBackTheConnectionWindow) {
  QuicPair p;
  ASSERT_TRUE(p.handshake());
  const Bytes data = sim::random_bytes(1 * kMiB, 11);
  for (int i = 0; i < 12; ++i) {
    SCOPED_TRACE(i);
    Stream cs(p.client(), *p.client().open_stream());
    Writer w{data, /*finish=*/true};
    Stream ss;
    ASSERT_TRUE(p.run_until(
        [&] {
          w.run(cs);
          if (!ss) {
            if (auto id = p.server().accept_stream()) {
              ss = Stream(p.server(), *id);
              ss.conclude();  // the server says nothing: its direction ends at once
            }
          }
          // Unread, and closed for ngtcp2.
          return ss && p.server().stream(ss.id())->closed;
        },
        10 * kSec))
        << "stream " << i << " never finished: the connection window is gone";
    Reader r;
    r.run(ss);
    EXPECT_TRUE(r.fin);
    EXPECT_EQ(r.got, data);
  }
  expect_open(p);
}

TEST(QuicStreams, ResetStreamsWithUnreadDataGiveBackTheConnectionWindow) { discard_streams_with_unread_data(false); }

TEST(QuicStreams, ReleasedStreamsWithUnreadDataGiveBackTheConnectionWindow) { discard_streams_with_unread_data(true); }

// ---- closing -------------------------------------------------------------------

class QuicClose : public ::testing::TestWithParam<Role> {};

TEST_P(QuicClose, PeerReadsAllDataThenSeesTheAppClose) {
  QuicPair p(lossy(0.02, 0, 3));
  ASSERT_TRUE(p.handshake(20 * kSec));
  const bool client_closes = GetParam() == Role::client;
  Endpoint& closer = client_closes ? p.client() : p.server();
  Endpoint& other = client_closes ? p.server() : p.client();
  // The server may write only on a stream the client opened.
  Stream cs(p.client(), *p.client().open_stream());
  ASSERT_EQ(cs.write(Bytes{'x'}).status, IoStatus::ok);
  Stream ss;
  ASSERT_TRUE(p.run_until([&] {
    if (auto id = p.server().accept_stream()) ss = Stream(p.server(), *id);
    return bool(ss);
  }));
  uint8_t one;
  ASSERT_EQ(ss.read({&one, 1}).bytes, 1u);
  Stream& out = client_closes ? cs : ss;
  Stream& in = client_closes ? ss : cs;

  // 400 KB is taken in one write (under the endpoint's unsent limit), so all
  // of it is written before close() and none of it is on the wire yet.
  const Bytes data = sim::random_bytes(400'000, 7);
  ASSERT_EQ(out.write(data).bytes, data.size());
  out.conclude();
  closer.close(kErrorAuthFailed, "connection code mismatch", p.now());
  ASSERT_TRUE(closer.closed().has_value());
  EXPECT_FALSE(closer.closed()->by_peer);
  EXPECT_TRUE(closer.closed()->is_app);
  EXPECT_EQ(closer.closed()->error_code, kErrorAuthFailed);
  closer.close(kErrorLocal, "again", p.now());  // idempotent
  EXPECT_EQ(closer.closed()->error_code, kErrorAuthFailed);
  EXPECT_EQ(out.write(data).status, IoStatus::reset) << "no writing after close()";

  Reader r;
  bool data_before_close = true;
  ASSERT_TRUE(p.run_until(
      [&] {
        if (other.closed() && !r.fin) data_before_close = false;
        r.run(in);
        return r.fin && other.closed().has_value();
      },
      10 * kSec))
      << "got " << r.got.size() << " of " << data.size();
  EXPECT_TRUE(r.got == data);
  EXPECT_TRUE(data_before_close) << "the close overtook stream data";
  const CloseInfo& ci = *other.closed();
  EXPECT_TRUE(ci.by_peer);
  EXPECT_TRUE(ci.is_app);
  EXPECT_EQ(ci.error_code, kErrorAuthFailed);
  EXPECT_EQ(ci.reason, "connection code mismatch");
  EXPECT_TRUE(p.run_until([&] { return closer.shutdown_complete() && other.shutdown_complete(); }, 5 * kSec));
  // The stream stays finished after the connection is gone.
  uint8_t buf[8];
  EXPECT_EQ(in.read(buf).status, IoStatus::fin);
}

INSTANTIATE_TEST_SUITE_P(Quic, QuicClose, ::testing::Values(Role::client, Role::server),
                         [](const auto& info) { return info.param == Role::client ? "ByClient" : "ByServer"; });

// close() after conclude() on a stream whose bytes the peer already
// acknowledged still waits for the FIN to be acknowledged: the peer sees the
// stream finished, not reset, whatever the ACK timing.
TEST(QuicCloseFin, CloseAfterConcludeOfAcknowledgedDataDeliversTheFin) {
  QuicPair p;
  ASSERT_TRUE(p.handshake());
  Stream cs(p.client(), *p.client().open_stream());
  const Bytes data = sim::random_bytes(10'000, 8);
  ASSERT_EQ(cs.write(data).bytes, data.size());
  Stream ss;
  Reader r;
  ASSERT_TRUE(p.run_until([&] {
    if (!ss) {
      if (auto id = p.server().accept_stream()) ss = Stream(p.server(), *id);
    }
    if (ss) r.run(ss);
    return r.got.size() == data.size() && cs.unacked() == 0;
  }));
  cs.conclude();
  p.client().close(kErrorNone, "done", p.now());
  ASSERT_TRUE(p.run_until(
      [&] {
        r.run(ss);
        return (r.fin || r.reset) && p.server().closed().has_value();
      },
      5 * kSec));
  EXPECT_TRUE(r.fin) << "the peer saw a reset instead of the FIN";
  EXPECT_FALSE(r.reset);
  EXPECT_TRUE(r.got == data);
}

// ---- idle timeout ----------------------------------------------------------------

PairOptions short_idle(std::chrono::milliseconds idle) {
  PairOptions o;
  o.client.idle_timeout = idle;
  o.server.idle_timeout = idle;
  return o;
}

TEST(QuicIdle, DeadPathDuringATransferClosesBothWithinTheIdleTimeout) {
  constexpr auto kIdle = std::chrono::milliseconds(2000);
  constexpr Timestamp kIdleNs = 2 * kSec;
  PairOptions o = short_idle(kIdle);
  // 8 MiB take a while at 10 Mbit/s. The buffer is one bandwidth-delay
  // product: a deeper one inflates the RTT, and the idle timeout is at least
  // three PTOs (RFC 9000 §10.1).
  o.up.bits_per_second = o.down.bits_per_second = 10'000'000;
  o.up.queue_bytes = o.down.queue_bytes = 62'500;
  QuicPair p(o);
  ASSERT_TRUE(p.handshake());
  Exchange x(p, sim::random_bytes(8 * kMiB, 1), sim::random_bytes(8 * kMiB, 2));
  p.run_for(1 * kSec, [&] { x.step(); });
  ASSERT_GT(x.server_reader.got.size(), 0u);
  ASSERT_FALSE(x.done());
  p.up().set_dead(true);
  p.down().set_dead(true);
  const Timestamp cut = p.now();
  std::optional<Timestamp> client_at, server_at;
  ASSERT_TRUE(p.run_until(
      [&] {
        x.step();
        if (!client_at && p.client().closed()) client_at = p.now();
        if (!server_at && p.server().closed()) server_at = p.now();
        return client_at && server_at;
      },
      30 * kSec));
  for (auto [who, at] : {std::pair{"client", *client_at}, std::pair{"server", *server_at}}) {
    SCOPED_TRACE(who);
    // The idle timer runs from the last packet received (just before the
    // cut) or the first ack-eliciting one sent after it: at once while the
    // congestion window has room, else the first probe, one PTO later
    // (smoothed RTT, up to 100 ms with the queue full, + 4 RTT variations +
    // 25 ms ACK delay).
    EXPECT_GE(at - cut, kIdleNs - kRtt);
    EXPECT_LE(at - cut, kIdleNs + 4 * kRtt);
  }
  RecordProperty("client_ms", std::to_string((*client_at - cut) / kMs));
  RecordProperty("server_ms", std::to_string((*server_at - cut) / kMs));
  for (Endpoint* e : {&p.client(), &p.server()}) {
    EXPECT_FALSE(e->closed()->by_peer);
    EXPECT_FALSE(e->closed()->is_app);
    EXPECT_TRUE(e->shutdown_complete());
    EXPECT_FALSE(e->expiry().has_value());
  }
  // The streams say so too.
  EXPECT_TRUE(x.client_reader.reset);
  EXPECT_TRUE(x.server_reader.reset);
}

// How long after the cut a quiet connection (keep-alives only) notices it,
// for cuts at several points between two keep-alives.
std::vector<Timestamp> quiet_cut_detection(std::chrono::milliseconds idle) {
  std::vector<Timestamp> out;
  for (Timestamp quiet : {100 * kMs, 400 * kMs, 700 * kMs, 1000 * kMs, 1300 * kMs, 1600 * kMs}) {
    QuicPair q(short_idle(idle));
    if (!q.handshake()) return {};
    q.run_for(5 * kSec + quiet);  // keep-alives only
    if (q.client().closed() || q.server().closed()) return {};
    q.up().set_dead(true);
    q.down().set_dead(true);
    const Timestamp cut = q.now();
    if (!q.run_until([&] { return q.client().closed() && q.server().closed(); }, 30 * kSec)) return {};
    if (q.client().closed()->by_peer || q.server().closed()->by_peer) return {};
    out.push_back(q.now() - cut);
  }
  return out;
}

TEST(QuicIdle, DeadPathOnAQuietConnectionClosesWithinOneAndAHalfIdleTimeouts) {
  // RFC 9000 §10.1: the idle timer restarts with the first ack-eliciting
  // packet sent after the last one received. A keep-alive PING (at half the
  // idle timeout) sent into the dead path is such a packet, so detection
  // takes up to idle + idle/2.
  auto took = quiet_cut_detection(std::chrono::milliseconds(2000));
  ASSERT_EQ(took.size(), 6u) << "a connection closed early, or by the peer";
  for (Timestamp t : took) EXPECT_LE(t, 3 * kSec + kRtt);
}

TEST(QuicIdle, KeepAlivesHoldAQuietConnectionOpen) {
  QuicPair p(short_idle(std::chrono::milliseconds(1000)));
  ASSERT_TRUE(p.handshake());
  const uint64_t before = p.up().stats().offered + p.down().stats().offered;
  p.run_for(10 * kSec);
  expect_open(p);
  // Keep-alive PINGs at half the idle timeout, from at least one side.
  EXPECT_GE(p.up().stats().offered + p.down().stats().offered - before, 10u);
}

// ---- outages: path resumption --------------------------------------------------

struct OutageResult {
  bool delivered = false;     // the whole exchange, byte-exact
  Timestamp stalled_for = 0;  // from the path's return to the first new byte at the receiver
  uint64_t resumptions = 0;   // both sides
};

// 4 MiB from `sender` at 10 Mbit/s; after 1 s both directions go dead for
// `outage`, then come back. How long after the return does the receiver
// get its next byte?
OutageResult outage(Role sender, Timestamp outage, bool resume, bool both_ways = false) {
  PairOptions o;
  o.client.idle_timeout = o.server.idle_timeout = std::chrono::milliseconds(120'000);
  o.up.bits_per_second = o.down.bits_per_second = 10'000'000;
  o.up.queue_bytes = o.down.queue_bytes = 62'500;
  QuicPair p(o);
  OutageResult r;
  if (!p.handshake()) return r;
  if (resume) {
    p.client().enable_path_resumption();
    p.server().enable_path_resumption();
  }
  Bytes data = sim::random_bytes(4 * kMiB, 5);
  Exchange x(p, sender == Role::client || both_ways ? data : Bytes{},
             sender == Role::server || both_ways ? data : Bytes{});
  const Reader& rx = sender == Role::client ? x.server_reader : x.client_reader;
  p.run_for(1 * kSec, [&] { x.step(); });
  if (rx.got.empty() || x.done()) return r;
  p.up().set_dead(true);
  p.down().set_dead(true);
  p.run_for(outage, [&] { x.step(); });
  p.up().set_dead(false);
  p.down().set_dead(false);
  const Timestamp back = p.now();
  const size_t before = rx.got.size();
  if (!p.run_until([&] { return x.step() || rx.got.size() > before; }, 120 * kSec)) return r;
  r.stalled_for = p.now() - back;
  r.delivered = x.run(120 * kSec);
  if (r.delivered) x.expect_exact();
  expect_open(p);
  r.resumptions = p.client().path_resumptions() + p.server().path_resumptions();
  return r;
}

class QuicOutage : public ::testing::TestWithParam<Role> {};

TEST_P(QuicOutage, ThirtySecondsOfSilenceThenTheTransferGoesOnAtOnce) {
  OutageResult r = outage(GetParam(), 30 * kSec, true);
  ASSERT_TRUE(r.delivered);
  EXPECT_GE(r.resumptions, 1u);
  // The next probe (kProbeIntervalNs) or the idle side's PING reaches the
  // silent side, which resumes and sends at once.
  EXPECT_LE(r.stalled_for, kProbeIntervalNs + 10 * kRtt);
  RecordProperty("stalled_ms", std::to_string(r.stalled_for / kMs));
}

TEST_P(QuicOutage, BothWaysAtOnceResumeAsSoonAsAProbeGetsThrough) {
  // Both congestion windows are full when the path dies, so no keep-alive
  // goes out on either side: only the probes tell them the path is back.
  OutageResult r = outage(GetParam(), 30 * kSec, true, true);
  ASSERT_TRUE(r.delivered);
  EXPECT_GE(r.resumptions, 2u);
  EXPECT_LE(r.stalled_for, kProbeIntervalNs + 10 * kRtt);
  RecordProperty("stalled_ms", std::to_string(r.stalled_for / kMs));
}

TEST_P(QuicOutage, WithoutResumptionTheSenderWaitsForItsBackedOffProbe) {
  // The reason resumption exists: the same outage without it leaves the
  // transfer stalled for many seconds after the path is back.
  OutageResult r = outage(GetParam(), 30 * kSec, false);
  ASSERT_TRUE(r.delivered);
  EXPECT_EQ(r.resumptions, 0u);
  EXPECT_GT(r.stalled_for, 2 * (kResumeKeepAliveNs + 10 * kRtt));
  RecordProperty("stalled_ms", std::to_string(r.stalled_for / kMs));
}

TEST_P(QuicOutage, RepeatedOutagesEachResume) {
  // Each client resumption takes a spare connection ID; the server issues
  // a new one once the old one is retired, so they do not run out.
  PairOptions o;
  o.client.idle_timeout = o.server.idle_timeout = std::chrono::milliseconds(120'000);
  QuicPair p(o);
  ASSERT_TRUE(p.handshake());
  p.client().enable_path_resumption();
  p.server().enable_path_resumption();
  // A client can migrate only once the handshake is confirmed (its
  // HANDSHAKE_DONE arrived): one RTT after handshake().
  p.run_for(1 * kSec);
  for (int i = 0; i < 8; ++i) {
    SCOPED_TRACE(i);
    Bytes up = GetParam() == Role::client ? sim::random_bytes(64 * 1024, i) : Bytes{};
    Bytes down = GetParam() == Role::server ? sim::random_bytes(64 * 1024, i) : Bytes{};
    p.up().set_dead(true);
    p.down().set_dead(true);
    Exchange x(p, up, down);
    p.run_for(8 * kSec, [&] { x.step(); });
    p.up().set_dead(false);
    p.down().set_dead(false);
    ASSERT_TRUE(x.run(kResumeKeepAliveNs + 20 * kRtt));
    x.expect_exact();
  }
  expect_open(p);
  EXPECT_GE(p.client().path_resumptions(), 8u);
}

TEST(QuicOutageClose, ClosingAfterASilenceDoesNotWaitForTheFlush) {
  // The session gives up on a peer that has been silent for the whole
  // reconnect timeout; data still unacknowledged then cannot arrive, and
  // waiting the close's flush deadline (3 s) only delays the exit.
  PairOptions o;
  o.client.idle_timeout = o.server.idle_timeout = std::chrono::milliseconds(120'000);
  o.up.bits_per_second = o.down.bits_per_second = 10'000'000;  // 4 MiB take about 3.4 s
  QuicPair p(o);
  ASSERT_TRUE(p.handshake());
  p.client().enable_path_resumption();
  p.server().enable_path_resumption();
  Exchange x(p, sim::random_bytes(4 * kMiB, 7), Bytes{});
  p.run_for(1 * kSec, [&] { x.step(); });
  ASSERT_FALSE(x.done());
  p.up().set_dead(true);
  p.down().set_dead(true);
  p.run_for(kResumeAfterNs + 1 * kSec, [&] { x.step(); });
  p.client().close(1, "gone", p.now());
  EXPECT_TRUE(p.client().shutdown_complete());
}

TEST(QuicOutageClose, ClosingWhileThePeerAnswersStillFlushes) {
  // The other half of the rule above: the flush is skipped only for a
  // silent peer.
  PairOptions o;
  o.up.bits_per_second = o.down.bits_per_second = 10'000'000;
  QuicPair p(o);
  ASSERT_TRUE(p.handshake());
  p.client().enable_path_resumption();
  p.server().enable_path_resumption();
  Exchange x(p, sim::random_bytes(4 * kMiB, 8), Bytes{});
  p.run_for(100 * kMs, [&] { x.step(); });
  ASSERT_FALSE(x.done());
  p.client().close(1, "done", p.now());
  EXPECT_FALSE(p.client().shutdown_complete());
}

INSTANTIATE_TEST_SUITE_P(Quic, QuicOutage, ::testing::Values(Role::client, Role::server),
                         [](const auto& info) { return info.param == Role::client ? "ClientSends" : "ServerSends"; });

// ---- junk input ----------------------------------------------------------------

TEST(QuicGarbage, JunkBeforeTheHandshakeIsHarmless) {
  QuicPair p;
  std::mt19937_64 rng(99);
  for (int i = 0; i < 300; ++i) {
    size_t n = 1 + rng() % 1500;
    Bytes junk = sim::random_bytes(n, rng());
    if (i % 3 == 0) junk[0] |= 0xc0;                    // long header form, as an Initial would have
    if (i % 3 == 1) junk[0] = (junk[0] & 0x7f) | 0x40;  // short header form
    p.inject_to_server(junk);
    p.inject_to_client(junk);
  }
  p.inject_to_server(Bytes(70000, 0xab));  // larger than any UDP datagram
  p.inject_to_server({});
  ASSERT_TRUE(p.handshake());
  expect_open(p);
}

TEST(QuicGarbage, MangledPacketsDuringATransferNeverCloseTheConnection) {
  QuicPair p;
  ASSERT_TRUE(p.handshake());
  std::vector<Bytes> seen_up, seen_down;  // real packets to mangle
  p.up().observer = [&](std::span<const uint8_t> d) {
    if (seen_up.size() < 2000) seen_up.emplace_back(d.begin(), d.end());
  };
  p.down().observer = [&](std::span<const uint8_t> d) {
    if (seen_down.size() < 2000) seen_down.emplace_back(d.begin(), d.end());
  };
  Exchange x(p, sim::random_bytes(4 * kMiB, 1), sim::random_bytes(4 * kMiB, 2));
  std::mt19937_64 rng(5);
  auto mangle = [&](const Bytes& real) {
    Bytes d = real;
    switch (rng() % 4) {
      case 0:  // truncated
        d.resize(rng() % d.size());
        break;
      case 1:  // one bit flipped
        d[rng() % d.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
        break;
      case 2:  // the real header (first byte and connection id), random rest
        for (size_t i = 1 + 18; i < d.size(); ++i) d[i] = static_cast<uint8_t>(rng());
        break;
      default:  // random bytes of the same size
        d = sim::random_bytes(d.size(), rng());
    }
    return d;
  };
  uint64_t injected = 0;
  ASSERT_TRUE(p.run_until(
      [&] {
        if (!seen_up.empty() && !seen_down.empty()) {
          for (int i = 0; i < 2; ++i) {
            p.inject_to_server(mangle(seen_up[rng() % seen_up.size()]));
            p.inject_to_client(mangle(seen_down[rng() % seen_down.size()]));
            injected += 2;
          }
        }
        return x.step();
      },
      120 * kSec));
  EXPECT_GT(injected, 1000u);
  x.expect_exact();
  expect_open(p);
}

TEST(QuicGarbage, AnotherClientsInitialDoesNotDisturbTheConnection) {
  QuicPair p;
  ASSERT_TRUE(p.handshake());
  std::vector<Bytes> initials;
  Endpoint stranger(
      Role::client,
      [&](const Endpoint::Batch& b) {
        size_t at = 0;
        for (size_t n : b.sizes) {
          initials.emplace_back(b.bytes.begin() + static_cast<std::ptrdiff_t>(at),
                                b.bytes.begin() + static_cast<std::ptrdiff_t>(at + n));
          at += n;
        }
      },
      {}, p.now());
  stranger.write(p.now());
  ASSERT_FALSE(initials.empty());
  for (const Bytes& d : initials) p.inject_to_server(d);
  Exchange x(p, sim::random_bytes(1 * kMiB, 1), sim::random_bytes(1 * kMiB, 2));
  ASSERT_TRUE(x.run(30 * kSec));
  x.expect_exact();
  expect_open(p);
}

// ---- congestion control ----------------------------------------------------------

class QuicCongestion : public ::testing::TestWithParam<Congestion> {};

TEST_P(QuicCongestion, TransfersOverABottleneckWithLoss) {
  PairOptions o = lossy(0.01, 0, 21);
  o.client.congestion = o.server.congestion = GetParam();
  o.up.bits_per_second = o.down.bits_per_second = 20'000'000;
  o.up.queue_bytes = o.down.queue_bytes = 125'000;  // one BDP at 50 ms
  QuicPair p(o);
  ASSERT_TRUE(p.handshake(20 * kSec));
  Exchange x(p, sim::random_bytes(2 * kMiB, 1), sim::random_bytes(2 * kMiB, 2));
  ASSERT_TRUE(x.run(120 * kSec));
  x.expect_exact();
  expect_open(p);
}

INSTANTIATE_TEST_SUITE_P(Quic, QuicCongestion, ::testing::Values(Congestion::bbr, Congestion::cubic),
                         [](const auto& info) { return info.param == Congestion::bbr ? "Bbr" : "Cubic"; });

TEST(QuicThroughput, BbrKeepsALossyLinkBusy) {
  // 100 Mbit/s with a buffer of one bandwidth-delay product, 50 ms RTT and
  // 0.5 % random loss each way: BBR must not read loss as congestion (a
  // loss-based controller gets about MSS/RTT * 1.22/sqrt(p) = 0.5 MB/s here).
  constexpr uint64_t kBps = 100'000'000;
  PairOptions o = lossy(0.005, 0, 77);
  o.client.congestion = o.server.congestion = Congestion::bbr;
  o.up.bits_per_second = o.down.bits_per_second = kBps;
  o.up.queue_bytes = o.down.queue_bytes = kBps / 8 * kRtt / kSec;
  QuicPair p(o);
  ASSERT_TRUE(p.handshake(20 * kSec));
  const size_t size = 32 * kMiB;
  Exchange x(p, sim::random_bytes(size, 1), {});
  const Timestamp start = p.now();
  ASSERT_TRUE(x.run(120 * kSec));
  const Timestamp took = p.now() - start;
  x.expect_exact();
  // The link's own time for the bytes (plus ~4 % QUIC/UDP overhead) and the
  // start-up: at least 60 % of the link rate overall, plus ten round trips.
  const Timestamp wire = static_cast<Timestamp>(size * 8 * 1.04 / kBps * kSec);
  EXPECT_LE(took, wire * 10 / 6 + 10 * kRtt) << "took " << took / kMs << " ms, the link needs " << wire / kMs << " ms";
  RecordProperty("virtual_ms", std::to_string(took / kMs));
}

TEST(QuicThroughput, FlowControlWindowsGrowOnALongFatPath) {
  // 1 Gbit/s at 200 ms RTT holds 25 MB in flight. A stream window stuck at
  // its initial 1 MiB would allow 5 MB/s (64 MiB in 13 s); ngtcp2 grows the
  // stream windows (up to 16 MiB each; the connection window is 64 MiB) while the
  // reader keeps up.
  constexpr uint64_t kBps = 1'000'000'000;
  PairOptions o;
  o.up.delay = o.down.delay = 100 * kMs;
  o.up.bits_per_second = o.down.bits_per_second = kBps;
  o.up.queue_bytes = o.down.queue_bytes = kBps / 8 / 5;  // one BDP
  QuicPair p(o);
  ASSERT_TRUE(p.handshake());
  Exchange x(p, sim::random_bytes(64 * kMiB, 1), {});
  const Timestamp start = p.now();
  ASSERT_TRUE(x.run(60 * kSec));
  const Timestamp took = p.now() - start;
  x.expect_exact();
  EXPECT_LE(took, 6 * kSec) << "took " << took / kMs << " ms";
  RecordProperty("virtual_ms", std::to_string(took / kMs));
}

// ---- DATAGRAM frames (RFC 9221; docs/protocol.md §7.7) -----------------------

namespace datagrams {

PairOptions udp_pair(int client_cap, int server_cap, bool client_wants = true, bool server_wants = true) {
  PairOptions o = versions(client_cap, server_cap, client_cap, server_cap);
  o.client.datagrams = client_wants;
  o.server.datagrams = server_wants;
  return o;
}

// Both endpoints' received datagrams, taken as the forwarder takes them.
struct Collected {
  std::vector<Bytes> at_client, at_server;
  void take(QuicPair& p) {
    while (auto d = p.client().take_datagram()) at_client.push_back(std::move(*d));
    while (auto d = p.server().take_datagram()) at_server.push_back(std::move(*d));
  }
};

TEST(QuicDatagrams, EnabledOnlyWhenTheVersionCarriesUdpAndBothAsk) {
  struct Case {
    int client_cap, server_cap;
    bool client_wants, server_wants, enabled;
  };
  for (const Case& c : {Case{5, 5, true, true, true}, Case{5, 4, true, true, false}, Case{4, 5, true, true, false},
                        Case{5, 5, false, true, false}, Case{5, 5, true, false, false}}) {
    QuicPair p(udp_pair(c.client_cap, c.server_cap, c.client_wants, c.server_wants));
    ASSERT_TRUE(p.handshake());
    SCOPED_TRACE(fmt::format("caps {}/{} wants {}/{}", c.client_cap, c.server_cap, c.client_wants, c.server_wants));
    EXPECT_EQ(p.client().datagrams_enabled(), c.enabled);
    EXPECT_EQ(p.server().datagrams_enabled(), c.enabled);
    if (!c.enabled) {
      const Bytes one{1, 2, 3};
      EXPECT_EQ(p.client().send_datagram(one), quic::DatagramResult::unavailable);
      EXPECT_EQ(p.server().send_datagram(one), quic::DatagramResult::unavailable);
      EXPECT_EQ(p.client().max_datagram_payload(), 0u);
    }
  }
}

TEST(QuicDatagrams, TheServerAdvertisesNothingToAClientAtAnOlderVersion) {
  // The server speaks 5 and wants datagrams, the client only offers up to
  // 4: the server's transport parameters must not offer DATAGRAM frames.
  QuicPair p(udp_pair(4, 5));
  ASSERT_TRUE(p.handshake());
  EXPECT_EQ(p.server().negotiated().version, 4);
  EXPECT_FALSE(p.client().datagrams_enabled());
}

TEST(QuicDatagrams, CarryPayloadsBothWaysIntact) {
  QuicPair p(udp_pair(5, 5));
  ASSERT_TRUE(p.handshake());
  p.client().accept_datagrams(true);
  p.server().accept_datagrams(true);
  const size_t max = p.client().max_datagram_payload();
  EXPECT_GE(max, 1100u);
  EXPECT_LE(max, 1452u);
  std::vector<Bytes> up, down;
  for (size_t i = 0; i < 200; ++i) {
    up.push_back(sim::random_bytes(1 + (i * 37) % max, i));
    down.push_back(sim::random_bytes(1 + (i * 53) % max, 1000 + i));
    ASSERT_EQ(p.client().send_datagram(up.back()), quic::DatagramResult::queued);
    ASSERT_EQ(p.server().send_datagram(down.back()), quic::DatagramResult::queued);
  }
  Collected got;
  ASSERT_TRUE(p.run_until([&] {
    got.take(p);
    return got.at_server.size() == up.size() && got.at_client.size() == down.size();
  }));
  EXPECT_EQ(got.at_server, up);  // no loss on this link: all, and in order
  EXPECT_EQ(got.at_client, down);
  EXPECT_EQ(p.client().datagram_stats().sent, up.size());
  EXPECT_EQ(p.server().datagram_stats().received, up.size());
}

// PMTUD raises the path's packet size from QUIC's 1200 bytes to our 1452
// within seconds, without any data: the probes need room in the write
// buffer beyond the path's current size (they never went out without it).
TEST(QuicDatagrams, PathMtuDiscoveryRaisesTheLimitOnAnIdleConnection) {
  QuicPair p(udp_pair(5, 5));
  ASSERT_TRUE(p.handshake());
  const size_t before = p.client().max_datagram_payload();
  EXPECT_LT(before, 1200u);
  p.run_for(5 * kSec);
  EXPECT_GT(p.client().max_datagram_payload(), 1350u);
  EXPECT_GT(p.server().max_datagram_payload(), 1350u);
  EXPECT_LE(p.client().stats().max_datagram, 1452u);
}

TEST(QuicDatagrams, TooLargeIsDroppedAndCountedNeverFragmented) {
  QuicPair p(udp_pair(5, 5));
  ASSERT_TRUE(p.handshake());
  p.server().accept_datagrams(true);
  const size_t max = p.client().max_datagram_payload();
  EXPECT_EQ(p.client().send_datagram(Bytes(max + 1, 7)), quic::DatagramResult::too_large);
  EXPECT_EQ(p.client().send_datagram(Bytes(max, 8)), quic::DatagramResult::queued);
  EXPECT_EQ(p.client().datagram_stats().too_large, 1u);
  Collected got;
  ASSERT_TRUE(p.run_until([&] {
    got.take(p);
    return !got.at_server.empty();
  }));
  p.run_for(1 * kSec, [&] { got.take(p); });
  ASSERT_EQ(got.at_server.size(), 1u);
  EXPECT_EQ(got.at_server[0], Bytes(max, 8));  // the largest one fits in one packet
}

TEST(QuicDatagrams, TheSendQueueIsBoundedAndOverflowIsCounted) {
  QuicPair p(udp_pair(5, 5));
  ASSERT_TRUE(p.handshake());
  size_t queued = 0, full = 0;
  for (int i = 0; i < 5000; ++i) {
    auto r = p.client().send_datagram(Bytes(1000, 1));
    (r == quic::DatagramResult::queued ? queued : full) += 1;
  }
  EXPECT_LE(queued, 2100u);  // 2 MiB of 1000-byte datagrams at most
  EXPECT_GT(full, 0u);
  EXPECT_EQ(p.client().datagram_stats().queue_full, full);
  EXPECT_EQ(p.client().datagrams_unsent(), queued);
}

TEST(QuicDatagrams, NotAcceptedBeforeForwardingAndBoundedAfter) {
  QuicPair p(udp_pair(5, 5));
  ASSERT_TRUE(p.handshake());
  ASSERT_EQ(p.client().send_datagram(Bytes(10, 1)), quic::DatagramResult::queued);
  p.run_for(1 * kSec);
  EXPECT_EQ(p.server().datagrams_waiting(), 0u);
  EXPECT_EQ(p.server().datagram_stats().rx_dropped, 1u);
  p.server().accept_datagrams(true);
  ASSERT_EQ(p.client().send_datagram(Bytes(10, 2)), quic::DatagramResult::queued);
  ASSERT_TRUE(p.run_until([&] { return p.server().datagrams_waiting() == 1; }));
  EXPECT_EQ(*p.server().take_datagram(), Bytes(10, 2));
}

TEST(QuicDatagrams, UnderLossSomeAreLostAndNoneAreRetransmitted) {
  PairOptions o = udp_pair(5, 5);
  o.up.loss = o.down.loss = 0.05;
  o.up.seed = 11;
  QuicPair p(o);
  ASSERT_TRUE(p.handshake(20 * kSec));
  p.server().accept_datagrams(true);
  for (int i = 0; i < 500; ++i) ASSERT_EQ(p.client().send_datagram(Bytes(500, 3)), quic::DatagramResult::queued);
  Collected got;
  p.run_for(5 * kSec, [&] { got.take(p); });
  EXPECT_LT(got.at_server.size(), 500u);
  EXPECT_GT(got.at_server.size(), 400u);
  EXPECT_GT(p.client().datagram_stats().lost, 0u);
  EXPECT_EQ(p.client().datagram_stats().sent, 500u);
}

}  // namespace datagrams

}  // namespace
}  // namespace peersock::quic

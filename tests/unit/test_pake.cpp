// The signaling layer: CPace against draft-irtf-cfrg-cpace's published
// ristretto255/SHA-512 vectors, and the Channel state machine between two
// in-memory sides (message order, tampering, replay, reordering, a wrong
// code, the original peer, --no-original).
#include <gtest/gtest.h>

#include <string>

#include "peersock/error.hpp"
#include "peersock/pake/channel.hpp"
#include "peersock/pake/cpace.hpp"

namespace peersock::pake {
namespace {

std::string hex(const uint8_t* p, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += kHex[p[i] >> 4];
    out += kHex[p[i] & 15];
  }
  return out;
}
template <typename C>
std::string hex(const C& c) {
  return hex(c.data(), c.size());
}
template <typename A>
A unhex(std::string_view h) {
  A out{};
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(std::stoi(std::string(h.substr(2 * i, 2)), nullptr, 16));
  return out;
}

// draft-irtf-cfrg-cpace, "Test vector for CPace using group ristretto255 and
// hash SHA-512".
constexpr std::string_view kPrs = "Password";
const std::string kCi = "\x0b" "A_initiator" "\x0b" "B_responder";
const std::string kSid = std::string("\x7e\x4b\x47\x91\xd6\xa8\xef\x01\x9b\x93\x6c\x79\xfb\x7f\x2c\x57", 16);
constexpr std::string_view kGeneratorString =
    "11435061636552697374726574746f3235350850617373776f726464"
    "00000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000180b415f696e69746961746f"
    "720b425f726573706f6e646572107e4b4791d6a8ef019b936c79fb7f"
    "2c57";
constexpr std::string_view kG = "222b6b195fe84b1652badb6f6a3ae3d24341e7306967f0b8115b40d5698c7e56";
constexpr std::string_view kYa = "da3d23700a9e5699258aef94dc060dfda5ebb61f02a5ea77fad53f4ff0976d08";
constexpr std::string_view kYaPub = "d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0eec482b9157";
constexpr std::string_view kYb = "d2316b454718c35362d83d69df6320f38578ed5984651435e2949762d900b80d";
constexpr std::string_view kYbPub = "3ea7e0b19560d7c0b0f5734f63b955286dfa8232b5ebe63324e2d9e7433f7258";
constexpr std::string_view kK = "80b69a8a76457ab6a4d7f887a4bf6b55a2f80ac19c333f917a05fc9887c8b40f";
constexpr std::string_view kTranscriptIr =
    "20d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0e"
    "ec482b915703414461203ea7e0b19560d7c0b0f5734f63b955286dfa"
    "8232b5ebe63324e2d9e7433f725803414462";
constexpr std::string_view kIskIr =
    "b69effbf61b51d56401c0f65601abe428de8206feaaf0e32198896dc"
    "ae7b35cd2b38950a39dfd5d4a79164614c2984f7daa460b588c1e80c"
    "3fa2068af7900447";

TEST(Cpace, PrependLenAndLvCat) {
  EXPECT_EQ(hex(cpace::prepend_len("")), "00");
  EXPECT_EQ(hex(cpace::prepend_len("1234")), "0431323334");
  EXPECT_EQ(hex(cpace::prepend_len(std::string(128, 'a'))).substr(0, 4), "8001");  // LEB128 of 128
  EXPECT_EQ(hex(cpace::lv_cat({"1234", "5", "", "678"})), "04313233340135000336373" "8");
}

TEST(Cpace, DraftVectorGenerator) {
  EXPECT_EQ(hex(cpace::generator_string(kPrs, kCi, kSid)), kGeneratorString);
  EXPECT_EQ(hex(cpace::calculate_generator(kPrs, kCi, kSid)), kG);
}

TEST(Cpace, DraftVectorSharesSecretAndIsk) {
  const auto g = unhex<cpace::Element>(kG);
  const auto ya = unhex<cpace::Scalar>(kYa);
  const auto yb = unhex<cpace::Scalar>(kYb);
  const auto Ya = cpace::scalar_mult(ya, g);
  const auto Yb = cpace::scalar_mult(yb, g);
  EXPECT_EQ(hex(Ya), kYaPub);
  EXPECT_EQ(hex(Yb), kYbPub);
  auto ka = cpace::scalar_mult_vfy(ya, Yb);
  auto kb = cpace::scalar_mult_vfy(yb, Ya);
  ASSERT_TRUE(ka && kb);
  EXPECT_EQ(hex(*ka), kK);
  EXPECT_EQ(hex(*kb), kK);
  EXPECT_EQ(hex(cpace::transcript_ir(Ya, "ADa", Yb, "ADb")), kTranscriptIr);
  EXPECT_EQ(hex(cpace::isk_ir(kSid, *ka, Ya, "ADa", Yb, "ADb")), kIskIr);
}

TEST(Cpace, DraftVectorScalarMultVfy) {
  const auto s = unhex<cpace::Scalar>("7cd0e075fa7955ba52c02759a6c90dbbfc10e6d40aea8d283e407d88cf538a05");
  auto ok = cpace::scalar_mult_vfy(s, unhex<cpace::Element>("2c3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c"));
  ASSERT_TRUE(ok);
  EXPECT_EQ(hex(*ok), "7c13645fe790a468f62c39beb7388e541d8405d1ade69d1778c5fe3e7f6b600e");
  // The draft's invalid inputs: a non-canonical encoding, and the identity.
  EXPECT_FALSE(cpace::scalar_mult_vfy(s, unhex<cpace::Element>("2b3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c")));
  EXPECT_FALSE(cpace::scalar_mult_vfy(s, cpace::Element{}));
}

TEST(Cpace, ConfirmationTagsDifferPerSideAndKey) {
  const auto g = unhex<cpace::Element>(kG);
  const auto Ya = cpace::scalar_mult(unhex<cpace::Scalar>(kYa), g);
  const auto isk = unhex<cpace::Isk>(kIskIr);
  auto ta = cpace::confirmation_tag(kSid, isk, Ya, "ADa");
  EXPECT_EQ(ta, cpace::confirmation_tag(kSid, isk, Ya, "ADa"));
  EXPECT_NE(ta, cpace::confirmation_tag(kSid, isk, Ya, "ADb"));
  auto other = isk;
  other[0] ^= 1;
  EXPECT_NE(ta, cpace::confirmation_tag(kSid, other, Ya, "ADa"));
}

// ---- the Channel -------------------------------------------------------------

Params params(Role role, std::string code = "7-alpha-beta-gamma-delta") {
  Params p;
  p.role = role;
  p.code = std::move(code);
  p.nameplate = "7";
  p.side = role == Role::generator ? "aaaaaaaaaa" : "bbbbbbbbbb";
  return p;
}

struct Pair {
  Channel gen;
  Channel con;
  std::vector<Message> to_con, to_gen;  // in flight
  std::vector<Event> gen_events, con_events;
  Pair(Params g, Params c) : gen(std::move(g)), con(std::move(c)) {}
  void take(Output out, bool from_gen) {
    auto& q = from_gen ? to_con : to_gen;
    for (auto& m : out.to_send) q.push_back(std::move(m));
    auto& ev = from_gen ? gen_events : con_events;
    for (auto& e : out.events) ev.push_back(std::move(e));
  }
  // Delivers everything in flight, in order, until both queues are empty.
  void run() {
    while (!to_con.empty() || !to_gen.empty()) {
      auto a = std::move(to_con);
      to_con.clear();
      for (auto& m : a) take(con.on_message("aaaaaaaaaa", m.phase, m.body), false);
      auto b = std::move(to_gen);
      to_gen.clear();
      for (auto& m : b) take(gen.on_message("bbbbbbbbbb", m.phase, m.body), true);
    }
  }
};

const event::PeerIce* ice_of(const std::vector<Event>& events) {
  for (const auto& e : events)
    if (auto* p = std::get_if<event::PeerIce>(&e)) return p;
  return nullptr;
}
bool said_original(const std::vector<Event>& events) {
  for (const auto& e : events)
    if (std::holds_alternative<event::PeerIsOriginal>(e)) return true;
  return false;
}

TEST(Channel, CurrentPeersExchangeSealedBodies) {
  Pair p(params(Role::generator), params(Role::consumer));
  p.take(p.gen.open(), true);
  p.take(p.gen.send_ice("GEN-BODY"), true);  // held: no key yet
  ASSERT_EQ(p.to_con.size(), 1u);
  EXPECT_EQ(p.to_con[0].phase, "pake");
  p.take(p.con.open(), false);
  p.take(p.con.send_ice("CON-BODY"), false);
  p.run();
  ASSERT_TRUE(ice_of(p.gen_events) && ice_of(p.con_events));
  EXPECT_EQ(ice_of(p.gen_events)->body, "CON-BODY");
  EXPECT_TRUE(ice_of(p.gen_events)->sealed);
  EXPECT_EQ(ice_of(p.con_events)->body, "GEN-BODY");
  EXPECT_FALSE(said_original(p.gen_events) || said_original(p.con_events));
}

// What goes over the mailbox never holds the body in clear.
TEST(Channel, NothingInClear) {
  Pair p(params(Role::generator), params(Role::consumer));
  std::vector<Message> seen;
  auto keep = [&](Output o, bool g) {
    for (auto& m : o.to_send) seen.push_back(m);
    p.take(std::move(o), g);
  };
  keep(p.gen.open(), true);
  keep(p.con.open(), false);
  keep(p.gen.send_ice("192.0.2.77 secret-ufrag"), true);
  keep(p.con.send_ice("198.51.100.9 other-pwd"), false);
  while (!p.to_con.empty() || !p.to_gen.empty()) {
    auto a = std::move(p.to_con);
    p.to_con.clear();
    for (auto& m : a) keep(p.con.on_message("aaaaaaaaaa", m.phase, m.body), false);
    auto b = std::move(p.to_gen);
    p.to_gen.clear();
    for (auto& m : b) keep(p.gen.on_message("bbbbbbbbbb", m.phase, m.body), true);
  }
  ASSERT_EQ(seen.size(), 6u);  // pake, confirm, sealed-ice per side
  for (const auto& m : seen) {
    EXPECT_EQ(m.body.find("192.0.2.77"), std::string::npos);
    EXPECT_EQ(m.body.find("198.51.100.9"), std::string::npos);
    EXPECT_NE(m.phase, "ice");
  }
}

TEST(Channel, WrongCodeIsAMismatchOnBothSides) {
  Pair p(params(Role::generator), params(Role::consumer, "7-alpha-beta-gamma-omega"));
  p.take(p.gen.open(), true);
  p.take(p.con.open(), false);
  auto gen_pake = p.to_con.at(0), con_pake = p.to_gen.at(0);
  Output from_con = p.con.on_message("aaaaaaaaaa", gen_pake.phase, gen_pake.body);
  Output from_gen = p.gen.on_message("bbbbbbbbbb", con_pake.phase, con_pake.body);
  ASSERT_EQ(from_con.to_send.at(0).phase, "confirm");
  try {
    p.gen.on_message("bbbbbbbbbb", "confirm", from_con.to_send.at(0).body);
    FAIL() << "no mismatch";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::code_mismatch);
    EXPECT_STREQ(e.what(), kMismatchMessage);
  }
  EXPECT_THROW(p.con.on_message("aaaaaaaaaa", "confirm", from_gen.to_send.at(0).body), Error);
}

// A relay that changes the side the share came from changes the key: the
// confirmation fails like a wrong code.
TEST(Channel, SideIsBoundToTheKey) {
  Channel gen(params(Role::generator)), con(params(Role::consumer));
  auto gp = gen.open().to_send.at(0), cp = con.open().to_send.at(0);
  auto cc = con.on_message("aaaaaaaaaa", gp.phase, gp.body).to_send.at(0);
  gen.on_message("cccccccccc", cp.phase, cp.body);
  EXPECT_THROW(gen.on_message("cccccccccc", cc.phase, cc.body), Error);
}

struct Keyed : ::testing::Test {
  Channel gen{params(Role::generator)}, con{params(Role::consumer)};
  Message gen_confirm, con_confirm, con_sealed;
  void SetUp() override {
    auto gp = gen.open().to_send.at(0), cp = con.open().to_send.at(0);
    con.send_ice("CON-BODY");
    auto out = con.on_message("aaaaaaaaaa", gp.phase, gp.body);
    ASSERT_EQ(out.to_send.size(), 2u);
    con_confirm = out.to_send[0];
    con_sealed = out.to_send[1];
    EXPECT_EQ(con_sealed.phase, "sealed-ice");
    gen_confirm = gen.on_message("bbbbbbbbbb", cp.phase, cp.body).to_send.at(0);
  }
};

TEST_F(Keyed, TamperedSealedBodyIsRefused) {
  gen.on_message("bbbbbbbbbb", con_confirm.phase, con_confirm.body);
  std::string body = con_sealed.body;
  body[body.size() / 2] = body[body.size() / 2] == 'A' ? 'B' : 'A';
  EXPECT_THROW(gen.on_message("bbbbbbbbbb", con_sealed.phase, body), CounterpartyError);
  EXPECT_FALSE(gen.peer_ice_received());
}

TEST_F(Keyed, TruncatedSealedBodyIsRefused) {
  gen.on_message("bbbbbbbbbb", con_confirm.phase, con_confirm.body);
  EXPECT_THROW(gen.on_message("bbbbbbbbbb", con_sealed.phase, con_sealed.body.substr(0, 20)), CounterpartyError);
  EXPECT_THROW(gen.on_message("bbbbbbbbbb", con_sealed.phase, con_sealed.body.substr(0, con_sealed.body.size() - 4)),
               CounterpartyError);
}

TEST_F(Keyed, ReorderedSealedBeforeConfirmIsRefused) {
  EXPECT_THROW(gen.on_message("bbbbbbbbbb", con_sealed.phase, con_sealed.body), CounterpartyError);
}

TEST_F(Keyed, ReplayIsIgnoredAndOnlyTheFirstBodyCounts) {
  gen.on_message("bbbbbbbbbb", con_confirm.phase, con_confirm.body);
  auto first = gen.on_message("bbbbbbbbbb", con_sealed.phase, con_sealed.body);
  ASSERT_EQ(first.events.size(), 1u);
  // The server replays the mailbox after a reconnect: the same messages again.
  EXPECT_TRUE(gen.on_message("bbbbbbbbbb", con_confirm.phase, con_confirm.body).events.empty());
  EXPECT_TRUE(gen.on_message("bbbbbbbbbb", con_sealed.phase, con_sealed.body).events.empty());
}

// Our own sealed message reflected back to us does not open: the keys are
// per direction.
TEST_F(Keyed, ReflectedMessageIsRefused) {
  Channel c2(params(Role::consumer));  // unused; keeps the fixture simple
  (void)c2;
  auto isk = cpace::Isk{};
  isk[3] = 9;
  std::string sealed = Channel::seal(isk, Role::consumer, "sealed-ice", "X");
  EXPECT_EQ(Channel::open_sealed(isk, Role::consumer, "sealed-ice", sealed), "X");
  EXPECT_THROW(Channel::open_sealed(isk, Role::generator, "sealed-ice", sealed), CounterpartyError);
  EXPECT_THROW(Channel::open_sealed(isk, Role::consumer, "sealed-restart", sealed), CounterpartyError);
}

// ---- ICE restarts (protocol v6) -------------------------------------------------

const event::PeerRestart* restart_of(const std::vector<Event>& events) {
  for (const auto& e : events)
    if (auto* r = std::get_if<event::PeerRestart>(&e)) return r;
  return nullptr;
}

TEST_F(Keyed, RestartsAreSealedPerGenerationAndOpenOnce) {
  EXPECT_THROW(con.send_restart(1, "R1"), Error) << "before the peer's confirm";
  con.on_message("aaaaaaaaaa", gen_confirm.phase, gen_confirm.body);
  gen.on_message("bbbbbbbbbb", con_confirm.phase, con_confirm.body);
  Message r1 = con.send_restart(1, "198.51.100.9 R1").to_send.at(0);
  EXPECT_EQ(r1.phase, "restart-1");
  EXPECT_EQ(r1.body.find("198.51.100.9"), std::string::npos);
  auto out = gen.on_message("bbbbbbbbbb", r1.phase, r1.body);
  ASSERT_TRUE(restart_of(out.events));
  EXPECT_EQ(restart_of(out.events)->generation, 1u);
  EXPECT_EQ(restart_of(out.events)->body, "198.51.100.9 R1");
  // The server's replay after a reconnect, and an older generation after a
  // newer one: nothing.
  EXPECT_TRUE(gen.on_message("bbbbbbbbbb", r1.phase, r1.body).events.empty());
  Message r3 = con.send_restart(3, "R3").to_send.at(0);
  Message r2 = con.send_restart(2, "R2").to_send.at(0);
  EXPECT_EQ(restart_of(gen.on_message("bbbbbbbbbb", r3.phase, r3.body).events)->generation, 3u);
  EXPECT_TRUE(gen.on_message("bbbbbbbbbb", r2.phase, r2.body).events.empty());
  // The other direction works the same.
  Message g4 = gen.send_restart(4, "G4").to_send.at(0);
  EXPECT_EQ(restart_of(con.on_message("aaaaaaaaaa", g4.phase, g4.body).events)->body, "G4");
}

TEST_F(Keyed, RestartsMovedBetweenGenerationsOrTamperedAreRefused) {
  con.on_message("aaaaaaaaaa", gen_confirm.phase, gen_confirm.body);
  Message r5 = con.send_restart(5, "R5").to_send.at(0);
  EXPECT_THROW(gen.on_message("bbbbbbbbbb", r5.phase, r5.body), CounterpartyError) << "before our confirm";
  gen.on_message("bbbbbbbbbb", con_confirm.phase, con_confirm.body);
  EXPECT_THROW(gen.on_message("bbbbbbbbbb", "restart-6", r5.body), CounterpartyError);
  std::string body = r5.body;
  body[body.size() / 2] = body[body.size() / 2] == 'A' ? 'B' : 'A';
  EXPECT_THROW(gen.on_message("bbbbbbbbbb", r5.phase, body), CounterpartyError);
  for (const char* phase : {"restart-", "restart-0", "restart-07", "restart-1000001", "restart-1x", "restart--1",
                            "restart-99999999999"}) {
    SCOPED_TRACE(phase);
    EXPECT_THROW(gen.on_message("bbbbbbbbbb", phase, r5.body), CounterpartyError);
  }
  // Refusals left nothing behind: the real one still opens.
  EXPECT_TRUE(restart_of(gen.on_message("bbbbbbbbbb", r5.phase, r5.body).events));
  EXPECT_THROW(con.send_restart(0, "x"), Error);
  EXPECT_THROW(con.send_restart(kMaxRestartGeneration + 1, "x"), Error);
}

TEST(Channel, PlaintextPeersNeverRestart) {
  Channel con(params(Role::consumer));
  con.open();
  con.on_message("aaaaaaaaaa", "ice", "ORIGINAL-BODY");
  ASSERT_TRUE(con.plaintext());
  EXPECT_TRUE(con.on_message("aaaaaaaaaa", "restart-1", "whatever").events.empty());
  EXPECT_THROW(con.send_restart(1, "x"), Error);
}

TEST_F(Keyed, ConfirmBeforeShareIsRefused) {
  Channel fresh(params(Role::generator));
  fresh.open();
  EXPECT_THROW(fresh.on_message("bbbbbbbbbb", con_confirm.phase, con_confirm.body), CounterpartyError);
}

TEST_F(Keyed, SecondDifferentShareIsRefused) {
  Channel other(params(Role::consumer));
  auto op = other.open().to_send.at(0);
  EXPECT_THROW(gen.on_message("bbbbbbbbbb", op.phase, op.body), CounterpartyError);
}

TEST_F(Keyed, PlaintextAfterAShareIsRefused) {
  EXPECT_THROW(gen.on_message("bbbbbbbbbb", "ice", R"({"c":[]})"), CounterpartyError);
}

TEST(Channel, InvalidSharesAreRefused) {
  for (std::string body : {std::string(""), std::string("AAAA"), std::string(44, 'A'), std::string("not base64!"),
                           // 32 zero bytes: the identity
                           std::string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
                           std::string(100000, 'A')}) {
    Channel gen(params(Role::generator));
    gen.open();
    EXPECT_THROW(gen.on_message("bbbbbbbbbb", "pake", body), CounterpartyError) << body.substr(0, 50);
  }
}

TEST(Channel, OriginalConsumerGetsPlaintextAndOneNotice) {
  Channel gen(params(Role::generator));
  gen.open();
  EXPECT_TRUE(gen.send_ice("GEN").to_send.empty());
  auto out = gen.on_message("code", "ice", "ORIGINAL-BODY");
  ASSERT_EQ(out.to_send.size(), 1u);
  EXPECT_EQ(out.to_send[0], (Message{"ice", "GEN"}));
  EXPECT_TRUE(said_original(out.events));
  ASSERT_TRUE(ice_of(out.events));
  EXPECT_FALSE(ice_of(out.events)->sealed);
  // The original consumer may send it again: no second event.
  EXPECT_TRUE(gen.on_message("code", "ice", "ORIGINAL-BODY").events.empty());
}

TEST(Channel, NoOriginalRefusesAPlaintextPeer) {
  Params p = params(Role::generator);
  p.allow_original = false;
  Channel gen(p);
  gen.open();
  gen.send_ice("GEN");
  EXPECT_THROW(gen.on_message("code", "ice", "ORIGINAL-BODY"), CounterpartyError);
}

TEST(Channel, SilentGeneratorIsTakenForTheOriginalAfterTheWait) {
  Channel con(params(Role::consumer));
  auto out = con.open();
  EXPECT_EQ(out.to_send.size(), 1u);  // pake only
  EXPECT_TRUE(con.send_ice("CON").to_send.empty());
  EXPECT_TRUE(con.waiting_for_generator());
  out = con.original_wait_expired();
  ASSERT_EQ(out.to_send.size(), 1u);
  EXPECT_EQ(out.to_send[0], (Message{"ice", "CON"}));
  EXPECT_TRUE(said_original(out.events));
  EXPECT_FALSE(con.waiting_for_generator());
  // A generator's share arriving this late: a clear error, not a hang.
  Channel gen(params(Role::generator));
  auto gp = gen.open().to_send.at(0);
  EXPECT_THROW(con.on_message("aaaaaaaaaa", gp.phase, gp.body), CounterpartyError);
  EXPECT_THROW(con.on_message("aaaaaaaaaa", "confirm", gp.body), CounterpartyError);
  EXPECT_THROW(con.on_message("aaaaaaaaaa", "sealed-ice", gp.body), CounterpartyError);
}

TEST(Channel, SilentGeneratorWithNoOriginalIsRefused) {
  Params p = params(Role::consumer);
  p.allow_original = false;
  Channel con(p);
  con.open();
  EXPECT_THROW(con.original_wait_expired(), CounterpartyError);
}

TEST(Channel, WaitDoesNothingOnceTheGeneratorSpoke) {
  Channel gen(params(Role::generator)), con(params(Role::consumer));
  auto gp = gen.open().to_send.at(0);
  con.open();
  con.on_message("aaaaaaaaaa", gp.phase, gp.body);
  EXPECT_FALSE(con.waiting_for_generator());
  EXPECT_TRUE(con.original_wait_expired().to_send.empty());
}

TEST(Channel, ProtocolOneActsLikeTheOriginal) {
  Params p = params(Role::consumer);
  p.speak_pake = false;
  Channel con(p);
  EXPECT_TRUE(con.open().to_send.empty());
  auto out = con.send_ice("CON");
  ASSERT_EQ(out.to_send.size(), 1u);
  EXPECT_EQ(out.to_send[0].phase, "ice");
  Channel gen(params(Role::generator));
  auto gp = gen.open().to_send.at(0);
  EXPECT_TRUE(con.on_message("aaaaaaaaaa", gp.phase, gp.body).to_send.empty());  // ignored
  out = con.on_message("aaaaaaaaaa", "ice", "GEN");
  EXPECT_FALSE(said_original(out.events));
  ASSERT_TRUE(ice_of(out.events));
}

TEST(Channel, UnknownPhasesAreIgnored) {
  Channel gen(params(Role::generator));
  gen.open();
  EXPECT_TRUE(gen.on_message("bbbbbbbbbb", "version", "x").to_send.empty());
  EXPECT_TRUE(gen.on_message("bbbbbbbbbb", "0", "x").events.empty());
}

}  // namespace
}  // namespace peersock::pake

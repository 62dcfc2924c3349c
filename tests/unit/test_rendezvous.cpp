// The mailbox state machine, driven by literal server frames; outgoing frames
// are compared as exact strings because the original peer and the server see
// exactly these bytes.
#include <gtest/gtest.h>
#include <libsoup/soup.h>

#include <set>
#include <string>
#include <vector>

#include "peersock/error.hpp"
#include "peersock/glib/raii.hpp"
#include "peersock/rendezvous/nameplate_lister.hpp"
#include "peersock/rendezvous/protocol.hpp"

namespace peersock::rendezvous {
namespace {

using Frames = std::vector<std::string>;

constexpr const char* kWelcome = R"({"type":"welcome","welcome":{},"server_tx":1700000000.1})";
constexpr const char* kBindA =
    R"({"appid":"peersock.namepad.de","client_version":["peersock","0.1.0"],"side":"aaaaaaaaaa","type":"bind"})";
constexpr const char* kBindB =
    R"({"appid":"peersock.namepad.de","client_version":["peersock","0.1.0"],"side":"bbbbbbbbbb","type":"bind"})";

// The error code and message of what `f` throws; fails the test if it does
// not throw an Error.
template <typename F>
std::pair<ExitCode, std::string> thrown(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return {e.code(), e.what()};
  }
  ADD_FAILURE() << "no Error thrown";
  return {ExitCode::ok, ""};
}

// A generator that has gone through welcome/allocated/claimed.
Protocol open_generator() {
  Protocol p(Role::generator, "aaaaaaaaaa");
  p.on_text(kWelcome);
  p.on_text(R"({"type":"allocated","nameplate":"42"})");
  p.on_text(R"({"type":"claimed","mailbox":"mbx1"})");
  return p;
}

TEST(Rendezvous, GeneratorFlow) {
  Protocol p(Role::generator, "aaaaaaaaaa");
  EXPECT_EQ(p.side(), "aaaaaaaaaa");

  Output out = p.on_text(R"({"type":"welcome","welcome":{"motd":"be nice"},"server_tx":1.5})");
  EXPECT_EQ(out.to_send, (Frames{kBindA, R"({"type":"allocate"})"}));
  ASSERT_EQ(out.events.size(), 1u);
  ASSERT_TRUE(std::holds_alternative<event::Motd>(out.events[0]));
  EXPECT_EQ(std::get<event::Motd>(out.events[0]).text, "be nice");

  out = p.on_text(R"({"type":"ack","id":null,"server_tx":1.6})");
  EXPECT_TRUE(out.to_send.empty());
  EXPECT_TRUE(out.events.empty());

  out = p.on_text(R"({"type":"allocated","nameplate":"42","server_tx":1.7})");
  EXPECT_EQ(out.to_send, (Frames{R"({"nameplate":"42","type":"claim"})"}));
  ASSERT_EQ(out.events.size(), 1u);
  ASSERT_TRUE(std::holds_alternative<event::NameplateAllocated>(out.events[0]));
  EXPECT_EQ(std::get<event::NameplateAllocated>(out.events[0]).nameplate, "42");

  out = p.on_text(R"({"type":"claimed","mailbox":"k3pq7zzc","server_tx":1.8})");
  EXPECT_EQ(out.to_send, (Frames{R"({"mailbox":"k3pq7zzc","type":"open"})"}));
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<event::MailboxOpen>(out.events[0]));

  // The consumer's add arrives.
  EXPECT_FALSE(p.peer_ice_received());
  out = p.on_text(
      R"({"type":"message","side":"bbbbbbbbbb","phase":"ice","body":"{\"c\":[]}","id":null,"server_rx":2.0,"server_tx":2.1})");
  EXPECT_TRUE(out.to_send.empty());
  ASSERT_EQ(out.events.size(), 1u);
  ASSERT_TRUE(std::holds_alternative<event::PeerIce>(out.events[0]));
  EXPECT_EQ(std::get<event::PeerIce>(out.events[0]).body, R"({"c":[]})");
  EXPECT_TRUE(p.peer_ice_received());

  // Our own ice after the mailbox is open goes out at once.
  out = p.send_ice("OURS");
  EXPECT_EQ(out.to_send, (Frames{R"({"body":"OURS","phase":"ice","type":"add"})"}));
  EXPECT_TRUE(out.events.empty());

  // ... and the server's echo of it is ignored.
  out = p.on_text(R"({"type":"message","side":"aaaaaaaaaa","phase":"ice","body":"OURS","id":null})");
  EXPECT_TRUE(out.to_send.empty());
  EXPECT_TRUE(out.events.empty());

  out = p.finish("happy");
  EXPECT_EQ(out.to_send, (Frames{R"({"nameplate":"42","type":"release"})",
                                 R"({"mailbox":"k3pq7zzc","mood":"happy","type":"close"})"}));
  EXPECT_TRUE(p.on_text(R"({"type":"released"})").events.empty());
  out = p.on_text(R"({"type":"closed"})");
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<event::Closed>(out.events[0]));
}

TEST(Rendezvous, ReconnectClaimsTheSameNameplateAndAddsOurIceAgain) {
  Protocol p = open_generator();
  EXPECT_EQ(p.send_ice("OURS").to_send, (Frames{R"({"body":"OURS","phase":"ice","type":"add"})"}));
  p.reconnect();
  EXPECT_FALSE(p.welcomed());
  // The new websocket: bind, then claim nameplate 42 again -- no allocate,
  // no second NameplateAllocated (the code shown stays valid).
  Output out = p.on_text(kWelcome);
  EXPECT_EQ(out.to_send, (Frames{kBindA, R"({"nameplate":"42","type":"claim"})"}));
  EXPECT_TRUE(out.events.empty());
  out = p.on_text(R"({"type":"claimed","mailbox":"mbx1"})");
  EXPECT_EQ(out.to_send,
            (Frames{R"({"mailbox":"mbx1","type":"open"})", R"({"body":"OURS","phase":"ice","type":"add"})"}));
  // The peer's ice, replayed by the server, is taken once.
  auto peer = R"({"type":"message","side":"bbbbbbbbbb","phase":"ice","body":"X"})";
  EXPECT_EQ(p.on_text(peer).events.size(), 1u);
  EXPECT_TRUE(p.on_text(peer).events.empty());
  // A server that hands out another mailbox for the same nameplate is lying.
  Protocol q = open_generator();
  q.reconnect();
  q.on_text(kWelcome);
  EXPECT_THROW(q.on_text(R"({"type":"claimed","mailbox":"other"})"), CounterpartyError);
}

TEST(Rendezvous, ReleasedNameplateKeepsTheMailboxAcrossReconnects) {
  Protocol p = open_generator();
  EXPECT_EQ(p.release_nameplate().to_send, (Frames{R"({"nameplate":"42","type":"release"})"}));
  EXPECT_TRUE(p.release_nameplate().to_send.empty());
  EXPECT_TRUE(p.mailbox_open());
  // Later messages still go out on the open mailbox.
  EXPECT_EQ(p.add("restart-1", "R").to_send, (Frames{R"({"body":"R","phase":"restart-1","type":"add"})"}));
  // A new websocket: bind and open the mailbox directly, no claim of the
  // spent nameplate; what we added goes out again.
  p.reconnect();
  Output out = p.on_text(kWelcome);
  EXPECT_EQ(out.to_send, (Frames{kBindA, R"({"mailbox":"mbx1","type":"open"})",
                                 R"({"body":"R","phase":"restart-1","type":"add"})"}));
  EXPECT_TRUE(p.mailbox_open());
  // The end closes the mailbox without releasing the nameplate again.
  EXPECT_EQ(p.finish("happy").to_send, (Frames{R"({"mailbox":"mbx1","mood":"happy","type":"close"})"}));
}

TEST(Rendezvous, ReleaseNameplateBeforeTheMailboxIsKnownDoesNothing) {
  Protocol p(Role::generator, "aaaaaaaaaa");
  EXPECT_TRUE(p.release_nameplate().to_send.empty());
  p.on_text(kWelcome);
  EXPECT_EQ(p.on_text(R"({"type":"allocated","nameplate":"42"})").to_send,
            (Frames{R"({"nameplate":"42","type":"claim"})"}));
}

TEST(Rendezvous, ReconnectBeforeAllocationAllocates) {
  Protocol p(Role::generator, "aaaaaaaaaa");
  p.on_text(kWelcome);
  p.reconnect();
  EXPECT_EQ(p.on_text(kWelcome).to_send, (Frames{kBindA, R"({"type":"allocate"})"}));
}

TEST(Rendezvous, ConsumerFlowWithIceBeforeOpen) {
  Protocol p(Role::consumer, "bbbbbbbbbb", "42");
  // Before welcome nothing may be sent; the body waits for the mailbox.
  Output out = p.send_ice("THEIRS");
  EXPECT_TRUE(out.to_send.empty());

  out = p.on_text(kWelcome);
  EXPECT_EQ(out.to_send, (Frames{kBindB, R"({"nameplate":"42","type":"claim"})"}));
  EXPECT_TRUE(out.events.empty());

  out = p.on_text(R"({"type":"claimed","mailbox":"mbx"})");
  EXPECT_EQ(out.to_send,
            (Frames{R"({"mailbox":"mbx","type":"open"})", R"({"body":"THEIRS","phase":"ice","type":"add"})"}));
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<event::MailboxOpen>(out.events[0]));

  EXPECT_TRUE(p.mailbox_open());
  EXPECT_EQ(p.nameplate(), "42");
  // Echo of our own add: ignored. A non-ice phase from the peer: reported
  // as it is, for the signaling channel, and it shows the peer is there
  // (the mailbox's deadline for the peer's first message ends with it).
  EXPECT_TRUE(p.on_text(R"({"type":"message","side":"bbbbbbbbbb","phase":"ice","body":"THEIRS"})").events.empty());
  EXPECT_TRUE(p.on_text(R"({"type":"message","side":"bbbbbbbbbb","phase":"pake","body":"00ff"})").events.empty());
  EXPECT_FALSE(p.peer_seen());
  out = p.on_text(R"({"type":"message","side":"aaaaaaaaaa","phase":"pake","body":"00ff"})");
  EXPECT_TRUE(p.peer_seen());
  ASSERT_EQ(out.events.size(), 1u);
  const auto& m = std::get<event::PeerMessage>(out.events[0]);
  EXPECT_EQ(m.phase, "pake");
  EXPECT_EQ(m.body, "00ff");
  EXPECT_EQ(m.side, "aaaaaaaaaa");
  EXPECT_FALSE(p.peer_ice_received());

  out = p.on_text(R"({"type":"message","side":"aaaaaaaaaa","phase":"ice","body":"FIRST"})");
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(std::get<event::PeerIce>(out.events.at(0)).body, "FIRST");

  // A second ice message from the peer is ignored.
  out = p.on_text(R"({"type":"message","side":"aaaaaaaaaa","phase":"ice","body":"SECOND"})");
  EXPECT_TRUE(out.events.empty());
  EXPECT_TRUE(out.to_send.empty());

  out = p.finish("lonely");
  EXPECT_EQ(out.to_send,
            (Frames{R"({"nameplate":"42","type":"release"})", R"({"mailbox":"mbx","mood":"lonely","type":"close"})"}));
}

// Adds go out in order once the mailbox is open, and all of them again after
// a reconnect (the server may not have stored them).
TEST(Rendezvous, AddsInOrderAndAgainAfterReconnect) {
  Protocol p(Role::consumer, "bbbbbbbbbb", "42");
  p.add("pake", "P");
  p.on_text(kWelcome);
  Output out = p.on_text(R"({"type":"claimed","mailbox":"mbx"})");
  EXPECT_EQ(out.to_send, (Frames{R"({"mailbox":"mbx","type":"open"})", R"({"body":"P","phase":"pake","type":"add"})"}));
  EXPECT_EQ(p.add("confirm", "C").to_send, (Frames{R"({"body":"C","phase":"confirm","type":"add"})"}));
  p.reconnect();
  p.on_text(kWelcome);
  out = p.on_text(R"({"type":"claimed","mailbox":"mbx"})");
  EXPECT_EQ(out.to_send,
            (Frames{R"({"mailbox":"mbx","type":"open"})", R"({"body":"P","phase":"pake","type":"add"})",
                    R"({"body":"C","phase":"confirm","type":"add"})"}));
}

// A paired session knows its mailbox: no nameplate to allocate, claim or
// release; open right after the welcome, and again after a reconnect.
TEST(Rendezvous, PairedOpensItsMailboxAtOnceWithoutANameplate) {
  Protocol p = Protocol::for_mailbox("bbbbbbbbbb", "abcdefghijklmnopqrstuvwxyz");
  p.add("pair-hello", "H");
  Output out = p.on_text(kWelcome);
  EXPECT_EQ(out.to_send, (Frames{kBindB, R"({"mailbox":"abcdefghijklmnopqrstuvwxyz","type":"open"})",
                                 R"({"body":"H","phase":"pair-hello","type":"add"})"}));
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<event::MailboxOpen>(out.events[0]));
  out = p.on_text(R"({"type":"message","side":"aaaaaaaaaa","phase":"pair-welcome","body":"W"})");
  ASSERT_EQ(out.events.size(), 1u);
  auto* m = std::get_if<event::PeerMessage>(&out.events[0]);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->phase, "pair-welcome");
  EXPECT_EQ(m->body, "W");
  EXPECT_THROW(p.on_text(R"({"type":"claimed","mailbox":"x"})"), CounterpartyError);
  p.reconnect();
  out = p.on_text(kWelcome);
  EXPECT_EQ(out.to_send, (Frames{kBindB, R"({"mailbox":"abcdefghijklmnopqrstuvwxyz","type":"open"})",
                                 R"({"body":"H","phase":"pair-hello","type":"add"})"}));
  EXPECT_EQ(p.finish("happy").to_send, (Frames{R"({"mailbox":"abcdefghijklmnopqrstuvwxyz","mood":"happy","type":"close"})"}));
}

TEST(Rendezvous, OversizedBodyOfAnyPhaseIsRefused) {
  Protocol p(Role::consumer, "bbbbbbbbbb", "42");
  p.on_text(kWelcome);
  p.on_text(R"({"type":"claimed","mailbox":"mbx"})");
  const std::string big(64 * 1024 + 1, 'A');
  EXPECT_THROW(p.on_text(R"({"type":"message","side":"aaaaaaaaaa","phase":"sealed-ice","body":")" + big + "\"}"),
               CounterpartyError);
}

TEST(Rendezvous, SendIceAfterFinishSendsNothing) {
  Protocol p = open_generator();
  p.finish("errory");
  EXPECT_TRUE(p.send_ice("X").to_send.empty());
}

TEST(Rendezvous, UnknownAndNoOpTypesIgnored) {
  Protocol p(Role::consumer, "bbbbbbbbbb", "7");
  for (const char* frame : {R"({"type":"pong","pong":1})", R"({"type":"ack"})", R"({"type":"brand-new","x":[1]})"}) {
    Output out = p.on_text(frame);
    EXPECT_TRUE(out.to_send.empty()) << frame;
    EXPECT_TRUE(out.events.empty()) << frame;
  }
  // Still waiting for welcome: the next welcome binds as usual.
  EXPECT_EQ(p.on_text(kWelcome).to_send.size(), 2u);
}

TEST(Rendezvous, WelcomeErrorThrowsRelay) {
  Protocol p(Role::generator, "aaaaaaaaaa");
  auto [code, what] = thrown([&] { p.on_text(R"({"type":"welcome","welcome":{"error":"go away"}})"); });
  EXPECT_EQ(code, ExitCode::relay);
  EXPECT_EQ(what, "the rendezvous server refused: go away");
}

TEST(Rendezvous, ServerErrorCrowdedThrowsRelay) {
  Protocol p(Role::consumer, "bbbbbbbbbb", "42");
  p.on_text(kWelcome);
  auto [code, what] =
      thrown([&] { p.on_text(R"({"type":"error","error":"crowded","orig":{"type":"claim","nameplate":"42"}})"); });
  EXPECT_EQ(code, ExitCode::relay);
  EXPECT_NE(what.find("rendezvous server error: crowded"), std::string::npos) << what;
  EXPECT_NE(what.find("in use by someone else"), std::string::npos) << what;
  // Neither is a CounterpartyError: the relay spoke correctly, it refused.
  EXPECT_THROW(p.on_text(R"({"type":"error","error":"x"})"), Error);
  try {
    p.on_text(R"({"type":"error","error":"x"})");
  } catch (const CounterpartyError&) {
    ADD_FAILURE() << "server error reported as CounterpartyError";
  } catch (const Error&) {
  }
}

TEST(Rendezvous, ServerTextIsSanitised) {
  Protocol p(Role::generator, "aaaaaaaaaa");
  auto [code, what] = thrown([&] { p.on_text(R"({"type":"welcome","welcome":{"error":"a\u001b[2Jb"}})"); });
  EXPECT_EQ(code, ExitCode::relay);
  EXPECT_EQ(what.find('\x1b'), std::string::npos);
}

// Every malformed frame is a CounterpartyError, whose message says what was
// wrong.
void expect_counterparty(Protocol& p, const std::string& frame, const std::string& needle) {
  try {
    p.on_text(frame);
    ADD_FAILURE() << "accepted: " << frame.substr(0, 80);
  } catch (const CounterpartyError& e) {
    EXPECT_EQ(e.code(), ExitCode::protocol);
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception for " << frame.substr(0, 80) << ": " << e.what();
  }
}

TEST(Rendezvous, MalformedFramesBeforeWelcome) {
  Protocol p(Role::generator, "aaaaaaaaaa");
  expect_counterparty(p, "not json", "not valid JSON");
  expect_counterparty(p, "", "not valid JSON");
  expect_counterparty(p, R"({"type":"welcome"} trailing)", "not valid JSON");
  expect_counterparty(p, R"(["type","welcome"])", "expected a JSON object, got array");
  expect_counterparty(p, R"({"welcome":{}})", "\"type\"");
  expect_counterparty(p, R"({"type":5})", "\"type\" must be a string");
  expect_counterparty(p, std::string(100000, '['), "nested deeper");
  expect_counterparty(p, R"({"type":"x","a":")" + std::string(300 * 1024, 'a') + R"("})", "exceeds the limit");
  expect_counterparty(p, R"({"type":"claimed","mailbox":"m"})", "claimed");
  expect_counterparty(p, R"({"type":"allocated","nameplate":"1"})", "allocated");
  expect_counterparty(p, R"({"type":"message","side":"x","phase":"ice","body":"b"})", "before the mailbox");
  expect_counterparty(p, R"({"type":"closed"})", "closed");
  expect_counterparty(p, R"({"type":"welcome","welcome":[]})", "must be an object");
  expect_counterparty(p, R"({"type":"welcome","welcome":{"motd":7}})", "\"motd\" must be a string");
  expect_counterparty(p, R"({"type":"error"})", "\"error\"");
}

TEST(Rendezvous, DepthScanIgnoresBracketsInStrings) {
  Protocol p(Role::generator, "aaaaaaaaaa");
  // 1000 '[' inside a string are not nesting: this is a harmless unknown type.
  EXPECT_NO_THROW(p.on_text(R"({"type":"x","s":")" + std::string(1000, '[') + R"("})"));
  EXPECT_NO_THROW(p.on_text(R"({"type":"x","s":"\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["})"));
  // Just within the limit parses.
  EXPECT_NO_THROW(p.on_text(R"({"type":"x","s":)" + std::string(31, '[') + std::string(31, ']') + "}"));
}

TEST(Rendezvous, BadAllocated) {
  for (const char* frame : {
           R"({"type":"allocated","nameplate":42})",
           R"({"type":"allocated","nameplate":"4a"})",
           R"({"type":"allocated","nameplate":""})",
           R"({"type":"allocated","nameplate":"1234567890"})",
           R"({"type":"allocated","nameplate":"-1"})",
           R"({"type":"allocated"})",
       }) {
    Protocol p(Role::generator, "aaaaaaaaaa");
    p.on_text(kWelcome);
    expect_counterparty(p, frame, "nameplate");
  }
  // The consumer never allocates.
  Protocol c(Role::consumer, "bbbbbbbbbb", "5");
  c.on_text(kWelcome);
  expect_counterparty(c, R"({"type":"allocated","nameplate":"5"})", "allocated");
}

TEST(Rendezvous, BadClaimedAndMessage) {
  for (const char* frame : {
           R"({"type":"claimed","mailbox":""})",
           R"({"type":"claimed","mailbox":7})",
           R"({"type":"claimed"})",
       }) {
    Protocol p(Role::consumer, "bbbbbbbbbb", "5");
    p.on_text(kWelcome);
    expect_counterparty(p, frame, "mailbox");
  }
  Protocol p(Role::consumer, "bbbbbbbbbb", "5");
  p.on_text(kWelcome);
  expect_counterparty(p, R"({"type":"claimed","mailbox":")" + std::string(257, 'm') + R"("})", "mailbox");

  Protocol g = open_generator();
  expect_counterparty(g, R"({"type":"claimed","mailbox":"again"})", "claimed");
  expect_counterparty(g, R"({"type":"welcome","welcome":{}})", "second welcome");
  expect_counterparty(g, R"({"type":"message","side":1,"phase":"ice","body":"b"})", "\"side\"");
  expect_counterparty(g, R"({"type":"message","side":"x","phase":null,"body":"b"})", "\"phase\"");
  expect_counterparty(g, R"({"type":"message","side":"x","phase":"ice","body":{}})", "\"body\"");
  expect_counterparty(g, R"({"type":"message","side":"x","phase":"ice"})", "\"body\"");
  expect_counterparty(
      g, R"({"type":"message","side":"x","phase":"ice","body":")" + std::string(64 * 1024 + 1, 'b') + R"("})",
      "exceeds the limit");
  EXPECT_FALSE(g.peer_ice_received());
  // Exactly 64 KiB is fine.
  Output out =
      g.on_text(R"({"type":"message","side":"x","phase":"ice","body":")" + std::string(64 * 1024, 'b') + R"("})");
  EXPECT_EQ(out.events.size(), 1u);
}

TEST(Rendezvous, FinishIsIdempotent) {
  Protocol g = open_generator();
  EXPECT_EQ(g.finish("scary").to_send,
            (Frames{R"({"nameplate":"42","type":"release"})", R"({"mailbox":"mbx1","mood":"scary","type":"close"})"}));
  Output again = g.finish("happy");
  EXPECT_TRUE(again.to_send.empty());
  EXPECT_TRUE(again.events.empty());
  // Late frames after finish are dropped, errors included.
  EXPECT_TRUE(g.on_text(R"({"type":"message","side":"x","phase":"ice","body":"b"})").events.empty());
  EXPECT_NO_THROW(g.on_text(R"({"type":"error","error":"only one release per connection"})"));
  EXPECT_FALSE(g.peer_ice_received());
}

TEST(Rendezvous, FinishInEarlyStates) {
  // Nothing sent yet: nothing to undo.
  Protocol a(Role::generator, "aaaaaaaaaa");
  EXPECT_TRUE(a.finish("lonely").to_send.empty());

  // Generator that has not learnt its nameplate cannot release it.
  Protocol b(Role::generator, "aaaaaaaaaa");
  b.on_text(kWelcome);
  EXPECT_TRUE(b.finish("lonely").to_send.empty());

  // Claim sent but not confirmed: release (same ordered connection), no close.
  Protocol c(Role::consumer, "bbbbbbbbbb", "42");
  c.on_text(kWelcome);
  EXPECT_EQ(c.finish("errory").to_send, (Frames{R"({"nameplate":"42","type":"release"})"}));
  // The late claimed is ignored: no open after finish.
  Output late = c.on_text(R"({"type":"claimed","mailbox":"m"})");
  EXPECT_TRUE(late.to_send.empty());
  EXPECT_TRUE(late.events.empty());
  EXPECT_TRUE(c.finish("errory").to_send.empty());
}

TEST(Rendezvous, RandomSide) {
  std::set<std::string> seen;
  for (int i = 0; i < 8; ++i) {
    std::string s = random_side();
    ASSERT_EQ(s.size(), 10u);
    for (char ch : s) EXPECT_TRUE((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')) << s;
    seen.insert(s);
  }
  // 40 random bits: a repeat among 8 draws would mean a broken generator.
  EXPECT_EQ(seen.size(), 8u);
  EXPECT_NE(random_side(), random_side());
}

}  // namespace
}  // namespace peersock::rendezvous

namespace peersock::rendezvous {
namespace {

// ---- list / nameplates (code completion at the prompt) ---------------------

std::vector<std::string> listed(const Output& out) {
  for (const auto& e : out.events) {
    if (auto* n = std::get_if<event::Nameplates>(&e)) return n->ids;
  }
  ADD_FAILURE() << "no Nameplates event";
  return {};
}

TEST(RendezvousList, ListerBindsAndListsOnly) {
  Protocol p(Role::lister, "aaaaaaaaaa");
  // Asked before welcome: held until bound.
  EXPECT_TRUE(p.list_nameplates().to_send.empty());
  Output out = p.on_text(R"({"type":"welcome","welcome":{}})");
  EXPECT_EQ(
      out.to_send,
      (std::vector<std::string>{
          R"({"appid":"peersock.namepad.de","client_version":["peersock","0.1.0"],"side":"aaaaaaaaaa","type":"bind"})",
          R"({"type":"list"})"}));
  out = p.on_text(R"({"type":"nameplates","nameplates":[{"id":"4"},{"id":"17"},{"id":"x9"},{"id":"1234567890"}]})");
  // Non-numeric and over-long ids cannot be in a code: not offered.
  EXPECT_EQ(listed(out), (std::vector<std::string>{"4", "17"}));
  EXPECT_EQ(p.list_nameplates().to_send, (std::vector<std::string>{R"({"type":"list"})"}));
  out = p.on_text(R"({"type":"nameplates","nameplates":[]})");
  EXPECT_TRUE(listed(out).empty());
  // Nothing claimed, nothing opened: finishing sends nothing.
  EXPECT_TRUE(p.finish("happy").to_send.empty());
  EXPECT_TRUE(p.list_nameplates().to_send.empty());
}

TEST(RendezvousList, ConsumerMayListToo) {
  Protocol p(Role::consumer, "bbbbbbbbbb", "7");
  p.on_text(R"({"type":"welcome","welcome":{}})");
  EXPECT_EQ(p.list_nameplates().to_send, (std::vector<std::string>{R"({"type":"list"})"}));
  EXPECT_EQ(listed(p.on_text(R"({"type":"nameplates","nameplates":[{"id":"7","extra":1}]})")),
            (std::vector<std::string>{"7"}));
}

TEST(RendezvousList, MalformedListsAreCounterpartyErrors) {
  for (const char* bad : {
           R"({"type":"nameplates"})",
           R"({"type":"nameplates","nameplates":{"id":"1"}})",
           R"({"type":"nameplates","nameplates":["1"]})",
           R"({"type":"nameplates","nameplates":[{"id":1}]})",
           R"({"type":"nameplates","nameplates":[{}]})",
       }) {
    Protocol p(Role::lister, "aaaaaaaaaa");
    p.on_text(R"({"type":"welcome","welcome":{}})");
    auto [code, what] = thrown([&] { p.on_text(bad); });
    EXPECT_EQ(code, ExitCode::protocol) << bad;
    EXPECT_NE(what.find("nameplates"), std::string::npos) << what;
  }
  // Before welcome it makes no sense either.
  Protocol early(Role::lister, "aaaaaaaaaa");
  EXPECT_EQ(thrown([&] { early.on_text(R"({"type":"nameplates","nameplates":[]})"); }).first, ExitCode::protocol);
  // A list longer than any real server's is refused, not stored.
  std::string huge = R"({"type":"nameplates","nameplates":[)";
  for (size_t i = 0; i <= kMaxListedNameplates; ++i) huge += std::string(i ? "," : "") + R"({"id":"1"})";
  huge += "]}";
  Protocol p(Role::lister, "aaaaaaaaaa");
  p.on_text(R"({"type":"welcome","welcome":{}})");
  EXPECT_EQ(thrown([&] { p.on_text(huge); }).first, ExitCode::protocol);
}

// ---- NameplateLister over a real websocket ---------------------------------

// A mailbox server on loopback that welcomes, and answers every `list` with
// `lists[n]` (the last one again once they run out).
class FakeMailbox {
 public:
  explicit FakeMailbox(std::vector<std::string> lists) : lists_(std::move(lists)) {
    server_.reset(soup_server_new(nullptr, nullptr));
    soup_server_add_websocket_handler(server_.get(), nullptr, nullptr, nullptr, &FakeMailbox::on_socket, this, nullptr);
    GError* error = nullptr;
    EXPECT_TRUE(soup_server_listen_local(server_.get(), 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error));
    if (error != nullptr) g_error_free(error);
    GSList* uris = soup_server_get_uris(server_.get());
    url_ = "ws://127.0.0.1:" + std::to_string(g_uri_get_port(static_cast<GUri*>(uris->data))) + "/v1";
    g_slist_free_full(uris, reinterpret_cast<GDestroyNotify>(g_uri_unref));
  }
  ~FakeMailbox() {
    if (socket_) g_signal_handlers_disconnect_by_data(socket_.get(), this);
  }

  const std::string& url() const { return url_; }
  int lists_asked() const { return asked_; }

 private:
  static void on_socket(SoupServer*, SoupServerMessage*, const char*, SoupWebsocketConnection* socket, gpointer self) {
    auto* m = static_cast<FakeMailbox*>(self);
    m->socket_.reset(SOUP_WEBSOCKET_CONNECTION(g_object_ref(socket)));
    g_signal_connect(socket, "message", G_CALLBACK(&FakeMailbox::on_message), m);
    soup_websocket_connection_send_text(socket, kWelcome);
  }
  static void on_message(SoupWebsocketConnection* socket, gint, GBytes* message, gpointer self) {
    auto* m = static_cast<FakeMailbox*>(self);
    gsize size = 0;
    const auto* data = static_cast<const char*>(g_bytes_get_data(message, &size));
    const std::string text(data, size);
    if (text.find(R"("type":"list")") == std::string::npos) return;
    const size_t n = std::min<size_t>(m->asked_++, m->lists_.size() - 1);
    soup_websocket_connection_send_text(socket, m->lists_[n].c_str());
  }

  std::vector<std::string> lists_;
  glib::ObjectPtr<SoupServer> server_;
  glib::ObjectPtr<SoupWebsocketConnection> socket_;
  std::string url_;
  int asked_ = 0;
};

// Runs the default main context until `done` or 5 s.
template <typename F>
bool run_until(F&& done) {
  const gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
  while (!done() && g_get_monotonic_time() < deadline) {
    if (!g_main_context_iteration(nullptr, FALSE)) g_usleep(1000);
  }
  return done();
}

TEST(NameplateLister, ListsOnStartAndOnRequest) {
  FakeMailbox mailbox({R"({"type":"nameplates","nameplates":[{"id":"4"},{"id":"17"}]})",
                       R"({"type":"nameplates","nameplates":[{"id":"5"}]})"});
  NameplateLister lister(mailbox.url());
  std::vector<std::vector<std::string>> got;
  std::string why;
  lister.start([&](std::vector<std::string> ids) { got.push_back(std::move(ids)); },
               [&](const std::string& w) { why = w; });
  ASSERT_TRUE(run_until([&] { return got.size() == 1; })) << why;
  EXPECT_EQ(got[0], (std::vector<std::string>{"4", "17"}));
  lister.request();
  ASSERT_TRUE(run_until([&] { return got.size() == 2; })) << why;
  EXPECT_EQ(got[1], (std::vector<std::string>{"5"}));
  lister.stop();
  lister.request();  // after stop: nothing sent, no callback
  for (int i = 0; i < 50; ++i) g_main_context_iteration(nullptr, FALSE);
  EXPECT_EQ(got.size(), 2u);
  EXPECT_EQ(mailbox.lists_asked(), 2);
  EXPECT_TRUE(why.empty()) << why;
}

TEST(NameplateLister, BadUrlFailsFromWithinStart) {
  NameplateLister lister("not a url");
  std::string why;
  bool listed = false;
  lister.start([&](std::vector<std::string>) { listed = true; }, [&](const std::string& w) { why = w; });
  EXPECT_NE(why.find("bad rendezvous URL"), std::string::npos) << why;
  lister.request();
  EXPECT_FALSE(listed);
}

TEST(NameplateLister, MalformedListFailsOnce) {
  FakeMailbox mailbox({R"({"type":"nameplates","nameplates":["1"]})"});
  NameplateLister lister(mailbox.url());
  int failures = 0;
  std::string why;
  lister.start([&](std::vector<std::string>) { ADD_FAILURE() << "listed"; },
               [&](const std::string& w) {
                 ++failures;
                 why = w;
               });
  ASSERT_TRUE(run_until([&] { return failures > 0; }));
  EXPECT_NE(why.find("nameplates"), std::string::npos) << why;
  lister.request();  // failed: nothing more is asked
  for (int i = 0; i < 50; ++i) g_main_context_iteration(nullptr, FALSE);
  EXPECT_EQ(failures, 1);
  EXPECT_EQ(mailbox.lists_asked(), 1);
}

}  // namespace
}  // namespace peersock::rendezvous

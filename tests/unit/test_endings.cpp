// How a run ends (session/ending.hpp): every way the QUIC connection can
// close maps to one exit code and one line, and every exit code to the
// application error code and the mailbox mood we send.
#include <gtest/gtest.h>

#include "peersock/session/ending.hpp"
#include "peersock/session/mode.hpp"

namespace peersock::session {
namespace {

quic::CloseInfo app_close(uint64_t code, std::string reason = {}, bool by_peer = true) {
  return {by_peer, true, code, std::move(reason)};
}

TEST(Endings, ThePeersCodeMismatchIsOursToo) {
  for (bool forwarding : {false, true}) {
    auto e = ending_for_close(app_close(quic::kErrorAuthFailed), forwarding, true);
    EXPECT_EQ(e.code, ExitCode::code_mismatch);
    EXPECT_EQ(e.message, kMismatchMessage);
    EXPECT_EQ(e.message.find("the other side typed"), std::string::npos) << "it blames the side that may be right";
  }
}

TEST(Endings, ThePeerRejectingOurDataIsAProtocolErrorWithItsReasonQuoted) {
  auto e = ending_for_close(app_close(quic::kErrorProtocol, "bad\x1b[2Jframe"), true, true);
  EXPECT_EQ(e.code, ExitCode::protocol);
  EXPECT_EQ(e.message.find('\x1b'), std::string::npos) << "the peer's words reach the terminal unquoted";
  EXPECT_NE(e.message.find("frame"), std::string::npos);
}

TEST(Endings, AVersionChangedCloseGivesTheSendersLineOnBothSides) {
  // The side that saw the bodies disagree with ALPN closes with this reason;
  // the other side, before or after its own authentication, says the same.
  for (bool forwarding : {false, true}) {
    auto e = ending_for_close(app_close(quic::kErrorProtocol, std::string(kVersionChangedReason)), forwarding, true);
    EXPECT_EQ(e.code, ExitCode::protocol);
    EXPECT_EQ(e.message, kVersionChangedMessage);
  }
  // Any other reason with the same code is the generic protocol error.
  auto other = ending_for_close(app_close(quic::kErrorProtocol, "version-changed!"), true, true);
  EXPECT_NE(other.message, kVersionChangedMessage);
  EXPECT_EQ(close_code(ExitCode::protocol), quic::kErrorProtocol);
}

TEST(Endings, TheOriginalPeerNoticeIsOneLine) {
  const std::string both = original_peer_notice(true, true);
  EXPECT_EQ(both.find('\n'), std::string::npos);
  EXPECT_EQ(both,
            "the other side runs the original peersock: addresses are visible to the relay; one connection at a "
            "time, no half-close");
  EXPECT_EQ(original_peer_notice(false, true),
            "the other side runs the original peersock: one connection at a time, no half-close");
  EXPECT_EQ(original_peer_notice(true, false),
            "the other side runs the original peersock: addresses are visible to the relay");
}

TEST(Endings, AnyCloseBeforeAuthenticationIsNoPath) {
  auto clean = ending_for_close(app_close(quic::kErrorNone), false, true);
  EXPECT_EQ(clean.code, ExitCode::no_path);
  EXPECT_EQ(clean.message, "the QUIC connection to the peer failed");
  auto idle = ending_for_close({false, false, 0, {}}, false, true);
  EXPECT_EQ(idle.code, ExitCode::no_path);
  auto alert = ending_for_close({true, false, 0x178, "no application protocol"}, false, true);
  EXPECT_EQ(alert.code, ExitCode::no_path);
  EXPECT_NE(alert.message.find("no application protocol"), std::string::npos);
}

TEST(Endings, ACleanCloseOfACompleteRunIsOkAndSaysThePeerClosed) {
  auto e = ending_for_close(app_close(quic::kErrorNone, "done"), true, true);
  EXPECT_EQ(e.code, ExitCode::ok);
  EXPECT_TRUE(e.message.empty());
  EXPECT_TRUE(e.peer_closed);
}

TEST(Endings, ACleanCloseBeforeEverythingWasDeliveredIsPeerGone) {
  auto e = ending_for_close(app_close(quic::kErrorNone, "done"), true, false);
  EXPECT_EQ(e.code, ExitCode::peer_gone);
  EXPECT_FALSE(e.peer_closed);
  EXPECT_NE(e.message.find("before all data was delivered"), std::string::npos);
}

TEST(Endings, APeerThatGaveUpOrWentSilentIsPeerGone) {
  auto aborted = ending_for_close(app_close(quic::kErrorLocal, "local"), true, true);
  EXPECT_EQ(aborted.code, ExitCode::peer_gone);
  EXPECT_NE(aborted.message.find("the peer aborted"), std::string::npos);
  auto silent = ending_for_close({false, false, 0, {}}, true, true);
  EXPECT_EQ(silent.code, ExitCode::peer_gone);
  EXPECT_NE(silent.message.find("no answer from the peer"), std::string::npos);
}

TEST(Endings, AnInterruptedPeerWithConnectionsOpenIsPeerGoneAndSaysHowMany) {
  auto one = ending_for_close(app_close(quic::kErrorInterrupted, "interrupted"), true, true, 1);
  EXPECT_EQ(one.code, ExitCode::peer_gone);
  EXPECT_EQ(one.message, "the other side was interrupted (Ctrl-C) with 1 connection open");
  auto three = ending_for_close(app_close(quic::kErrorInterrupted, "interrupted"), true, true, 3);
  EXPECT_EQ(three.message, "the other side was interrupted (Ctrl-C) with 3 connections open");
  // Its connections were open; ours had ended already: nothing was cut here.
  auto none = ending_for_close(app_close(quic::kErrorInterrupted, "interrupted"), true, true, 0);
  EXPECT_EQ(none.code, ExitCode::ok);
  // stdio, not delivered: cut short.
  auto stdio = ending_for_close(app_close(quic::kErrorInterrupted, "interrupted"), true, false, 0);
  EXPECT_EQ(stdio.code, ExitCode::peer_gone);
}

TEST(Endings, CloseCodesRoundTripThroughThePeersMapping) {
  // What we send for an exit code is what the peer maps back to the same one.
  EXPECT_EQ(close_code(ExitCode::ok), quic::kErrorNone);
  EXPECT_EQ(close_code(ExitCode::interrupted), quic::kErrorInterrupted);
  EXPECT_EQ(ending_for_close(app_close(close_code(ExitCode::interrupted)), true, true, 2).code, ExitCode::peer_gone);
  EXPECT_EQ(ending_for_close(app_close(close_code(ExitCode::code_mismatch)), true, true).code, ExitCode::code_mismatch);
  EXPECT_EQ(ending_for_close(app_close(close_code(ExitCode::protocol)), true, true).code, ExitCode::protocol);
  for (ExitCode c : {ExitCode::failure, ExitCode::local, ExitCode::no_path, ExitCode::peer_gone, ExitCode::relay}) {
    EXPECT_EQ(close_code(c), quic::kErrorLocal);
    EXPECT_EQ(ending_for_close(app_close(close_code(c)), true, true).code, ExitCode::peer_gone);
  }
}

TEST(Endings, MailboxMoods) {
  EXPECT_STREQ(mood_for(ExitCode::ok, true), "happy");
  EXPECT_STREQ(mood_for(ExitCode::ok, false), "lonely");
  EXPECT_STREQ(mood_for(ExitCode::interrupted, true), "happy");
  EXPECT_STREQ(mood_for(ExitCode::code_mismatch, true), "scary");
  EXPECT_STREQ(mood_for(ExitCode::no_path, true), "errory");
  EXPECT_STREQ(mood_for(ExitCode::relay, false), "errory");
}

TEST(Mode, TheHintNeverHoldsTheCodeAndCarriesANonDefaultRelay) {
  const std::string def = config::defaults().relay_url;
  EXPECT_EQ(hint_for_other_side(forward::ConnectTcp{"localhost:5900"}, def), "peersock listen 5900 --join");
  EXPECT_EQ(hint_for_other_side(forward::ListenTcp{}, def), "peersock connect HOST:PORT --join");
  EXPECT_EQ(hint_for_other_side(forward::StdioA{}, "ws://127.0.0.1:4000/v1"),
            "peersock --relay ws://127.0.0.1:4000/v1 stdio-b --join");
  EXPECT_EQ(hint_for_other_side(forward::StdioB{}, "wss://x.example/v1?a b"),
            "peersock --relay 'wss://x.example/v1?a b' stdio-a --join");
}

TEST(Mode, SameRolesAreAUsageErrorNamingWhatTheOtherSideMustRun) {
  try {
    check_roles(forward::ListenTcp{}, "listen");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "both sides ran listen: the other side must run connect (or stdio-a)");
  }
  EXPECT_THROW(check_roles(forward::StdioA{}, "connect-unix"), UsageError);
  EXPECT_THROW(check_roles(forward::ListenUnix{"/x"}, "stdio-b"), UsageError);
  EXPECT_NO_THROW(check_roles(forward::ListenTcp{}, "connect"));
  EXPECT_NO_THROW(check_roles(forward::StdioB{}, "stdio-a"));
  EXPECT_NO_THROW(check_roles(forward::ConnectTcp{"h:1"}, ""));             // the original says nothing
  EXPECT_NO_THROW(check_roles(forward::ConnectTcp{"h:1"}, "connect-sctp"));  // a later release's mode
}

TEST(Mode, UdpPairsOnlyWithUdp) {
  EXPECT_NO_THROW(check_roles(forward::ListenUdp{}, "connect-udp"));
  EXPECT_NO_THROW(check_roles(forward::ConnectUdp{"h:1"}, "listen-udp"));
  EXPECT_NO_THROW(check_roles(forward::ListenUdp{}, ""));  // the original: found by the version (exit 8)
  try {
    check_roles(forward::ListenUdp{}, "connect");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "this side ran listen-udp and the other side connect: the other side must run connect-udp");
  }
  try {
    check_roles(forward::ConnectTcp{"h:1"}, "listen-udp");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(),
                 "this side ran connect and the other side listen-udp: the other side must run listen (or stdio-b)");
  }
  EXPECT_THROW(check_roles(forward::ListenUdp{}, "listen-udp"), UsageError);
  EXPECT_THROW(check_roles(forward::ConnectUdp{"h:1"}, "connect-udp"), UsageError);
  EXPECT_THROW(check_roles(forward::ConnectUdp{"h:1"}, "stdio-b"), UsageError);
  EXPECT_THROW(check_roles(forward::StdioA{}, "listen-udp"), UsageError);
  EXPECT_EQ(hint_for_other_side(forward::ConnectUdp{"localhost:51820"}, config::defaults().relay_url),
            "peersock listen-udp 51820 --join");
  EXPECT_EQ(hint_for_other_side(forward::ListenUdp{}, config::defaults().relay_url),
            "peersock connect-udp HOST:PORT --join");
}

TEST(Endings, NoUdpInTheNegotiatedVersion) {
  EXPECT_NE(no_udp_message(4).find("protocol version 4"), std::string::npos);
  EXPECT_NE(no_udp_message(1).find("the original peersock"), std::string::npos);
  quic::CloseInfo info{true, true, quic::kErrorProtocol, std::string(kNoUdpReason)};
  Ending e = ending_for_close(info, false, true, 0);
  EXPECT_EQ(e.code, ExitCode::protocol);
  EXPECT_EQ(e.message, kPeerNeedsUdpMessage);
}

}  // namespace
}  // namespace peersock::session

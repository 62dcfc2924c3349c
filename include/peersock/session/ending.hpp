// How a run ends, as pure functions of what happened: the exit code and the
// one line for the user when the QUIC connection closed, and the application
// error code we close it with (docs/protocol.md §4.6). Kept apart from the
// session so that every mapping is unit-tested (tests/unit/test_endings.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "peersock/error.hpp"
#include "peersock/quic/endpoint.hpp"

namespace peersock::session {

struct Ending {
  ExitCode code = ExitCode::ok;
  std::string message;       // empty for a clean end
  bool peer_closed = false;  // the peer ended a complete run: say so
};

// The ALPN result and the peer's ice body disagree (docs/protocol.md §3.1):
// the relay changed the version a body announced. The side that sees it
// closes with kErrorProtocol and kVersionChangedReason, so that the other
// side, which may have seen nothing wrong, prints the same line.
inline constexpr const char* kVersionChangedMessage =
    "the rendezvous server changed the protocol version offered by the other side";
inline constexpr std::string_view kVersionChangedReason = "version-changed";

// listen-udp / connect-udp with a peer whose version does not carry UDP
// (protocol::carries_udp: the original, older releases, PEERSOCK_PROTOCOL
// below 5). Found after SMP, by both sides when both are current; the side
// that finds it closes with kErrorProtocol and kNoUdpReason, so that a peer
// that cannot tell (the original) says why it ended.
inline constexpr std::string_view kNoUdpReason = "udp-unsupported";
// The line for the side in a UDP mode; `version`: the negotiated one.
std::string no_udp_message(int version);
// The line for a side that received kNoUdpReason.
inline constexpr const char* kPeerNeedsUdpMessage =
    "the other side runs listen-udp or connect-udp, which needs protocol version 5 on both sides";

// The original responder exits without a word when the codes differ (v1 doc
// §5.3): its silence after our last SMP message is our verdict.
inline constexpr const char* kOriginalMismatchMessage =
    "connection code mismatch (the other side stopped after the code check)";

// The original's TCP modes end by exiting when their local connection
// closes, without closing QUIC (v1 doc §6.4): the idle timeout is how we
// learn it, and it should not read like a network failure.
inline constexpr const char* kOriginalSilentMessage =
    "the other side stopped answering (the original peersock ends a TCP connection that way, without a word)";

// Said once when the peer is known to be the original peersock: what that
// means, in one line. `addresses_visible`: its ice body came in plaintext
// (no PAKE), so the relay saw both sides' addresses. `one_connection`: it
// speaks protocol v1 (one connection at a time, no half-close). The one
// place that words it.
std::string original_peer_notice(bool addresses_visible, bool one_connection);

// The TLS alert the original's client sends when the server's certificate
// is not the original's (48, unknown_ca), as the QUIC transport error
// (0x100 + alert) the server receives.
inline constexpr uint64_t kUnknownCaError = 0x100 + 48;

// The connection closed (by the peer, by an idle timeout, or by a failure).
// `forwarding`: authentication had succeeded. `complete`: every data stream
// that must be delivered was (stdio: the 'D' exchange or our own stream's
// clean end). `open_connections`: ours, still open. The peer's reason text
// is quoted: it is the peer's words.
Ending ending_for_close(const quic::CloseInfo& info, bool forwarding, bool complete, size_t open_connections = 0);

// The QUIC application error code for an exit code of ours.
// ExitCode::interrupted is Ctrl-C with connections open (with none open,
// the session ends as ExitCode::ok, a normal end, and exits 130).
uint64_t close_code(ExitCode code);

// The mailbox mood for an exit code (magic-wormhole's vocabulary);
// `had_peer`: the peer's description had arrived.
const char* mood_for(ExitCode code, bool had_peer);

}  // namespace peersock::session

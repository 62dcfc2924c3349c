// How a run ends, as pure functions of what happened: the exit code and the
// one line for the user when the QUIC connection closed, and the application
// error code we close it with (docs/protocol.md §4.6). Kept apart from the
// session so that every mapping is unit-tested (tests/unit/test_endings.cpp).
#pragma once

#include <cstdint>
#include <string>

#include "peersock/error.hpp"
#include "peersock/quic/endpoint.hpp"

namespace peersock::session {

struct Ending {
  ExitCode code = ExitCode::ok;
  std::string message;       // empty for a clean end
  bool peer_closed = false;  // the peer ended a complete run: say so
};

// SMP failed, here or at the peer: both sides print this. Neither can tell
// who typed what, so it blames nobody.
inline constexpr const char* kMismatchMessage =
    "connection code mismatch: the codes did not match (one side typed it wrong, or someone guessed)";

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

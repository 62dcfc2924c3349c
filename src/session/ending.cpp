#include "peersock/session/ending.hpp"

#include <fmt/core.h>

#include "peersock/text.hpp"

namespace peersock::session {

namespace {
std::string connections(size_t n) { return fmt::format("{} connection{}", n, n == 1 ? "" : "s"); }
}  // namespace

Ending ending_for_close(const quic::CloseInfo& info, bool forwarding, bool complete, size_t open_connections) {
  const std::string reason = text::quote(info.reason);
  if (info.is_app && info.error_code == quic::kErrorAuthFailed) return {ExitCode::code_mismatch, kMismatchMessage};
  if (info.is_app && info.error_code == quic::kErrorProtocol && info.reason == kVersionChangedReason)
    return {ExitCode::protocol, kVersionChangedMessage};
  if (info.is_app && info.error_code == quic::kErrorProtocol && info.reason == kNoUdpReason)
    return {ExitCode::protocol, kPeerNeedsUdpMessage};
  if (info.is_app && info.error_code == quic::kErrorProtocol)
    return {ExitCode::protocol, fmt::format("the peer ended the connection: it received invalid data ({})", reason)};
  if (!forwarding)
    return {ExitCode::no_path,
            fmt::format("the QUIC connection to the peer failed{}", info.reason.empty() ? "" : ": " + reason)};
  if (info.is_app && info.error_code == quic::kErrorInterrupted) {
    if (open_connections == 0 && complete) return {ExitCode::ok, {}, true};
    return {ExitCode::peer_gone,
            fmt::format("the other side was interrupted (Ctrl-C) with {} open", connections(open_connections))};
  }
  if (info.is_app && info.error_code == quic::kErrorNone) {
    if (complete) return {ExitCode::ok, {}, true};
    return {ExitCode::peer_gone, "the other side closed the connection before all data was delivered"};
  }
  return {ExitCode::peer_gone, fmt::format("connection to the peer lost{}",
                                           info.by_peer ? " (the peer aborted)" : " (no answer from the peer)")};
}

std::string no_udp_message(int version) {
  const std::string who = version == 1 ? "the original peersock" : fmt::format("protocol version {}", version);
  return fmt::format(
      "the other side cannot forward UDP (it speaks {}; listen-udp and connect-udp need version 5 on "
      "both sides: update it, or unset PEERSOCK_PROTOCOL)",
      who);
}

std::string original_peer_notice(bool addresses_visible, bool one_connection) {
  std::string line = "the other side runs the original peersock:";
  if (addresses_visible) line += " addresses are visible to the relay";
  if (addresses_visible && one_connection) line += ";";
  if (one_connection) line += " one connection at a time, no half-close";
  return line;
}

uint64_t close_code(ExitCode code) {
  switch (code) {
    case ExitCode::ok: return quic::kErrorNone;
    case ExitCode::code_mismatch: return quic::kErrorAuthFailed;
    case ExitCode::protocol: return quic::kErrorProtocol;
    case ExitCode::interrupted: return quic::kErrorInterrupted;
    default: return quic::kErrorLocal;
  }
}

const char* mood_for(ExitCode code, bool had_peer) {
  if (code == ExitCode::ok || code == ExitCode::interrupted) return had_peer ? "happy" : "lonely";
  if (code == ExitCode::code_mismatch) return "scary";
  return "errory";
}

}  // namespace peersock::session

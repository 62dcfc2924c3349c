// Protocol versions (docs/protocol.md §3) and what each one enables: the one
// place that knows. Both sides use the lower of the two versions announced.
#pragma once

namespace peersock::protocol {

// 1: the original peersock: one connection per run, no FIN, stream 0 unused.
// 2: FIN per direction, several connections, stream 0 carries D/P/Q.
// 3: per-stream credit ('C' grants on stream 0), for OpenSSL's QUIC stack
//    whose windows are per connection.
// 4: QUIC's own per-stream flow control (ngtcp2) instead of 'C' grants.
// 5: UDP forwarding (listen-udp / connect-udp) in QUIC DATAGRAM frames
//    (RFC 9221), each with a flow header (docs/protocol.md §7.7).
// 6: the mailbox stays open for the session, and a silent path is replaced
//    by an ICE restart through it (sealed "restart-N" messages, §2.11).
// 7: the QUIC server starts SMP, on its own stream 1, in its first flight
//    (0.5-RTT data): one round trip less before the first byte (§5.3).
inline constexpr int kCurrent = 7;
inline constexpr int kOldest = 1;

constexpr bool has_fin(int v) { return v >= 2; }
constexpr bool has_control_stream(int v) { return v >= 2; }
constexpr bool several_connections(int v) { return v >= 2; }
// 'C' frames are understood from v3 on; only v3 relies on them.
constexpr bool frames_credit(int v) { return v >= 3; }
constexpr bool uses_credit(int v) { return v == 3; }
// 'F' frames: the acceptor says why it could not connect a stream's target.
constexpr bool reports_connect_failures(int v) { return v >= 4; }
// DATAGRAM frames with a flow header: what listen-udp / connect-udp need.
constexpr bool carries_udp(int v) { return v >= 5; }
// The mailbox stays open after authentication; a silent path is replaced
// by an ICE restart exchanged through it.
constexpr bool restarts_ice(int v) { return v >= 6; }
// The QUIC server (the code generator) is SMP's initiator and sends msg1 on
// stream 1 with its handshake flight; before, the client started on stream 4
// once its handshake was done.
constexpr bool server_starts_smp(int v) { return v >= 7; }

}  // namespace peersock::protocol

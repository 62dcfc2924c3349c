// The protocol version, negotiated by ALPN (docs/protocol.md §3.1), as pure
// functions: what the client offers, what the server picks from a client's
// offer, and what each side concludes once the handshake is done.
//
// Why ALPN: the `v` in the `ice` body crosses the relay in plaintext and
// nothing authenticates it, so a relay could strip it (a silent downgrade to
// one connection per run) or strip it from one body only (the sides then
// disagree, and a v3 side stalls waiting for credit). ALPN is part of the
// TLS transcript, hence of the exporter that SMP binds the code to: a relay
// that changes the offer or the choice fails authentication. The body's `v`
// stays as the hint for what must be known before QUIC (which TLS identity
// an original client needs), and is checked against the ALPN result.
//
// The names: "x-peersock/N" for version N, and plain "x-peersock", which is
// all the original (v1) and this project's releases before ALPN negotiation
// (v2, v3, and v4 before it) offer and accept. Those releases announce their
// version in the body only; the original writes no `v`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace peersock::quic::alpn {

inline constexpr std::string_view kPlain = "x-peersock";
// The largest version a name may carry (the body's `v` has the same bound).
inline constexpr int kMaxVersion = 1000;

// "x-peersock/N" for N = cap down to 1, then plain "x-peersock", in ALPN
// wire form (each name preceded by its length byte). cap: the highest
// version this side speaks, clamped to [1, kMaxVersion].
std::string client_offer(int cap);

// The version a protocol name stands for: N for "x-peersock/N" (decimal,
// 1..kMaxVersion, no leading zero), 0 for plain "x-peersock", -1 for
// anything else.
int version_of(std::string_view name);

// The server's choice from a ClientHello's ALPN list (wire form, as OpenSSL
// hands it to the selection callback: untrusted bytes).
struct Selection {
  bool ok = false;      // false: nothing we speak was offered (alert no_application_protocol)
  size_t offset = 0;    // the chosen name inside the offer (after its length byte)
  size_t length = 0;
  int version = 1;      // the session's version
  int client_max = 0;   // the highest x-peersock/N offered; 0: only plain (or a malformed list)
  // Present the original's certificate and key: a plain-only offer and a
  // body without `v`, i.e. the original, whose client pins that certificate.
  bool original_identity = false;
};

// The protocol list inside a raw ALPN extension body from a ClientHello
// (RFC 7301 §3.1: a 2-byte length, then the list), or an empty span when
// the length does not match the bytes (untrusted input).
std::span<const uint8_t> protocol_list(std::span<const uint8_t> extension);

// cap: our highest version; peer_body_version: the `v` of the client's body
// (1 when absent). A versioned offer: the highest N <= cap offered wins
// (plain, v1, if none is). A plain-only offer (the original, or a release
// before ALPN negotiation): version min(peer_body_version, cap), which only
// the body can tell. A malformed list is treated as offering nothing.
Selection select(std::span<const uint8_t> offer, int cap, int peer_body_version);

// What a side concludes after the handshake.
struct Outcome {
  int version = 1;
  bool peer_is_original = false;  // say so once; no FIN, one connection
  // The peer's body announced a version its side of the handshake
  // contradicts: the relay changed it (exit 8 after authentication).
  bool version_changed = false;
};

// The server: its selection and the client's body version.
Outcome server_outcome(const Selection& selection, int peer_body_version);

// The client: the name the server selected (empty if none), whether the
// server presented the original's certificate, our cap, the server's body
// version. A versioned choice N must equal min(cap, body): a current
// server picks the highest version both speak. Plain with the original's
// certificate is the original (its body has no `v`); plain with any other
// certificate is a release before ALPN negotiation (we always offer
// x-peersock/1, so a current server never picks plain): the body's version,
// min(cap, body), as before ALPN negotiation.
Outcome client_outcome(std::string_view selected, bool original_certificate, int cap, int peer_body_version);

}  // namespace peersock::quic::alpn

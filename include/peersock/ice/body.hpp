// The `ice` message body exchanged through the mailbox (docs/protocol.md §2.5):
// a JSON document serialised to a string, keys u, p, c[]{f,a,p,tr,l,t,[ba,bp]}.
// Newer peers add "v" (peersock protocol version); the original ignores it and
// sends none, which means version 1.
//
// Pure data and parsing: no libnice here, so it can be unit-tested and fuzzed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "peersock/protocol/version.hpp"

namespace peersock::ice {

// libnice's NiceCandidateType / NiceCandidateTransport integer values.
enum class CandidateType : int { host = 0, server_reflexive = 1, peer_reflexive = 2, relayed = 3 };
enum class Transport : int { udp = 0, tcp_active = 1, tcp_passive = 2, tcp_so = 3 };

struct Candidate {
  std::string foundation;
  std::string address;  // numeric IPv4 or IPv6 (no brackets)
  uint16_t port = 0;
  Transport transport = Transport::udp;
  uint32_t priority = 0;
  CandidateType type = CandidateType::host;
  std::optional<std::string> base_address;  // only when it differs from address
  std::optional<uint16_t> base_port;
};

struct Description {
  std::string ufrag;
  std::string password;
  std::vector<Candidate> candidates;
  int version = 1;  // "v"; absent = 1 (the original peersock)
  // "m": the sender's subcommand ("listen", "stdio-a", ...), so that two
  // sides that both open (or both accept) the tunnel's streams can tell
  // before anything is forwarded. Empty: not sent (the original, older
  // releases). A name we do not know is kept as it is: the caller decides.
  std::string mode;
  // "n": what the sender calls itself (its host name unless it chose
  // another), sent only by a side that will remember this peer. Received:
  // printable ASCII only, at most kMaxLabel (other characters dropped).
  std::string label;
};

// The version we announce in the body's "v" (protocol/version.hpp).
inline constexpr int kOurVersion = protocol::kCurrent;
inline constexpr size_t kMaxBodyBytes = 64 * 1024;
inline constexpr size_t kMaxCandidates = 64;
inline constexpr size_t kMaxModeName = 32;
inline constexpr size_t kMaxLabel = 64;
inline constexpr size_t kMaxLabelOnWire = 256;  // longer is a violation

// Serialises compactly with sorted keys, like the original. Writes "v" only
// when version > 1.
std::string encode(const Description& description);

// Parses and validates a body received from the peer. Errors:
// CounterpartyError naming the problem ("candidate 3: port 70000 out of
// range"), for: not JSON, wrong types, missing keys, bad IP literals, out of
// range ports/enums, too many candidates, oversized strings or body.
Description decode(std::string_view body);

}  // namespace peersock::ice

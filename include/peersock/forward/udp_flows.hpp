// UDP flows over QUIC DATAGRAM frames (docs/protocol.md §7.7), as pure
// logic: no sockets, no clock (every call takes the time).
//
// Why flows: UDP has no connections, but its users expect replies to reach
// the socket that asked. On the listen-udp side every local source address
// (a client's ip:port) is one flow with a number the listen side chooses;
// each datagram to the peer starts with that number (the flow header, a QUIC
// varint). The connect-udp side keeps one socket per flow number, connected
// to the target, so the target sees one client per flow and its replies come
// back on that flow's socket, tagged with the same number, to the right
// client.
//
// Why idle expiry and a limit: nothing in UDP says a flow is over, and the
// peer can make us open sockets at will. A flow ends after `idle` without a
// datagram either way (60 s: longer than the 25 s keep-alive of WireGuard
// and most NAT bindings' UDP timeouts, so a live flow is never cut); at
// most `max_flows` live at once (4096: a connect side holds one descriptor
// per flow), and a new flow beyond that evicts the least recently active one.
// Flow numbers are never reused within a session, so a datagram for an
// ended flow cannot reach a newer flow's client: the listen side drops it
// (counted), the connect side starts a fresh socket for it (to the target
// that is a new client port, as after a NAT rebinding).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

namespace peersock::forward::udp {

// Nanoseconds on a monotonic clock (as quic::Timestamp).
using Timestamp = uint64_t;

struct FlowLimits {
  size_t max_flows = 4096;
  Timestamp idle_ns = 60'000'000'000ULL;
};

// ---- the flow header --------------------------------------------------------
// A QUIC variable-length integer (RFC 9000 §16): 1, 2, 4 or 8 bytes, the top
// two bits of the first byte saying which; values below 2^62.
inline constexpr uint64_t kMaxFlowId = (1ULL << 62) - 1;

inline constexpr size_t kMaxHeader = 8;
// Writes the header for `flow_id` (<= kMaxFlowId) at the start of `out`:
// the shortest encoding. Returns its length (1 to 8).
size_t encode_header(uint64_t flow_id, std::span<uint8_t, kMaxHeader> out);

struct Header {
  uint64_t flow_id = 0;
  size_t length = 0;  // bytes of the header; the payload follows
};
// The header at the start of a received datagram (untrusted bytes);
// nullopt when the datagram is shorter than its varint says. Any encoding
// length is accepted (RFC 9000 allows non-shortest ones).
std::optional<Header> decode_header(std::span<const uint8_t> datagram);

// ---- the table ---------------------------------------------------------------
// Live flows by number, least recently active first. O(1) per datagram.
class FlowTable {
 public:
  explicit FlowTable(FlowLimits limits) : limits_(limits) {}

  struct Touched {
    bool fresh = false;               // the flow was not live: added now
    std::optional<uint64_t> evicted;  // the flow removed to make room for it
  };
  // A datagram of flow `id` at `now`: marks it active, adding it if new
  // (evicting the least recently active flow when max_flows are live).
  Touched touch(uint64_t id, Timestamp now);
  bool contains(uint64_t id) const { return index_.count(id) != 0; }
  // Removes and returns, oldest first, the flows idle for idle_ns or longer.
  std::vector<uint64_t> expire(Timestamp now);
  // When the next flow will have been idle long enough; nullopt: none live.
  std::optional<Timestamp> next_expiry() const;
  void erase(uint64_t id);
  size_t size() const { return index_.size(); }
  const FlowLimits& limits() const { return limits_; }

 private:
  struct Entry {
    uint64_t id;
    Timestamp last;
  };
  FlowLimits limits_;
  std::list<Entry> order_;  // least recently active first
  std::unordered_map<uint64_t, std::list<Entry>::iterator> index_;
};

// A local UDP source address as raw bytes: the family, the address (4 or
// 16 bytes used) and the port. Made from a sockaddr by the I/O side.
struct Source {
  uint16_t family = 0;
  std::array<uint8_t, 16> address{};
  uint16_t port = 0;
  bool operator==(const Source&) const = default;
};
struct SourceHash {
  size_t operator()(const Source& s) const noexcept;
};

// The listen side: source address <-> flow number, numbers from 0 upwards.
class ListenFlows {
 public:
  explicit ListenFlows(FlowLimits limits) : table_(limits) {}

  struct Assigned {
    uint64_t id = 0;
    bool fresh = false;
    std::optional<Source> evicted;  // the client whose flow made room
  };
  // A datagram from `from` at `now`: its flow, new if `from` has none.
  Assigned flow_for(const Source& from, Timestamp now);
  // A reply on flow `id`: its client (and the flow is active now); nullopt
  // for a flow that ended or never was.
  std::optional<Source> reply_to(uint64_t id, Timestamp now);
  // Ends idle flows; returns their clients, oldest first.
  std::vector<Source> expire(Timestamp now);
  std::optional<Timestamp> next_expiry() const { return table_.next_expiry(); }
  size_t size() const { return table_.size(); }

 private:
  void forget(uint64_t id);
  FlowTable table_;
  uint64_t next_id_ = 0;
  std::unordered_map<Source, uint64_t, SourceHash> by_source_;
  std::unordered_map<uint64_t, Source> by_id_;
};

}  // namespace peersock::forward::udp

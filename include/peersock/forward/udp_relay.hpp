// The UDP side of the forwarding stage (listen-udp / connect-udp): local
// datagrams in and out of QUIC DATAGRAM frames, one flow per local client
// (udp_flows.hpp; docs/protocol.md §7.7). Owned by the Forwarder in a UDP
// mode, which hands it the same lifecycle: made before anyone is contacted
// (listen-udp binds its port then), started once authenticated, told about
// every QUIC run, closed with the session.
//
// Unreliable by design, like UDP itself: a datagram larger than the path
// can carry, one that finds the send queue full, a reply for a flow that
// has ended, a local socket with no room: each is dropped and counted
// (counts()), never split or delayed into a stream.
#pragma once

#include <glib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "peersock/forward/local_end.hpp"
#include "peersock/forward/poller.hpp"
#include "peersock/forward/udp_flows.hpp"
#include "peersock/glib/raii.hpp"
#include "peersock/quic/endpoint.hpp"

namespace peersock::forward {

// Per direction: "out" is local -> peer, "in" is peer -> local.
struct UdpCounts {
  uint64_t out = 0, out_bytes = 0;  // read locally and queued for the peer
  uint64_t in = 0, in_bytes = 0;    // from the peer, written to a local socket
  uint64_t out_dropped = 0;         // too large for the path, send queue full, lost on the way
  uint64_t in_dropped = 0;          // unknown flow, bad header, local socket full or failing
  size_t flows = 0;
  size_t max_payload = 0;  // the largest local datagram the path carries now (0: not started)
};

class UdpRelay final : private Poller::Handler {
 public:
  // listen-udp binds ADDRESS:PORT now. Errors: UsageError for an address
  // that is not numeric; Error(local) when it cannot be bound (port in use).
  // connect-udp does nothing until start().
  UdpRelay(const LocalEnd& end, std::function<void()> wants_io, std::function<void(std::exception_ptr)> failed);
  ~UdpRelay() override;
  UdpRelay(const UdpRelay&) = delete;
  UdpRelay& operator=(const UdpRelay&) = delete;

  // "127.0.0.1:5353" (listen-udp), for messages.
  const std::string& description() const { return description_; }

  // Authenticated: datagrams flow from now on. connect-udp resolves its
  // target here (once: the flows of a session all go to one address).
  // Errors: Error(local) when the target does not resolve; Error(protocol)
  // when the peer did not agree to DATAGRAM frames.
  void start(quic::Endpoint& endpoint);
  // After every QUIC run: delivers what arrived.
  void after_quic_run();
  void close();
  UdpCounts counts() const;

 private:
  void on_ready(int fd, bool readable, bool writable) override;
  template <typename F>
  void guarded(F&& f);
  void read_local(int fd);
  void set_reading(bool on);
  void to_peer(uint64_t flow, std::span<uint8_t> buffer, size_t payload_offset, size_t length);
  void deliver(std::span<const uint8_t> datagram, quic::Timestamp now);
  int flow_socket(uint64_t flow, quic::Timestamp now);
  void close_flow(uint64_t flow);
  static gboolean on_tick(gpointer self);
  void expire(quic::Timestamp now);

  bool listen_;
  udp::FlowLimits limits_;
  std::string target_;  // connect-udp: HOST:PORT
  std::function<void()> wants_io_;
  std::function<void(std::exception_ptr)> failed_;
  std::string description_;
  int listen_fd_ = -1;  // listen-udp's socket
  quic::Endpoint* endpoint_ = nullptr;
  bool stopped_ = false;
  bool reading_paused_ = false;  // the send queue is nearly full: the kernel's buffer holds the rest
  Poller poller_;
  glib::SourceId tick_;
  std::vector<uint8_t> buffer_;  // one datagram with room for the header in front

  // listen-udp
  std::optional<udp::ListenFlows> listen_flows_;
  // connect-udp: the target and one connected socket per flow
  sockaddr_storage target_address_{};
  socklen_t target_length_ = 0;
  std::optional<udp::FlowTable> connect_flows_;
  std::unordered_map<uint64_t, int> socket_of_;
  std::unordered_map<int, uint64_t> flow_of_;

  UdpCounts counts_;
  uint64_t local_too_large_ = 0;  // read locally, over the path's limit
};

}  // namespace peersock::forward

// listen-udp / connect-udp: local datagrams <-> QUIC DATAGRAM frames
// (udp_relay.hpp).
#include "peersock/forward/udp_relay.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <unistd.h>

#include <fmt/core.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "peersock/c_boundary.hpp"
#include "peersock/error.hpp"
#include "peersock/log.hpp"
#include "peersock/quic/driver.hpp"

namespace peersock::forward {

using log::Layer;

namespace {

// Datagrams read from one socket per wake-up at most, so that one busy
// client cannot keep the loop from QUIC (and from the other sockets); the
// level-triggered poller comes back for the rest.
constexpr int kReadsPerWakeup = 256;
// The largest UDP payload; the buffer has room for the flow header in front.
constexpr size_t kMaxUdpPayload = 65535;
// Socket buffers: a burst of a few thousand full-size datagrams waits in the
// kernel instead of being dropped there (the kernel caps it at rmem_max /
// wmem_max without privileges).
constexpr int kSocketBuffer = 4 << 20;
// Local sockets are not read while the DATAGRAM send queue holds more than
// 3/4 of its bound, until it is below 1/4: offered more than the path
// carries, reading only to drop at the full queue took the loop's time from
// QUIC (acknowledgements waited, the congestion window shrank). Measured
// with iperf3 -u at 1000 Mbit/s offered through the tunnel on a veth pair:
// 100 Mbit/s arrived before (82 % loss), and at 500 Mbit/s 276.
constexpr size_t kPauseAt = quic::kMaxDatagramQueue * 3 / 4;
constexpr size_t kResumeAt = quic::kMaxDatagramQueue / 4;

udp::Source source_of(const sockaddr_storage& ss) {
  udp::Source s;
  s.family = ss.ss_family;
  if (ss.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(ss);
    std::memcpy(s.address.data(), &in.sin_addr, 4);
    s.port = ntohs(in.sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(ss);
    std::memcpy(s.address.data(), &in6.sin6_addr, 16);
    s.port = ntohs(in6.sin6_port);
  }
  return s;
}

socklen_t sockaddr_of(const udp::Source& s, sockaddr_storage& ss) {
  std::memset(&ss, 0, sizeof ss);
  if (s.family == AF_INET) {
    auto& in = reinterpret_cast<sockaddr_in&>(ss);
    in.sin_family = AF_INET;
    std::memcpy(&in.sin_addr, s.address.data(), 4);
    in.sin_port = htons(s.port);
    return sizeof in;
  }
  auto& in6 = reinterpret_cast<sockaddr_in6&>(ss);
  in6.sin6_family = AF_INET6;
  std::memcpy(&in6.sin6_addr, s.address.data(), 16);
  in6.sin6_port = htons(s.port);
  return sizeof in6;
}

void enlarge_buffers(int fd) {
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kSocketBuffer, sizeof kSocketBuffer);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kSocketBuffer, sizeof kSocketBuffer);
}

// A send that failed for want of room is a dropped datagram, as the kernel
// itself drops when a UDP socket's buffer is full.
bool transient(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS || err == ECONNREFUSED; }

}  // namespace

UdpRelay::UdpRelay(const LocalEnd& end, std::function<void()> wants_io, std::function<void(std::exception_ptr)> failed)
    : listen_(std::holds_alternative<ListenUdp>(end)),
      wants_io_(std::move(wants_io)),
      failed_(std::move(failed)),
      buffer_(udp::kMaxHeader + kMaxUdpPayload + 1) {
  if (const auto* l = std::get_if<ListenUdp>(&end)) {
    limits_ = l->limits;
    addrinfo hints{};
    hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
    hints.ai_socktype = SOCK_DGRAM;
    addrinfo* result = nullptr;
    const std::string port_text = std::to_string(l->port);
    if (getaddrinfo(l->bind_address.c_str(), port_text.c_str(), &hints, &result) != 0 || result == nullptr)
      throw UsageError(fmt::format("--bind: '{}' is not a numeric IP address", l->bind_address));
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(result, freeaddrinfo);
    listen_fd_ = socket(result->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) throw Error(ExitCode::local, fmt::format("cannot create a socket: {}", g_strerror(errno)));
    if (bind(listen_fd_, result->ai_addr, result->ai_addrlen) != 0) {
      const int err = errno;
      ::close(listen_fd_);
      listen_fd_ = -1;
      throw Error(ExitCode::local,
                  fmt::format("cannot listen on {}:{} (UDP): {}", l->bind_address, l->port, g_strerror(err)));
    }
    enlarge_buffers(listen_fd_);
    description_ = fmt::format("{}:{}", l->bind_address, l->port);
    listen_flows_.emplace(limits_);
  } else {
    const auto& c = std::get<ConnectUdp>(end);
    limits_ = c.limits;
    target_ = c.target;
    connect_flows_.emplace(limits_);
  }
}

UdpRelay::~UdpRelay() {
  tick_.reset();
  for (auto& [flow, fd] : socket_of_) {
    poller_.set(fd, false, false, this);
    ::close(fd);
  }
  if (listen_fd_ >= 0) {
    poller_.set(listen_fd_, false, false, this);
    ::close(listen_fd_);
  }
}

template <typename F>
void UdpRelay::guarded(F&& f) {
  try {
    f();
  } catch (...) {
    if (failed_) failed_(std::current_exception());
  }
}

void UdpRelay::start(quic::Endpoint& endpoint) {
  endpoint_ = &endpoint;
  if (!endpoint.datagrams_enabled())
    throw CounterpartyError("the other side did not enable QUIC DATAGRAM frames for UDP");
  if (!listen_) {
    const auto colon = target_.rfind(':');
    std::string host = target_.substr(0, colon), port = target_.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    addrinfo hints{};
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* result = nullptr;
    const int rv = getaddrinfo(host.c_str(), port.c_str(), &hints, &result);
    if (rv != 0 || result == nullptr)
      throw Error(ExitCode::local, fmt::format("cannot resolve {}: {}", target_, gai_strerror(rv)));
    std::memcpy(&target_address_, result->ai_addr, result->ai_addrlen);
    target_length_ = static_cast<socklen_t>(result->ai_addrlen);
    freeaddrinfo(result);
  }
  endpoint.accept_datagrams(true);
  if (listen_fd_ >= 0) poller_.set(listen_fd_, true, false, this);
  // Idle flows are looked for a few times per idle period (at most once a
  // second): a flow ends between idle and idle * 1.25 after its last datagram.
  const guint interval_ms = static_cast<guint>(std::clamp<uint64_t>(limits_.idle_ns / 4'000'000, 50, 1000));
  tick_ = g_timeout_add(interval_ms, &UdpRelay::on_tick, this);
  log::debug(Layer::forward, "UDP: datagrams up to {} bytes on this path", endpoint.max_datagram_payload());
}

void UdpRelay::close() {
  if (stopped_) return;
  stopped_ = true;
  tick_.reset();
  if (listen_fd_ >= 0) poller_.set(listen_fd_, false, false, this);
  for (auto& [flow, fd] : socket_of_) poller_.set(fd, false, false, this);
  if (endpoint_) endpoint_->accept_datagrams(false);
}

void UdpRelay::on_ready(int fd, bool readable, bool) {
  if (!readable || stopped_) return;
  guarded([&] { read_local(fd); });
}

// A local socket has datagrams: the listen socket (each source address is
// a flow) or one flow's socket on the connect side.
void UdpRelay::read_local(int fd) {
  const quic::Timestamp now = quic::now();
  const size_t max = endpoint_->max_datagram_payload();
  bool queued = false;
  for (int i = 0; i < kReadsPerWakeup; ++i) {
    sockaddr_storage from{};
    socklen_t from_length = sizeof from;
    uint8_t* payload = buffer_.data() + udp::kMaxHeader;
    const ssize_t n =
        recvfrom(fd, payload, kMaxUdpPayload + 1, MSG_TRUNC, reinterpret_cast<sockaddr*>(&from), &from_length);
    if (n < 0) {
      if (errno == EINTR) continue;
      // EAGAIN: all read. ECONNREFUSED on a flow socket: the target sent
      // ICMP port unreachable for an earlier datagram; the flow stays.
      break;
    }
    uint64_t flow = 0;
    if (fd == listen_fd_) {
      const udp::ListenFlows::Assigned a = listen_flows_->flow_for(source_of(from), now);
      if (a.evicted)
        log::debug(Layer::forward, "UDP: flow limit ({}) reached, the oldest flow ends", limits_.max_flows);
      flow = a.id;
    } else {
      auto it = flow_of_.find(fd);
      if (it == flow_of_.end()) break;
      flow = it->second;
      connect_flows_->touch(flow, now);
    }
    const auto length = static_cast<size_t>(n);
    // The flow header goes in front; it takes 1 to 8 of the payload's room.
    std::array<uint8_t, udp::kMaxHeader> header{};
    const size_t header_length = udp::encode_header(flow, header);
    if (length + header_length > max) {
      ++local_too_large_;
      continue;
    }
    uint8_t* start = payload - header_length;
    std::memcpy(start, header.data(), header_length);
    const quic::DatagramResult r = endpoint_->send_datagram({start, header_length + length});
    if (r == quic::DatagramResult::queued) {
      ++counts_.out;
      counts_.out_bytes += length;
      queued = true;
    }
  }
  if (queued && wants_io_) wants_io_();
  if (endpoint_->datagrams_unsent() >= kPauseAt) set_reading(false);
}

void UdpRelay::set_reading(bool on) {
  if (reading_paused_ == !on || stopped_) return;
  reading_paused_ = !on;
  if (listen_fd_ >= 0) poller_.set(listen_fd_, on, false, this);
  for (auto& [flow, fd] : socket_of_) poller_.set(fd, on, false, this);
}

void UdpRelay::after_quic_run() {
  if (!endpoint_ || stopped_) return;
  const quic::Timestamp now = quic::now();
  while (auto datagram = endpoint_->take_datagram()) deliver(*datagram, now);
  if (reading_paused_ && endpoint_->datagrams_unsent() < kResumeAt) set_reading(true);
}

void UdpRelay::deliver(std::span<const uint8_t> datagram, quic::Timestamp now) {
  const auto header = udp::decode_header(datagram);
  if (!header) {
    ++counts_.in_dropped;
    return;
  }
  const std::span<const uint8_t> payload = datagram.subspan(header->length);
  ssize_t sent = -1;
  if (listen_) {
    const auto client = listen_flows_->reply_to(header->flow_id, now);
    if (!client) {  // the flow ended here (idle, evicted) or never was
      ++counts_.in_dropped;
      return;
    }
    sockaddr_storage to{};
    const socklen_t to_length = sockaddr_of(*client, to);
    sent =
        sendto(listen_fd_, payload.data(), payload.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&to), to_length);
  } else {
    const int fd = flow_socket(header->flow_id, now);
    if (fd < 0) {
      ++counts_.in_dropped;
      return;
    }
    sent = send(fd, payload.data(), payload.size(), MSG_DONTWAIT);
  }
  if (sent < 0) {
    const int err = errno;
    ++counts_.in_dropped;
    if (!transient(err)) log::debug(Layer::forward, "UDP: local send failed: {}", g_strerror(err));
    return;
  }
  ++counts_.in;
  counts_.in_bytes += payload.size();
}

// connect-udp: the flow's socket, connected to the target; a new flow gets
// a new one (its own source port, so the target can tell flows apart).
// -1 when no socket can be made (out of descriptors): the datagram is
// dropped and the next one tries again.
int UdpRelay::flow_socket(uint64_t flow, quic::Timestamp now) {
  const udp::FlowTable::Touched t = connect_flows_->touch(flow, now);
  if (t.evicted) {
    log::debug(Layer::forward, "UDP: flow limit ({}) reached, the oldest flow ends", limits_.max_flows);
    close_flow(*t.evicted);
  }
  if (!t.fresh) {
    auto it = socket_of_.find(flow);
    if (it != socket_of_.end()) return it->second;
  }
  const int fd = socket(target_address_.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, reinterpret_cast<const sockaddr*>(&target_address_), target_length_) != 0) {
    log::debug(Layer::forward, "UDP: cannot open a socket to {}: {}", target_, g_strerror(errno));
    if (fd >= 0) ::close(fd);
    connect_flows_->erase(flow);
    return -1;
  }
  enlarge_buffers(fd);
  socket_of_[flow] = fd;
  flow_of_[fd] = flow;
  poller_.set(fd, !reading_paused_, false, this);
  return fd;
}

void UdpRelay::close_flow(uint64_t flow) {
  auto it = socket_of_.find(flow);
  if (it == socket_of_.end()) return;
  poller_.set(it->second, false, false, this);
  ::close(it->second);
  flow_of_.erase(it->second);
  socket_of_.erase(it);
}

gboolean UdpRelay::on_tick(gpointer self) {
  return c_boundary("the UDP flow expiry", [&]() -> gboolean {
    auto* r = static_cast<UdpRelay*>(self);
    r->guarded([&] { r->expire(quic::now()); });
    return G_SOURCE_CONTINUE;
  });
}

void UdpRelay::expire(quic::Timestamp now) {
  if (listen_flows_) {
    const auto ended = listen_flows_->expire(now);
    if (!ended.empty()) log::debug(Layer::forward, "UDP: {} idle flows ended", ended.size());
  }
  if (connect_flows_) {
    const auto ended = connect_flows_->expire(now);
    for (uint64_t flow : ended) close_flow(flow);
    if (!ended.empty()) log::debug(Layer::forward, "UDP: {} idle flows ended", ended.size());
  }
}

UdpCounts UdpRelay::counts() const {
  UdpCounts c = counts_;
  c.flows = listen_flows_ ? listen_flows_->size() : connect_flows_->size();
  if (endpoint_) {
    const quic::DatagramStats& s = endpoint_->datagram_stats();
    c.out_dropped = local_too_large_ + s.too_large + s.queue_full + s.lost;
    c.in_dropped += s.rx_dropped;
    c.max_payload = endpoint_->max_datagram_payload();
    // The largest local datagram: the path's limit less a 2-byte header (flows
    // 64 to 16383; the first 64 have a byte more, later ones 2 bytes less).
    c.max_payload = c.max_payload > 2 ? c.max_payload - 2 : 0;
  }
  return c;
}

}  // namespace peersock::forward

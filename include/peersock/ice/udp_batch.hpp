// Sends a batch of datagrams on the selected ICE pair's own UDP socket with
// as few system calls as the kernel allows, instead of one libnice call and
// one sendmsg per datagram.
//
// Why: a GiB is about 740 000 QUIC datagrams of 1452 bytes; one sendmsg each
// was the largest single cost of a bulk transfer (perf, with OpenSSL's QUIC:
// over half of the sending side's time in the kernel). With UDP generic
// segmentation offload
// (UDP_SEGMENT, Linux >= 4.18) one sendmsg carries a run of equal-sized
// datagrams, up to 64 KiB, and the kernel cuts it into datagrams once (or
// the NIC does). Without GSO, sendmmsg still saves the per-call cost.
//
// Only for direct paths (host or server-reflexive local candidate, UDP):
// what goes through a TURN relay needs libnice's TURN framing.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <span>

namespace peersock::ice {

class UdpBatchSender {
 public:
  // `fd`: the pair's local socket (not owned; the caller keeps it alive);
  // `to`: the remote candidate's address.
  // try_gso = false: sendmmsg only (tests of that path).
  UdpBatchSender(int fd, const sockaddr_storage& to, socklen_t to_len, bool try_gso = true)
      : fd_(fd), to_(to), to_len_(to_len), gso_(try_gso) {}

  // Sends the datagrams laid out back to back in `bytes`, sizes[i] each.
  // Returns false if the socket failed in a way that makes this sender
  // useless (the caller falls back to libnice for good); a full socket
  // buffer just drops the rest of the batch, as UDP would.
  bool send(std::span<const uint8_t> bytes, std::span<const size_t> sizes);

  bool gso() const { return gso_; }

 private:
  bool send_gso(const uint8_t* data, uint16_t segment, size_t count, size_t total, bool& dropped);
  bool send_each(std::span<const uint8_t> bytes, std::span<const size_t> sizes, bool& dropped);

  int fd_;
  sockaddr_storage to_;
  socklen_t to_len_;
  bool gso_;  // until the kernel says otherwise
};

}  // namespace peersock::ice

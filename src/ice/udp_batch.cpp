#include "peersock/ice/udp_batch.hpp"

#include <errno.h>
#include <glib.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "peersock/log.hpp"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

namespace peersock::ice {
namespace {

// The kernel's limits for one GSO send: 64 segments, and the UDP payload
// of the whole super-datagram must fit in 16 bits (minus headers).
constexpr size_t kMaxSegments = 64;
constexpr size_t kMaxGsoBytes = 65000;
constexpr size_t kMaxMmsg = 64;

bool transient(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS || err == EINTR; }

}  // namespace

bool UdpBatchSender::send_gso(const uint8_t* data, uint16_t segment, size_t count, size_t total, bool& dropped) {
  iovec iov{const_cast<uint8_t*>(data), total};
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(uint16_t))> control{};
  msghdr msg{};
  msg.msg_name = &to_;
  msg.msg_namelen = to_len_;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (count > 1) {
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_UDP;
    cm->cmsg_type = UDP_SEGMENT;
    cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    std::memcpy(CMSG_DATA(cm), &segment, sizeof segment);
  }
  if (sendmsg(fd_, &msg, 0) >= 0) return true;
  if (transient(errno)) {
    dropped = true;
    return true;
  }
  if (count > 1 && (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT || errno == EOPNOTSUPP)) {
    // No GSO here (old kernel, or a device without checksum offload).
    log::debug(log::Layer::ice, "UDP GSO unavailable ({}); sending datagrams one by one", g_strerror(errno));
    gso_ = false;
    return false;  // the caller resends this run without GSO
  }
  log::debug(log::Layer::ice, "direct UDP send failed: {}", g_strerror(errno));
  return false;
}

bool UdpBatchSender::send_each(std::span<const uint8_t> bytes, std::span<const size_t> sizes, bool& dropped) {
  std::array<mmsghdr, kMaxMmsg> msgs{};
  std::array<iovec, kMaxMmsg> iovs{};
  size_t off = 0, i = 0;
  while (i < sizes.size()) {
    size_t n = std::min(kMaxMmsg, sizes.size() - i);
    for (size_t k = 0; k < n; ++k) {
      iovs[k] = {const_cast<uint8_t*>(bytes.data() + off), sizes[i + k]};
      off += sizes[i + k];
      msgs[k] = {};
      msgs[k].msg_hdr.msg_name = &to_;
      msgs[k].msg_hdr.msg_namelen = to_len_;
      msgs[k].msg_hdr.msg_iov = &iovs[k];
      msgs[k].msg_hdr.msg_iovlen = 1;
    }
    int sent = sendmmsg(fd_, msgs.data(), static_cast<unsigned>(n), 0);
    if (sent < 0) {
      if (transient(errno)) {
        dropped = true;
        return true;
      }
      log::debug(log::Layer::ice, "direct UDP send failed: {}", g_strerror(errno));
      return false;
    }
    if (static_cast<size_t>(sent) < n) {
      dropped = true;  // the socket buffer filled up: the rest is lost, as UDP would
      return true;
    }
    i += n;
  }
  return true;
}

bool UdpBatchSender::send(std::span<const uint8_t> bytes, std::span<const size_t> sizes) {
  bool dropped = false;
  if (!gso_) return send_each(bytes, sizes, dropped);
  size_t off = 0, i = 0;
  while (i < sizes.size() && !dropped) {
    // A run: datagrams of one size, the last one possibly shorter (GSO's rule).
    const uint16_t segment = static_cast<uint16_t>(sizes[i]);
    size_t count = 1, total = segment;
    while (i + count < sizes.size() && count < kMaxSegments && total + sizes[i + count] <= kMaxGsoBytes &&
           sizes[i + count] <= segment) {
      total += sizes[i + count];
      ++count;
      if (sizes[i + count - 1] < segment) break;
    }
    if (!send_gso(bytes.data() + off, segment, count, total, dropped)) {
      if (gso_) return false;
      // GSO just turned out to be unavailable: the rest one by one.
      return send_each(bytes.subspan(off), sizes.subspan(i), dropped);
    }
    off += total;
    i += count;
  }
  return true;
}

}  // namespace peersock::ice

// UdpBatchSender (ice/udp_batch.hpp) against real UDP sockets on 127.0.0.1:
// every datagram of a batch arrives separately, whole and in order, with GSO
// runs cut at size changes, and with the sendmmsg fallback.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "peersock/ice/udp_batch.hpp"

namespace peersock::ice {
namespace {

struct Fd {
  int fd;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

std::vector<std::vector<uint8_t>> send_and_receive(const std::vector<size_t>& sizes, bool gso) {
  Fd rx(socket(AF_INET, SOCK_DGRAM, 0)), tx(socket(AF_INET, SOCK_DGRAM, 0));
  int big = 4 << 20;
  setsockopt(rx.fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(rx.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  getsockname(rx.fd, reinterpret_cast<sockaddr*>(&addr), &len);
  sockaddr_storage to{};
  std::memcpy(&to, &addr, sizeof addr);

  std::vector<uint8_t> bytes;
  for (size_t i = 0; i < sizes.size(); ++i) {
    for (size_t k = 0; k < sizes[i]; ++k) bytes.push_back(static_cast<uint8_t>(i * 31 + k));
  }
  UdpBatchSender sender(tx.fd, to, sizeof addr, gso);
  EXPECT_TRUE(sender.send(bytes, sizes));
  EXPECT_EQ(sender.gso(), gso);  // Linux >= 4.18 on loopback: GSO must have worked

  std::vector<std::vector<uint8_t>> got;
  std::vector<uint8_t> buf(65536);
  for (;;) {
    pollfd p{rx.fd, POLLIN, 0};
    if (poll(&p, 1, got.size() == sizes.size() ? 50 : 2000) <= 0) break;  // the last: look for extras
    ssize_t n = recv(rx.fd, buf.data(), buf.size(), 0);
    if (n < 0) break;
    got.emplace_back(buf.begin(), buf.begin() + n);
  }
  return got;
}

void expect_batch(const std::vector<size_t>& sizes, bool gso) {
  auto got = send_and_receive(sizes, gso);
  ASSERT_EQ(got.size(), sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    ASSERT_EQ(got[i].size(), sizes[i]) << "datagram " << i;
    for (size_t k = 0; k < sizes[i]; ++k) ASSERT_EQ(got[i][k], static_cast<uint8_t>(i * 31 + k)) << i << "/" << k;
  }
}

// Runs of 1200 (longer than one GSO send), shorter tails, lone datagrams,
// a larger one after smaller ones.
const std::vector<size_t> kMixed = [] {
  std::vector<size_t> v(70, 1200);
  v.push_back(500);
  v.push_back(1200);
  v.push_back(1200);
  v.push_back(33);
  v.push_back(1);
  v.push_back(1400);
  for (int i = 0; i < 5; ++i) v.push_back(1200);
  return v;
}();

TEST(UdpBatchSender, GsoKeepsEveryDatagramWholeAndInOrder) { expect_batch(kMixed, true); }
TEST(UdpBatchSender, SendmmsgKeepsEveryDatagramWholeAndInOrder) { expect_batch(kMixed, false); }
TEST(UdpBatchSender, SingleDatagram) { expect_batch({1200}, true); }

}  // namespace
}  // namespace peersock::ice

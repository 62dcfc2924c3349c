// nfq-delay: constant delay and random loss for the NAT lab, through NFQUEUE.
//
// This kernel has no sch_netem, so `tc qdisc ... netem delay` is not
// available. Instead the lab sends packets to an NFQUEUE (iptables -j NFQUEUE)
// and this program holds each one for DELAY ms before accepting it, dropping
// a LOSS percentage at random. One constant delay keeps the order.
//
//   nfq-delay --queue N --delay-ms D [--loss-percent P] [--seed S]
//
// Prints "ready" on stdout once bound to the queue. Runs until killed.
// Errors: a message on stderr and exit 1 (e.g. the queue is taken, no root).
#include <arpa/inet.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <poll.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <random>
#include <string>

namespace {

using Clock = std::chrono::steady_clock;

struct Held {
  uint32_t id;
  Clock::time_point release;
};

struct State {
  nfq_q_handle* queue = nullptr;
  std::chrono::milliseconds delay{0};
  double loss = 0;  // 0..1
  std::mt19937_64 rng;
  std::deque<Held> held;
  unsigned long long dropped = 0, passed = 0;
};

int on_packet(nfq_q_handle* qh, nfgenmsg*, nfq_data* data, void* arg) {
  auto* s = static_cast<State*>(arg);
  nfqnl_msg_packet_hdr* hdr = nfq_get_msg_packet_hdr(data);
  if (hdr == nullptr) return 0;
  uint32_t id = ntohl(hdr->packet_id);
  if (s->loss > 0 && std::uniform_real_distribution<double>(0, 1)(s->rng) < s->loss) {
    ++s->dropped;
    return nfq_set_verdict(qh, id, NF_DROP, 0, nullptr);
  }
  if (s->delay.count() == 0) {
    ++s->passed;
    return nfq_set_verdict(qh, id, NF_ACCEPT, 0, nullptr);
  }
  s->held.push_back({id, Clock::now() + s->delay});
  return 0;
}

void release_due(State& s) {
  auto now = Clock::now();
  while (!s.held.empty() && s.held.front().release <= now) {
    nfq_set_verdict(s.queue, s.held.front().id, NF_ACCEPT, 0, nullptr);
    s.held.pop_front();
    ++s.passed;
  }
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "nfq-delay: %s\n", what.c_str());
  std::exit(1);
}

long number(const char* flag, const char* text, long lo, long hi) {
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) {
    die(std::string(flag) + ": '" + text + "' is not a number from " + std::to_string(lo) + " to " +
        std::to_string(hi));
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  State s;
  long queue_num = -1, seed = 1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) die("option " + a + " needs a value");
    const char* v = argv[++i];
    if (a == "--queue") {
      queue_num = number("--queue", v, 0, 65535);
    } else if (a == "--delay-ms") {
      s.delay = std::chrono::milliseconds(number("--delay-ms", v, 0, 60000));
    } else if (a == "--loss-percent") {
      s.loss = static_cast<double>(number("--loss-percent", v, 0, 100)) / 100.0;
    } else if (a == "--seed") {
      seed = number("--seed", v, 0, 1L << 30);
    } else {
      die("unknown option '" + a + "'");
    }
  }
  if (queue_num < 0) die("--queue is required");
  s.rng.seed(static_cast<uint64_t>(seed));

  nfq_handle* h = nfq_open();
  if (h == nullptr) die(std::string("nfq_open: ") + std::strerror(errno));
  s.queue = nfq_create_queue(h, static_cast<uint16_t>(queue_num), &on_packet, &s);
  if (s.queue == nullptr) die("cannot bind NFQUEUE " + std::to_string(queue_num) + ": " + std::strerror(errno));
  // Only the verdict matters: copy no payload. Room for a second of traffic.
  if (nfq_set_mode(s.queue, NFQNL_COPY_META, 0) < 0) die("nfq_set_mode failed");
  nfq_set_queue_maxlen(s.queue, 1 << 16);
  int fd = nfq_fd(h);
  int bufsize = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsize, sizeof bufsize);
  std::printf("ready\n");
  std::fflush(stdout);

  char buf[65536] __attribute__((aligned));
  for (;;) {
    int timeout = -1;
    if (!s.held.empty()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(s.held.front().release - Clock::now());
      timeout = left.count() < 0 ? 0 : static_cast<int>(left.count());
    }
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, timeout);
    if (r < 0 && errno != EINTR) die(std::string("poll: ") + std::strerror(errno));
    if (r > 0) {
      for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0) {
          // ENOBUFS: the kernel dropped queue messages; those packets are lost
          // (as on a congested link). Keep going.
          if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ENOBUFS) break;
          die(std::string("recv: ") + std::strerror(errno));
        }
        nfq_handle_packet(h, buf, static_cast<int>(n));
      }
    }
    release_due(s);
  }
}

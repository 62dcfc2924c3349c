// forward: the Poller, the unix listener, and Pump between local sockets and
// a real QUIC stream (an ngtcp2 client/server pair in virtual time,
// support/quic_pair.hpp, plus the session's part: the Poller on the default
// GLib context and polling the pumps whose streams take_ready() reports).
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "peersock/error.hpp"
#include "peersock/forward/local_socket.hpp"
#include "peersock/forward/poller.hpp"
#include "peersock/forward/pump.hpp"
#include "peersock/quic/stream.hpp"
#include "support/quic_pair.hpp"

namespace peersock::forward {
namespace {

struct Recorder : Poller::Handler {
  int calls = 0;
  bool readable = false, writable = false;
  void on_ready(int, bool r, bool w) override {
    ++calls;
    readable = r;
    writable = w;
  }
};

// Runs the default main context until nothing is ready.
void drain_loop() {
  for (int i = 0; i < 10 && g_main_context_iteration(nullptr, FALSE); ++i) {
  }
}

TEST(Poller, ReportsOnlyWhatIsWanted) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  Poller poller;
  Recorder rec;
  poller.set(sv[0], true, false, &rec);
  drain_loop();
  EXPECT_EQ(rec.calls, 0) << "nothing to read yet";
  ASSERT_EQ(write(sv[1], "x", 1), 1);
  drain_loop();
  EXPECT_GT(rec.calls, 0);
  EXPECT_TRUE(rec.readable);
  EXPECT_FALSE(rec.writable);

  rec = Recorder{};
  poller.set(sv[0], false, true, &rec);  // writable at once
  drain_loop();
  EXPECT_GT(rec.calls, 0);
  EXPECT_FALSE(rec.readable);
  EXPECT_TRUE(rec.writable);

  rec = Recorder{};
  poller.set(sv[0], false, false, &rec);
  drain_loop();
  EXPECT_EQ(rec.calls, 0) << "removed fds are not reported";
  close(sv[0]);
  close(sv[1]);
}

TEST(Poller, RegularFilesFallBackToAGlibWatch) {
  gchar* dir = g_dir_make_tmp("peersock-fwd-XXXXXX", nullptr);
  ASSERT_NE(dir, nullptr);
  std::string path = std::string(dir) + "/f";
  std::ofstream(path) << "data";
  int fd = open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  Poller poller;
  Recorder rec;
  poller.set(fd, true, false, &rec);  // epoll refuses regular files (EPERM)
  drain_loop();
  EXPECT_GT(rec.calls, 0);
  EXPECT_TRUE(rec.readable);
  poller.set(fd, false, false, &rec);
  close(fd);
  unlink(path.c_str());
  g_rmdir(dir);
  g_free(dir);
}

class UnixListenerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = g_dir_make_tmp("peersock-unix-XXXXXX", nullptr);
    ASSERT_NE(dir_, nullptr);
    path_ = std::string(dir_) + "/s.sock";
  }
  void TearDown() override {
    unlink(path_.c_str());
    g_rmdir(dir_);
    g_free(dir_);
  }
  gchar* dir_ = nullptr;
  std::string path_;
};

TEST_F(UnixListenerTest, CreatesAndRemovesTheSocket) {
  {
    auto l = LocalListener::unix_socket(path_);
    struct stat st {};
    ASSERT_EQ(lstat(path_.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(l.description(), path_);
  }
  struct stat st {};
  EXPECT_NE(lstat(path_.c_str(), &st), 0) << "the path is removed with the listener";
}

TEST_F(UnixListenerTest, RefusesARegularFileAndKeepsIt) {
  std::ofstream(path_) << "precious";
  try {
    LocalListener::unix_socket(path_);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::local);
    EXPECT_NE(std::string(e.what()).find("not a socket"), std::string::npos) << e.what();
  }
  std::ifstream in(path_);
  std::string text;
  in >> text;
  EXPECT_EQ(text, "precious");
}

TEST_F(UnixListenerTest, RefusesALiveSocketAndReplacesAStaleOne) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path_.copy(addr.sun_path, path_.size());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  EXPECT_THROW(LocalListener::unix_socket(path_), Error);
  close(fd);  // the file stays: a stale socket
  EXPECT_NO_THROW({ auto l = LocalListener::unix_socket(path_); });
}

TEST(UnixPath, TooLongOrEmptyIsAUsageError) {
  EXPECT_THROW(check_unix_path(std::string(max_unix_path() + 1, 'x'), "listen-unix"), UsageError);
  EXPECT_THROW(check_unix_path("", "listen-unix"), UsageError);
  EXPECT_NO_THROW(check_unix_path(std::string(max_unix_path(), 'x'), "listen-unix"));
}

// ---- Pump over a real QUIC pair ------------------------------------------------

using sim::Bytes;
using sim::kMs;
using sim::kSec;
using sim::Timestamp;

// An fd closed with the test.
struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(Fd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd, o.fd);
    return *this;
  }
  ~Fd() {
    if (fd >= 0) close(fd);
  }
  int release() { return std::exchange(fd, -1); }
};

// The two ends of one local connection: the test plays the local program on
// `app`; the pump gets `pump` (and owns it).
struct LocalPair {
  Fd app;
  int pump = -1;
};

LocalPair socket_pair() {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) ADD_FAILURE() << "socketpair";
  return {Fd(sv[0]), sv[1]};
}

// TCP over loopback, for what only TCP has: a real RST.
LocalPair tcp_pair() {
  Fd listener(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(listener.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(listener.fd, 1) != 0 ||
      getsockname(listener.fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ADD_FAILURE() << "loopback listener: " << std::strerror(errno);
    return {};
  }
  Fd app(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (connect(app.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) ADD_FAILURE() << "connect";
  int pump = accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (pump < 0) ADD_FAILURE() << "accept";
  fcntl(app.fd, F_SETFL, fcntl(app.fd, F_GETFL) | O_NONBLOCK);
  return {std::move(app), pump};
}

// Deterministic stream content: byte i of a transfer, so that a lost,
// repeated or misplaced byte shows.
uint8_t content(uint64_t i, uint8_t salt) { return static_cast<uint8_t>((i * 131) ^ (i >> 9) ^ salt); }

// The local program on one end: writes `to_send` bytes of content (then, if
// asked, shuts its side down) and reads what comes, checking it.
struct App {
  int fd = -1;
  uint8_t send_salt = 0, recv_salt = 0;
  uint64_t to_send = 0, sent = 0;
  bool shut_after = true, shut = false;
  uint64_t received = 0;
  bool eof = false, reading = true;
  int read_error = 0;
  bool bad_byte = false;
  std::vector<uint8_t> out;  // generated, not yet written
  size_t out_at = 0;
  // Writing to a pipe instead of to `fd` (stdin of a stdio pump): ending it
  // closes the pipe.
  int pipe_fd = -1;

  void run() {
    while (sent < to_send && !shut) {
      if (out_at == out.size()) {  // the next piece of content
        out.resize(static_cast<size_t>(std::min<uint64_t>(65536, to_send - sent)));
        for (size_t i = 0; i < out.size(); ++i) out[i] = content(sent + i, send_salt);
        out_at = 0;
      }
      ssize_t w = write(pipe_fd >= 0 ? pipe_fd : fd, out.data() + out_at, out.size() - out_at);
      if (w <= 0) break;
      sent += static_cast<uint64_t>(w);
      out_at += static_cast<size_t>(w);
    }
    uint8_t buf[65536];
    if (sent == to_send && shut_after && !shut) {
      if (pipe_fd >= 0) {
        close(std::exchange(pipe_fd, -1));
      } else {
        shutdown(fd, SHUT_WR);
      }
      shut = true;
    }
    while (reading && !eof && read_error == 0) {
      ssize_t r = read(fd, buf, sizeof buf);
      if (r > 0) {
        for (ssize_t i = 0; i < r; ++i) bad_byte |= buf[i] != content(received + static_cast<uint64_t>(i), recv_salt);
        received += static_cast<uint64_t>(r);
      } else if (r == 0) {
        eof = true;
      } else {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) read_error = errno;
        break;
      }
    }
  }
};

// A QUIC pair in virtual time and, around it, what a session provides its
// pumps: the Poller (GLib's default context), one Scratch, and a poll() for
// each pump whose stream take_ready() reports. The client's pump opens the
// stream; the server's pump is made when the stream arrives.
class PumpRig {
 public:
  static sim::PairOptions defaults() {
    sim::PairOptions o;
    o.up.delay = o.down.delay = 5 * kMs;
    // Local sockets move outside the QUIC clock: give them a turn at least
    // every millisecond of virtual time.
    o.max_step = 1 * kMs;
    return o;
  }
  explicit PumpRig(const sim::PairOptions& options = defaults()) : pair(options) {
    if (!pair.handshake()) ADD_FAILURE() << "no handshake";
  }
  ~PumpRig() {
    // Pumps first: they hold streams of the endpoints and watches in the poller.
    client_pump.reset();
    server_pump.reset();
  }

  PumpOptions options(int fd, bool is_socket = true) {
    PumpOptions o;
    o.read_fd = o.write_fd = fd;
    o.is_socket = is_socket;
    o.owns_fds = true;
    return o;
  }
  PumpEvents events(bool& finished, std::function<void(uint64_t)>& grant) {
    PumpEvents e;
    e.wants_io = [] {};  // the rig gives both endpoints a write pass every step
    e.finished = [&finished] { finished = true; };
    e.local_eof_without_fin = [this] { eof_without_fin = true; };
    e.grant = [&grant](uint64_t, uint64_t limit) {
      if (grant) grant(limit);
    };
    return e;
  }
  void start_client(PumpOptions o, CreditContext* credit = nullptr) {
    auto id = pair.client().open_stream();
    ASSERT_TRUE(id.has_value());
    client_pump = std::make_unique<Pump>(quic::Stream(pair.client(), *id), o, events(client_finished, client_grants),
                                         scratch, poller, credit);
    client_pump->poll();
  }
  // The server's pump takes `o` once the client's stream arrives.
  void expect_server(PumpOptions o, CreditContext* credit = nullptr) {
    server_options = o;
    server_credit = credit;
  }

  // One round of what a session does between QUIC runs.
  void service() {
    for (int i = 0; i < 1000 && g_main_context_iteration(nullptr, FALSE); ++i) {
    }
    if (!server_pump && server_options) {
      if (auto id = pair.server().accept_stream()) {
        server_pump = std::make_unique<Pump>(quic::Stream(pair.server(), *id), *server_options,
                                             events(server_finished, server_grants), scratch, poller, server_credit);
        server_pump->poll();
      }
    }
    for (int64_t id : pair.client().take_ready())
      if (client_pump && static_cast<uint64_t>(id) == client_pump->stream_id()) client_pump->poll();
    for (int64_t id : pair.server().take_ready())
      if (server_pump && static_cast<uint64_t>(id) == server_pump->stream_id()) server_pump->poll();
  }

  bool run_until(const std::function<bool()>& done, Timestamp budget = 30 * kSec) {
    return pair.run_until(
        [&] {
          service();
          return done();
        },
        budget);
  }

  sim::QuicPair pair;
  Poller poller;
  Scratch scratch;
  std::unique_ptr<Pump> client_pump, server_pump;
  bool client_finished = false, server_finished = false, eof_without_fin = false;
  // Where each pump's grants go (v3 credit); empty: dropped.
  std::function<void(uint64_t)> client_grants, server_grants;
  std::optional<PumpOptions> server_options;
  CreditContext* server_credit = nullptr;
};

TEST(Pump, HalfCloseEndsEachDirectionOnItsOwn) {
  PumpRig rig;
  LocalPair c = socket_pair(), s = socket_pair();
  rig.expect_server(rig.options(s.pump));
  rig.start_client(rig.options(c.pump));
  App client{c.app.fd, 1, 2, 300'000}, server{s.app.fd, 2, 1, 0};
  server.shut_after = false;  // it answers only after the request ended

  // The client's EOF becomes a FIN and then the server's local EOF...
  ASSERT_TRUE(rig.run_until([&] {
    client.run();
    server.run();
    return server.eof;
  })) << "server side got "
      << server.received << " of " << client.sent;
  EXPECT_EQ(server.received, 300'000u);
  EXPECT_FALSE(server.bad_byte);
  // ...while the other direction stays open.
  EXPECT_FALSE(rig.client_finished);
  EXPECT_FALSE(rig.server_finished);
  EXPECT_FALSE(client.eof);

  server.to_send = 200'000;
  server.shut_after = true;
  ASSERT_TRUE(rig.run_until([&] {
    client.run();
    server.run();
    return client.eof && rig.client_finished && rig.server_finished;
  })) << "client side got "
      << client.received << " of " << server.sent;
  EXPECT_EQ(client.received, 200'000u);
  EXPECT_FALSE(client.bad_byte);
  EXPECT_TRUE(rig.client_pump->clean());
  EXPECT_TRUE(rig.server_pump->clean());
  EXPECT_EQ(rig.client_pump->bytes_sent(), 300'000u);
  EXPECT_EQ(rig.client_pump->bytes_received(), 200'000u);
  EXPECT_EQ(rig.server_pump->bytes_sent(), 200'000u);
  EXPECT_EQ(rig.server_pump->bytes_received(), 300'000u);
  EXPECT_FALSE(rig.pair.client().closed().has_value());
}

TEST(Pump, LocalEofTowardsAPeerWithoutFinIsReportedNotSent) {
  PumpRig rig;
  LocalPair c = socket_pair(), s = socket_pair();
  rig.expect_server(rig.options(s.pump));
  PumpOptions o = rig.options(c.pump);
  o.peer_supports_fin = false;  // protocol v1
  rig.start_client(o);
  App client{c.app.fd, 1, 2, 1000}, server{s.app.fd, 2, 1, 0};
  server.shut_after = false;
  ASSERT_TRUE(rig.run_until([&] {
    client.run();
    server.run();
    return rig.eof_without_fin && server.received == 1000;
  }));
  rig.pair.run_for(1 * kSec, [&] {
    rig.service();
    server.run();
  });
  EXPECT_FALSE(server.eof) << "a FIN went to a peer that does not understand it";
}

TEST(Pump, StdioPipesHalfCloseWithoutSockets) {
  // The stdio pump: reads stdin, writes stdout, two pipes. The peer's FIN
  // closes "stdout" (replaced by /dev/null, so the fd number stays valid).
  PumpRig rig;
  int in[2], out[2];
  ASSERT_EQ(pipe2(in, O_CLOEXEC | O_NONBLOCK), 0);
  ASSERT_EQ(pipe2(out, O_CLOEXEC | O_NONBLOCK), 0);
  Fd stdout_reader(out[0]);
  LocalPair s = socket_pair();
  rig.expect_server(rig.options(s.pump));
  PumpOptions o;
  o.read_fd = in[0];
  o.write_fd = out[1];
  o.is_socket = false;
  o.owns_fds = true;
  rig.start_client(o);
  App client{stdout_reader.fd, 1, 2, 100'000}, server{s.app.fd, 2, 1, 50'000};
  client.pipe_fd = in[1];  // closed by the App once everything is written
  server.shut_after = true;
  ASSERT_TRUE(rig.run_until([&] {
    client.run();
    server.run();
    return client.eof && server.eof && rig.client_finished && rig.server_finished;
  })) << "stdin -> peer "
      << server.received << ", peer -> stdout " << client.received;
  EXPECT_EQ(server.received, 100'000u);
  EXPECT_EQ(client.received, 50'000u);
  EXPECT_FALSE(server.bad_byte || client.bad_byte);
  EXPECT_TRUE(rig.client_pump->clean());
  EXPECT_TRUE(rig.server_pump->clean());
}

class PumpReset : public ::testing::TestWithParam<quic::Role> {};

TEST_P(PumpReset, LocalResetBecomesStreamResetBecomesLocalReset) {
  PumpRig rig;
  LocalPair c = tcp_pair(), s = tcp_pair();
  ASSERT_GE(c.pump, 0);
  ASSERT_GE(s.pump, 0);
  rig.expect_server(rig.options(s.pump));
  rig.start_client(rig.options(c.pump));
  App client{c.app.fd, 1, 2, 5000}, server{s.app.fd, 2, 1, 5000};
  client.shut_after = server.shut_after = false;
  ASSERT_TRUE(rig.run_until([&] {
    client.run();
    server.run();
    return client.received == 5000 && server.received == 5000;
  }));

  const bool client_resets = GetParam() == quic::Role::client;
  Fd& resetting = client_resets ? c.app : s.app;
  App& other = client_resets ? server : client;
  // An abortive close: the pump's socket gets an RST.
  struct linger lg = {1, 0};
  ASSERT_EQ(setsockopt(resetting.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  resetting = Fd();
  ASSERT_TRUE(rig.run_until(
      [&] {
        other.run();
        return other.eof || other.read_error != 0;
      },
      5 * kSec));
  EXPECT_EQ(other.read_error, ECONNRESET) << "the far program saw a clean EOF instead of a reset";
  EXPECT_FALSE(other.eof);
  ASSERT_TRUE(rig.run_until([&] { return rig.client_finished && rig.server_finished; }, 5 * kSec));
  EXPECT_FALSE(rig.client_pump->clean());
  EXPECT_FALSE(rig.server_pump->clean());
  EXPECT_FALSE(rig.pair.client().closed().has_value()) << "a stream reset is not a connection error";
}

INSTANTIATE_TEST_SUITE_P(Pump, PumpReset, ::testing::Values(quic::Role::client, quic::Role::server),
                         [](const auto& info) {
                           return info.param == quic::Role::client ? "FromClient" : "FromServer";
                         });

TEST(Pump, AStalledLocalReaderHoldsTheSenderBackWithBoundedBuffers) {
  PumpRig rig;
  LocalPair c = socket_pair(), s = socket_pair();
  rig.expect_server(rig.options(s.pump));
  rig.start_client(rig.options(c.pump));
  App client{c.app.fd, 1, 2, 1ull << 40}, server{s.app.fd, 2, 1, 0};
  client.shut_after = server.shut_after = false;
  server.reading = false;  // the program on the server side stops reading

  rig.pair.run_for(5 * kSec, [&] {
    rig.service();
    client.run();
  });
  const uint64_t accepted = client.sent;
  rig.pair.run_for(5 * kSec, [&] {
    rig.service();
    client.run();
  });
  EXPECT_EQ(client.sent, accepted) << "the local writer is never held back";

  // Where the bytes are: local socket buffers, the pumps' own buffer (one
  // read at most), the endpoint's unsent bytes (512 KiB at most,
  // endpoint.cpp kMaxUnsent) and the stream's flow-control window at the
  // receiver (1 MiB at first, and it grows only while the reader keeps up).
  ASSERT_TRUE(rig.client_pump && rig.server_pump);
  int client_sndbuf = 0, server_sndbuf = 0;
  socklen_t len = sizeof(int);
  getsockopt(c.app.fd, SOL_SOCKET, SO_SNDBUF, &client_sndbuf, &len);
  getsockopt(s.pump, SOL_SOCKET, SO_SNDBUF, &server_sndbuf, &len);
  EXPECT_LE(rig.client_pump->buffered(), kChunkBytes);
  const quic::StreamState* tx = rig.pair.client().stream(static_cast<int64_t>(rig.client_pump->stream_id()));
  const quic::StreamState* rx = rig.pair.server().stream(static_cast<int64_t>(rig.server_pump->stream_id()));
  ASSERT_TRUE(tx && rx);
  EXPECT_LE(tx->tx.unsent_bytes(), 512u * 1024);
  EXPECT_LE(rx->rx.size(), 1u << 20);
  EXPECT_GT(rx->rx.size(), 0u) << "the receiver's window was never filled";
  const uint64_t bound = static_cast<uint64_t>(client_sndbuf) + static_cast<uint64_t>(server_sndbuf) + kChunkBytes +
                         512 * 1024 + (1 << 20);
  EXPECT_LE(accepted, bound) << "client socket buffer " << client_sndbuf << ", server " << server_sndbuf;
  RecordProperty("held_bytes", std::to_string(accepted));

  // Once the reader reads again, everything arrives, in order.
  server.reading = true;
  client.to_send = accepted + 3 * 1000 * 1000;
  client.shut_after = true;
  ASSERT_TRUE(rig.run_until([&] {
    client.run();
    server.run();
    return server.eof;
  })) << "got "
      << server.received << " of " << client.to_send;
  EXPECT_EQ(server.received, client.to_send);
  EXPECT_FALSE(server.bad_byte);
}

TEST(Pump, CreditV3PacesTheSenderByGrants) {
  CreditContext client_credit, server_credit;  // outlive the rig's pumps
  PumpRig rig;
  LocalPair c = socket_pair(), s = socket_pair();
  rig.expect_server(rig.options(s.pump), &server_credit);
  rig.start_client(rig.options(c.pump), &client_credit);
  // Grants travel on the control stream in a session; here they go straight
  // to the other pump, or are held back.
  std::vector<uint64_t> held;
  uint64_t granted = kInitialCredit;  // the highest limit the client got
  bool deliver = false;
  rig.server_grants = [&](uint64_t limit) {
    if (!deliver) {
      held.push_back(limit);
      return;
    }
    granted = std::max(granted, limit);
    rig.client_pump->on_grant(limit);
  };
  App client{c.app.fd, 1, 2, 4 << 20}, server{s.app.fd, 2, 1, 0};
  server.shut_after = false;

  // Without grants, the initial credit is all the client sends.
  rig.pair.run_for(3 * kSec, [&] {
    rig.service();
    client.run();
    server.run();
  });
  EXPECT_EQ(rig.client_pump->bytes_sent(), kInitialCredit);
  EXPECT_EQ(server.received, kInitialCredit);
  ASSERT_FALSE(held.empty()) << "delivering bytes earned no grant";
  EXPECT_GT(held.back(), kInitialCredit);

  // With them, everything, and never beyond the last grant.
  deliver = true;
  for (uint64_t limit : held) rig.server_grants(limit);
  bool overrun = false;
  ASSERT_TRUE(rig.run_until([&] {
    client.run();
    server.run();
    overrun |= rig.client_pump->bytes_sent() > granted;
    overrun |= rig.server_pump->bytes_received() > granted;
    return server.eof;
  })) << "got "
      << server.received << " of " << client.to_send;
  EXPECT_FALSE(overrun);
  EXPECT_EQ(server.received, client.to_send);
  EXPECT_FALSE(server.bad_byte);
  EXPECT_GT(granted, kInitialCredit + (1u << 20));
}

}  // namespace
}  // namespace peersock::forward

#include <gtest/gtest.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "peersock/error.hpp"
#include "peersock/forward/local_socket.hpp"
#include "peersock/forward/poller.hpp"

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

}  // namespace
}  // namespace peersock::forward

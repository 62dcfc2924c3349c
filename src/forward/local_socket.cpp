#include "peersock/forward/local_socket.hpp"

#include <errno.h>
#include <glib.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/core.h>

#include <cstring>
#include <memory>

#include "peersock/error.hpp"
#include "peersock/text.hpp"

namespace peersock::forward {
namespace {

// Room for many connections waiting in the kernel while the peer grants no
// new stream (see the session's accept pause): the kernel caps it at
// net.core.somaxconn.
constexpr int kBacklog = 4096;

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

}  // namespace

size_t max_unix_path() { return sizeof(sockaddr_un::sun_path) - 1; }

void check_unix_path(const std::string& path, const std::string& what) {
  if (path.empty()) throw UsageError(fmt::format("{}: the socket path is empty", what));
  if (path.find('\0') != std::string::npos)
    throw UsageError(fmt::format("{}: the socket path contains a NUL byte", what));
  if (path.size() > max_unix_path()) {
    throw UsageError(fmt::format("{}: '{}' is too long for a unix socket path ({} bytes, at most {})", what, path,
                                 path.size(), max_unix_path()));
  }
}

LocalListener LocalListener::tcp(const std::string& address, uint16_t port) {
  addrinfo hints{};
  hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  std::string port_text = std::to_string(port);
  if (getaddrinfo(address.c_str(), port_text.c_str(), &hints, &result) != 0 || result == nullptr) {
    throw UsageError(fmt::format("--bind: '{}' is not a numeric IP address", address));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(result, freeaddrinfo);
  int fd = socket(result->ai_family, result->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Error(ExitCode::local, fmt::format("cannot create a socket: {}", g_strerror(errno)));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, result->ai_addr, result->ai_addrlen) != 0 || listen(fd, kBacklog) != 0) {
    int err = errno;
    close(fd);
    throw Error(ExitCode::local, fmt::format("cannot listen on {}:{}: {}", address, port, g_strerror(err)));
  }
  return LocalListener(fd, fmt::format("{}:{}", address, port));
}

// The socket's directory must not let another user replace the socket (and
// so receive the connections meant for the tunnel): owned by us or root, and
// writable by group or other only with the sticky bit (like /tmp).
void check_socket_directory(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) return;  // bind() reports the missing directory
  const bool foreign_owner = st.st_uid != geteuid() && st.st_uid != 0;
  const bool open_to_others = (st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0;
  if (foreign_owner || open_to_others) {
    throw Error(ExitCode::local,
                fmt::format("cannot listen on {}: its directory {} {}, so another user could replace the socket",
                            text::quote(path), text::quote(dir),
                            foreign_owner ? "belongs to another user" : "is writable by other users (no sticky bit)"));
  }
}

LocalListener LocalListener::unix_socket(const std::string& path) {
  check_unix_path(path, "listen-unix");
  check_socket_directory(path);
  sockaddr_un addr = unix_address(path);
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      throw Error(ExitCode::local, fmt::format("cannot listen on {}: it exists and is not a socket; not replacing it",
                                               text::quote(path)));
    }
    // A socket file: in use if someone accepts on it, else left by a dead
    // process and safe to replace.
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool live = probe >= 0 && connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    int err = errno;
    if (probe >= 0) close(probe);
    if (live)
      throw Error(ExitCode::local,
                  fmt::format("cannot listen on {}: another program is listening on it", text::quote(path)));
    if (err != ECONNREFUSED) {
      throw Error(ExitCode::local, fmt::format("cannot listen on {}: {}", text::quote(path), g_strerror(err)));
    }
    if (unlink(path.c_str()) != 0) {
      throw Error(ExitCode::local,
                  fmt::format("cannot replace the stale socket {}: {}", text::quote(path), g_strerror(errno)));
    }
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Error(ExitCode::local, fmt::format("cannot create a socket: {}", g_strerror(errno)));
  // Only we may connect, whatever the umask: Linux creates the socket file
  // with the socket inode's mode (minus the umask), so setting it before
  // bind() leaves no moment in which the file is open to others.
  if (fchmod(fd, S_IRUSR | S_IWUSR) != 0) {
    const int err = errno;
    close(fd);
    throw Error(ExitCode::local, fmt::format("cannot restrict the socket for {}: {}", text::quote(path), g_strerror(err)));
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, kBacklog) != 0) {
    int err = errno;
    close(fd);
    throw Error(ExitCode::local, fmt::format("cannot listen on {}: {}", text::quote(path), g_strerror(err)));
  }
  LocalListener listener(fd, path);
  if (stat(path.c_str(), &st) == 0) {
    if ((st.st_mode & 077) != 0 && chmod(path.c_str(), S_IRUSR | S_IWUSR) != 0) {
      throw Error(ExitCode::local,
                  fmt::format("cannot make {} private (mode 0600): {}", text::quote(path), g_strerror(errno)));
    }
    listener.unix_path_ = path;
    listener.dev_ = st.st_dev;
    listener.ino_ = st.st_ino;
  }
  return listener;
}

LocalListener::LocalListener(LocalListener&& other) noexcept
    : fd_(other.fd_),
      description_(std::move(other.description_)),
      unix_path_(std::move(other.unix_path_)),
      dev_(other.dev_),
      ino_(other.ino_) {
  other.fd_ = -1;
  other.unix_path_.clear();
}

LocalListener::~LocalListener() {
  if (fd_ >= 0) close(fd_);
  // Remove the socket file only if it is still the one we made: another
  // process may have replaced it meanwhile.
  struct stat st {};
  if (!unix_path_.empty() && stat(unix_path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
    unlink(unix_path_.c_str());
  }
}

}  // namespace peersock::forward

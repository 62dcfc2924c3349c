// The local listening socket of `listen` (TCP) and `listen-unix` (a unix
// stream socket at a path), opened before rendezvous so that a port or path
// that cannot be used is reported before anyone is given a code.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace peersock::forward {

// Longest path a unix socket address can hold (sun_path without its NUL).
size_t max_unix_path();

// Validates a unix socket path given on the command line. Errors:
// UsageError quoting the path (empty, too long, contains a NUL).
void check_unix_path(const std::string& path, const std::string& what);

class LocalListener {
 public:
  // Listens on ADDRESS:PORT. Errors: UsageError if ADDRESS is not a numeric
  // IP address; Error(local) if the socket cannot be bound (port in use...).
  static LocalListener tcp(const std::string& address, uint16_t port);

  // Listens on a unix socket at PATH. A stale socket left by a dead process
  // is replaced; anything else at PATH is refused. Errors: Error(local) when
  // PATH exists and is not a socket, another program listens on it, or it
  // cannot be bound (missing directory, permissions).
  static LocalListener unix_socket(const std::string& path);

  LocalListener(LocalListener&& other) noexcept;
  LocalListener& operator=(LocalListener&&) = delete;
  LocalListener(const LocalListener&) = delete;
  // Closes the socket; a unix socket's path is removed if it is still ours.
  ~LocalListener();

  int fd() const { return fd_; }
  // "127.0.0.1:5900" or the unix socket path, for messages.
  const std::string& description() const { return description_; }

 private:
  LocalListener(int fd, std::string description) : fd_(fd), description_(std::move(description)) {}

  int fd_ = -1;
  std::string description_;
  std::string unix_path_;  // non-empty: remove at the end if still our inode
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

}  // namespace peersock::forward

// Moves bytes between one QUIC stream and a local file descriptor pair
// (a socket, or stdin/stdout), both ways, with one bounded buffer per
// direction: when the local reader stops, our buffer fills, we stop reading
// the stream, and QUIC flow control slows the remote writer; when the peer
// stops, SSL_write fails with WANT_WRITE and we stop reading the local side.
//
// EOF: local EOF becomes a stream FIN (if the peer understands FIN, protocol
// version >= 2) and the peer's FIN becomes shutdown(SHUT_WR) / closing stdout.
// A local error resets the stream; a stream reset aborts the local socket.
#pragma once

#include <glib.h>
#include <openssl/ssl.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>

#include "peersock/quic/endpoint.hpp"

namespace peersock::forward {

inline constexpr size_t kBufferBytes = 256 * 1024;

struct PumpOptions {
  int read_fd = -1;
  int write_fd = -1;
  bool is_socket = false;     // shutdown(SHUT_WR) on peer FIN, RST on reset
  bool owns_fds = false;      // close the fds when the pump is destroyed
  bool peer_supports_fin = true;
};

struct PumpEvents {
  std::function<void()> wants_io;                 // we wrote to the stream: run QUIC
  std::function<void()> finished;                 // both directions done (or aborted)
  std::function<void()> local_eof_without_fin;    // v1 peer: caller ends the session
};

class Pump {
 public:
  Pump(quic::SslPtr stream, PumpOptions options, PumpEvents events);
  ~Pump();
  Pump(const Pump&) = delete;
  Pump& operator=(const Pump&) = delete;

  // Call after every QUIC event run: moves whatever can move now.
  void poll();

  bool finished() const { return finished_; }
  uint64_t bytes_sent() const { return bytes_sent_; }
  uint64_t bytes_received() const { return bytes_received_; }
  // Both directions done with a clean FIN each way (not reset).
  bool clean() const { return clean_; }

 private:
  static gboolean on_readable(gint fd, GIOCondition condition, gpointer self);
  static gboolean on_writable(gint fd, GIOCondition condition, gpointer self);
  void read_local();
  bool flush_to_stream();
  bool pull_from_stream();
  bool flush_to_local();
  void update_watches();
  void abort(bool reset_stream);
  void check_finished();

  quic::SslPtr stream_;
  PumpOptions options_;
  PumpEvents events_;

  // local -> stream
  std::unique_ptr<std::array<uint8_t, kBufferBytes>> out_;
  size_t out_off_ = 0, out_len_ = 0;
  bool local_eof_ = false, fin_sent_ = false;
  guint read_watch_ = 0;

  // stream -> local
  std::unique_ptr<std::array<uint8_t, kBufferBytes>> in_;
  size_t in_off_ = 0, in_len_ = 0;
  bool peer_fin_ = false, local_write_closed_ = false;
  guint write_watch_ = 0;

  bool aborted_ = false, finished_ = false, clean_ = false, in_poll_ = false;
  uint64_t bytes_sent_ = 0, bytes_received_ = 0;
};

}  // namespace peersock::forward

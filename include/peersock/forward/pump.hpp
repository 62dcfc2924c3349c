// Moves bytes between one QUIC stream and a local file descriptor pair
// (a socket, or stdin/stdout), both ways.
//
// Memory: bytes pass through a Scratch buffer shared by all pumps of a
// session (one read, then one write of the same bytes, no copy). Only what
// the destination does not take at once is kept, in queues of the pump's
// own (ByteQueue), which hold memory only while they hold data. An idle
// connection therefore costs no buffer memory.
//
// Back-pressure, local -> stream: while the stream does not take what was
// read (QUIC flow control, or no credit left), the pump stops reading the
// local side and TCP flow control slows the local writer.
//
// Back-pressure, stream -> local: with a v3 peer (credit, see credit.hpp) the
// pump reads its stream eagerly, up to the limit it announced, into its own
// queue, and announces more as the local side takes bytes: a stalled local
// reader holds back only its own stream, by at most one window. With older
// peers it stops reading the stream while it holds anything, and QUIC flow
// control slows the remote writer (and, OpenSSL's windows being per
// connection too, possibly the other streams).
//
// EOF: local EOF becomes a stream FIN (if the peer understands FIN, protocol
// version >= 2) and the peer's FIN becomes shutdown(SHUT_WR) / closing stdout;
// each direction ends on its own (half-close). A local error or RST resets
// the stream; a stream reset aborts the local socket with an RST.
#pragma once

#include <glib.h>
#include <openssl/ssl.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "peersock/forward/byte_queue.hpp"
#include "peersock/forward/credit.hpp"
#include "peersock/forward/poller.hpp"
#include "peersock/quic/endpoint.hpp"

namespace peersock::forward {

// Largest read or write per call. 64 KiB fills a few dozen QUIC packets per
// SSL_write_ex.
inline constexpr size_t kChunkBytes = ByteQueue::kChunk;

// The buffer all pumps of one session read into. One main loop, no threads:
// a pump uses it only within one call and never keeps data in it.
class Scratch {
 public:
  uint8_t* data() { return bytes_.get(); }
  static constexpr size_t size() { return kChunkBytes; }

 private:
  std::unique_ptr<uint8_t[]> bytes_ = std::make_unique_for_overwrite<uint8_t[]>(kChunkBytes);
};

struct PumpOptions {
  int read_fd = -1;
  int write_fd = -1;
  bool is_socket = false;     // shutdown(SHUT_WR) on peer FIN, RST on reset
  bool owns_fds = false;      // close the fds when the pump is destroyed
  bool peer_supports_fin = true;
};

// What the pumps of a session share for credit (v3). Null in PumpOptions:
// the peer is older, no credit.
struct CreditContext {
  WindowBudget budget;
  int64_t rtt_us = 0;  // last measured round trip (control-stream ping); 0 = unknown
};

struct PumpEvents {
  std::function<void()> wants_io;                 // we wrote to the stream: run QUIC
  std::function<void()> finished;                 // both directions done (or aborted)
  std::function<void()> local_eof_without_fin;    // v1 peer: caller ends the session
  std::function<void(uint64_t stream_id, uint64_t limit)> grant;  // v3: announce on stream 0
};

class Pump : private Poller::Handler {
 public:
  // `scratch`, `poller` and `credit` (if not null: the peer speaks v3) must
  // outlive the pump.
  Pump(quic::SslPtr stream, PumpOptions options, PumpEvents events, Scratch& scratch, Poller& poller,
       CreditContext* credit = nullptr);
  ~Pump();
  Pump(const Pump&) = delete;
  Pump& operator=(const Pump&) = delete;

  // Call after every QUIC event run: moves whatever can move now.
  void poll();

  // v3: the peer's limit for our writing on this stream ('C' on stream 0).
  void on_grant(uint64_t limit);
  uint64_t stream_id() const { return stream_id_; }
  // One line with the counters, credit and flags (SIGUSR1 dump, bug reports).
  std::string describe() const;

  bool finished() const { return finished_; }
  uint64_t bytes_sent() const { return bytes_sent_; }
  uint64_t bytes_received() const { return bytes_received_; }
  // Both directions done with a clean FIN each way (not reset).
  bool clean() const { return clean_; }
  // Bytes held in the pump's own buffers right now (for tests and stats).
  size_t buffered() const { return out_.size() + in_.size(); }

  // The stream, and the SSL_poll events after which poll() may move
  // something (0: none, e.g. finished). See poll_ready().
  SSL* stream() const { return stream_.get(); }
  uint64_t poll_interest() const;
  // Moved data within the last `window_us` (monotonic clock).
  bool active_since(gint64 since_us) const { return last_progress_us_ >= since_us; }

 private:
  void on_ready(int fd, bool readable, bool writable) override;
  void on_readable();
  void on_writable();
  bool read_local();
  bool write_stream(const uint8_t* data, size_t len, size_t& written);
  bool flush_to_stream();
  bool conclude_if_done();
  bool pull_from_stream();
  bool write_local(const uint8_t* data, size_t len, size_t& written);
  bool flush_to_local();
  void delivered(size_t n);
  bool may_read_stream() const;
  bool may_read_local() const;
  void close_local_write_if_done();
  void update_watches();
  void abort(bool reset_stream);
  void check_finished();
  void close_fds();
  void unwatch();

  quic::SslPtr stream_;
  uint64_t stream_id_;
  PumpOptions options_;
  PumpEvents events_;
  Scratch& scratch_;
  Poller& poller_;
  bool watch_read_ = false, watch_write_ = false;  // what the poller watches for us

  // local -> stream
  ByteQueue out_;  // what the stream did not take (at most one read's worth)
  bool local_eof_ = false, fin_sent_ = false;

  // stream -> local
  ByteQueue in_;
  bool peer_fin_ = false, local_write_closed_ = false;

  bool aborted_ = false, finished_ = false, clean_ = false, in_poll_ = false;
  gint64 last_progress_us_ = 0;
  uint64_t bytes_sent_ = 0, bytes_received_ = 0, bytes_delivered_ = 0;

  // v3 credit (null context: none)
  CreditContext* credit_;
  std::optional<ReceiveCredit> receive_credit_;
  SendCredit send_credit_;
};

// Finds the pumps whose streams have something for them after a QUIC run
// and polls only those. Polling every pump after every run (one SSL_read_ex
// each) made each run cost grow with the number of open connections
// (measured: 62 MB/s through one connection fell to 7 MB/s with 1000 idle
// ones open). So: pumps that moved data lately are asked after every run;
// the others with one SSL_poll over all streams at most every kIdleCheckUs
// (a timer makes sure that check happens even when no further run comes).
// The cost: data arriving on a connection idle for a while waits up to
// 2 ms longer.
class StreamPoller {
 public:
  static constexpr gint64 kIdleCheckUs = 2000;

  // `pumps` is the owner's list; it must outlive this object.
  explicit StreamPoller(const std::vector<std::unique_ptr<Pump>>& pumps) : pumps_(pumps) {}
  ~StreamPoller();
  StreamPoller(const StreamPoller&) = delete;
  StreamPoller& operator=(const StreamPoller&) = delete;

  // After every QUIC run.
  void after_quic_run();

 private:
  static gboolean on_timer(gpointer self);
  void poll(bool everyone);

  const std::vector<std::unique_ptr<Pump>>& pumps_;
  std::vector<SSL_POLL_ITEM> items_;
  std::vector<Pump*> asked_;
  gint64 last_full_us_ = 0;
  guint timer_id_ = 0;
};

}  // namespace peersock::forward

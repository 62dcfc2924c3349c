// Moves bytes between one QUIC stream and a local file descriptor pair
// (a socket, or stdin/stdout), both ways.
//
// Memory: local bytes pass through a Scratch buffer shared by all pumps of a
// session (one read, then one write into the stream). Only what the stream
// does not take at once is kept, in a queue of the pump's own (ByteQueue),
// which holds memory only while it holds data. An idle connection therefore
// costs no buffer memory here.
//
// Back-pressure, local -> stream: while the stream does not take what was
// read (QUIC flow control, or no credit left), the pump stops reading the
// local side and TCP flow control slows the local writer.
//
// Back-pressure, stream -> local: the pump writes received bytes straight
// from the QUIC endpoint's receive buffer to the local side; what the local
// side does not take stays there, and since the endpoint credits QUIC flow
// control only as bytes are taken, the remote writer slows down for this
// stream alone. With a v3 peer (our OpenSSL-based releases, whose own
// windows were per connection) the pump also announces per-stream credit
// (credit.hpp) as the local side takes bytes.
//
// EOF: local EOF becomes a stream FIN (if the peer understands FIN, protocol
// version >= 2) and the peer's FIN becomes shutdown(SHUT_WR) / closing stdout;
// each direction ends on its own (half-close). A local error or RST resets
// the stream; a stream reset aborts the local socket with an RST.
#pragma once

#include <glib.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "peersock/byte_queue.hpp"
#include "peersock/forward/credit.hpp"
#include "peersock/forward/poller.hpp"
#include "peersock/quic/stream.hpp"

namespace peersock::forward {

// Largest local read per call: a few dozen QUIC packets.
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
  bool is_socket = false;  // shutdown(SHUT_WR) on peer FIN, RST on reset
  bool owns_fds = false;   // close the fds when the pump is destroyed
  bool peer_supports_fin = true;
  // write_fd is a terminal (stdio): the status line is erased for good
  // before the first byte goes to it (log::release_terminal).
  bool writes_to_terminal = false;
};

// What the pumps of a session share for credit (v3). Null in PumpOptions:
// the peer is older, no credit.
struct CreditContext {
  WindowBudget budget;
  int64_t rtt_us = 0;  // last measured round trip (control-stream ping); 0 = unknown
};

struct PumpEvents {
  std::function<void()> wants_io;                                 // we wrote to the stream: run QUIC
  std::function<void()> finished;                                 // both directions done (or aborted)
  std::function<void()> local_eof_without_fin;                    // v1 peer: caller ends the session
  std::function<void(uint64_t stream_id, uint64_t limit)> grant;  // v3: announce on stream 0
};

class Pump : private Poller::Handler {
 public:
  // `scratch`, `poller` and `credit` (if not null: the peer speaks v3) must
  // outlive the pump.
  Pump(quic::Stream stream, PumpOptions options, PumpEvents events, Scratch& scratch, Poller& poller,
       CreditContext* credit = nullptr);
  ~Pump() override;
  Pump(const Pump&) = delete;
  Pump& operator=(const Pump&) = delete;

  // Call when the endpoint reports the stream ready (take_ready): moves
  // whatever can move now.
  void poll();

  // Ends the connection now: resets the stream, and the local socket with
  // an RST (the tunnel is going away with it open).
  void cancel() { abort(true); }

  // v3: the peer's limit for our writing on this stream ('C' on stream 0).
  void on_grant(uint64_t limit);
  uint64_t stream_id() const { return stream_id_; }
  // One line with the counters, credit and flags (SIGUSR1 dump, bug reports).
  std::string describe() const;

  bool finished() const { return finished_; }
  // Local EOF reached and passed on (FIN sent): all our input went out.
  bool input_done() const { return fin_sent_; }
  uint64_t bytes_sent() const { return bytes_sent_; }
  uint64_t bytes_received() const { return bytes_received_; }
  // Both directions done with a clean FIN each way (not reset).
  bool clean() const { return clean_; }
  // Bytes held in the pump's own buffers right now (for tests and stats).
  size_t buffered() const { return out_.size(); }

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
  void delivered(size_t n);
  bool may_read_stream() const;
  bool may_read_local() const;
  void close_local_write_if_done();
  void update_watches();
  void abort(bool reset_stream);
  void check_finished();
  void close_fds();
  void unwatch();

  quic::Stream stream_;
  uint64_t stream_id_;
  PumpOptions options_;
  PumpEvents events_;
  Scratch& scratch_;
  Poller& poller_;
  bool watch_read_ = false, watch_write_ = false;  // what the poller watches for us

  // local -> stream
  ByteQueue out_;  // what the stream did not take (at most one read's worth)
  bool local_eof_ = false, fin_sent_ = false;

  // stream -> local (the bytes wait in the endpoint)
  bool peer_fin_ = false, local_write_closed_ = false;
  bool local_full_ = false;  // the local side took less than offered: wait until writable

  bool aborted_ = false, finished_ = false, clean_ = false, in_poll_ = false;
  uint64_t bytes_sent_ = 0, bytes_received_ = 0, bytes_delivered_ = 0;

  // v3 credit (null context: none)
  CreditContext* credit_;
  std::optional<ReceiveCredit> receive_credit_;
  SendCredit send_credit_;
};

}  // namespace peersock::forward

// Stream 0, the control stream (docs/protocol.md §6): one bounded queue for
// everything we say on it ('D' delivery markers, 'P'/'Q' pings, v3 'C'
// grants) and one reader (ControlReader, control.hpp) for what the peer says.
//
// The QUIC client opens stream 0 right after the handshake; the server sees
// it only once the client has written to it, so what we say before then
// waits in the queue. The peer reads stream 0 eagerly, so a queue that keeps
// growing means it stopped: beyond kMaxBacklog the session ends.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "peersock/quic/stream.hpp"
#include "peersock/session/control.hpp"
#include "peersock/session/ping.hpp"
#include "peersock/stage.hpp"

namespace peersock::session {

struct ControlChannelEvents {
  std::function<void()> wants_io;                                 // we wrote: run QUIC
  std::function<void()> peer_delivered;                           // a 'D' from the peer
  std::function<void(double rtt_ms)> rtt;                         // our ping was answered
  std::function<void(uint64_t stream_id, uint64_t limit)> grant;  // v3 'C'
  std::function<void(const ConnectFailure&)> connect_failed;      // v4 'F'
};

class ControlChannel final : public Stage {
 public:
  // A grant is 17 bytes per half window: a megabyte of them unsent means the
  // peer no longer reads.
  static constexpr size_t kMaxBacklog = 1 << 20;

  // `version`: the negotiated protocol version (v1 peers get nothing).
  // `quic_server`: the server answers the client's first ping with one of
  // its own, so that both sides learn the RTT.
  ControlChannel(int version, bool quic_server, ControlChannelEvents events);

  // Stream 0, opened (client) or accepted (server).
  void attach(quic::Stream stream);
  bool attached() const { return static_cast<bool>(stream_); }

  void send_delivered();  // one 'D'
  void send_grant(uint64_t stream_id, uint64_t limit);
  // v4: the target of the peer's stream could not be connected (nothing is
  // sent to older peers, which would take 'F' for a protocol violation).
  void send_connect_failure(uint64_t stream_id, std::string_view text);
  void start_ping(int64_t now_us);  // one RTT measurement

  // This side's SMP succeeded: from now on poll() reads what the peer says.
  // Until then nothing on stream 0 is read or acted on (no pong, no RTT,
  // no 'D', no grant; docs/protocol.md §5.5): an unauthenticated peer gets
  // no answer and no effect from it. Its bytes wait in QUIC's stream
  // buffer, bounded by the stream's flow-control window.
  void start_reading() { reading_ = true; }

  // Reads and dispatches what the peer said (once start_reading() was
  // called), then flushes our queue.
  // Errors: CounterpartyError for a malformed frame (v3 and later);
  // Error(peer_gone) when the backlog passed kMaxBacklog. A stream 0 that
  // can no longer be written (reset, or the connection going away) only
  // stops the channel: QUIC's close says how the run ended.
  void poll(int64_t now_us);

  // We queued a 'D' and everything queued has gone into the stream (which
  // delivers it before the connection closes).
  bool delivered_sent() const { return markers_ > 0 && attached() && out_.empty(); }
  size_t unsent() const { return out_.size(); }

  // Nothing more is queued or read; what is in the stream already is
  // delivered by QUIC's close.
  void close(ExitCode why) override;
  bool closed() const override { return closed_; }

 private:
  void send(std::span<const uint8_t> bytes);
  void flush();

  int version_;
  bool quic_server_;
  ControlChannelEvents events_;
  quic::Stream stream_;
  ControlReader reader_;
  ControlPing ping_;
  bool pinged_back_ = false;
  std::vector<uint8_t> out_;
  size_t markers_ = 0;  // 'D's queued so far
  bool closed_ = false;
  bool reading_ = false;
};

}  // namespace peersock::session

// One QUIC connection (RFC 9000) over an abstract datagram path (in
// production: the ICE pair), carried by ngtcp2, with OpenSSL >= 3.5 doing the
// TLS 1.3 handshake through its QUIC TLS API (ngtcp2_crypto_ossl).
//
// Why ngtcp2 and not OpenSSL's own QUIC stack: measured on one veth link
// between two namespaces, OpenSSL 3.5's QUIC moved 0.85 MB/s at 50 ms RTT and
// 0.26 MB/s with 0.5 % loss (NewReno without pacing, 1200-byte datagrams,
// bursts that overflow the receiver's socket buffer); ngtcp2 with BBR moved
// 77 and 88 MB/s on the same link. The wire is the same QUIC v1, so peers
// that still run OpenSSL's stack interoperate (docs/protocol.md §4).
//
// Like ngtcp2 itself, the endpoint does no I/O and keeps no clock: datagrams
// come in through receive_datagram() and leave through the Transmit
// callback, every call takes the current time, and the owner calls
// handle_expiry() at expiry() (quic::Driver does that on a GLib main loop).
// Roles: the code consumer is the client, the code generator is the server
// (protocol.md §4).
//
// Streams are numbered by QUIC stream id and used through quic::Stream
// (stream.hpp). Their bytes live here: what the application wrote stays in a
// per-stream send buffer until the peer acknowledged it (ngtcp2 retransmits
// from it), and what arrived waits in a per-stream receive buffer until the
// application reads it. QUIC flow control is credited only as the
// application reads, so a reader that stops holds back only its own stream
// (by at most that stream's window), never the connection.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "peersock/byte_queue.hpp"
#include "peersock/quic/alpn.hpp"
#include "peersock/quic/send_buffer.hpp"

struct ngtcp2_conn;

struct ngtcp2_crypto_ossl_ctx;
typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace peersock::quic {

namespace tls {
struct Negotiation;
}

// Plain "x-peersock": all the original and releases before ALPN negotiation
// speak; the versioned names are in alpn.hpp.
inline constexpr std::string_view kAlpn = alpn::kPlain;
inline constexpr std::string_view kSni = "dummy";

// Application error codes we send in CONNECTION_CLOSE.
inline constexpr uint64_t kErrorNone = 0;
inline constexpr uint64_t kErrorAuthFailed = 0x50534d01;  // "connection code mismatch"
inline constexpr uint64_t kErrorProtocol = 0x50534d02;    // illegal counterparty input
inline constexpr uint64_t kErrorLocal = 0x50534d03;       // local failure, giving up
inline constexpr uint64_t kErrorInterrupted = 0x50534d04;  // Ctrl-C with connections open

enum class Role { client, server };

// "ngtcp2 1.24.0 with OpenSSL 3.5.7 1 Jul 2025" (built-with and running
// versions are the same: both are linked statically).
std::string engine_versions();
enum class Congestion { bbr, cubic };

// Nanoseconds on a monotonic clock (ngtcp2_tstamp). The owner supplies it.
using Timestamp = uint64_t;

struct CloseInfo {
  bool by_peer = false;
  bool is_app = false;  // application close vs transport/idle
  uint64_t error_code = 0;
  std::string reason;  // raw bytes from the peer when by_peer: quote before showing
};

struct EndpointOptions {
  // QUIC max_idle_timeout we advertise; the effective one is the smaller of
  // both sides'. Keep-alive PINGs go out at half of it. During a transfer a
  // killed peer or a cut link is noticed within the timeout (plus one probe
  // timeout); on a quiet connection within 1.5 times it, because the
  // keep-alive PING sent into the dead path restarts the idle timer
  // (RFC 9000 §10.1; measured in the unit tests). 15 s: about 22 s at most.
  std::chrono::milliseconds idle_timeout{15000};
  // The highest protocol version we speak (alpn.hpp): the client offers
  // x-peersock/max_version .. /1 and plain, the server picks from the offer.
  int max_version = 1;
  // The `v` of the peer's ice body (1: absent): the server needs it to pick
  // the identity for a plain-only client, both to check the outcome.
  int peer_body_version = 1;
  // Client, tests only: offer exactly this one protocol name instead.
  std::string client_alpn;
  // DATAGRAM frames (RFC 9221) for listen-udp / connect-udp: advertise
  // max_datagram_frame_size, the client when it offers a version that
  // carries UDP (protocol::carries_udp), the server only when it selected
  // one. Neither side advertises it otherwise, so a TCP session's transport
  // parameters are what they were before (docs/protocol.md §4.3).
  bool datagrams = false;
  Congestion congestion = Congestion::bbr;
};

// A path that went silent and came back (an outage, a router that dropped
// everything for a while) leaves both congestion controllers in a state
// that recovers only slowly: the side whose data was in flight backs its
// probe timeout off exponentially (RFC 9002 §6.2.1, no cap in ngtcp2), so
// after 30 s of silence its next probe may be 30 s away -- measured in the
// unit tests, where a 30 s outage left a transfer stalled for as long again
// without the remedy below. Nothing in ngtcp2's API restarts that timer, but
// a connection migration does (it resets congestion state and the probe
// count). So the first datagram after kResumeAfter of silence makes QUIC
// see a new path, which is only a name for the same ICE pair (endpoint.cpp,
// "Paths"): the client migrates to it; the server takes the packet as the
// peer's NAT rebinding. Both then send at once, at slow start.
inline constexpr uint64_t kResumeAfterNs = 5'000'000'000ULL;
// PING interval while path resumption is on: the idle side's PINGs are what
// reaches the silent side first once the path is back, so the longest gap a
// healthy path shows is about this plus one RTT (mosh sends every 3 s too).
inline constexpr uint64_t kResumeKeepAliveNs = 3'000'000'000ULL;
// While nothing arrives for kResumeAfterNs, one probe datagram a second:
// when both sides had data in flight, both are held by their congestion
// windows (no keep-alive goes out) and only their backed-off probe timers
// would send. The probe is one byte that no QUIC stack accepts (a long
// header without the fixed bit, RFC 9000 §17.2: ngtcp2 and OpenSSL discard
// it), so it only tells the other side that the path is back.
inline constexpr uint64_t kProbeIntervalNs = 1'000'000'000ULL;
inline constexpr uint8_t kPathProbe = 0x80;
// A side that resumes also probes at once, and then once a second,
// kResumeEchoProbes in all: the first datagram to get through after an
// outage stops the receiver's own probes, and its peer may still be silent.
// Seen under ASan after a 60 s outage: the server heard the client's probe
// timeout packet 0.1 s after the path came back and stopped probing; its
// answers on the "new" path were held by anti-amplification (3x what the
// client had sent there, one small packet), and the client heard nothing
// until its limit 4.9 s later. A probe from the server makes the client
// resume and send at once, which lifts the limit.
inline constexpr int kResumeEchoProbes = 3;

// Datagram counters for the status line, `--json` and bug reports.
struct DatagramStats {
  uint64_t sent = 0, sent_bytes = 0;          // handed to ngtcp2 in a packet
  uint64_t received = 0, received_bytes = 0;  // taken by the application
  // Dropped: larger than one packet can carry now (never fragmented); the
  // send queue was full (the path is slower than the input); in a packet
  // QUIC declared lost (never retransmitted); arrived while not accepted
  // (before forwarding) or with the receive queue full.
  uint64_t too_large = 0, queue_full = 0, lost = 0, rx_dropped = 0;
};

// The DATAGRAM send queue's bound (endpoint.cpp says why this size).
inline constexpr size_t kMaxDatagramQueue = 1024;

enum class DatagramResult {
  queued,       // goes out with the next write pass(es)
  too_large,    // bigger than max_datagram_payload(): dropped and counted
  queue_full,   // the send queue is at its bound: dropped and counted
  unavailable,  // no DATAGRAM support negotiated (or the connection is closed)
};

// What one stream's application side may learn (stream.hpp).
enum class IoStatus {
  ok,           // `bytes` moved (write: possibly fewer than offered)
  would_block,  // nothing now; the stream shows up in take_ready() when that changes
  fin,          // read: every byte was read and the peer finished the stream
  reset,        // the peer reset the stream or stopped reading, or the connection is gone
};
struct IoResult {
  IoStatus status = IoStatus::would_block;
  size_t bytes = 0;
};

// Numbers for the status line and bug reports.
struct ConnStats {
  double rtt_ms = -1;      // smoothed RTT; -1 before the first sample
  double min_rtt_ms = -1;  // the least sample so far; -1 before the first
  uint64_t cwnd = 0;   // congestion window, bytes
  uint64_t bytes_in_flight = 0;
  size_t max_datagram = 0;  // largest datagram we send on this path now
  // When the peer's last packet arrived that ngtcp2 accepted (0: none yet),
  // on the clock the endpoint is fed with.
  Timestamp last_received = 0;
};

struct StreamState {
  int64_t id = -1;
  // send direction
  SendBuffer tx;
  bool fin_wanted = false, fin_sent = false, fin_acked = false;
  bool fin_alone = false;   // the FIN went in a frame without data
  bool tx_reset = false;    // we reset it, or the peer stopped reading
  bool blocked = false;     // by the peer's flow control
  bool queued = false;      // in the sendable queue
  bool want_write = false;  // the application was told would_block
  // receive direction
  ByteQueue rx;
  bool rx_fin = false, rx_reset = false;
  bool rx_stopped = false;  // we asked the peer to stop (reset by us)
  uint64_t rx_total = 0;
  // lifecycle
  bool closed = false;    // ngtcp2 is done with it
  bool released = false;  // the application's handle is gone
  bool ready = false;     // in the ready list
};

class Endpoint {
 public:
  // A batch of datagrams produced by one write pass, in send order. All but
  // the last have the same size when `equal_size` (they may go out as one
  // UDP GSO send).
  struct Batch {
    std::span<const uint8_t> bytes;  // all datagrams back to back
    std::span<const size_t> sizes;
  };
  using Transmit = std::function<void(const Batch&)>;

  // Creates the TLS objects and, for the client, the connection (its first
  // flight goes out with the first write()). The server gets a fresh P-256
  // key and a self-signed certificate (the original's published one instead
  // for an original client, alpn.hpp) and creates its connection from the
  // first valid Initial it receives.
  // Errors: Error(failure) with OpenSSL's or ngtcp2's reason.
  Endpoint(Role role, Transmit transmit, const EndpointOptions& options, Timestamp now);
  ~Endpoint();
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  // A datagram from the peer: processed at once (no copy beyond ngtcp2's
  // decryption). Call write() after a batch of them. Never throws for what
  // the peer sent: a protocol violation closes the connection (closed()).
  void receive_datagram(std::span<const uint8_t> datagram, Timestamp now);

  // One write pass: handshake, acknowledgements, stream data within the
  // congestion window and pacing, retransmissions. Sends one batch.
  void write(Timestamp now);

  // At expiry(): retransmission, idle, keep-alive and pacing timers. Writes.
  void handle_expiry(Timestamp now);

  // When handle_expiry() must run next; nullopt: never (closed).
  std::optional<Timestamp> expiry() const;

  bool handshake_done() const { return handshake_done_; }
  // Stream data can be sent and keying material exported: the handshake is
  // done, or this server has sent its Finished and holds its 1-RTT keys
  // (0.5-RTT data, RFC 9001 §4.1.1: the client is not authenticated yet,
  // which SMP is for). The exporter is fixed by then (RFC 8446 §7.5).
  bool app_keys_ready() const { return handshake_done_ || (role_ == Role::server && app_tx_key_); }

  // Turns on path resumption (kResumeAfterNs) and PINGs every
  // kResumeKeepAliveNs. Only towards peers on ngtcp2 (protocol v4 and
  // later): a client migration needs a peer that handles one, and
  // OpenSSL's stack was never tested with it. Precondition: handshake_done().
  void enable_path_resumption();
  // How many times the path was resumed (for tests and the debug log).
  uint64_t path_resumptions() const { return resumptions_; }

  // TLS exporter (RFC 8446 §7.5), empty context. Precondition:
  // app_keys_ready(). Errors: Error(failure).
  std::vector<uint8_t> export_keying_material(std::string_view label, size_t length) const;

  // Starts closing with an application error code. Idempotent. Stream data
  // already written is delivered first (up to 3 s; not at all when nothing
  // arrived for kResumeAfterNs), then CONNECTION_CLOSE goes out. Before the
  // handshake is done QUIC cannot carry an application close: the peer
  // then sees transport error APPLICATION_ERROR (0x0c).
  void close(uint64_t app_error, std::string_view reason, Timestamp now);

  // Set once the connection is closed or closing (by us, the peer, idle
  // timeout or a failed handshake).
  const std::optional<CloseInfo>& closed() const { return closed_; }

  // Nothing more to send: our CONNECTION_CLOSE went out, or the connection
  // ended without one being needed (the peer closed, idle timeout).
  bool shutdown_complete() const;

  // ---- streams (used through quic::Stream) ----
  // Opens a bidirectional stream; nullopt while the peer allows no more.
  std::optional<int64_t> open_stream();
  // How many more streams the peer allows us to open now.
  uint64_t streams_left() const;
  // Streams the peer opened, in order, once each.
  std::optional<int64_t> accept_stream();
  size_t accept_queue_size() const { return accept_queue_.size(); }

  IoResult read(int64_t id, std::span<uint8_t> out);
  // The first contiguous run of received bytes, and consume() after using
  // some of them (no copy into a caller's buffer).
  std::span<const uint8_t> peek(int64_t id) const;
  void consume(int64_t id, size_t n);
  // Peek's status: ok when bytes are there, else would_block / fin / reset.
  IoStatus read_status(int64_t id) const;

  IoResult write(int64_t id, std::span<const uint8_t> data);
  // Ends our direction after the bytes written so far (FIN).
  void conclude(int64_t id);
  // Abandons both directions: RESET_STREAM and STOP_SENDING.
  void reset(int64_t id, uint64_t app_error);
  // The application's handle is gone. A stream not finished both ways is
  // reset; its state is freed once ngtcp2 is done with it.
  void release(int64_t id);
  const StreamState* stream(int64_t id) const;

  // Streams whose application side may now make progress (data, FIN,
  // reset, room to write), each once since the last call.
  std::vector<int64_t> take_ready();

  // ---- datagrams (RFC 9221; docs/protocol.md §7.7) ----
  // Both sides advertised max_datagram_frame_size and the handshake is done.
  bool datagrams_enabled() const;
  // The largest payload one DATAGRAM frame may carry on the path now (the
  // path's UDP payload size minus the packet and frame overhead, within the
  // peer's max_datagram_frame_size); 0 while not enabled. Grows when path
  // MTU discovery finds a larger path.
  size_t max_datagram_payload() const;
  // Queues one datagram (copied); it leaves with the next write passes,
  // within the congestion window, ahead of stream data. Unreliable: never
  // retransmitted. The queue is bounded (kMaxDatagramQueue); what does not
  // fit or is too large is dropped and counted, never split.
  DatagramResult send_datagram(std::span<const uint8_t> payload);
  // Received datagrams are kept (bounded) only while accepted: the
  // forwarder turns this on once authenticated; before, they are dropped.
  void accept_datagrams(bool on);
  // The oldest received datagram, moved out; nullopt when none is waiting.
  std::optional<std::vector<uint8_t>> take_datagram();
  size_t datagrams_waiting() const { return rx_datagrams_.size(); }
  size_t datagrams_unsent() const { return tx_datagrams_.size(); }
  const DatagramStats& datagram_stats() const { return datagram_stats_; }

  ConnStats stats() const;
  std::string alpn() const;

  // The version negotiation's result (alpn::server_outcome or
  // client_outcome). Precondition: handshake_done().
  alpn::Outcome negotiated() const;
  // Server: what it chose from the client's offer (nullopt before the
  // ClientHello) and whether it presented the original's certificate.
  std::optional<alpn::Selection> selection() const;
  bool presented_original_identity() const;

  // For ngtcp2's C callbacks (endpoint.cpp); not for the application.
  struct Callbacks;

 private:
  void setup_tls(const EndpointOptions& options);
  void create_client(Timestamp now);
  bool create_server(std::span<const uint8_t> first, Timestamp now);
  void fail(int liberr, Timestamp now);
  void on_fatal_read(int rv, Timestamp now);
  void write_close(Timestamp now);
  bool all_delivered() const;
  void mark_ready(StreamState& s);
  void queue_send(StreamState& s);
  StreamState* find(int64_t id);
  void extend_read(StreamState& s, size_t n);
  void drop_unread(StreamState& s);
  void maybe_erase(int64_t id);
  void sweep();
  void transmit(std::span<const uint8_t> bytes, std::span<const size_t> sizes);
  void on_version_selected(int version);
  size_t datagram_overhead() const;
  void pop_datagram();
  void receive_datagram_frame(std::span<const uint8_t> payload);  // from ngtcp2's callback

  Role role_;
  Transmit transmit_;
  EndpointOptions options_;
  Timestamp created_;

  std::unique_ptr<tls::Negotiation> negotiation_;  // before ctx_: its callbacks point here
  std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)> ctx_;
  SSL* ssl_ = nullptr;                          // owned; freed after the ngtcp2 connection
  ngtcp2_crypto_ossl_ctx* ossl_ctx_ = nullptr;  // owned
  ngtcp2_conn* conn_ = nullptr;                 // owned
  struct ConnRef;                               // ngtcp2_crypto_conn_ref, stable address
  std::unique_ptr<ConnRef> conn_ref_;

  bool handshake_done_ = false;
  bool app_tx_key_ = false;  // the 1-RTT key for sending is installed
  bool close_requested_ = false, close_sent_ = false;
  Timestamp close_deadline_ = 0;
  Timestamp last_received_ = 0;  // ConnStats::last_received
  Timestamp last_datagram_ = 0;  // any datagram, accepted or not
  Timestamp last_probe_ = 0;
  int echo_probes_ = 0;       // kResumeEchoProbes after a resumption, counting down
  Timestamp echo_next_ = 0;   // when the next of them is due
  std::optional<Timestamp> probe_due() const;
  bool resume_enabled_ = false;
  uint64_t resumptions_ = 0;
  // The path QUIC sees (endpoint.cpp, "Paths"): `generation` names it.
  struct Path;
  std::unique_ptr<Path> path_;
  void resume_path(Timestamp now);
  uint64_t close_code_ = kErrorNone;
  std::string close_reason_;
  std::vector<uint8_t> close_packet_;  // resent once per packet the peer sends while we close
  std::optional<CloseInfo> closed_;

  std::unordered_map<int64_t, StreamState> streams_;
  std::deque<int64_t> sendable_;  // streams with unsent data or an unsent FIN
  std::deque<int64_t> accept_queue_;
  std::vector<int64_t> ready_;
  std::vector<int64_t> graveyard_;  // closed by ngtcp2 during a call; erased after it

  // DATAGRAM frames: to send (oldest first), and received, not yet taken.
  std::deque<std::vector<uint8_t>> tx_datagrams_;
  size_t tx_datagram_bytes_ = 0;
  std::deque<std::vector<uint8_t>> rx_datagrams_;
  size_t rx_datagram_bytes_ = 0;
  bool accept_datagrams_ = false;
  uint64_t next_datagram_id_ = 1;
  DatagramStats datagram_stats_;

  std::vector<uint8_t> out_;  // one write pass's datagrams
  std::vector<size_t> out_sizes_;
  uint64_t datagrams_sent_ = 0, bytes_sent_ = 0;  // for the debug log
};

}  // namespace peersock::quic

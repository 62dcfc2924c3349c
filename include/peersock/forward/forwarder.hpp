// The forwarding stage: local connections in, QUIC data streams out, and
// back (docs/protocol.md §7). One per session, in one of two roles:
//   opener    listen, listen-unix, stdio-b: accepts local connections (or
//             takes stdin/stdout) and opens one data stream for each;
//   acceptor  connect, connect-unix, stdio-a: takes the peer's data streams,
//             checks their header byte 'X', and connects each to the target
//             (or to stdin/stdout).
// Each connection then runs in a Pump (pump.hpp).
//
// Lifecycle: constructed before anyone is contacted (so that a port in use
// fails before a code is shown), started once the peer is authenticated,
// told about every QUIC run, closed top-down by the session. It reports up
// through ForwarderEvents and never sees the session.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "peersock/forward/credit.hpp"
#include "peersock/forward/local_end.hpp"
#include "peersock/forward/local_socket.hpp"
#include "peersock/forward/poller.hpp"
#include "peersock/forward/pump.hpp"
#include "peersock/forward/udp_relay.hpp"
#include "peersock/glib/raii.hpp"
#include "peersock/quic/endpoint.hpp"
#include "peersock/quic/stream.hpp"
#include "peersock/stage.hpp"

typedef struct _GCancellable GCancellable;

namespace peersock::forward {

// What the negotiated protocol version lets the forwarder do
// (protocol/version.hpp); set at start().
struct Capabilities {
  bool fin = true;                  // half-close per direction
  bool several_connections = true;  // else one connection per run (the original)
  bool credit = false;              // v3 'C' grants
};

struct ForwarderEvents {
  std::function<void()> wants_io;           // a stream was written: run QUIC
  std::function<void(const Pump&)> opened;  // a connection started
  std::function<void(const Pump&)> closed;  // ... and ended (once each)
  // A data stream was delivered completely (both directions done, clean).
  std::function<void()> delivered;
  // The one stream of a run that has only one (stdio, or any mode with the
  // original peersock) ended in a reset: data was lost.
  std::function<void()> only_stream_reset;
  // The original peersock (no FIN): our side's EOF ends the session.
  std::function<void()> eof_ends_session;
  std::function<void(uint64_t stream_id, uint64_t limit)> grant;  // v3: say on stream 0
  // What went wrong in a callback of the forwarder's own (accepting,
  // connecting): an Error (or CounterpartyError) for the session to end with.
  std::function<void(std::exception_ptr)> failed;
  // Acceptor: the target of the peer's stream could not be connected; `text`
  // is "HOST:PORT: why" (the stream is reset; v4 tells the peer why).
  std::function<void(uint64_t stream_id, const std::string& text)> connect_failed;
};

class Forwarder final : public Stage {
 public:
  // Binds the local listener for listen/listen-unix. Errors: UsageError for
  // a bad address, Error(local) for a port in use or a bad socket path.
  Forwarder(LocalEnd local, ForwarderEvents events);
  ~Forwarder();
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  // "127.0.0.1:5900" or the socket path (listen modes), for messages.
  std::string listener_description() const;

  // Authenticated: start forwarding over `endpoint` (which must outlive
  // this object). stdio-b opens its stream now; listen modes accept.
  // Errors: Error(peer_gone) if stdio-b cannot open its stream.
  void start(quic::Endpoint& endpoint, Capabilities caps);

  // A data stream the peer opened (after authentication).
  void on_stream(quic::Stream stream);

  // After every QUIC run: reads pending streams' headers, polls the pumps
  // whose streams changed, accepts again once the peer allows more streams.
  // Errors: CounterpartyError for a bad stream header; Error(local) when a
  // v1 target cannot be connected to.
  void after_quic_run();

  // v3: a 'C' grant from the peer. Stale or unknown streams are ignored.
  void on_grant(uint64_t stream_id, uint64_t limit);
  void set_rtt_us(int64_t rtt_us) { credit_.rtt_us = rtt_us; }

  // The session is ending: stops accepting local connections. With `why`
  // ExitCode::ok the open ones' streams are flushed by QUIC's close; with
  // any other reason every open connection is reset (RST to the local
  // program) and reported closed (not clean) before this returns.
  void close(ExitCode why) override;
  bool closed() const override { return stopped_; }

  // stdio: the one stream ended cleanly both ways.
  bool stdio_delivered() const { return stdio_delivered_; }
  // stdio: all of stdin went into the stream (EOF reached, FIN sent).
  bool stdio_input_done() const { return is_stdio() && !pumps_.empty() && pumps_.front()->input_done(); }

  struct Sample {
    const void* id;
    uint64_t sent, received;
  };
  std::vector<Sample> samples() const;
  size_t open_connections() const { return pumps_.size(); }
  // listen-udp / connect-udp: the datagram counts; nullopt in other modes.
  std::optional<UdpCounts> udp_counts() const;
  // One line per connection (SIGUSR1 dump).
  std::vector<std::string> describe() const;

 private:
  struct Pending {
    quic::Stream stream;
    bool header_seen = false;
    bool connecting = false;
  };

  template <typename F>
  void guarded(F&& f);
  static gboolean on_accept(gint fd, GIOCondition, gpointer self);
  void accept_local(int fd);
  bool stream_credit() const;
  void pause_accepting();
  void resume_accepting_if_possible();
  void wait_for_descriptors();
  bool in_descriptor_reserve(int fd) const;
  static constexpr int kDescriptorReserve = 32;
  static gboolean on_fd_retry(gpointer self);
  quic::Stream open_data_stream();
  void poll_pending();
  void start_connect(Pending* pending);
  void on_connected(Pending* pending, int fd, const std::string& error);
  void make_pump(quic::Stream stream, int read_fd, int write_fd, bool is_socket, bool owns);
  void on_pump_finished();
  static gboolean on_sweep(gpointer self);
  void sweep();
  bool is_stdio() const { return forward::is_stdio(local_); }

  LocalEnd local_;
  ForwarderEvents events_;
  std::optional<LocalListener> listener_;
  std::unique_ptr<UdpRelay> udp_;  // listen-udp, connect-udp
  quic::Endpoint* endpoint_ = nullptr;
  Capabilities caps_;
  bool stopped_ = false;
  // The one stream of a v1 TCP/unix run was reset: reported from on_sweep,
  // because the session's reaction (close()) destroys pumps, and the report
  // starts inside one of the pump's own callbacks.
  bool reset_to_report_ = false;
  glib::SourceId accept_watch_;
  bool accept_paused_ = false;  // waiting for the peer to allow another stream, or for a descriptor
  glib::SourceId fd_retry_;      // set while out of descriptors
  bool fd_warning_given_ = false;
  glib::ObjectPtr<GCancellable> cancellable_;
  std::vector<std::unique_ptr<Pending>> pending_;
  Scratch scratch_;  // before pumps_: they use these until destroyed
  Poller poller_;
  CreditContext credit_;
  std::vector<std::unique_ptr<Pump>> pumps_;
  std::unordered_map<uint64_t, Pump*> pumps_by_stream_;
  size_t connections_ = 0;  // ever started
  glib::SourceId sweep_;
  bool stdio_delivered_ = false;
};

}  // namespace peersock::forward

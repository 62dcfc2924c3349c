// One libnice ICE agent (RFC 5245, datagram mode, one stream, one component)
// on the thread-default GLib main context.
#pragma once

#include <glib.h>

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "peersock/config/config.hpp"
#include "peersock/error.hpp"
#include "peersock/glib/raii.hpp"
#include "peersock/ice/body.hpp"
#include "peersock/ice/udp_batch.hpp"

typedef struct _NiceAgent NiceAgent;
typedef struct _NiceCandidate NiceCandidate;

namespace peersock::ice {

struct SelectedPath {
  bool relayed = false;  // either side uses a TURN relay candidate
  std::string local;     // "addr:port"
  std::string remote;
  std::string transport;  // "udp" / "tcp"
  // When relayed through our own TURN allocation: the TURN server
  // ("addr:port") and how we reach it ("udp" / "tcp"). Empty when only the
  // peer's candidate is a relay (its server is not ours to name).
  std::string relay_server;
  std::string relay_transport;
  std::string local_type, remote_type;  // "host", "srflx", "prflx", "relay"
};

struct AgentCallbacks {
  std::function<void()> gathering_done;
  std::function<void(const SelectedPath&)> connected;  // first CONNECTED/READY
  std::function<void()> failed;
  std::function<void(std::span<const uint8_t>)> datagram;
  // Set-up failed after gather() returned: gathering could not start.
  std::function<void(const Error&)> setup_failed;
  // Every STUN/TURN host name lookup has ended (or none was needed);
  // gathering starts now. A name that did not resolve is a warning on
  // stderr, not a failure: its server's candidates are left out and the
  // other candidate types go on. May run from within gather().
  std::function<void()> resolved;
};

class Agent {
 public:
  // Errors: Error(failure) if libnice cannot set up.
  Agent(bool controlling, const config::Settings& settings, AgentCallbacks callbacks);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Resolves STUN/TURN host names (asynchronously), then gathers. Errors
  // arrive through callbacks.setup_failed.
  void gather();
  // The currently selected pair, or nullopt before ICE connected. libnice
  // (aggressive nomination) may switch to a better pair after the first one
  // connects, so callers that report the path ask again late.
  std::optional<SelectedPath> selected_path() const;
  Description local_description() const;
  // Errors: CounterpartyError if libnice rejects the peer's credentials.
  void set_remote(const Description& remote);
  // Sends one datagram; drops it (as UDP would) when the path is not ready.
  void send(std::span<const uint8_t> datagram);
  // Sends datagrams laid back to back in `bytes`, sizes[i] bytes each: on a
  // direct UDP pair straight on the pair's socket with UDP GSO
  // (udp_batch.hpp), otherwise with one libnice call. Drops what the socket
  // does not take now, as UDP would.
  void send_batch(std::span<const uint8_t> bytes, std::span<const size_t> sizes);
  // Batches of which the socket did not take everything (for the debug log).
  uint64_t short_batches() const { return dropped_; }

  // What was tried, for "no network path" messages: "host, srflx, relay",
  // and which server names did not resolve.
  std::string tried() const;

 private:
  static void on_gathering_done(NiceAgent*, guint, gpointer self);
  static void on_new_candidate(NiceAgent*, NiceCandidate* candidate, gpointer self);
  static gboolean on_gather_grace(gpointer self);
  void gathered();  // once: the description is ready
  static void on_state(NiceAgent*, guint, guint, guint state, gpointer self);
  static void on_recv(NiceAgent*, guint, guint, guint len, gchar* buf, gpointer self);
  static void on_selected_pair(NiceAgent*, guint, guint, NiceCandidate* local, NiceCandidate* remote, gpointer self);
  void use_pair(const NiceCandidate& local, const NiceCandidate& remote);

  void start_gathering();
  void resolved_then_gather();
  void fail_setup(const Error& error);

  glib::ObjectPtr<NiceAgent> agent_;
  guint stream_ = 0;
  AgentCallbacks callbacks_;
  bool stun_ = false, turn_ = false, relay_disabled_ = false;
  bool connected_ = false, failed_ = false;
  bool loopback_only_ = false;  // no interface but lo was up at start
  config::Settings settings_;
  glib::Cancellable cancellable_;  // the resolver lookups
  int lookups_pending_ = 0;
  bool setup_failed_ = false;
  bool gathered_ = false;
  glib::SourceId gather_grace_;  // armed by the first relay candidate
  bool udp_relay_seen_ = false;  // a TURN-over-UDP relay candidate arrived
  uint64_t dropped_ = 0;
  // The selected pair's socket when the path is direct UDP (a reference of
  // ours, so the fd stays valid), and the sender that uses it (declared
  // after the socket: it goes first).
  glib::ObjectPtr<GSocket> direct_socket_;
  std::optional<UdpBatchSender> direct_;
  std::vector<std::string> stun_addresses_, turn_addresses_;
  std::vector<std::string> unresolved_;  // "STUN server 'x'": names that did not resolve, for tried()
};

}  // namespace peersock::ice

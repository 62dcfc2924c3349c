// The datagram path to the peer as one object: the ICE agent (libnice), the
// QUIC endpoint on top of it and the driver with its one timer. Datagrams go
// from the agent's receive callback straight into the driver, and the
// endpoint's batches straight to the agent: the session only hears about
// what it decides on (ICE outcomes, the end of each QUIC run).
//
// Lifecycle: made at start (ICE gathers while the rendezvous runs); QUIC
// starts once the peer's description arrived (start_quic); closing is QUIC's
// close (flushing stream data), then the agent goes with the object.
//
// ICE restarts (protocol v6, docs/protocol.md §2.11; docs/architecture.md
// "Outages and new paths"): a second agent gathers afresh (new sockets, new
// TURN allocation: what a new address or a NAT rebinding needs) and checks
// against the peer's new description while the first one stays. Datagrams
// from either go to QUIC; once the new one connects it carries what QUIC
// sends and the old one is dropped. QUIC stays the same connection: its
// first datagram after the silence makes it start over on a new path
// (quic::kResumeAfterNs).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "peersock/config/config.hpp"
#include "peersock/ice/agent.hpp"
#include "peersock/ice/body.hpp"
#include "peersock/quic/driver.hpp"
#include "peersock/quic/endpoint.hpp"
#include "peersock/stage.hpp"

namespace peersock::session {

struct LinkEvents {
  std::function<void()> resolved;        // STUN/TURN names resolved: contact the rendezvous
  std::function<void()> gathering_done;  // our description is ready
  std::function<void(const ice::SelectedPath&)> connected;
  std::function<void()> failed;  // ICE found no path
  std::function<void(const Error&)> setup_failed;
  std::function<void()> quic_ran;  // after every QUIC run
  // The restart agent of `generation` has gathered: its description is
  // restart_description().
  std::function<void(uint32_t generation)> restart_gathered;
  // A restart connected; `path` is the new pair, now carrying QUIC.
  std::function<void(const ice::SelectedPath& path)> path_changed;
};

class Link final : public Stage {
 public:
  // Errors: Error(failure) if libnice cannot set up.
  Link(bool ice_controlling, const config::Settings& settings, LinkEvents events);
  ~Link();
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  ice::Agent& ice() { return *agent_; }

  // Creates the QUIC endpoint (server: waits for the client's Initial).
  // Errors: Error(failure) from the TLS set-up.
  void start_quic(quic::Role role, const quic::EndpointOptions& options);
  // Null before start_quic().
  quic::Endpoint* quic() { return endpoint_.get(); }
  // A QUIC write pass now (after writing or reading stream data; the
  // client's first flight once ICE connected).
  void kick();

  // Starts ICE restart `generation` (a new agent that gathers), dropping
  // a restart still pending. It ends by connecting (path_changed), by
  // failing, or after kRestartDeadlineMs; either way the old agent
  // carried on meanwhile. Errors: Error(failure) if libnice cannot set up.
  void begin_restart(uint32_t generation);
  // The pending restart's generation, 0 for none.
  uint32_t restart_generation() const { return next_ ? next_generation_ : 0; }
  // Our description for the pending restart (after restart_gathered).
  ice::Description restart_description() const;
  // The peer's description for restart `generation`: ignored unless that
  // restart is pending. Errors: CounterpartyError from ice::Agent.
  void set_restart_remote(uint32_t generation, const ice::Description& remote);
  static constexpr guint kRestartDeadlineMs = 15'000;

  // Starts QUIC's close with the application error code for `why`
  // (nothing if QUIC never started or is closed already).
  void close(ExitCode why) override;
  // The reason text of that close instead of the exit code's name (a
  // reason the peer maps to a message of its own, ending.hpp).
  void set_close_reason(std::string reason) { close_reason_ = std::move(reason); }
  // Nothing more to send (or QUIC never started).
  bool closed() const override;

 private:
  ice::AgentCallbacks agent_callbacks(bool restart);
  void drop_next();  // retires the pending restart's agent
  static gboolean on_restart_deadline(gpointer self);
  static gboolean on_reap(gpointer self);

  LinkEvents events_;
  bool ice_controlling_;
  config::Settings settings_;
  std::unique_ptr<ice::Agent> agent_;
  // A restart: its agent, generation and deadline. Agents replaced or
  // dropped wait in retired_ until an idle callback frees them (never from
  // within their own callbacks).
  std::unique_ptr<ice::Agent> next_;
  uint32_t next_generation_ = 0;
  glib::SourceId restart_deadline_;
  std::vector<std::unique_ptr<ice::Agent>> retired_;
  glib::SourceId reap_;
  std::unique_ptr<quic::Endpoint> endpoint_;
  std::unique_ptr<quic::Driver> driver_;
  std::string close_reason_;
};

}  // namespace peersock::session

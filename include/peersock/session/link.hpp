// The datagram path to the peer as one object: the ICE agent (libnice), the
// QUIC endpoint on top of it and the driver with its one timer. Datagrams go
// from the agent's receive callback straight into the driver, and the
// endpoint's batches straight to the agent: the session only hears about
// what it decides on (ICE outcomes, the end of each QUIC run).
//
// Lifecycle: made at start (ICE gathers while the rendezvous runs); QUIC
// starts once the peer's description arrived (start_quic); closing is QUIC's
// close (flushing stream data), then the agent goes with the object.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

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

  // Starts QUIC's close with the application error code for `why`
  // (nothing if QUIC never started or is closed already).
  void close(ExitCode why) override;
  // The reason text of that close instead of the exit code's name (a
  // reason the peer maps to a message of its own, ending.hpp).
  void set_close_reason(std::string reason) { close_reason_ = std::move(reason); }
  // Nothing more to send (or QUIC never started).
  bool closed() const override;

 private:
  LinkEvents events_;
  std::unique_ptr<ice::Agent> agent_;
  std::unique_ptr<quic::Endpoint> endpoint_;
  std::unique_ptr<quic::Driver> driver_;
  std::string close_reason_;
};

}  // namespace peersock::session

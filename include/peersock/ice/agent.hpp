// One libnice ICE agent (RFC 5245, datagram mode, one stream, one component)
// on the thread-default GLib main context.
#pragma once

#include <glib.h>

#include <functional>
#include <memory>
#include <span>
#include <string>

#include "peersock/config/config.hpp"
#include "peersock/ice/body.hpp"

typedef struct _NiceAgent NiceAgent;

namespace peersock::ice {

struct SelectedPath {
  bool relayed = false;        // either side uses a TURN relay candidate
  std::string local;           // "addr:port"
  std::string remote;
  std::string transport;       // "udp" / "tcp"
};

struct AgentCallbacks {
  std::function<void()> gathering_done;
  std::function<void(const SelectedPath&)> connected;  // first CONNECTED/READY
  std::function<void()> failed;
  std::function<void(std::span<const uint8_t>)> datagram;
};

class Agent {
 public:
  // Errors: Error(failure) if libnice cannot set up; UsageError if a
  // STUN/TURN host does not resolve.
  Agent(bool controlling, const config::Settings& settings, AgentCallbacks callbacks);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  void gather();
  Description local_description() const;
  // Errors: CounterpartyError if libnice rejects the peer's credentials.
  void set_remote(const Description& remote);
  // Sends one datagram; drops it (as UDP would) when the path is not ready.
  void send(std::span<const uint8_t> datagram);

  // What was tried, for "no network path" messages: "host, srflx, relay".
  std::string tried() const;

 private:
  static void on_gathering_done(NiceAgent*, guint, gpointer self);
  static void on_state(NiceAgent*, guint, guint, guint state, gpointer self);
  static void on_recv(NiceAgent*, guint, guint, guint len, gchar* buf, gpointer self);

  NiceAgent* agent_ = nullptr;  // owned (g_object_unref)
  guint stream_ = 0;
  AgentCallbacks callbacks_;
  bool stun_ = false, turn_ = false;
  bool connected_ = false, failed_ = false;
};

}  // namespace peersock::ice

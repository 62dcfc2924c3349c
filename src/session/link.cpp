#include "peersock/session/link.hpp"

#include "peersock/session/ending.hpp"

#include "peersock/c_boundary.hpp"
#include "peersock/log.hpp"

namespace peersock::session {

Link::Link(bool ice_controlling, const config::Settings& settings, LinkEvents events)
    : events_(std::move(events)), ice_controlling_(ice_controlling), settings_(settings) {
  agent_ = std::make_unique<ice::Agent>(ice_controlling, settings, agent_callbacks(false));
}

// The first agent reports to the session; a restart agent's outcomes are
// the Link's own business, except its description and its new path.
ice::AgentCallbacks Link::agent_callbacks(bool restart) {
  ice::AgentCallbacks c;
  // Before QUIC started the datagrams are not ours to read.
  c.datagram = [this](std::span<const uint8_t> d) {
    if (driver_) driver_->receive(d);
  };
  if (!restart) {
    c.gathering_done = [this] {
      if (events_.gathering_done) events_.gathering_done();
    };
    c.connected = [this](const ice::SelectedPath& p) {
      if (events_.connected) events_.connected(p);
    };
    c.failed = [this] {
      if (events_.failed) events_.failed();
    };
    c.setup_failed = [this](const Error& e) {
      if (events_.setup_failed) events_.setup_failed(e);
    };
    c.resolved = [this] {
      if (events_.resolved) events_.resolved();
    };
    return c;
  }
  c.gathering_done = [this] {
    if (events_.restart_gathered) events_.restart_gathered(next_generation_);
  };
  c.connected = [this](const ice::SelectedPath& p) {
    log::debug(log::Layer::ice, "restart {} connected", next_generation_);
    restart_deadline_.reset();
    retired_.push_back(std::move(agent_));
    agent_ = std::move(next_);
    if (!reap_) reap_ = g_idle_add(&Link::on_reap, this);
    if (events_.path_changed) events_.path_changed(p);
    kick();  // what waited goes out on the new pair now
  };
  c.failed = [this] {
    log::debug(log::Layer::ice, "restart {} found no path", next_generation_);
    drop_next();
  };
  c.setup_failed = [this](const Error& e) {
    log::debug(log::Layer::ice, "restart {} could not gather: {}", next_generation_, e.what());
    drop_next();
  };
  return c;
}

void Link::begin_restart(uint32_t generation) {
  drop_next();
  next_ = std::make_unique<ice::Agent>(ice_controlling_, settings_, agent_callbacks(true));
  next_generation_ = generation;
  restart_deadline_ = g_timeout_add(kRestartDeadlineMs, &Link::on_restart_deadline, this);
  log::debug(log::Layer::ice, "restart {}: gathering", generation);
  next_->gather();
}

ice::Description Link::restart_description() const {
  if (!next_) throw Error(ExitCode::failure, "no ICE restart is pending");
  return next_->local_description();
}

void Link::set_restart_remote(uint32_t generation, const ice::Description& remote) {
  if (!next_ || generation != next_generation_) return;
  log::debug(log::Layer::ice, "restart {}: the peer offers {} candidates", generation, remote.candidates.size());
  next_->set_remote(remote);
}

void Link::drop_next() {
  restart_deadline_.reset();
  if (!next_) return;
  retired_.push_back(std::move(next_));
  if (!reap_) reap_ = g_idle_add(&Link::on_reap, this);
}

gboolean Link::on_restart_deadline(gpointer self) {
  return c_boundary("the ICE restart deadline", [&]() -> gboolean {
    auto* link = static_cast<Link*>(self);
    link->restart_deadline_.fired();
    log::debug(log::Layer::ice, "restart {} did not connect within {} s", link->next_generation_,
               kRestartDeadlineMs / 1000);
    link->drop_next();
    return G_SOURCE_REMOVE;
  });
}

gboolean Link::on_reap(gpointer self) {
  return c_boundary("freeing an ICE agent", [&]() -> gboolean {
    auto* link = static_cast<Link*>(self);
    link->reap_.fired();
    link->retired_.clear();
    return G_SOURCE_REMOVE;
  });
}

Link::~Link() {
  // Top down: the driver's timer, the endpoint, then the agents under it.
  driver_.reset();
  endpoint_.reset();
  restart_deadline_.reset();
  reap_.reset();
  next_.reset();
  retired_.clear();
  agent_.reset();
}

void Link::start_quic(quic::Role role, const quic::EndpointOptions& options) {
  if (endpoint_) return;
  endpoint_ = std::make_unique<quic::Endpoint>(
      role, [this](const quic::Endpoint::Batch& b) { agent_->send_batch(b.bytes, b.sizes); }, options, quic::now());
  driver_ = std::make_unique<quic::Driver>(*endpoint_, [this] {
    if (events_.quic_ran) events_.quic_ran();
  });
}

void Link::kick() {
  if (driver_) driver_->kick();
}

void Link::close(ExitCode why) {
  if (!endpoint_ || endpoint_->closed()) return;
  std::string reason = close_reason_;
  if (reason.empty()) reason = why == ExitCode::ok ? "done" : std::string(exit_code_name(why));
  endpoint_->close(close_code(why), reason, quic::now());
  driver_->kick();
}

bool Link::closed() const { return !endpoint_ || endpoint_->shutdown_complete(); }

}  // namespace peersock::session

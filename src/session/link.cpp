#include "peersock/session/link.hpp"

#include "peersock/session/ending.hpp"

namespace peersock::session {

Link::Link(bool ice_controlling, const config::Settings& settings, LinkEvents events) : events_(std::move(events)) {
  agent_ = std::make_unique<ice::Agent>(ice_controlling, settings,
                                        ice::AgentCallbacks{
                                            [this] {
                                              if (events_.gathering_done) events_.gathering_done();
                                            },
                                            [this](const ice::SelectedPath& p) {
                                              if (events_.connected) events_.connected(p);
                                            },
                                            [this] {
                                              if (events_.failed) events_.failed();
                                            },
                                            // Before QUIC started the datagrams are not ours to read.
                                            [this](std::span<const uint8_t> d) {
                                              if (driver_) driver_->receive(d);
                                            },
                                            [this](const Error& e) {
                                              if (events_.setup_failed) events_.setup_failed(e);
                                            },
                                            [this] {
                                              if (events_.resolved) events_.resolved();
                                            },
                                        });
}

Link::~Link() {
  // Top down: the driver's timer, the endpoint, then the agent under it.
  driver_.reset();
  endpoint_.reset();
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

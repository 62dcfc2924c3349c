#include "peersock/session/control_channel.hpp"

#include "peersock/log.hpp"

#include "peersock/error.hpp"
#include "peersock/protocol/version.hpp"

namespace peersock::session {

ControlChannel::ControlChannel(int version, bool quic_server, ControlChannelEvents events)
    : version_(version), quic_server_(quic_server), events_(std::move(events)), reader_(version) {}

void ControlChannel::attach(quic::Stream stream) {
  stream_ = std::move(stream);
  flush();
}

void ControlChannel::send_delivered() {
  if (!protocol::has_control_stream(version_)) return;
  ++markers_;
  send(std::span<const uint8_t>(&kDoneMarker, 1));
}

void ControlChannel::send_grant(uint64_t stream_id, uint64_t limit) {
  // Below v3 the peer would read the frame's bytes as markers.
  if (!protocol::frames_credit(version_)) return;
  send(encode_credit({stream_id, limit}));
}

void ControlChannel::send_connect_failure(uint64_t stream_id, std::string_view text) {
  if (!protocol::reports_connect_failures(version_)) return;
  send(encode_connect_failure(stream_id, text));
}

void ControlChannel::start_ping(int64_t now_us) {
  if (!protocol::has_control_stream(version_)) return;
  send(ping_.ping(now_us));
}

void ControlChannel::send(std::span<const uint8_t> bytes) {
  if (closed_) return;
  out_.insert(out_.end(), bytes.begin(), bytes.end());
  flush();
}

void ControlChannel::flush() {
  if (!stream_ || out_.empty()) return;
  auto r = stream_.write(out_);
  if (r.status == quic::IoStatus::ok) {
    out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(r.bytes));
    if (events_.wants_io) events_.wants_io();
  } else if (r.status == quic::IoStatus::reset) {
    // The peer reset stream 0, or the connection is going away (its close
    // may be in the same batch of datagrams): QUIC's close tells the
    // session how the run ended. Nothing more can be said here.
    log::debug(log::Layer::session, "control stream: {} bytes not sent, the stream is gone", out_.size());
    out_.clear();
    closed_ = true;
    return;
  }
  if (out_.size() > kMaxBacklog) throw Error(ExitCode::peer_gone, "the peer stopped reading the control stream");
}

void ControlChannel::poll(int64_t now_us) {
  if (!stream_ || closed_) return;
  if (!reading_) {
    flush();
    return;
  }
  uint8_t buf[4096];
  quic::IoResult r;
  while ((r = stream_.read(buf)).status == quic::IoStatus::ok) {
    auto events = reader_.feed({buf, r.bytes});
    for (size_t i = 0; i < events.done; ++i) {
      if (events_.peer_delivered) events_.peer_delivered();
    }
    for (const auto& grant : events.credits) {
      if (events_.grant) events_.grant(grant.stream_id, grant.limit);
    }
    for (const auto& failure : events.failures) {
      if (events_.connect_failed) events_.connect_failed(failure);
    }
    auto ping = ping_.on_control(events.pings, events.pongs, now_us);
    if (!ping.reply.empty()) send(ping.reply);
    if (quic_server_ && ping_.pinged_by_peer() && !pinged_back_) {
      pinged_back_ = true;
      send(ping_.ping(now_us));
    }
    if (ping.rtt_ms && events_.rtt) events_.rtt(*ping.rtt_ms);
  }
  flush();
}

void ControlChannel::close(ExitCode) { closed_ = true; }

}  // namespace peersock::session

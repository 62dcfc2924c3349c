#include "peersock/session/auth_gate.hpp"

#include <openssl/crypto.h>

#include <fmt/core.h>

#include "peersock/error.hpp"
#include "peersock/log.hpp"

namespace peersock::session {

using log::Layer;

namespace {
// The client's first bidirectional stream; the auth stream is the client's
// second (up to v6) or the server's first (from v7) (docs/protocol.md §4.4).
constexpr int64_t kControlStream = 0;
constexpr int64_t kClientAuthStream = 4;
constexpr int64_t kServerAuthStream = 1;
}  // namespace

AuthGate::AuthGate(quic::Endpoint& endpoint, protocol::Sides sides, int version, std::function<void()> wants_io)
    : endpoint_(endpoint),
      sides_(sides),
      initiator_(sides.smp_initiator(version)),
      auth_stream_id_(protocol::server_starts_smp(version) ? kServerAuthStream : kClientAuthStream),
      wants_io_(std::move(wants_io)) {}

void AuthGate::write(quic::Stream& stream, std::span<const uint8_t> bytes) {
  // Auth messages are small: the stream always has room for them, or it is gone.
  auto r = stream.write(bytes);
  if (r.status != quic::IoStatus::ok || r.bytes != bytes.size())
    throw Error(ExitCode::peer_gone, "cannot write to the peer");
  if (wants_io_) wants_io_();
}

quic::Stream AuthGate::begin(std::string& code, bool keep_pairing_secret) {
  begun_ = true;
  auto exporter = endpoint_.export_keying_material(auth::kExporterLabel, auth::kExporterBytes);
  auth::Secret secret = auth::derive_secret(exporter, code);
  if (keep_pairing_secret) pairing_secret_ = pairing::pairing_secret(secret);
  // One session, one derivation: the code is not needed any more.
  auth::wipe(code);
  OPENSSL_cleanse(exporter.data(), exporter.size());
  auto role = initiator_ ? auth::Role::alice : auth::Role::bob;
  smp_ = std::make_unique<auth::Smp>(role, secret);
  OPENSSL_cleanse(secret.data(), secret.size());
  log::debug(Layer::auth, "SMP as {}, secret bound to the TLS exporter", initiator_ ? "initiator" : "responder");
  std::vector<uint8_t> msg1 = smp_->start();  // empty for the responder
  // The client's stream 0 (control) first, then the auth stream if it is
  // the client's: stream 0 and stream 4, in that order, as the original.
  quic::Stream control;
  if (!sides_.quic_server()) {
    auto id = endpoint_.open_stream();
    if (!id) throw Error(ExitCode::failure, "cannot open the QUIC control stream");
    control = quic::Stream(endpoint_, *id);
    control_taken_ = true;
  }
  if (initiator_) {
    auto id = endpoint_.open_stream();
    if (!id || *id != auth_stream_id_) throw Error(ExitCode::failure, "cannot open the QUIC auth stream");
    auth_ = quic::Stream(endpoint_, *id);
    write(auth_, auth::encode_frame(msg1));
  }
  return control;
}

void AuthGate::admit(const std::function<void(quic::Stream)>& control, const std::function<void(quic::Stream)>& data) {
  if (!begun_) return;
  // The initiator opens the auth stream itself and has no reason to take a
  // peer stream before auth; leaving them queued avoids the original's race
  // (docs/protocol.md §5.5). But the responder can only have verified us
  // after our msg3: a stream it opened before that is data before auth.
  // (From v7 the initiator is the server, and stream 0 waits here too until
  // its success: the client writes on it only after its own.)
  if (initiator_ && !authenticated()) {
    if (smp_ && !smp_->peer_can_have_succeeded() && endpoint_.accept_queue_size() > 0) {
      throw CounterpartyError("the peer opened a stream before authentication");
    }
    return;
  }
  while (auto accepted = endpoint_.accept_stream()) {
    quic::Stream stream(endpoint_, *accepted);
    int64_t id = stream.id();
    if (id == kControlStream && !control_taken_) {
      // The server sees stream 0 once the client first writes to it, which
      // may be before or after the server's own verdict.
      control_taken_ = true;
      control(std::move(stream));
    } else if (id == auth_stream_id_ && !auth_ && !authenticated()) {
      auth_ = std::move(stream);
    } else if (!authenticated()) {
      throw CounterpartyError(fmt::format("the peer opened stream {} before authentication", id));
    } else {
      data(std::move(stream));
    }
  }
}

AuthGate::Verdict AuthGate::poll() {
  if (closed_ || !auth_ || verdict_ != Verdict::pending || !smp_) return verdict_;
  uint8_t buf[4096];
  for (;;) {
    auto r = auth_.read(buf);
    if (r.status == quic::IoStatus::would_block) break;
    if (r.status != quic::IoStatus::ok) throw CounterpartyError("the peer closed the authentication stream");
    frames_.feed({buf, r.bytes});
    while (auto frame = frames_.next()) {
      auto step = smp_->on_message(*frame);
      log::debug(Layer::auth, "SMP message of {} bytes in, {} bytes out", frame->size(), step.reply.size());
      if (!step.reply.empty()) write(auth_, auth::encode_frame(step.reply));
      if (step.status == auth::Status::in_progress) continue;
      smp_.reset();  // wipes the secret
      verdict_ = step.status == auth::Status::success ? Verdict::success : Verdict::mismatch;
      if (verdict_ == Verdict::mismatch) drop_pairing_secret();
      return verdict_;
    }
  }
  return verdict_;
}

bool AuthGate::has_input() const {
  if (!auth_ || verdict_ != Verdict::pending) return false;
  const quic::StreamState* s = endpoint_.stream(auth_.id());
  return s != nullptr && (!s->rx.empty() || s->rx_fin || s->rx_reset);
}

bool AuthGate::sent_acknowledged() const {
  if (!auth_) return true;
  const quic::StreamState* s = endpoint_.stream(auth_.id());
  return s == nullptr || s->tx.acked() == s->tx.written();
}

void AuthGate::close(ExitCode) {
  closed_ = true;
  smp_.reset();  // wipes the secret
  drop_pairing_secret();
}

void AuthGate::drop_pairing_secret() {
  if (pairing_secret_) OPENSSL_cleanse(pairing_secret_->data(), pairing_secret_->size());
  pairing_secret_.reset();
}

}  // namespace peersock::session

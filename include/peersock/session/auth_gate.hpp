// The authentication stage (docs/protocol.md §5): once the QUIC handshake is
// done, SMP on the code, bound to the TLS exporter, on stream 4; and the
// admission rule for the peer's streams until SMP succeeded (§5.5): stream 0
// (control) and stream 4 (auth) only, and nothing at all that the peer could
// only open after its own verdict, which it cannot have yet.
//
// It reports through the value poll() returns and through the streams it
// hands out; it never sees the session.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "peersock/auth/smp.hpp"
#include "peersock/pairing/pairing.hpp"
#include "peersock/protocol/sides.hpp"
#include "peersock/quic/endpoint.hpp"
#include "peersock/quic/stream.hpp"
#include "peersock/stage.hpp"

namespace peersock::session {

class AuthGate final : public Stage {
 public:
  enum class Verdict { pending, success, mismatch };

  // `endpoint` must outlive the gate. `wants_io`: we wrote to a stream.
  AuthGate(quic::Endpoint& endpoint, protocol::Sides sides, std::function<void()> wants_io);

  // The handshake is done: derives the secret from the exporter and `code`,
  // wipes `code` and every intermediate copy, starts SMP. The initiator
  // opens streams 0 and 4 here (returned: stream 0, for the control
  // channel). Errors: Error(failure) for a missing exporter, Error(peer_gone)
  // when the streams cannot be opened or written.
  // `keep_pairing_secret`: also derive the pairing secret (pairing.hpp),
  // for pairing_secret() once SMP succeeded (--remember).
  quic::Stream begin(std::string& code, bool keep_pairing_secret = false);
  bool begun() const { return begun_; }

  // Takes the peer's new streams: before success only stream 0 (passed to
  // `control`) and stream 4; after it, data streams (passed to `data`).
  // Errors: CounterpartyError for a stream the rule does not allow.
  void admit(const std::function<void(quic::Stream)>& control, const std::function<void(quic::Stream)>& data);

  // Reads stream 4 and advances SMP. Errors: CounterpartyError for
  // malformed frames or a closed auth stream; Error(peer_gone) when a reply
  // cannot be written.
  Verdict poll();

  bool authenticated() const { return verdict_ == Verdict::success; }

  // The initiator sent its last SMP message (msg3) and waits for the
  // verdict: an original responder that stays silent now found a mismatch
  // (it exits without telling us, ../shared/docs/protocol-v1.md §5.3).
  bool awaiting_verdict() const {
    return sides_.smp_initiator() && verdict_ == Verdict::pending && smp_ && smp_->peer_can_have_succeeded();
  }

  // Everything we wrote on the auth stream was acknowledged by the peer
  // (true before it exists). An original client handles a new stream before
  // the SMP message that came with it (v1 doc §7.4): a responder that opens
  // the data stream waits for this.
  bool sent_acknowledged() const;

  // After success, when begin() was asked to keep it: the pairing secret,
  // which both sides now hold (and only they). Empty otherwise; wiped by
  // close() and on a mismatch.
  const std::optional<pairing::Key>& pairing_secret() const { return pairing_secret_; }
  void drop_pairing_secret();

  // Drops SMP's state (it holds the secret) and stops answering. The auth
  // stream goes with the QUIC connection.
  void close(ExitCode why) override;
  bool closed() const override { return closed_; }

 private:
  void write(quic::Stream& stream, std::span<const uint8_t> bytes);

  quic::Endpoint& endpoint_;
  protocol::Sides sides_;
  std::function<void()> wants_io_;
  bool begun_ = false;
  bool control_taken_ = false;  // stream 0 went to the control channel
  std::unique_ptr<auth::Smp> smp_;
  auth::FrameReader frames_;
  quic::Stream auth_;
  Verdict verdict_ = Verdict::pending;
  std::optional<pairing::Key> pairing_secret_;
  bool closed_ = false;
};

}  // namespace peersock::session

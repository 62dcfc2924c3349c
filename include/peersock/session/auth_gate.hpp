// The authentication stage (docs/protocol.md §5): SMP on the code, bound to
// the TLS exporter, on the auth stream -- the client's stream 4 up to v6,
// the server's stream 1 from v7, when the server starts SMP in its first
// flight; and the admission rule for the peer's streams until SMP succeeded
// (§5.5): stream 0 (control) and the auth stream only, and nothing at all
// that the peer could only open after its own verdict, which it cannot have
// yet.
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

  // `endpoint` must outlive the gate. `version`: the handshake's protocol
  // version. `wants_io`: we wrote to a stream.
  AuthGate(quic::Endpoint& endpoint, protocol::Sides sides, int version, std::function<void()> wants_io);

  // The endpoint's keys are ready (app_keys_ready(): the handshake is done,
  // or a v7 server has sent its flight): derives the secret from the
  // exporter and `code`, wipes `code` and every intermediate copy, starts
  // SMP. The client opens stream 0 here (returned, for the control channel);
  // the initiator opens the auth stream and writes msg1. Errors:
  // Error(failure) for a missing exporter, Error(peer_gone) when the streams
  // cannot be opened or written.
  // `keep_pairing_secret`: also derive the pairing secret (pairing.hpp),
  // for pairing_secret() once SMP succeeded (--remember).
  quic::Stream begin(std::string& code, bool keep_pairing_secret = false);
  bool begun() const { return begun_; }

  // Takes the peer's new streams: before success only stream 0 (passed to
  // `control`) and the auth stream; after it, data streams (passed to `data`).
  // Errors: CounterpartyError for a stream the rule does not allow.
  void admit(const std::function<void(quic::Stream)>& control, const std::function<void(quic::Stream)>& data);

  // Reads the auth stream and advances SMP. Errors: CounterpartyError for
  // malformed frames or a closed auth stream; Error(peer_gone) when a reply
  // cannot be written.
  Verdict poll();

  bool authenticated() const { return verdict_ == Verdict::success; }

  // Bytes, or an end, wait on the auth stream: poll() has work to do.
  bool has_input() const;

  // The initiator sent its last SMP message (msg3) and waits for the
  // verdict: an original responder that stays silent now found a mismatch
  // (it exits without telling us, ../shared/docs/protocol-v1.md §5.3).
  bool awaiting_verdict() const {
    return initiator_ && verdict_ == Verdict::pending && smp_ && smp_->peer_can_have_succeeded();
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
  bool initiator_;         // sides_.smp_initiator(version)
  int64_t auth_stream_id_; // 4 (the client's) up to v6, 1 (the server's) from v7
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

// Authentication: the Socialist Millionaires' Protocol (libotr otrl_sm_*)
// over its own QUIC stream (docs/protocol.md §5), bound to the TLS session by an
// exporter value. Pure logic: bytes in, bytes out; the session moves them.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace peersock::auth {

inline constexpr std::string_view kExporterLabel = "exporter auth peersock";
inline constexpr size_t kExporterBytes = 32;
inline constexpr size_t kMaxFramePayload = 4096;

using Secret = std::array<uint8_t, 32>;

// S = SHA-256(exporter || code || "CONNAUTH").
Secret derive_secret(std::span<const uint8_t> exporter, std::string_view code);

// Overwrites the characters of `s` (OPENSSL_cleanse, which the compiler may
// not optimise away) and empties it. For the code once the secret is derived.
// Copies made earlier (argv, reallocations while the string grew) are out of
// its reach; docs/security.md lists them.
void wipe(std::string& s);

// 2-byte big-endian length + payload. Asserts payload size in [1, kMaxFramePayload].
std::vector<uint8_t> encode_frame(std::span<const uint8_t> payload);

// Reassembles frames from arbitrarily split stream bytes.
class FrameReader {
 public:
  // Errors: CounterpartyError when a length prefix is 0 or exceeds
  // kMaxFramePayload (checked as soon as the 2 length bytes are in), or when
  // more than one frame's worth of unread data piles up.
  void feed(std::span<const uint8_t> bytes);
  // The next complete frame's payload, if any.
  std::optional<std::vector<uint8_t>> next();

 private:
  std::vector<uint8_t> buffer_;
};

enum class Role { alice /* QUIC client, code consumer */, bob /* QUIC server, code generator */ };
enum class Status { in_progress, success, mismatch };

// One SMP run. Alice: start() gives msg1, then msg2 -> msg3, msg4 -> done.
// Bob: msg1 -> msg2, msg3 -> msg4 + done. A secret mismatch and an invalid
// proof are indistinguishable by design and both give Status::mismatch.
class Smp {
 public:
  Smp(Role role, const Secret& secret);
  ~Smp();  // frees libotr state, wipes the secret
  Smp(const Smp&) = delete;
  Smp& operator=(const Smp&) = delete;

  // Alice: msg1. Bob: empty.
  std::vector<uint8_t> start();

  struct Step {
    std::vector<uint8_t> reply;  // frame payload to send, may be empty
    Status status = Status::in_progress;
  };
  // A message payload from the peer. Errors: CounterpartyError for a message
  // that arrives after the run ended or more messages than the protocol has.
  Step on_message(std::span<const uint8_t> message);

  Status status() const { return status_; }

  // Whether the peer can already have verified us: Bob succeeds on msg3, so
  // for Alice that is once msg3 is sent; Alice only succeeds after Bob, so
  // for Bob never before his own verdict. Anything the peer does that needs
  // its success (opening data streams) before this is a protocol violation.
  bool peer_can_have_succeeded() const { return role_ == Role::alice ? step_ >= 2 : status_ == Status::success; }

 private:
  struct State;
  Role role_;
  Secret secret_;
  std::unique_ptr<State> state_;  // libotr's OtrlSMState (freed with it)
  int step_ = 0;
  Status status_ = Status::in_progress;
};

}  // namespace peersock::auth

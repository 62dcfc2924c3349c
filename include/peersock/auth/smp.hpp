// Authentication: the Socialist Millionaires' Protocol (libotr's messages,
// our arithmetic on OpenSSL) over its own QUIC stream (docs/protocol.md §5), bound to the TLS session by an
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

// The group libotr's SMP computes in: the 1536-bit MODP group of RFC 3526
// (group 5), p = 2q + 1 with q prime, generator 2 of the subgroup of order q.
inline constexpr std::string_view kSmpModulusHex =
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A"
    "431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F2411"
    "7C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED5"
    "29077096966D670C354E4ABC9804F1746C08CA237327FFFFFFFFFFFFFFFF";

// SMP message n (1-4) as libotr serialises it: a 4-byte big-endian count,
// then per MPI a 4-byte big-endian length and that many bytes (unsigned,
// big-endian). Checks that every group element in it (msg1: g2a, g3a; msg2:
// g2b, g3b, Pb, Qb; msg3: Pa, Qa, Ra; msg4: Rb) lies in the subgroup of
// order q: 2 <= g <= p-2 and g^q = 1 mod p. libotr itself only checks the
// range, so an element of order 2q (or 2) would let a peer learn a bit of
// our secret's exponents from our reply. Smp::on_message does the same check.
// Errors: CounterpartyError naming the message and the element that is not
// in the subgroup. A message that is not a well-formed array of the right
// count passes unchecked: Smp rejects it (a mismatch).
void check_subgroup(int message_number, std::span<const uint8_t> message);

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

// libotr's names: alice starts (step1, step3, step5), bob answers (step2,
// step4) and is authenticated first. Who is which: protocol::Sides::smp_initiator.
enum class Role { alice /* the initiator */, bob /* the responder */ };
enum class Status { in_progress, success, mismatch };

// One SMP run. Alice: start() gives msg1, then msg2 -> msg3, msg4 -> done.
// Bob: msg1 -> msg2, msg3 -> msg4 + done. A secret mismatch and an invalid
// proof are indistinguishable by design and both give Status::mismatch.
class Smp {
 public:
  Smp(Role role, const Secret& secret);
  ~Smp();  // wipes the secret and every number of the run
  Smp(const Smp&) = delete;
  Smp& operator=(const Smp&) = delete;

  // Alice: msg1. Bob: empty.
  std::vector<uint8_t> start();

  struct Step {
    std::vector<uint8_t> reply;  // frame payload to send, may be empty
    Status status = Status::in_progress;
  };
  // A message payload from the peer. Errors: CounterpartyError for a message
  // that arrives after the run ended or more messages than the protocol has,
  // and for a group element outside the prime-order subgroup
  // (check_subgroup), checked before any arithmetic on the message.
  // Error(failure) when OpenSSL fails (allocation).
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
  std::unique_ptr<State> state_;  // the run's numbers (smp_math)
  int step_ = 0;
  Status status_ = Status::in_progress;
};

}  // namespace peersock::auth

// Unit tests for the authentication layer: secret derivation, auth-stream
// framing and SMP runs between an in-process Alice and Bob.

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <gcrypt.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "peersock/auth/smp.hpp"
#include "peersock/error.hpp"

namespace {

using peersock::CounterpartyError;
using peersock::auth::derive_secret;
using peersock::auth::encode_frame;
using peersock::auth::FrameReader;
using peersock::auth::kMaxFramePayload;
using peersock::auth::Role;
using peersock::auth::Secret;
using peersock::auth::Smp;
using peersock::auth::Status;

using Bytes = std::vector<uint8_t>;

Bytes exporter_0_to_31() {
  Bytes e(32);
  for (size_t i = 0; i < e.size(); ++i) e[i] = static_cast<uint8_t>(i);
  return e;
}

Secret secret_from_hex(std::string_view hex) {
  Secret s{};
  for (size_t i = 0; i < s.size(); ++i)
    s[i] = static_cast<uint8_t>(std::stoi(std::string(hex.substr(2 * i, 2)), nullptr, 16));
  return s;
}

// Independent reference: one-shot SHA-256 over the concatenated buffer.
Secret reference_secret(const Bytes& exporter, std::string_view code) {
  Bytes all(exporter);
  all.insert(all.end(), code.begin(), code.end());
  const std::string_view suffix = "CONNAUTH";
  all.insert(all.end(), suffix.begin(), suffix.end());
  Secret out{};
  unsigned int len = 0;
  EXPECT_EQ(EVP_Digest(all.data(), all.size(), out.data(), &len, EVP_sha256(), nullptr), 1);
  EXPECT_EQ(len, 32u);
  return out;
}

uint32_t be32(const Bytes& b, size_t at) {
  return (uint32_t{b[at]} << 24) | (uint32_t{b[at + 1]} << 16) | (uint32_t{b[at + 2]} << 8) | b[at + 3];
}

// ---------------------------------------------------------------- secret

TEST(DeriveSecret, MatchesIndependentComputation) {
  Bytes exporter(32);
  for (size_t i = 0; i < exporter.size(); ++i) exporter[i] = static_cast<uint8_t>(0xA5 ^ (i * 7));
  for (std::string_view code : {"7-guitar-ocean-sudden-wrist", "", "1-a-b-c-d"}) {
    EXPECT_EQ(derive_secret(exporter, code), reference_secret(exporter, code)) << code;
  }
}

TEST(DeriveSecret, KnownAnswer) {
  // Computed once with Python: hashlib.sha256(bytes(range(32)) +
  // b"42-abandon-ability-able-about" + b"CONNAUTH").hexdigest()
  EXPECT_EQ(derive_secret(exporter_0_to_31(), "42-abandon-ability-able-about"),
            secret_from_hex("718a2d9177d716cedf5df1c7ae667d58d1bf682bd43e0c1bfd148e28a242fc3a"));
  // hashlib.sha256(b"\xff" * 32 + b"CONNAUTH"): empty code.
  EXPECT_EQ(derive_secret(Bytes(32, 0xff), ""),
            secret_from_hex("6b6c0fde304f8e626d8cc6dc1e9fe24547c435f34161f25cc007d3eb19409606"));
}

TEST(DeriveSecret, EveryInputMatters) {
  const Bytes e = exporter_0_to_31();
  Bytes e2 = e;
  e2[31] ^= 1;
  const Secret base = derive_secret(e, "42-abandon-ability-able-about");
  EXPECT_NE(base, derive_secret(e2, "42-abandon-ability-able-about"));
  EXPECT_NE(base, derive_secret(e, "42-abandon-ability-able-abouT"));
  // The boundary between exporter and code is not encoded: moving a byte
  // across it gives the same hash. Pinning that down shows the input is a
  // plain concatenation, as docs/protocol.md §5.1 specifies.
  const Bytes e31(e.begin(), e.end() - 1);
  const std::string moved = std::string(1, static_cast<char>(e.back())) + "42-abandon-ability-able-about";
  EXPECT_EQ(base, derive_secret(e31, moved));
}

// ---------------------------------------------------------------- frames

Bytes payload_of(size_t n, uint8_t seed) {
  Bytes p(n);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(seed + i * 31);
  return p;
}

TEST(Frames, EncodeBytes) {
  EXPECT_EQ(encode_frame(Bytes{0xAA, 0xBB, 0xCC}), (Bytes{0x00, 0x03, 0xAA, 0xBB, 0xCC}));
  EXPECT_EQ(encode_frame(Bytes{0x00}), (Bytes{0x00, 0x01, 0x00}));
  const Bytes p300 = payload_of(300, 1);
  const Bytes f300 = encode_frame(p300);
  ASSERT_EQ(f300.size(), 302u);
  EXPECT_EQ(f300[0], 0x01);
  EXPECT_EQ(f300[1], 0x2C);
  EXPECT_TRUE(std::equal(p300.begin(), p300.end(), f300.begin() + 2));
  const Bytes fmax = encode_frame(payload_of(kMaxFramePayload, 2));
  ASSERT_EQ(fmax.size(), kMaxFramePayload + 2);
  EXPECT_EQ(fmax[0], 0x10);
  EXPECT_EQ(fmax[1], 0x00);
}

TEST(Frames, RoundTrip) {
  FrameReader r;
  EXPECT_FALSE(r.next().has_value());
  for (size_t n : {size_t{1}, size_t{2}, size_t{255}, size_t{256}, size_t{860}, kMaxFramePayload}) {
    const Bytes p = payload_of(n, static_cast<uint8_t>(n));
    r.feed(encode_frame(p));
    const auto got = r.next();
    ASSERT_TRUE(got.has_value()) << n;
    EXPECT_EQ(*got, p);
    EXPECT_FALSE(r.next().has_value());
  }
}

TEST(Frames, SplitAtEveryBoundary) {
  const Bytes p1 = payload_of(300, 3);
  const Bytes p2 = payload_of(1, 9);
  Bytes stream = encode_frame(p1);
  const Bytes f2 = encode_frame(p2);
  stream.insert(stream.end(), f2.begin(), f2.end());
  const size_t end1 = p1.size() + 2;

  // Two chunks, cut at every position.
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    FrameReader r;
    std::vector<Bytes> got;
    r.feed(std::span(stream).first(cut));
    while (auto f = r.next()) got.push_back(*f);
    EXPECT_EQ(got.size(), cut >= stream.size() ? 2u : cut >= end1 ? 1u : 0u) << cut;
    r.feed(std::span(stream).subspan(cut));
    while (auto f = r.next()) got.push_back(*f);
    ASSERT_EQ(got.size(), 2u) << cut;
    EXPECT_EQ(got[0], p1);
    EXPECT_EQ(got[1], p2);
  }

  // One byte at a time: a frame appears exactly when its last byte arrives.
  FrameReader r;
  std::vector<Bytes> got;
  for (size_t i = 0; i < stream.size(); ++i) {
    r.feed(std::span(stream).subspan(i, 1));
    auto f = r.next();
    const bool completes = (i + 1 == end1) || (i + 1 == stream.size());
    EXPECT_EQ(f.has_value(), completes) << i;
    if (f) got.push_back(*f);
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], p1);
  EXPECT_EQ(got[1], p2);
}

TEST(Frames, SeveralFramesInOneFeed) {
  const Bytes a = payload_of(5, 1), b = payload_of(7, 2), c = payload_of(1, 3);
  Bytes stream;
  for (const Bytes* p : {&a, &b, &c}) {
    const Bytes f = encode_frame(*p);
    stream.insert(stream.end(), f.begin(), f.end());
  }
  stream.push_back(0x00);  // first length byte of a fourth frame
  FrameReader r;
  r.feed(stream);
  EXPECT_EQ(r.next(), a);
  EXPECT_EQ(r.next(), b);
  EXPECT_EQ(r.next(), c);
  EXPECT_FALSE(r.next().has_value());
  r.feed(Bytes{0x02, 0xDE});
  EXPECT_FALSE(r.next().has_value());
  r.feed(Bytes{0xAD});
  EXPECT_EQ(r.next(), (Bytes{0xDE, 0xAD}));
}

TEST(Frames, ZeroLengthRejectedAsSoonAsKnown) {
  FrameReader r;
  r.feed(Bytes{0x00});  // one length byte: not decidable yet
  EXPECT_THROW(r.feed(Bytes{0x00}), CounterpartyError);

  // Also when the zero-length frame sits behind a good one in the same feed.
  FrameReader r2;
  Bytes stream = encode_frame(Bytes{0x42});
  stream.push_back(0x00);
  stream.push_back(0x00);
  EXPECT_THROW(r2.feed(stream), CounterpartyError);
}

TEST(Frames, OversizeRejectedBeforePayload) {
  FrameReader r;
  r.feed(Bytes{0x10});
  EXPECT_THROW(r.feed(Bytes{0x01}), CounterpartyError);  // 4097
  FrameReader r2;
  EXPECT_THROW(r2.feed(Bytes{0xFF, 0xFF}), CounterpartyError);
}

TEST(Frames, ExactlyMaxAccepted) {
  const Bytes p = payload_of(kMaxFramePayload, 5);
  Bytes f{0x10, 0x00};
  f.insert(f.end(), p.begin(), p.end());
  FrameReader r;
  r.feed(std::span(f).first(2));  // the length alone is accepted
  EXPECT_FALSE(r.next().has_value());
  r.feed(std::span(f).subspan(2));
  EXPECT_EQ(r.next(), p);
}

TEST(Frames, UnreadDataIsBounded) {
  // A maximal frame plus the first byte of another: more than one frame's
  // worth of unread data, which a lock-step peer never sends.
  Bytes f = encode_frame(payload_of(kMaxFramePayload, 6));
  f.push_back(0x00);
  FrameReader r;
  EXPECT_THROW(r.feed(f), CounterpartyError);
}

// ---------------------------------------------------------------- SMP

Secret secret_a() { return derive_secret(exporter_0_to_31(), "42-abandon-ability-able-about"); }
Secret secret_b() { return derive_secret(exporter_0_to_31(), "42-abandon-ability-able-above"); }

struct Transcript {
  Bytes msg1, msg2, msg3, msg4;
};

// Runs a full exchange between two fresh parties, asserting the in-between
// statuses, and returns the messages.
Transcript run(Smp& alice, Smp& bob) {
  Transcript t;
  EXPECT_TRUE(bob.start().empty());
  t.msg1 = alice.start();
  auto s2 = bob.on_message(t.msg1);
  EXPECT_EQ(s2.status, Status::in_progress);
  t.msg2 = s2.reply;
  auto s3 = alice.on_message(t.msg2);
  EXPECT_EQ(s3.status, Status::in_progress);
  t.msg3 = s3.reply;
  auto s4 = bob.on_message(t.msg3);
  t.msg4 = s4.reply;
  EXPECT_EQ(s4.status, bob.status());
  if (!t.msg4.empty()) {
    auto s5 = alice.on_message(t.msg4);
    EXPECT_TRUE(s5.reply.empty());
    EXPECT_EQ(s5.status, alice.status());
  }
  return t;
}

TEST(Smp, EqualSecretsSucceed) {
  Smp alice(Role::alice, secret_a());
  Smp bob(Role::bob, secret_a());
  const Transcript t = run(alice, bob);
  EXPECT_EQ(bob.status(), Status::success);
  EXPECT_EQ(alice.status(), Status::success);
  EXPECT_FALSE(t.msg4.empty());
}

TEST(Smp, MessageSizesAndMpiCounts) {
  Smp alice(Role::alice, secret_a());
  Smp bob(Role::bob, secret_a());
  const Transcript t = run(alice, bob);
  // the original as measured (../shared/docs/protocol-v1.md §8): roughly 860 / 1680 / 1250 / 430 bytes.
  for (const Bytes* m : {&t.msg1, &t.msg2, &t.msg3, &t.msg4}) {
    EXPECT_GE(m->size(), 300u);
    EXPECT_LE(m->size(), 2000u);
  }
  EXPECT_LT(t.msg4.size(), t.msg1.size());
  EXPECT_LT(t.msg1.size(), t.msg3.size());
  EXPECT_LT(t.msg3.size(), t.msg2.size());
  // libotr's MPI-array serialisation: 4-byte BE count first (§5.2, §5.3).
  EXPECT_EQ(be32(t.msg1, 0), 6u);
  EXPECT_EQ(be32(t.msg2, 0), 11u);
  EXPECT_EQ(be32(t.msg3, 0), 8u);
  EXPECT_EQ(be32(t.msg4, 0), 3u);
}

TEST(Smp, RunsAreRandomised) {
  Smp a1(Role::alice, secret_a());
  Smp a2(Role::alice, secret_a());
  EXPECT_NE(a1.start(), a2.start());
}

TEST(Smp, DifferentSecretsMismatchAtBob) {
  Smp alice(Role::alice, secret_a());
  Smp bob(Role::bob, secret_b());
  const Transcript t = run(alice, bob);
  EXPECT_EQ(bob.status(), Status::mismatch);
  // Like the original, Bob does not send msg4 on a mismatch, so Alice never
  // learns the verdict from SMP and is left waiting.
  EXPECT_TRUE(t.msg4.empty());
  EXPECT_EQ(alice.status(), Status::in_progress);
}

TEST(Smp, OneBitDifferenceMismatches) {
  Secret s = secret_a();
  s[31] ^= 0x01;
  Smp alice(Role::alice, secret_a());
  Smp bob(Role::bob, s);
  const Transcript t = run(alice, bob);
  EXPECT_EQ(bob.status(), Status::mismatch);
  EXPECT_TRUE(t.msg4.empty());
}

TEST(Smp, TamperedMsg2NeverCrashes) {
  // A fresh pair per position, because msg2 is bound to that run's msg1.
  // Positions cover the count, an MPI length and MPI bodies.
  Bytes lengths_seen;
  for (size_t pos : {size_t{0}, size_t{3}, size_t{5}, size_t{7}, size_t{100}, size_t{400}, size_t{900}, size_t{1300},
                     size_t{SIZE_MAX}}) {
    Smp alice(Role::alice, secret_a());
    Smp bob(Role::bob, secret_a());
    Bytes msg2 = bob.on_message(alice.start()).reply;
    ASSERT_FALSE(msg2.empty());
    const size_t at = pos == SIZE_MAX ? msg2.size() - 1 : pos;
    ASSERT_LT(at, msg2.size());
    msg2[at] ^= 0x5A;
    try {
      const auto step = alice.on_message(msg2);
      EXPECT_EQ(step.status, Status::mismatch) << at;
      EXPECT_TRUE(step.reply.empty()) << at;
    } catch (const CounterpartyError&) {
      // Acceptable by contract; status must not claim success.
      EXPECT_NE(alice.status(), Status::success) << at;
    }
  }
}

TEST(Smp, TamperedMsg3MismatchesWithoutReply) {
  Smp alice(Role::alice, secret_a());
  Smp bob(Role::bob, secret_a());
  Bytes msg2 = bob.on_message(alice.start()).reply;
  Bytes msg3 = alice.on_message(msg2).reply;
  msg3[msg3.size() / 2] ^= 0x01;
  const auto step = bob.on_message(msg3);
  EXPECT_EQ(step.status, Status::mismatch);
  EXPECT_TRUE(step.reply.empty());
}

TEST(Smp, TamperedMsg4Mismatches) {
  Smp alice(Role::alice, secret_a());
  Smp bob(Role::bob, secret_a());
  Bytes msg2 = bob.on_message(alice.start()).reply;
  Bytes msg3 = alice.on_message(msg2).reply;
  auto s4 = bob.on_message(msg3);
  ASSERT_EQ(s4.status, Status::success);
  Bytes msg4 = s4.reply;
  msg4[msg4.size() - 1] ^= 0x80;
  const auto step = alice.on_message(msg4);
  EXPECT_EQ(step.status, Status::mismatch);
  EXPECT_EQ(alice.status(), Status::mismatch);
}

TEST(Smp, Msg4FromAnotherRunMismatches) {
  Smp alice(Role::alice, secret_a());
  Smp bob(Role::bob, secret_a());
  Bytes msg3 = alice.on_message(bob.on_message(alice.start()).reply).reply;
  ASSERT_EQ(bob.on_message(msg3).status, Status::success);

  Smp other_alice(Role::alice, secret_a());
  Smp other_bob(Role::bob, secret_a());
  const Transcript other = run(other_alice, other_bob);
  ASSERT_EQ(other_alice.status(), Status::success);
  EXPECT_EQ(alice.on_message(other.msg4).status, Status::mismatch);
}

TEST(Smp, WrongMessageKindMismatches) {
  // Bob expects msg3 but gets msg1 again: the MPI count is wrong.
  Smp alice(Role::alice, secret_a());
  Smp bob(Role::bob, secret_a());
  const Bytes msg1 = alice.start();
  ASSERT_FALSE(bob.on_message(msg1).reply.empty());
  const auto step = bob.on_message(msg1);
  EXPECT_EQ(step.status, Status::mismatch);
  EXPECT_TRUE(step.reply.empty());
}

TEST(Smp, GarbageMsg1Mismatches) {
  Smp bob(Role::bob, secret_a());
  const auto step = bob.on_message(Bytes{0x00, 0x00, 0x00, 0x06, 0xFF});
  EXPECT_EQ(step.status, Status::mismatch);
  EXPECT_TRUE(step.reply.empty());
}

TEST(Smp, MessagesAfterCompletionAreCounterpartyErrors) {
  Smp alice(Role::alice, secret_a());
  Smp bob(Role::bob, secret_a());
  const Transcript t = run(alice, bob);
  ASSERT_EQ(alice.status(), Status::success);
  ASSERT_EQ(bob.status(), Status::success);
  EXPECT_THROW(alice.on_message(t.msg4), CounterpartyError);
  EXPECT_THROW(alice.on_message(t.msg2), CounterpartyError);
  EXPECT_THROW(bob.on_message(t.msg3), CounterpartyError);
  EXPECT_THROW(bob.on_message(t.msg1), CounterpartyError);
  // A structural error does not change a verdict already reached.
  EXPECT_EQ(alice.status(), Status::success);
  EXPECT_EQ(bob.status(), Status::success);
}

TEST(Smp, MessagesAfterMismatchAreCounterpartyErrors) {
  Smp alice(Role::alice, secret_a());
  Smp bob(Role::bob, secret_b());
  const Transcript t = run(alice, bob);
  ASSERT_EQ(bob.status(), Status::mismatch);
  EXPECT_THROW(bob.on_message(t.msg3), CounterpartyError);
  EXPECT_EQ(bob.status(), Status::mismatch);
}

TEST(Smp, AliceRefusesRetryAfterMismatch) {
  // Alice fails on a forged msg2; the genuine msg2 arriving afterwards must
  // not restart the comparison (one guess per run).
  Smp alice(Role::alice, secret_a());
  Smp bob(Role::bob, secret_a());
  const Bytes msg2 = bob.on_message(alice.start()).reply;
  Bytes forged = msg2;
  forged[forged.size() - 1] ^= 0x01;
  ASSERT_EQ(alice.on_message(forged).status, Status::mismatch);
  EXPECT_THROW(alice.on_message(msg2), CounterpartyError);
  EXPECT_EQ(alice.status(), Status::mismatch);
}

TEST(Smp, AliceRejectsMessageBeforeStart) {
  Smp alice(Role::alice, secret_a());
  EXPECT_THROW(alice.on_message(Bytes{0x00, 0x00, 0x00, 0x0B}), CounterpartyError);
  EXPECT_EQ(alice.status(), Status::in_progress);
}

TEST(Smp, OversizeAndEmptyMessagesAreCounterpartyErrors) {
  Smp bob(Role::bob, secret_a());
  EXPECT_THROW(bob.on_message(Bytes(kMaxFramePayload + 1, 0x01)), CounterpartyError);
  EXPECT_EQ(bob.status(), Status::in_progress);
  Smp bob2(Role::bob, secret_a());
  EXPECT_THROW(bob2.on_message(Bytes{}), CounterpartyError);

  // Once a structural error was reported the run is dead: a valid msg1
  // afterwards is refused too instead of resuming the run.
  Smp alice(Role::alice, secret_a());
  EXPECT_THROW(bob.on_message(alice.start()), CounterpartyError);

  // Exactly kMaxFramePayload bytes reach the parser (and are garbage: mismatch).
  Smp bob3(Role::bob, secret_a());
  EXPECT_EQ(bob3.on_message(Bytes(kMaxFramePayload, 0x01)).status, Status::mismatch);
}

TEST(Smp, ThroughFraming) {
  // The full exchange through encode_frame/FrameReader, with each frame fed
  // in 3-byte pieces as a stream would deliver it.
  Smp alice(Role::alice, secret_a());
  Smp bob(Role::bob, secret_a());
  FrameReader to_bob, to_alice;
  auto deliver = [](FrameReader& r, const Bytes& payload) {
    const Bytes f = encode_frame(payload);
    for (size_t i = 0; i < f.size(); i += 3) r.feed(std::span(f).subspan(i, std::min<size_t>(3, f.size() - i)));
    auto got = r.next();
    EXPECT_TRUE(got.has_value());
    EXPECT_FALSE(r.next().has_value());
    return got.value_or(Bytes{});
  };
  const Bytes msg2 = bob.on_message(deliver(to_bob, alice.start())).reply;
  const Bytes msg3 = alice.on_message(deliver(to_alice, msg2)).reply;
  const auto s4 = bob.on_message(deliver(to_bob, msg3));
  const auto s5 = alice.on_message(deliver(to_alice, s4.reply));
  EXPECT_EQ(s4.status, Status::success);
  EXPECT_EQ(s5.status, Status::success);
}

}  // namespace

// ---- garbage MPI arrays (a mismatch, never a crash) ------------------------------------------
// smp_math::parse checks the count against the expected one and every
// length against the bytes left; then group elements and exponents are
// range-checked, as libotr does. These inputs go
// through all of that at every step where the peer speaks, under ASan in the
// sanitizer pass: each must end as a mismatch (or a CounterpartyError), never
// a crash, a hang or a reply.
namespace {

using peersock::auth::wipe;

Bytes be32_bytes(uint32_t v) { return {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)}; }

// count, then (length, magnitude) per MPI.
Bytes mpi_array(uint32_t count, const std::vector<Bytes>& mpis, std::optional<uint32_t> forced_len = {}) {
  Bytes out = be32_bytes(count);
  for (const auto& m : mpis) {
    const Bytes len = be32_bytes(forced_len.value_or(static_cast<uint32_t>(m.size())));
    out.insert(out.end(), len.begin(), len.end());
    out.insert(out.end(), m.begin(), m.end());
  }
  return out;
}

std::vector<Bytes> garbage_messages(uint32_t expected_count) {
  const Bytes one = {1};
  const Bytes zero = {};
  const Bytes p_like(192, 0xff);  // > the 1536-bit modulus: not a group element
  std::vector<Bytes> all;
  all.push_back(mpi_array(0xffffffffu, {}));                                             // absurd count
  all.push_back(mpi_array(expected_count, {}));                                          // count but no MPIs
  all.push_back(mpi_array(expected_count, {one}, 0xffffffffu));                          // length past the end
  all.push_back(mpi_array(expected_count, std::vector<Bytes>(expected_count, zero)));    // all zero
  all.push_back(mpi_array(expected_count, std::vector<Bytes>(expected_count, one)));     // all one
  all.push_back(mpi_array(expected_count, std::vector<Bytes>(expected_count, p_like)));  // out of the group
  all.push_back(mpi_array(expected_count + 1, std::vector<Bytes>(expected_count + 1, one)));
  all.push_back(Bytes{0, 0, 0});                 // truncated count
  all.push_back(Bytes(kMaxFramePayload, 0x41));  // maximal junk
  return all;
}

void expect_rejected_without_reply(Smp& smp, const Bytes& message) {
  try {
    const auto step = smp.on_message(message);
    EXPECT_EQ(step.status, Status::mismatch);
    EXPECT_TRUE(step.reply.empty());
  } catch (const CounterpartyError&) {
    // acceptable: a structural error
  }
}

}  // namespace

TEST(SmpGarbage, Msg1AtBob) {
  for (const auto& m : garbage_messages(6)) {
    Smp bob(Role::bob, secret_a());
    expect_rejected_without_reply(bob, m);
  }
}

TEST(SmpGarbage, Msg2AtAlice) {
  for (const auto& m : garbage_messages(11)) {
    Smp alice(Role::alice, secret_a());
    alice.start();
    expect_rejected_without_reply(alice, m);
  }
}

TEST(SmpGarbage, Msg3AtBob) {
  Smp alice0(Role::alice, secret_a());
  const Bytes msg1 = alice0.start();
  for (const auto& m : garbage_messages(8)) {
    Smp bob(Role::bob, secret_a());
    ASSERT_FALSE(bob.on_message(msg1).reply.empty());
    expect_rejected_without_reply(bob, m);
  }
}

TEST(SmpGarbage, Msg4AtAlice) {
  for (const auto& m : garbage_messages(3)) {
    Smp alice(Role::alice, secret_a());
    Smp bob(Role::bob, secret_a());
    const Bytes msg2 = bob.on_message(alice.start()).reply;
    ASSERT_FALSE(alice.on_message(msg2).reply.empty());
    expect_rejected_without_reply(alice, m);
  }
}

TEST(Wipe, ClearsTheCharacters) {
  std::string code = "7-abandon-zoo-lab-name";
  const char* data = code.data();
  const size_t size = code.size();
  wipe(code);
  EXPECT_TRUE(code.empty());
  // The buffer is still ours (clear() keeps the capacity): every byte is 0.
  for (size_t i = 0; i < size; ++i) EXPECT_EQ(data[i], '\0') << i;
}

TEST(Smp, PeerCanHaveSucceededOnlyAfterOurLastMessage) {
  Smp alice(Role::alice, secret_a());
  Smp bob(Role::bob, secret_a());
  EXPECT_FALSE(alice.peer_can_have_succeeded());
  EXPECT_FALSE(bob.peer_can_have_succeeded());
  const Bytes msg1 = alice.start();
  EXPECT_FALSE(alice.peer_can_have_succeeded());  // Bob has nothing to verify yet
  const Bytes msg2 = bob.on_message(msg1).reply;
  EXPECT_FALSE(bob.peer_can_have_succeeded());
  const Bytes msg3 = alice.on_message(msg2).reply;
  EXPECT_TRUE(alice.peer_can_have_succeeded());  // msg3 is out: Bob may succeed now
  const auto step4 = bob.on_message(msg3);
  EXPECT_EQ(step4.status, Status::success);
  EXPECT_TRUE(bob.peer_can_have_succeeded());
}

// ---------------------------------------------------------------- subgroup checks
namespace {

// `message` (a libotr MPI array) with MPI `index` replaced by `value`.
Bytes with_mpi(const Bytes& message, size_t index, const Bytes& value) {
  const uint32_t count = be32(message, 0);
  Bytes out(message.begin(), message.begin() + 4);
  size_t at = 4;
  for (uint32_t i = 0; i < count; ++i) {
    const uint32_t len = be32(message, at);
    const Bytes& mpi = i == index ? value : Bytes(message.begin() + at + 4, message.begin() + at + 4 + len);
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(mpi.size() >> shift));
    out.insert(out.end(), mpi.begin(), mpi.end());
    at += 4 + len;
  }
  return out;
}

// p - k for small k (p ends in 64 one bits), big-endian.
Bytes modulus_minus(uint8_t k) {
  const std::string_view hex = peersock::auth::kSmpModulusHex;
  Bytes p;
  for (size_t i = 0; i < hex.size(); i += 2) p.push_back(static_cast<uint8_t>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  p.back() = static_cast<uint8_t>(p.back() - k);
  return p;
}

// p - 2 = -2 generates the whole group (2 is a square mod p, -1 is not):
// order 2q, so g^q = -1. An attacker's msg1 with such a g2a or g3a made
// Bob's reply reveal the parity of his exponents (the review's PoC).
const Bytes kFullGroupGenerator = modulus_minus(2);
const Bytes kOrderTwo = modulus_minus(1);

TEST(SmpSubgroup, HonestMessagesPass) {
  Smp alice(Role::alice, secret_a());
  Smp bob(Role::bob, secret_a());
  const Transcript t = run(alice, bob);
  ASSERT_EQ(alice.status(), Status::success);
  EXPECT_NO_THROW(peersock::auth::check_subgroup(1, t.msg1));
  EXPECT_NO_THROW(peersock::auth::check_subgroup(2, t.msg2));
  EXPECT_NO_THROW(peersock::auth::check_subgroup(3, t.msg3));
  EXPECT_NO_THROW(peersock::auth::check_subgroup(4, t.msg4));
}

TEST(SmpSubgroup, Msg1WithAnElementOutsideTheSubgroupIsAProtocolViolation) {
  for (size_t index : {size_t{0}, size_t{3}}) {
    for (const Bytes& bad : {kFullGroupGenerator, kOrderTwo, Bytes{1}, Bytes{}}) {
      Smp alice(Role::alice, secret_a());
      Smp bob(Role::bob, secret_a());
      const Bytes msg1 = with_mpi(alice.start(), index, bad);
      try {
        bob.on_message(msg1);
        ADD_FAILURE() << "accepted element " << index << " of size " << bad.size();
      } catch (const CounterpartyError& e) {
        EXPECT_EQ(e.code(), peersock::ExitCode::protocol);
        EXPECT_NE(std::string(e.what()).find("prime-order subgroup"), std::string::npos) << e.what();
      }
      EXPECT_NE(bob.status(), Status::success);
      Smp honest(Role::alice, secret_a());
      EXPECT_THROW(bob.on_message(honest.start()), CounterpartyError);  // the run is over
    }
  }
}

TEST(SmpSubgroup, EveryLaterMessageIsCheckedToo) {
  Smp alice(Role::alice, secret_a());
  Smp bob(Role::bob, secret_a());
  const Bytes msg1 = alice.start();
  const Bytes msg2 = bob.on_message(msg1).reply;
  for (size_t index : {size_t{0}, size_t{3}, size_t{6}, size_t{7}})
    EXPECT_THROW(peersock::auth::check_subgroup(2, with_mpi(msg2, index, kFullGroupGenerator)), CounterpartyError);
  EXPECT_THROW(alice.on_message(with_mpi(msg2, 7, kFullGroupGenerator)), CounterpartyError);

  Smp alice2(Role::alice, secret_a());
  Smp bob2(Role::bob, secret_a());
  const Bytes msg3 = alice2.on_message(bob2.on_message(alice2.start()).reply).reply;
  for (size_t index : {size_t{0}, size_t{1}, size_t{5}})
    EXPECT_THROW(peersock::auth::check_subgroup(3, with_mpi(msg3, index, kFullGroupGenerator)), CounterpartyError);
  EXPECT_THROW(bob2.on_message(with_mpi(msg3, 5, kFullGroupGenerator)), CounterpartyError);

  Smp alice3(Role::alice, secret_a());
  Smp bob3(Role::bob, secret_a());
  const Bytes msg4 = bob3.on_message(alice3.on_message(bob3.on_message(alice3.start()).reply).reply).reply;
  ASSERT_FALSE(msg4.empty());
  EXPECT_THROW(alice3.on_message(with_mpi(msg4, 0, kOrderTwo)), CounterpartyError);
  EXPECT_NE(alice3.status(), Status::success);
}

// The check decides with the Legendre symbol; this compares it with the
// definition, g^q = 1 (mod p), on random values and on the range's edges.
TEST(SmpSubgroup, TheLegendreSymbolAgreesWithTheExponentiation) {
  Smp alice(Role::alice, secret_a());
  Smp bob(Role::bob, secret_a());
  const Transcript t = run(alice, bob);
  const Bytes p_bytes = modulus_minus(0);
  gcry_mpi_t p = nullptr, q = gcry_mpi_new(0), g = nullptr, power = gcry_mpi_new(0);
  ASSERT_EQ(gcry_mpi_scan(&p, GCRYMPI_FMT_USG, p_bytes.data(), p_bytes.size(), nullptr), 0);
  gcry_mpi_sub_ui(q, p, 1);
  gcry_mpi_rshift(q, q, 1);
  int inside = 0, outside = 0;
  for (int i = 0; i < 200; ++i) {
    Bytes value(p_bytes.size());
    ASSERT_EQ(RAND_bytes(value.data(), static_cast<int>(value.size())), 1);
    value[0] &= 0x7f;  // below p, whose top bit is set
    ASSERT_EQ(gcry_mpi_scan(&g, GCRYMPI_FMT_USG, value.data(), value.size(), nullptr), 0);
    gcry_mpi_powm(power, g, q, p);
    const bool member = gcry_mpi_cmp_ui(power, 1) == 0;
    gcry_mpi_release(g);
    g = nullptr;
    (member ? inside : outside)++;
    if (member)
      EXPECT_NO_THROW(peersock::auth::check_subgroup(4, with_mpi(t.msg4, 0, value))) << i;
    else
      EXPECT_THROW(peersock::auth::check_subgroup(4, with_mpi(t.msg4, 0, value)), CounterpartyError) << i;
  }
  EXPECT_GT(inside, 50);
  EXPECT_GT(outside, 50);
  gcry_mpi_release(p);
  gcry_mpi_release(q);
  gcry_mpi_release(power);
  // 2 and 4 are squares; 0, 1, p - 1 and p are outside the range, and so is
  // p + 2^1536, whose residue 2^1536 is a square.
  EXPECT_NO_THROW(peersock::auth::check_subgroup(4, with_mpi(t.msg4, 0, Bytes{2})));
  EXPECT_NO_THROW(peersock::auth::check_subgroup(4, with_mpi(t.msg4, 0, Bytes{4})));
  for (const Bytes& bad : {Bytes{}, Bytes{1}, kOrderTwo, p_bytes})
    EXPECT_THROW(peersock::auth::check_subgroup(4, with_mpi(t.msg4, 0, bad)), CounterpartyError);
  Bytes above_p = p_bytes;
  above_p.insert(above_p.begin(), 0x01);  // p + 2^1536
  EXPECT_THROW(peersock::auth::check_subgroup(4, with_mpi(t.msg4, 0, above_p)), CounterpartyError);
}

TEST(SmpSubgroup, ASubgroupElementWithAWrongProofIsStillAMismatch) {
  // 4 = 2^2 is in the subgroup: the check lets it through, and the
  // proof check fails -- indistinguishable from a wrong secret.
  Smp alice(Role::alice, secret_a());
  Smp bob(Role::bob, secret_a());
  const auto step = bob.on_message(with_mpi(alice.start(), 0, Bytes{4}));
  EXPECT_EQ(step.status, Status::mismatch);
  EXPECT_TRUE(step.reply.empty());
}

}  // namespace

// ------------------------------------------- libotr as the reference
//
// Our SMP must be message for message what libotr 4.x sends and accepts: the
// original peersock and our releases up to protocol 7 ran libotr. So every
// step of ours runs here against libotr's otrl_sm_step*, in both roles, with
// equal and with different secrets.

extern "C" {
#include <libotr/sm.h>
}

namespace {

// One side of a run driven through libotr, the way auth::Smp did before it
// computed SMP itself.
class LibotrParty {
 public:
  LibotrParty(Role role, const Secret& secret) : role_(role), secret_(secret) {
    static const bool ready = [] {
      gcry_check_version(nullptr);
      otrl_sm_init();
      return true;
    }();
    (void)ready;
    otrl_sm_state_new(&sm_);
  }
  ~LibotrParty() { otrl_sm_state_free(&sm_); }
  LibotrParty(const LibotrParty&) = delete;
  LibotrParty& operator=(const LibotrParty&) = delete;

  Bytes start() { return produce([&](unsigned char** o, int* n) { return otrl_sm_step1(&sm_, s(), len(), o, n); }); }

  // The reply (empty if none); ok_ tells whether libotr accepted.
  Bytes on_message(const Bytes& in) {
    const auto* data = in.data();
    const int size = static_cast<int>(in.size());
    if (role_ == Role::alice) {
      if (step_++ == 0) return produce([&](unsigned char** o, int* n) { return otrl_sm_step3(&sm_, data, size, o, n); });
      ok_ = otrl_sm_step5(&sm_, data, size) == 0;
      return {};
    }
    if (step_++ == 0) {
      ok_ = otrl_sm_step2a(&sm_, data, size, 0) == 0;
      if (!ok_) return {};
      return produce([&](unsigned char** o, int* n) { return otrl_sm_step2b(&sm_, s(), len(), o, n); });
    }
    Bytes msg4 = produce([&](unsigned char** o, int* n) { return otrl_sm_step4(&sm_, data, size, o, n); });
    return ok_ ? msg4 : Bytes{};
  }

  bool ok() const { return ok_; }
  bool succeeded() const { return sm_.sm_prog_state == OTRL_SMP_PROG_SUCCEEDED; }

 private:
  template <typename Call>
  Bytes produce(Call&& call) {
    unsigned char* raw = nullptr;
    int raw_len = 0;
    ok_ = call(&raw, &raw_len) == 0;
    Bytes out;
    if (raw != nullptr) {
      out.assign(raw, raw + raw_len);
      std::free(raw);
    }
    return out;
  }
  const unsigned char* s() const { return secret_.data(); }
  int len() const { return static_cast<int>(secret_.size()); }

  Role role_;
  Secret secret_;
  OtrlSMState sm_{};
  int step_ = 0;
  bool ok_ = true;
};

TEST(SmpAgainstLibotr, OurAliceAndLibotrsBobAgree) {
  Smp alice(Role::alice, secret_a());
  LibotrParty bob(Role::bob, secret_a());
  const Bytes msg2 = bob.on_message(alice.start());
  ASSERT_TRUE(bob.ok()) << "libotr rejected our msg1";
  const Smp::Step s3 = alice.on_message(msg2);
  ASSERT_EQ(s3.status, Status::in_progress) << "we rejected libotr's msg2";
  const Bytes msg4 = bob.on_message(s3.reply);
  ASSERT_TRUE(bob.ok()) << "libotr rejected our msg3";
  EXPECT_TRUE(bob.succeeded());
  EXPECT_EQ(alice.on_message(msg4).status, Status::success) << "we rejected libotr's msg4";
}

TEST(SmpAgainstLibotr, LibotrsAliceAndOurBobAgree) {
  LibotrParty alice(Role::alice, secret_a());
  Smp bob(Role::bob, secret_a());
  const Bytes msg1 = alice.start();
  ASSERT_TRUE(alice.ok());
  const Smp::Step s2 = bob.on_message(msg1);
  ASSERT_EQ(s2.status, Status::in_progress) << "we rejected libotr's msg1";
  const Bytes msg3 = alice.on_message(s2.reply);
  ASSERT_TRUE(alice.ok()) << "libotr rejected our msg2";
  const Smp::Step s4 = bob.on_message(msg3);
  ASSERT_EQ(s4.status, Status::success) << "we rejected libotr's msg3";
  alice.on_message(s4.reply);
  EXPECT_TRUE(alice.ok()) << "libotr rejected our msg4";
  EXPECT_TRUE(alice.succeeded());
}

TEST(SmpAgainstLibotr, DifferentSecretsMismatchInBothPairings) {
  {
    Smp alice(Role::alice, secret_a());
    LibotrParty bob(Role::bob, secret_b());
    const Smp::Step s3 = alice.on_message(bob.on_message(alice.start()));
    ASSERT_EQ(s3.status, Status::in_progress);
    EXPECT_TRUE(bob.on_message(s3.reply).empty());
    EXPECT_FALSE(bob.ok());
    EXPECT_FALSE(bob.succeeded());
  }
  {
    LibotrParty alice(Role::alice, secret_a());
    Smp bob(Role::bob, secret_b());
    const Bytes msg3 = alice.on_message(bob.on_message(alice.start()).reply);
    ASSERT_TRUE(alice.ok());
    const Smp::Step s4 = bob.on_message(msg3);
    EXPECT_EQ(s4.status, Status::mismatch);
    EXPECT_TRUE(s4.reply.empty());
  }
}

// Each single-bit change of each message libotr sends is rejected by us,
// and each of ours by libotr: the checks are as strict on both sides (a
// flip in a proof's c, d or a group element must never be accepted).
TEST(SmpAgainstLibotr, EveryTamperedValueIsRejectedByBoth) {
  // Ours tampered, libotr's Bob receiving msg1 and msg3.
  for (size_t mpi = 0; mpi < 6; ++mpi) {
    Smp alice(Role::alice, secret_a());
    LibotrParty bob(Role::bob, secret_a());
    Bytes msg1 = alice.start();
    // Flip the low bit of the MPI's last byte.
    size_t at = 4, len = 0;
    for (size_t i = 0; i <= mpi; ++i) {
      len = be32(msg1, at);
      at += 4 + len;
    }
    msg1[at - 1] ^= 0x01;
    bob.on_message(msg1);
    EXPECT_FALSE(bob.ok()) << "libotr accepted our msg1 with MPI " << mpi << " changed";
  }
  // libotr's msg2 tampered, our Alice receiving it.
  for (size_t mpi = 0; mpi < 11; ++mpi) {
    Smp alice(Role::alice, secret_a());
    LibotrParty bob(Role::bob, secret_a());
    Bytes msg2 = bob.on_message(alice.start());
    size_t at = 4, len = 0;
    for (size_t i = 0; i <= mpi; ++i) {
      len = be32(msg2, at);
      at += 4 + len;
    }
    msg2[at - 1] ^= 0x01;
    try {
      EXPECT_EQ(alice.on_message(msg2).status, Status::mismatch) << "we accepted msg2 with MPI " << mpi << " changed";
    } catch (const CounterpartyError&) {
      EXPECT_NE(alice.status(), Status::success);  // an element pushed out of the subgroup
    }
  }
}

}  // namespace

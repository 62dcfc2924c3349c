// libFuzzer target for the authentication layer: FrameReader, and
// Smp::on_message for both roles at every point of a run where the peer
// speaks. Built by meson with -Dfuzzers=true (tests/fuzz/meson.build); by
// hand, for example:
//
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined \
//     -Iinclude -Isrc -isystem $OSSL/include \
//     tests/fuzz/fuzz_auth_frames.cpp src/auth/smp.cpp src/auth/smp_math.cpp \
//     src/common/error.cpp $OSSL/lib/libcrypto.a -lpthread -ldl -o fuzz_auth_frames
//   ./fuzz_auth_frames tests/fuzz/corpus/fuzz_auth_frames
//
// Two meson targets come from this file: fuzz_auth_frames (compiled with
// PEERSOCK_FUZZ_FRAMES_ONLY: the whole input is mode 0's) and fuzz_smp.
// Input layout of fuzz_smp: byte 0 selects the target (mod 5), the rest is its input.
//   0  FrameReader. Byte 1 sets the chunk size (1..16) the remaining bytes
//      are fed in; every frame handed out must re-encode to exactly the
//      bytes consumed.
//   1  Bob, fresh: the frames in the rest are his msg1, msg2...
//   2  Alice after start(): the frames are her msg2, ...
//   3  Bob after a genuine msg1: the frames are his msg3, ...
//   4  Alice after a genuine msg1/msg2/msg3: the frames are her msg4, ...
// For 1-4 the rest is itself a stream of auth frames (2-byte length +
// payload), split by FrameReader, so a corpus entry can carry several
// messages. Modes 3 and 4 run real SMP steps first (tens of milliseconds of
// modular exponentiation), so they execute slowly; that is the price of
// reaching the later steps with a consistent state. Everything the
// target reaches is our own code (src/auth/smp_math.cpp parses and checks
// the MPI arrays), instrumented like the harness.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "peersock/auth/smp.hpp"
#include "peersock/error.hpp"

namespace {

using peersock::CounterpartyError;
using namespace peersock::auth;

// An invariant of our code broke: make libFuzzer report a crash.
void require(bool ok) {
  if (!ok) __builtin_trap();
}

const Secret& fixed_secret() {
  static const Secret s = [] {
    const std::vector<uint8_t> exporter(kExporterBytes, 0x5c);
    return derive_secret(exporter, "42-abandon-ability-able-about");
  }();
  return s;
}

void fuzz_frames(std::span<const uint8_t> in) {
  if (in.empty()) return;
  const size_t chunk = (in[0] % 16) + 1;
  const std::span<const uint8_t> stream = in.subspan(1);
  FrameReader reader;
  size_t fed = 0;
  size_t consumed = 0;  // bytes of `stream` accounted for by frames handed out
  try {
    while (fed < stream.size()) {
      const size_t n = std::min(chunk, stream.size() - fed);
      reader.feed(stream.subspan(fed, n));
      fed += n;
      while (std::optional<std::vector<uint8_t>> frame = reader.next()) {
        require(!frame->empty() && frame->size() <= kMaxFramePayload);
        const std::vector<uint8_t> again = encode_frame(*frame);
        require(consumed + again.size() <= fed);
        require(std::equal(again.begin(), again.end(), stream.begin() + static_cast<ptrdiff_t>(consumed)));
        consumed += again.size();
      }
      // Whatever was not handed out is buffered, and the buffer is bounded.
      require(fed - consumed <= 2 + kMaxFramePayload);
    }
  } catch (const CounterpartyError&) {
    // Expected for bad lengths and overfull buffers.
  }
}

// Feeds each frame of `in` to `smp` and checks the contract on every step.
void drive(Smp& smp, std::span<const uint8_t> in) {
  FrameReader reader;
  try {
    reader.feed(in);
  } catch (const CounterpartyError&) {
    // Still use whatever complete frames came before the bad one: they are
    // not retrievable through FrameReader after it threw, so stop here.
    return;
  }
  while (std::optional<std::vector<uint8_t>> message = reader.next()) {
    const Status before = smp.status();
    try {
      const Smp::Step step = smp.on_message(*message);
      require(before == Status::in_progress);  // finished runs must throw
      require(step.status == smp.status());
      if (step.status == Status::mismatch) require(step.reply.empty());
      require(step.reply.size() <= kMaxFramePayload);
    } catch (const CounterpartyError&) {
      require(smp.status() == before);  // structural errors keep the verdict
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
#ifdef PEERSOCK_FUZZ_FRAMES_ONLY
  // The fast variant (meson target fuzz_auth_frames): reassembly only, so
  // that it reaches millions of executions; fuzz_smp runs all five modes.
  fuzz_frames(std::span<const uint8_t>(data, size));
  return 0;
#endif
  const std::span<const uint8_t> rest(data + 1, size - 1);
  switch (data[0] % 5) {
    case 0: fuzz_frames(rest); break;
    case 1: {
      Smp bob(Role::bob, fixed_secret());
      drive(bob, rest);
      break;
    }
    case 2: {
      Smp alice(Role::alice, fixed_secret());
      alice.start();
      drive(alice, rest);
      break;
    }
    case 3: {
      Smp alice(Role::alice, fixed_secret());
      Smp bob(Role::bob, fixed_secret());
      bob.on_message(alice.start());
      drive(bob, rest);
      break;
    }
    case 4: {
      Smp alice(Role::alice, fixed_secret());
      Smp bob(Role::bob, fixed_secret());
      const std::vector<uint8_t> msg2 = bob.on_message(alice.start()).reply;
      alice.on_message(msg2);
      drive(alice, rest);
      break;
    }
  }
  return 0;
}

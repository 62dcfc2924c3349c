// What a peer writes at the start of its QUIC streams after authentication
// (protocol-v1 §6.1; v2 adds the 'D' markers on stream 0). Pure functions, so
// that the only parsing of peer bytes outside auth has its own unit tests and
// fuzz target (tests/fuzz/fuzz_stream_header.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace peersock::session {

inline constexpr uint8_t kDataStreamMagic = 'X';  // first byte of every data stream
inline constexpr uint8_t kDoneMarker = 'D';       // v2: "I delivered one of your streams", on stream 0

// The first byte of a data stream the peer opened. Errors: CounterpartyError
// quoting the byte when it is not kDataStreamMagic.
void check_data_stream_magic(uint8_t first);

// Bytes read from the control stream (stream 0). The original never writes
// there and its reader discards what it gets, so unknown bytes are ignored
// here too (room for later versions); only 'D' markers count. Never throws.
size_t count_done_markers(std::span<const uint8_t> bytes);

}  // namespace peersock::session

// What a peer writes at the start of its QUIC streams after authentication
// (docs/protocol.md §7.2). Pure functions, so
// that the only parsing of peer bytes outside auth has its own unit tests and
// fuzz target (tests/fuzz/fuzz_stream_header.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace peersock::forward {

inline constexpr uint8_t kDataStreamMagic = 'X';  // first byte of every data stream

// The first byte of a data stream the peer opened. Errors: CounterpartyError
// quoting the byte when it is not kDataStreamMagic.
void check_data_stream_magic(uint8_t first);

// The control stream (stream 0) has its own reader: session/control.hpp.

}  // namespace peersock::forward

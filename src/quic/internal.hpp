// What the files of the QUIC engine share (endpoint.cpp, callbacks.cpp,
// stream_io.cpp). Internal to quic/.
#pragma once

#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include <cstddef>
#include <cstdint>

#include "peersock/quic/endpoint.hpp"

namespace peersock::quic {

// Bytes a stream's application may have written that have not been sent yet.
// Beyond it write() says would_block and the pump stops reading its local
// socket (TCP back-pressure). In flight is bounded separately by the
// congestion window and the peer's flow control. 512 KiB is 4 ms at 1 Gbit/s:
// enough that the write pass never starves between two pump wake-ups.
constexpr size_t kMaxUnsent = 512 * 1024;

// Bit 0 of a stream id is the initiator: 0 client, 1 server.
inline bool local_stream(Role role, int64_t id) { return ((id & 1) == 0) == (role == Role::client); }

// ngtcp2's callback table for a role, and the crypto helper's way back from
// an SSL object to its ngtcp2 connection (callbacks.cpp).
const ngtcp2_callbacks& callback_table(Role role);
ngtcp2_conn* conn_of(ngtcp2_crypto_conn_ref* ref);

}  // namespace peersock::quic

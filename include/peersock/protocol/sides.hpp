// Which side am I: one value, computed once, that every layer's own role is
// read from (docs/protocol.md §4). Before it, the session translated between
// five vocabularies (generator/consumer, server/client, bob/alice,
// opener/acceptor, ICE controlling).
#pragma once

#include "peersock/protocol/version.hpp"

namespace peersock::protocol {

struct Sides {
  // This side allocated the nameplate and made the code (no code given).
  bool generator = false;
  // This side opens the data streams (listen, listen-unix, stdio-b); the
  // other accepts them (connect, connect-unix, stdio-a). Independent of who
  // made the code.
  bool opener = false;

  // The code generator is the QUIC server and the ICE controlling agent.
  // Up to v6 the consumer, the QUIC client, starts SMP (libotr's "alice"),
  // as the original peersock does; from v7 the server does, in its first
  // flight (docs/protocol.md §5.3). The version is the handshake's.
  bool quic_server() const { return generator; }
  bool smp_initiator(int version) const { return server_starts_smp(version) ? generator : !generator; }
  bool ice_controlling() const { return generator; }
};

}  // namespace peersock::protocol

// Which side am I: one value, computed once, that every layer's own role is
// read from (docs/protocol.md §4). Before it, the session translated between
// five vocabularies (generator/consumer, server/client, bob/alice,
// opener/acceptor, ICE controlling).
#pragma once

namespace peersock::protocol {

struct Sides {
  // This side allocated the nameplate and made the code (no code given).
  bool generator = false;
  // This side opens the data streams (listen, listen-unix, stdio-b); the
  // other accepts them (connect, connect-unix, stdio-a). Independent of who
  // made the code.
  bool opener = false;

  // The code generator is the QUIC server, the SMP responder ("bob") and
  // the ICE controlling agent; the consumer is the QUIC client and starts
  // SMP, as the original peersock does.
  bool quic_server() const { return generator; }
  bool smp_initiator() const { return !generator; }
  bool ice_controlling() const { return generator; }
};

}  // namespace peersock::protocol

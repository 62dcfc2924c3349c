// --remember NAME: a normal code session that, once SMP succeeded, leaves a
// pairing behind (pairing/pairing.hpp says what it holds and why).
//
// Checked before anyone is contacted, so that a session the user set up to
// pair does not end unpaired for a reason known from the start: the name,
// and that no pairing of that name exists (replacing one silently would
// lose it; a forgotten one may be replaced). The original peersock cannot
// pair: its version is known once its body arrives, before QUIC.
#pragma once

#include <cstdint>
#include <string>

#include "peersock/pairing/pairing.hpp"
#include "peersock/pairing/store.hpp"

namespace peersock::session {

class Remember {
 public:
  // Errors: UsageError for a bad name or an existing pairing of that name;
  // Error(local) when the store cannot be read.
  Remember(std::string name, std::string label, pairing::Store store);

  // What we call ourselves in our body ("n").
  const std::string& label() const { return label_; }

  // The negotiated version. Errors: Error(protocol) for the original (1).
  void check_peer(int version) const;

  // SMP succeeded: stores the pairing and returns the line to show.
  // Errors: Error(local) from the store (the session goes on without it).
  std::string save(const pairing::Key& secret, const std::string& peer_label, int64_t now) const;

 private:
  std::string name_, label_;
  pairing::Store store_;
};

}  // namespace peersock::session

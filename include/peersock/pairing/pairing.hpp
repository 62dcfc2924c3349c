// Remembered peers ("pairings"): what one successful code session leaves
// behind so that later sessions need no code (README "Pairing").
//
// Why a secret of its own and not the code: the code is short on purpose
// (it is read over the phone, and SMP makes one guess per session all it is
// worth); a pairing must stay unguessable for years and across any number of
// sessions, so it is a 256-bit value that only the two authenticated sides
// can compute: derived from SMP's secret, which already binds the code to
// this session's TLS exporter. A man in the middle of the first session had
// two different exporters and failed SMP, so it holds neither side's value.
// Nothing new crosses the wire.
//
// From the pairing secret P, with HMAC-SHA-256 and distinct labels (never P
// itself on the wire or in a mailbox):
//   mailbox key  K = HMAC(P, "peersock pairing mailbox")   which mailbox, when
//   session code   = hex(HMAC(P, "peersock pairing code" || both nonces))
// The mailbox id of a time window is HMAC(K, window number): the relay sees
// a new id every window and cannot tell that two windows' sessions are the
// same pair. A forgotten pairing keeps K only ("tombstone"): enough to find
// the pair's mailbox and tell the other side that it was forgotten, not
// enough to authenticate.
//
// Pure: no files, no clock. pairing/store.hpp keeps them on disk.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace peersock::pairing {

using Key = std::array<uint8_t, 32>;

// Names are file names: ASCII letters, digits, '.', '_' and '-', at most 64,
// not starting with '.' or '-'.
inline constexpr size_t kMaxNameBytes = 64;
// The other side's label (its host name unless it chose one): printable
// ASCII, at most 64.
inline constexpr size_t kMaxLabelBytes = 64;
// The length of one rendezvous window.
inline constexpr int64_t kWindowSeconds = 120;

struct Pairing {
  std::string name;
  std::optional<Key> secret;  // absent: forgotten (a tombstone)
  Key mailbox_key{};
  std::string label;        // what the other side calls itself; may be empty
  int64_t created = 0;      // unix seconds
  int64_t last_used = 0;    // unix seconds; 0: never used with --peer
  int64_t forgotten = 0;    // unix seconds; 0: not forgotten
};

// Errors: UsageError quoting the name and saying what is wrong with it.
void check_name(std::string_view name);

// A label as it may be stored and shown: printable ASCII only (other bytes
// dropped), at most kMaxLabelBytes.
std::string clean_label(std::string_view label);

// P from SMP's secret (auth::derive_secret's S, equal on both sides exactly
// when SMP succeeds).
Key pairing_secret(std::span<const uint8_t, 32> smp_secret);
Key mailbox_key(const Key& secret);

// A new pairing named `name`, made at `now`.
Pairing make(std::string name, const Key& secret, std::string label, int64_t now);

// The pairing as forgotten at `now`: the secret gone, the mailbox key kept.
Pairing forget(Pairing p, int64_t now);

// The rendezvous window that `unix_seconds` falls in.
uint64_t window_of(int64_t unix_seconds, int64_t window_seconds = kWindowSeconds);

// The mailbox id for a window: 26 lowercase base32 characters (what
// magic-wormhole's own mailbox ids look like), from K.
std::string mailbox_id(const Key& mailbox_key, uint64_t window);

// HMAC(key, label || 0 || message): a MAC, or a key derived for one use.
Key mac(const Key& key, std::string_view label, std::string_view message);
// The same as 64 hex characters; compared with mac_equal (constant time).
std::string mac_hex(const Key& key, std::string_view label, std::string_view message);
bool mac_equal(std::string_view a, std::string_view b);

// The per-session code both sides run SMP on (auth::derive_secret mixes in
// the exporter as for any code): from P and the two sides' nonces.
std::string session_code(const Key& secret, std::string_view client_nonce, std::string_view server_nonce);

// The file format (one pairing per file, written by store.cpp):
//   peersock-pairing 1
//   secret <64 hex>          (absent once forgotten)
//   mailbox-key <64 hex>
//   label <text>             (may be empty)
//   created <unix seconds>
//   last-used <unix seconds>
//   forgotten <unix seconds> (only once forgotten)
std::string format(const Pairing& p);

// Parses a file's text for the pairing called `name` (the file's name).
// Errors: Error(local) "pairing NAME: line N: ..." for anything but exactly
// the format above (unknown or repeated keys, bad hex, bad numbers, a label
// with control characters, over 4 KiB in all); the message quotes the bad
// value.
Pairing parse(std::string_view text, std::string_view name);

}  // namespace peersock::pairing

#include "peersock/quic/alpn.hpp"

#include <algorithm>

namespace peersock::quic::alpn {

std::string client_offer(int cap) {
  cap = std::clamp(cap, 1, kMaxVersion);
  std::string wire;
  auto add = [&](std::string_view name) {
    wire += static_cast<char>(name.size());
    wire += name;
  };
  // Newest first: a server that picks by our preference (OpenSSL's
  // SSL_select_next_proto walks the server's list) still sees the order.
  for (int v = cap; v >= 1; --v) add(std::string(kPlain) + "/" + std::to_string(v));
  add(kPlain);
  return wire;
}

int version_of(std::string_view name) {
  if (name == kPlain) return 0;
  if (name.size() < kPlain.size() + 2 || name.substr(0, kPlain.size()) != kPlain || name[kPlain.size()] != '/')
    return -1;
  std::string_view digits = name.substr(kPlain.size() + 1);
  if (digits.size() > 4 || digits[0] == '0') return -1;
  int v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v <= kMaxVersion ? v : -1;
}

std::span<const uint8_t> protocol_list(std::span<const uint8_t> extension) {
  if (extension.size() < 2) return {};
  const size_t length = (size_t{extension[0]} << 8) | extension[1];
  if (length != extension.size() - 2) return {};
  return extension.subspan(2);
}

Selection select(std::span<const uint8_t> offer, int cap, int peer_body_version) {
  cap = std::clamp(cap, 1, kMaxVersion);
  Selection out;
  bool plain = false;
  size_t plain_at = 0, best_at = 0;
  int best = 0;  // highest offered N <= cap
  int client_max = 0;
  for (size_t i = 0; i < offer.size();) {
    const size_t len = offer[i];
    // A zero-length name or one that runs past the end: the list is
    // malformed (OpenSSL checks it before us; we do not rely on that).
    if (len == 0 || len > offer.size() - i - 1) return Selection{};
    const std::string_view name(reinterpret_cast<const char*>(offer.data() + i + 1), len);
    const int v = version_of(name);
    if (v == 0 && !plain) {
      plain = true;
      plain_at = i + 1;
    } else if (v > 0) {
      client_max = std::max(client_max, v);
      if (v <= cap && v > best) {
        best = v;
        best_at = i + 1;
      }
    }
    i += 1 + len;
  }
  out.client_max = client_max;
  if (best > 0) {
    out.ok = true;
    out.offset = best_at;
    out.length = offer[best_at - 1];
    out.version = best;
    return out;
  }
  if (!plain) return out;
  out.ok = true;
  out.offset = plain_at;
  out.length = kPlain.size();
  if (client_max > 0) {
    out.version = 1;  // versioned, but nothing we speak above plain: v1
    return out;
  }
  out.version = std::clamp(std::min(peer_body_version, cap), 1, kMaxVersion);
  out.original_identity = peer_body_version <= 1;
  return out;
}

Outcome server_outcome(const Selection& selection, int peer_body_version) {
  Outcome out;
  out.version = selection.version;
  if (selection.client_max > 0) {
    // A client that negotiates by ALPN writes its highest version, the same
    // as the highest it offers, into its body.
    out.version_changed = peer_body_version != selection.client_max;
  } else {
    out.peer_is_original = selection.original_identity;
  }
  return out;
}

Outcome client_outcome(std::string_view selected, bool original_certificate, int cap, int peer_body_version) {
  cap = std::clamp(cap, 1, kMaxVersion);
  Outcome out;
  const int v = version_of(selected);
  if (v > 0) {
    out.version = v;
    out.version_changed = v > cap || v != std::min(cap, peer_body_version);
    return out;
  }
  if (original_certificate) {
    out.version = 1;
    out.peer_is_original = true;
    out.version_changed = peer_body_version != 1;
    return out;
  }
  out.version = std::clamp(std::min(cap, peer_body_version), 1, kMaxVersion);
  return out;
}

}  // namespace peersock::quic::alpn

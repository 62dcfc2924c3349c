// The TLS 1.3 side of the QUIC engine: OpenSSL >= 3.5 contexts configured
// for ngtcp2_crypto_ossl (OpenSSL's QUIC TLS API), ALPN and the server's
// throwaway certificate. Internal to quic/.
#pragma once

#include <openssl/ssl.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "peersock/quic/alpn.hpp"
#include "peersock/quic/endpoint.hpp"

namespace peersock::quic::tls {

struct CtxDeleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, CtxDeleter>;

// The server's version negotiation (alpn.hpp): its inputs, set before the
// handshake, and what the TLS callbacks chose. Owned by the endpoint; the
// context's callbacks point at it.
struct Negotiation {
  int cap = 1;                // our highest version
  int peer_body_version = 1;  // the client's body "v" (1: absent)
  bool offered = false;       // the selection callback ran
  alpn::Selection selection;
  bool original_identity = false;  // the original's certificate was presented
  // Called from the selection callback with the chosen version, before the
  // server's transport parameters go out (the endpoint advertises DATAGRAM
  // support from here). Must not throw.
  std::function<void(int version)> on_selected;
};

// Client: no certificate verification (the peer is authenticated by SMP over
// the exporter, protocol.md §5). Server: a fresh P-256 key and self-signed
// certificate, or the original's for an original client, and the ALPN
// choice of alpn::select, both recorded in `negotiation` (server only; it
// must outlive the context). Errors: Error(failure) with OpenSSL's reason.
CtxPtr make_context(Role role, Negotiation* negotiation);

// For the test peers on OpenSSL's QUIC stack (tests/tools/ossl_quic), which
// stand in for older peers: a releases-before-negotiation server (a fresh
// P-256 key and self-signed certificate, plain "x-peersock" only), the
// original's server (its certificate and key, plain only), and the
// original's client (trusts only that certificate: alert 48 on any other).
// Errors: Error(failure).
void use_server_identity(SSL_CTX* ctx);
void use_original_identity(SSL_CTX* ctx);
void pin_original_identity(SSL_CTX* ctx);

// The peer presented the original peersock's certificate.
bool is_original_certificate(SSL* ssl);

// A connection's SSL object with ALPN (client: `alpn_wire`, already in wire
// form) and SNI set, configured for ngtcp2. Errors: Error(failure).
SSL* make_session(SSL_CTX* ctx, Role role, std::string_view alpn_wire);

// This thread's OpenSSL error queue as one line (and cleared).
std::string errors();

}  // namespace peersock::quic::tls

// The TLS 1.3 side of the QUIC engine: OpenSSL >= 3.5 contexts configured
// for ngtcp2_crypto_ossl (OpenSSL's QUIC TLS API), ALPN and the server's
// throwaway certificate. Internal to quic/.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <string_view>

#include "peersock/quic/endpoint.hpp"

namespace peersock::quic::tls {

struct CtxDeleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, CtxDeleter>;

// Client: no certificate verification (the peer is authenticated by SMP over
// the exporter, protocol.md §5). Server: a fresh P-256 key and self-signed
// certificate, ALPN kAlpn only (anything else: no_application_protocol).
// Errors: Error(failure) with OpenSSL's reason.
CtxPtr make_context(Role role);

// The server's side of a context, whichever QUIC stack uses it: a fresh
// P-256 key, its self-signed certificate, and ALPN kAlpn only. Also used by
// the OpenSSL-QUIC test peer (tests/tools/ossl_quic). Errors: Error(failure).
void use_server_identity(SSL_CTX* ctx);

// A connection's SSL object with ALPN (client: `alpn`, wire-encoded here)
// and SNI set, configured for ngtcp2. Errors: Error(failure).
SSL* make_session(SSL_CTX* ctx, Role role, std::string_view alpn);

// This thread's OpenSSL error queue as one line (and cleared).
std::string errors();

}  // namespace peersock::quic::tls

#include "tls.hpp"

#include <ngtcp2/ngtcp2_crypto_ossl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <fmt/core.h>

#include <array>

#include "peersock/error.hpp"

namespace peersock::quic::tls {
namespace {

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct BnDeleter {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using BnPtr = std::unique_ptr<BIGNUM, BnDeleter>;

[[noreturn]] void fail(std::string_view what) { throw Error(ExitCode::failure, fmt::format("{}: {}", what, errors())); }

void check(int ok, std::string_view what) {
  if (ok != 1) fail(what);
}

// The server speaks x-peersock only, in ALPN wire form ("\x0ax-peersock").
constexpr auto kAlpnWire = [] {
  std::array<unsigned char, kAlpn.size() + 1> wire{};
  wire[0] = static_cast<unsigned char>(kAlpn.size());
  for (size_t i = 0; i < kAlpn.size(); ++i) wire[i + 1] = static_cast<unsigned char>(kAlpn[i]);
  return wire;
}();
static_assert(kAlpnWire[0] == 10 && kAlpnWire[1] == 'x');

// ALERT_FATAL aborts the handshake with no_application_protocol (QUIC
// transport error 0x178), which ngtcp2 sends to the client.
int select_alpn(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in, unsigned int in_len,
                void*) {
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, out_len, kAlpnWire.data(), kAlpnWire.size(), in, in_len) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

// A throwaway self-signed certificate for a fresh P-256 key. The client does
// not verify it: authentication is SMP bound to the TLS exporter, so the
// certificate only has to satisfy TLS.
X509Ptr make_self_signed(EVP_PKEY* key) {
  X509Ptr cert(X509_new());
  if (!cert) fail("X509_new");
  check(X509_set_version(cert.get(), X509_VERSION_3), "X509_set_version");
  std::array<unsigned char, 8> serial_bytes{};
  check(RAND_bytes(serial_bytes.data(), serial_bytes.size()), "RAND_bytes");
  serial_bytes[0] &= 0x7f;  // keep it positive
  BnPtr serial(BN_bin2bn(serial_bytes.data(), serial_bytes.size(), nullptr));
  if (!serial) fail("BN_bin2bn");
  if (BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr) fail("BN_to_ASN1_INTEGER");
  // Short validity: the key lives only as long as this process anyway; a
  // little slack backwards tolerates clock skew should anyone ever look.
  if (X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600) == nullptr)
    fail("X509_gmtime_adj");
  X509_NAME* name = X509_get_subject_name(cert.get());
  check(
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("dummy"), -1, -1, 0),
      "X509_NAME_add_entry_by_txt");
  check(X509_set_issuer_name(cert.get(), name), "X509_set_issuer_name");
  check(X509_set_pubkey(cert.get(), key), "X509_set_pubkey");
  if (X509_sign(cert.get(), key, EVP_sha256()) <= 0) fail("X509_sign");
  return cert;
}

}  // namespace

std::string errors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    std::array<char, 256> buf{};
    ERR_error_string_n(e, buf.data(), buf.size());
    if (!out.empty()) out += "; ";
    out += buf.data();
  }
  return out.empty() ? std::string("no OpenSSL error reported") : out;
}

void use_server_identity(SSL_CTX* ctx) {
  // A fresh key per endpoint: nothing secret is in the source or on disk.
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) fail("EVP_EC_gen(P-256)");
  X509Ptr cert = make_self_signed(key.get());
  check(SSL_CTX_use_certificate(ctx, cert.get()), "SSL_CTX_use_certificate");
  check(SSL_CTX_use_PrivateKey(ctx, key.get()), "SSL_CTX_use_PrivateKey");
  check(SSL_CTX_check_private_key(ctx), "SSL_CTX_check_private_key");
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
}

CtxPtr make_context(Role role) {
  // Once per process: ngtcp2's OpenSSL helper looks up its ciphers here.
  static const int init = ngtcp2_crypto_ossl_init();
  if (init != 0) throw Error(ExitCode::failure, "ngtcp2_crypto_ossl_init failed");
  ERR_clear_error();
  CtxPtr ctx(SSL_CTX_new(role == Role::client ? TLS_client_method() : TLS_server_method()));
  if (!ctx) fail("SSL_CTX_new");
  check(SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION), "SSL_CTX_set_min_proto_version");
  // Neither side verifies a certificate: SMP over the exporter
  // authenticates (protocol.md §5).
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  if (role == Role::server) use_server_identity(ctx.get());
  return ctx;
}

SSL* make_session(SSL_CTX* ctx, Role role, std::string_view alpn) {
  SSL* ssl = SSL_new(ctx);
  if (ssl == nullptr) fail("SSL_new");
  int rv = role == Role::client ? ngtcp2_crypto_ossl_configure_client_session(ssl)
                                : ngtcp2_crypto_ossl_configure_server_session(ssl);
  if (rv != 0) {
    SSL_free(ssl);
    fail("ngtcp2_crypto_ossl_configure_session");
  }
  if (role == Role::client) {
    SSL_set_connect_state(ssl);
    if (alpn.empty() || alpn.size() > 255) {
      SSL_free(ssl);
      throw Error(ExitCode::failure, "invalid ALPN protocol name");
    }
    std::string wire(1, static_cast<char>(alpn.size()));
    wire += alpn;
    // SSL_set_alpn_protos is the odd one out: 0 means success.
    if (SSL_set_alpn_protos(ssl, reinterpret_cast<const unsigned char*>(wire.data()),
                            static_cast<unsigned int>(wire.size())) != 0 ||
        SSL_set_tlsext_host_name(ssl, std::string(kSni).c_str()) != 1) {
      SSL_free(ssl);
      fail("SSL_set_alpn_protos");
    }
  } else {
    SSL_set_accept_state(ssl);
  }
  return ssl;
}

}  // namespace peersock::quic::tls

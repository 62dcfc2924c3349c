#include "tls.hpp"

#include <ngtcp2/ngtcp2_crypto_ossl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <fmt/core.h>

#include <array>

#include "peersock/error.hpp"

namespace peersock::quic::tls {

// Generated from data/compat-v1/ (gen_compat_identity.py).
extern const std::string_view kOriginalCertPem;
extern const std::string_view kOriginalKeyPem;

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
struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
struct StoreDeleter {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
using StorePtr = std::unique_ptr<X509_STORE, StoreDeleter>;

[[noreturn]] void fail(std::string_view what) { throw Error(ExitCode::failure, fmt::format("{}: {}", what, errors())); }

void check(int ok, std::string_view what) {
  if (ok != 1) fail(what);
}

// Plain "x-peersock" only, in ALPN wire form: what the original and the
// releases before ALPN negotiation select (the test peers' servers).
constexpr auto kAlpnWire = [] {
  std::array<unsigned char, kAlpn.size() + 1> wire{};
  wire[0] = static_cast<unsigned char>(kAlpn.size());
  for (size_t i = 0; i < kAlpn.size(); ++i) wire[i + 1] = static_cast<unsigned char>(kAlpn[i]);
  return wire;
}();
static_assert(kAlpnWire[0] == 10 && kAlpnWire[1] == 'x');

// ALERT_FATAL aborts the handshake with no_application_protocol (QUIC
// transport error 0x178), which the QUIC stack sends to the client.
int select_plain_alpn(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
                      unsigned int in_len, void*) {
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, out_len, kAlpnWire.data(), kAlpnWire.size(), in, in_len) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

// The negotiating server's choice (alpn::select) over the offer OpenSSL
// hands us; the same function already chose the identity from the
// ClientHello (on_client_hello), so both see the same offer.
int select_alpn(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in, unsigned int in_len,
                void* arg) {
  auto* n = static_cast<Negotiation*>(arg);
  n->selection = alpn::select({in, in_len}, n->cap, n->peer_body_version);
  n->offered = true;
  if (!n->selection.ok) return SSL_TLSEXT_ERR_ALERT_FATAL;
  if (n->on_selected) n->on_selected(n->selection.version);
  *out = in + n->selection.offset;
  *out_len = static_cast<unsigned char>(n->selection.length);
  return SSL_TLSEXT_ERR_OK;
}

X509Ptr original_certificate() {
  BioPtr bio(BIO_new_mem_buf(kOriginalCertPem.data(), static_cast<int>(kOriginalCertPem.size())));
  X509Ptr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!cert) fail("the original's certificate");
  return cert;
}

PkeyPtr original_key() {
  BioPtr bio(BIO_new_mem_buf(kOriginalKeyPem.data(), static_cast<int>(kOriginalKeyPem.size())));
  PkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) fail("the original's key");
  return key;
}

// Before the certificate is chosen: a client that offers only plain
// "x-peersock" and whose body had no "v" is the original, which accepts no
// certificate but its own. Any failure here aborts the handshake (alert
// internal_error): no exception may cross OpenSSL's C frames.
int on_client_hello(SSL* ssl, int* alert, void* arg) {
  auto* n = static_cast<Negotiation*>(arg);
  const unsigned char* ext = nullptr;
  size_t ext_len = 0;
  // No ALPN: the selection callback does not run and the handshake fails;
  // a malformed extension: OpenSSL refuses it itself. Either way the fresh
  // identity stays.
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &ext, &ext_len) != 1)
    return SSL_CLIENT_HELLO_SUCCESS;
  const auto list = alpn::protocol_list({ext, ext_len});
  if (list.empty()) return SSL_CLIENT_HELLO_SUCCESS;
  const alpn::Selection s = alpn::select(list, n->cap, n->peer_body_version);
  if (!s.original_identity) return SSL_CLIENT_HELLO_SUCCESS;
  try {
    X509Ptr cert = original_certificate();
    PkeyPtr key = original_key();
    // The fresh P-256 identity would stay in its own slot and could still
    // be chosen: this connection gets the original's only. The key is RSA,
    // so the server signs with rsa_pss_rsae_* (TLS 1.3).
    SSL_certs_clear(ssl);
    check(SSL_use_certificate(ssl, cert.get()), "SSL_use_certificate");
    check(SSL_use_PrivateKey(ssl, key.get()), "SSL_use_PrivateKey");
    n->original_identity = true;
  } catch (...) {  // an Error from check(), or bad_alloc: never into OpenSSL's frames
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_CLIENT_HELLO_ERROR;
  }
  return SSL_CLIENT_HELLO_SUCCESS;
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

namespace {
void use_fresh_identity(SSL_CTX* ctx) {
  // A fresh key per endpoint: nothing secret is in the source or on disk.
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) fail("EVP_EC_gen(P-256)");
  X509Ptr cert = make_self_signed(key.get());
  check(SSL_CTX_use_certificate(ctx, cert.get()), "SSL_CTX_use_certificate");
  check(SSL_CTX_use_PrivateKey(ctx, key.get()), "SSL_CTX_use_PrivateKey");
  check(SSL_CTX_check_private_key(ctx), "SSL_CTX_check_private_key");
}
}  // namespace

void use_server_identity(SSL_CTX* ctx) {
  use_fresh_identity(ctx);
  SSL_CTX_set_alpn_select_cb(ctx, select_plain_alpn, nullptr);
}

void use_original_identity(SSL_CTX* ctx) {
  X509Ptr cert = original_certificate();
  PkeyPtr key = original_key();
  check(SSL_CTX_use_certificate(ctx, cert.get()), "SSL_CTX_use_certificate");
  check(SSL_CTX_use_PrivateKey(ctx, key.get()), "SSL_CTX_use_PrivateKey");
  check(SSL_CTX_check_private_key(ctx), "SSL_CTX_check_private_key");
  SSL_CTX_set_alpn_select_cb(ctx, select_plain_alpn, nullptr);
}

void pin_original_identity(SSL_CTX* ctx) {
  StorePtr store(X509_STORE_new());
  if (!store) fail("X509_STORE_new");
  X509Ptr cert = original_certificate();
  check(X509_STORE_add_cert(store.get(), cert.get()), "X509_STORE_add_cert");
  SSL_CTX_set_cert_store(ctx, store.release());  // the context owns it now
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
}

bool is_original_certificate(SSL* ssl) {
  X509* peer = SSL_get0_peer_certificate(ssl);
  if (peer == nullptr) return false;
  X509Ptr original = original_certificate();
  return X509_cmp(peer, original.get()) == 0;
}

CtxPtr make_context(Role role, Negotiation* negotiation) {
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
  if (role == Role::server) {
    use_fresh_identity(ctx.get());
    SSL_CTX_set_client_hello_cb(ctx.get(), on_client_hello, negotiation);
    SSL_CTX_set_alpn_select_cb(ctx.get(), select_alpn, negotiation);
  }
  return ctx;
}

SSL* make_session(SSL_CTX* ctx, Role role, std::string_view alpn_wire) {
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
    if (alpn_wire.empty() || alpn_wire.size() > 65535) {
      SSL_free(ssl);
      throw Error(ExitCode::failure, "invalid ALPN protocol list");
    }
    // SSL_set_alpn_protos is the odd one out: 0 means success.
    if (SSL_set_alpn_protos(ssl, reinterpret_cast<const unsigned char*>(alpn_wire.data()),
                            static_cast<unsigned int>(alpn_wire.size())) != 0 ||
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

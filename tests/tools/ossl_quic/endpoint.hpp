// QUIC over an abstract datagram path (in production: libnice), using
// OpenSSL >= 3.5's QUIC client and server (listener) API in non-blocking mode.
//
// The endpoint does no I/O of its own: datagrams come in through
// receive_datagram() and leave through the SendDatagram callback; the owner
// calls handle_events() after each input and when next_timeout() expires
// (quic::Driver does that on a GLib main loop). Roles: the code consumer is
// the client, the code generator is the server (docs/protocol.md §4.1).
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "peersock/quic/endpoint.hpp"

namespace peersock::ossl_quic {

// The wire's constants are the product's (docs/protocol.md §4.2, §4.6).
using quic::kAlpn;
using quic::kErrorAuthFailed;
using quic::kErrorLocal;
using quic::kErrorNone;
using quic::kErrorProtocol;
using quic::kSni;

enum class Role { client, server };

struct SslDeleter {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using SslPtr = std::unique_ptr<SSL, SslDeleter>;

struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

struct CloseInfo {
  bool by_peer = false;
  bool is_app = false;  // application close vs transport/idle
  uint64_t error_code = 0;
  std::string reason;
};

// Tunables. Production code uses the defaults; tests shorten the idle timeout
// and can make the client offer a wrong ALPN.
struct EndpointOptions {
  // QUIC max_idle_timeout we request. Only the client can request one with
  // OpenSSL 3.5 (the server advertises the default, 30 s); the effective
  // value is the smaller of both sides' and applies once the handshake is
  // done (before that OpenSSL uses its 30 s default). OpenSSL sends
  // keep-alive PINGs on its own well before it expires.
  // 15 s: a killed peer or a cut link is noticed within 15 s
  // (docs/protocol.md §4.5); keep-alives then go out about every 7 s.
  std::chrono::milliseconds idle_timeout{15000};
  // Client only: the ALPN protocol offered. The server accepts only kAlpn.
  std::string client_alpn{kAlpn};
  // The original peersock's TLS identity: the server presents its
  // certificate and key, the client accepts no other certificate.
  bool original_identity = false;
};

class Endpoint {
 public:
  using SendDatagram = std::function<void(std::span<const uint8_t>)>;

  // Creates the SSL objects. The server gets a fresh EC key and self-signed
  // certificate (no key in the source). Errors: Error(failure) with
  // OpenSSL's reason.
  Endpoint(Role role, SendDatagram send);
  Endpoint(Role role, SendDatagram send, const EndpointOptions& options);
  ~Endpoint();
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  // A datagram from the peer. Copies it into OpenSSL's receive queue; call
  // handle_events() afterwards (once for a whole batch is enough, and much
  // cheaper: OpenSSL's per-run cost is high). Oversized or empty datagrams
  // are dropped (returns true: nothing to retry). Returns false if the queue
  // is full: run handle_events() and offer the datagram again.
  bool receive_datagram(std::span<const uint8_t> datagram);

  // Runs OpenSSL's state machine (handshake, acks, retransmits, timers),
  // then sends every datagram OpenSSL produced. Never throws for peer
  // behaviour: a failed handshake shows up in closed().
  void handle_events();

  // When handle_events() must run next: nullopt = no timer needed, 0 = now.
  std::optional<std::chrono::milliseconds> next_timeout() const;

  bool handshake_done() const { return handshake_done_; }

  // The QUIC connection object (client: the connection; server: the accepted
  // connection), or nullptr before the server accepted one. Streams are
  // opened/accepted on it with SSL_new_stream / SSL_accept_stream.
  SSL* connection() const;

  // TLS exporter for auth (label kExporterLabel from auth, empty context).
  // Precondition: handshake_done(). Errors: Error(failure).
  std::vector<uint8_t> export_keying_material(std::string_view label, size_t length) const;

  // Starts closing with an application error code. Idempotent. This is a
  // normal (not rapid) QUIC shutdown: data already written to streams is
  // flushed first, then CONNECTION_CLOSE is sent and the closing period runs;
  // handle_events() continues it, shutdown_complete() reports the end.
  // Before the handshake is done QUIC cannot carry an application close:
  // the peer then sees transport error APPLICATION_ERROR (0x0c), no code.
  void close(uint64_t app_error, std::string_view reason);

  // Set once the connection is closed or closing (by us, the peer, or idle
  // timeout / handshake failure).
  const std::optional<CloseInfo>& closed() const { return closed_; }

  // True once our close has been sent and nothing more is pending (the
  // owner may exit). Also true once the connection ended without our close
  // (peer close, idle timeout, handshake failure): nothing is left to send.
  bool shutdown_complete() const;

 private:
  void setup_client(const EndpointOptions& options);
  void setup_server(const EndpointOptions& options);
  void attach_datagram_transport(SSL* ssl);
  void accept_connection();
  void continue_shutdown();
  void drain_outgoing();
  void update_state();

  Role role_;
  SendDatagram send_;
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx_{nullptr, SSL_CTX_free};
  SslPtr listener_;    // server only
  SslPtr connection_;  // client: made at construction; server: accepted
  BioPtr app_bio_;     // our end of the datagram pair
  bool handshake_done_ = false;
  bool close_started_ = false;
  bool shutdown_done_ = false;
  uint64_t close_code_ = kErrorNone;
  std::string close_reason_;  // kept alive: SSL_shutdown_ex is called repeatedly
  std::optional<CloseInfo> closed_;
  uint64_t datagrams_sent_ = 0, bytes_sent_ = 0;  // for the debug log
};

}  // namespace peersock::ossl_quic

// QUIC endpoint over an in-memory datagram pair (docs/protocol.md §4).
//
// OpenSSL's QUIC engine never touches a socket here: it reads and writes one
// end of a BIO datagram pair, and we shuttle datagrams between the other end
// and the ICE path (receive_datagram / the SendDatagram callback).
#include "ossl_quic/endpoint.hpp"

#include "quic/tls.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/quic.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <fmt/core.h>

#include <array>
#include <chrono>

#include "peersock/error.hpp"
#include "peersock/log.hpp"

namespace peersock::ossl_quic {
namespace {

// Largest UDP payload over IPv4 (65535 - 8 UDP - 20 IP); anything bigger
// cannot have come from a real datagram path.
constexpr size_t kMaxDatagram = 65527;
// Buffer of each direction of the datagram pair. Large enough that a burst
// OpenSSL emits in one tick (it writes many datagrams before we drain) or a
// burst of received datagrams is not silently dropped by the pair.
constexpr size_t kPairBuffer = 1 << 20;

// Drains this thread's OpenSSL error queue into one line.
std::string openssl_errors() { return quic::tls::errors(); }

[[noreturn]] void fail(std::string_view what) {
  throw Error(ExitCode::failure, fmt::format("{}: {}", what, openssl_errors()));
}

void check(int ok, std::string_view what) {
  if (ok != 1) fail(what);
}

}  // namespace

Endpoint::Endpoint(Role role, SendDatagram send) : Endpoint(role, std::move(send), EndpointOptions{}) {}

Endpoint::Endpoint(Role role, SendDatagram send, const EndpointOptions& options) : role_(role), send_(std::move(send)) {
  ERR_clear_error();
  // If setup throws, the members built so far free themselves.
  if (role_ == Role::client) setup_client(options);
  else setup_server(options);
}

Endpoint::~Endpoint() {
  if (datagrams_sent_ > 0) {
    log::debug(log::Layer::quic, "sent {} datagrams, {} bytes, {} bytes on average", datagrams_sent_, bytes_sent_,
               bytes_sent_ / datagrams_sent_);
  }
  // SSL objects first (the connection before the listener that owns its
  // port), then our end of the pair, then the context they reference.
  connection_.reset();
  listener_.reset();
  app_bio_.reset();
}

// The one place that decides how OpenSSL's datagrams reach us. Today a BIO
// datagram pair; a custom BIO (BIO_sendmmsg/BIO_recvmmsg) can replace it here
// without changing anything else.
void Endpoint::attach_datagram_transport(SSL* ssl) {
  BIO* ossl_end = nullptr;
  BIO* app_end = nullptr;
  check(BIO_new_bio_dgram_pair(&ossl_end, kPairBuffer, &app_end, kPairBuffer), "BIO_new_bio_dgram_pair");
  app_bio_.reset(app_end);
  // The same BIO for reading and writing: SSL_set_bio takes one reference.
  SSL_set_bio(ssl, ossl_end, ossl_end);
}

void Endpoint::setup_client(const EndpointOptions& options) {
  ctx_.reset(SSL_CTX_new(OSSL_QUIC_client_method()));
  if (!ctx_) fail("SSL_CTX_new(client)");
  // No certificate verification: the server's certificate is throwaway and
  // the peer is authenticated afterwards by SMP over the exporter (§5).
  // The original's client trusts its own certificate only (alert 48 on any
  // other): the original-like peer does the same.
  SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_NONE, nullptr);
  if (options.original_identity) quic::tls::pin_original_identity(ctx_.get());

  connection_.reset(SSL_new(ctx_.get()));
  if (!connection_) fail("SSL_new");
  SSL* c = connection_.get();
  attach_datagram_transport(c);
  check(SSL_set_blocking_mode(c, 0), "SSL_set_blocking_mode");
  check(SSL_set_tlsext_host_name(c, std::string(kSni).c_str()), "SSL_set_tlsext_host_name");
  if (options.client_alpn.empty() || options.client_alpn.size() > 255)
    throw Error(ExitCode::failure, "invalid ALPN protocol name");
  std::string wire(1, static_cast<char>(options.client_alpn.size()));
  wire += options.client_alpn;
  // SSL_set_alpn_protos is the odd one out: 0 means success.
  if (SSL_set_alpn_protos(c, reinterpret_cast<const unsigned char*>(wire.data()),
                          static_cast<unsigned int>(wire.size())) != 0)
    fail("SSL_set_alpn_protos");
  // Streams are explicit (SSL_new_stream / SSL_accept_stream); the
  // connection object itself never carries stream data.
  check(SSL_set_default_stream_mode(c, SSL_DEFAULT_STREAM_MODE_NONE), "SSL_set_default_stream_mode");
  check(SSL_set_incoming_stream_policy(c, SSL_INCOMING_STREAM_POLICY_ACCEPT, 0), "SSL_set_incoming_stream_policy");
  check(
      SSL_set_feature_request_uint(c, SSL_VALUE_QUIC_IDLE_TIMEOUT, static_cast<uint64_t>(options.idle_timeout.count())),
      "SSL_set_feature_request_uint(idle timeout)");
  // No SSL_set1_initial_peer_addr: a datagram pair whose other end (ours)
  // declares no addressing capabilities puts OpenSSL in "unaddressed mode",
  // where no peer address is needed. Setting one anyway breaks sending: the
  // pair refuses addressed writes ("network BIO I/O error") unless our end
  // claims BIO_DGRAM_CAP_HANDLES_DST_ADDR. The ICE layer owns real addresses.
}

void Endpoint::setup_server(const EndpointOptions& options) {
  ctx_.reset(SSL_CTX_new(OSSL_QUIC_server_method()));
  if (!ctx_) fail("SSL_CTX_new(server)");
  // A release before ALPN negotiation: a fresh key per Endpoint, a
  // throwaway certificate, plain x-peersock only (src/quic/tls.cpp). The
  // original-like peer: the original's certificate and key, plain only.
  if (options.original_identity) quic::tls::use_original_identity(ctx_.get());
  else quic::tls::use_server_identity(ctx_.get());
  // The client presents no certificate.
  SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_NONE, nullptr);

  // NO_VALIDATE: without it the listener wants to answer the first Initial
  // with a Retry to prove the client owns its address. ICE connectivity
  // checks have already validated the path, so that would only cost a round
  // trip -- and over the unaddressed datagram pair it is fatal: with no peer
  // address the listener cannot mint a Retry token, sends nothing, and the
  // handshake never completes (observed with OpenSSL 3.5.7).
  listener_.reset(SSL_new_listener(ctx_.get(), SSL_LISTENER_FLAG_NO_VALIDATE));
  if (!listener_) fail("SSL_new_listener");
  SSL* l = listener_.get();
  attach_datagram_transport(l);
  check(SSL_set_blocking_mode(l, 0), "SSL_set_blocking_mode(listener)");
  // The idle timeout cannot be requested on the server side in OpenSSL
  // 3.5: the listener refuses it ("conn use only") and an accepted
  // connection has already sent its transport parameters ("feature not
  // renegotiable"). The server therefore advertises OpenSSL's default of
  // 30 s, and since the effective timeout is the minimum of both sides'
  // values, the client's request (options.idle_timeout) governs both ends.
  (void)options;
  check(SSL_listen(l), "SSL_listen");
}

bool Endpoint::receive_datagram(std::span<const uint8_t> datagram) {
  if (datagram.empty() || datagram.size() > kMaxDatagram) return true;
  if (BIO_write(app_bio_.get(), datagram.data(), static_cast<int>(datagram.size())) <= 0) {
    ERR_clear_error();
    log::debug(log::Layer::quic, "receive queue full ({}-byte datagram)", datagram.size());
    return false;
  }
  return true;
}

void Endpoint::accept_connection() {
  SSL* l = listener_.get();
  if (!connection_) {
    SSL* c = SSL_accept_connection(l, SSL_ACCEPT_CONNECTION_NO_BLOCK);
    if (c == nullptr) return;
    // OpenSSL 3.5 hands out the connection as soon as the client's first
    // Initial is processed, before the handshake completes (observed:
    // SSL_is_init_finished is 0 here); handle_events() watches for the end
    // of the handshake. Configuring it now is early enough for streams.
    connection_.reset(c);
    log::debug(log::Layer::quic, "accepted a QUIC connection");
    // Streams made from the connection inherit this; nothing may block the
    // event loop.
    if (SSL_set_blocking_mode(c, 0) != 1) log::debug(log::Layer::quic, "SSL_set_blocking_mode: {}", openssl_errors());
    if (SSL_set_incoming_stream_policy(c, SSL_INCOMING_STREAM_POLICY_ACCEPT, 0) != 1)
      log::debug(log::Layer::quic, "SSL_set_incoming_stream_policy: {}", openssl_errors());
    if (SSL_set_default_stream_mode(c, SSL_DEFAULT_STREAM_MODE_NONE) != 1)
      log::debug(log::Layer::quic, "SSL_set_default_stream_mode: {}", openssl_errors());
    return;
  }
  // One connection per Endpoint. The listener keeps accepting (OpenSSL
  // cannot stop a listener without freeing it, which would also end our
  // connection), so any further connection is closed at once: a rapid
  // shutdown plus one tick queues its CONNECTION_CLOSE, which
  // drain_outgoing() then sends, before the object is freed.
  while (SSL* extra = SSL_accept_connection(l, SSL_ACCEPT_CONNECTION_NO_BLOCK)) {
    SslPtr reject(extra);
    log::debug(log::Layer::quic, "rejecting a second QUIC connection");
    SSL_SHUTDOWN_EX_ARGS args{kErrorProtocol, "one connection only"};
    (void)SSL_shutdown_ex(extra, SSL_SHUTDOWN_FLAG_RAPID | SSL_SHUTDOWN_FLAG_NO_BLOCK, &args, sizeof args);
    (void)SSL_handle_events(extra);
  }
}

void Endpoint::handle_events() {
  if (role_ == Role::client) {
    SSL* c = connection_.get();
    if (!handshake_done_ && !closed_) {
      // SSL_connect both starts the handshake and advances it.
      int r = SSL_connect(c);
      if (r == 1) {
        handshake_done_ = true;
        log::debug(log::Layer::quic, "client handshake done");
      } else {
        int err = SSL_get_error(c, r);
        if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
          std::string why = openssl_errors();
          update_state();  // the peer's CONNECTION_CLOSE, if that was it
          if (!closed_) closed_ = CloseInfo{false, false, 0, "handshake failed: " + why};
        }
      }
    } else {
      (void)SSL_handle_events(c);
    }
  } else {
    // Ticking the listener ticks the whole QUIC engine (port and every
    // channel on it), including the accepted connection.
    (void)SSL_handle_events(listener_.get());
    if (!close_started_) accept_connection();  // closed before any peer: stay closed
    if (connection_ && !handshake_done_ && !closed_) {
      // Accepted connections may still be handshaking (see
      // accept_connection); on a non-blocking connection this only reports.
      if (SSL_do_handshake(connection_.get()) == 1) {
        handshake_done_ = true;
        log::debug(log::Layer::quic, "server handshake done");
      }
    }
  }
  if (close_started_ && !shutdown_done_) continue_shutdown();
  update_state();
  ERR_clear_error();
  drain_outgoing();
}

void Endpoint::update_state() {
  if (closed_ || !connection_) return;
  SSL_CONN_CLOSE_INFO info{};
  if (SSL_get_conn_close_info(connection_.get(), &info, sizeof info) != 1) return;
  CloseInfo ci;
  ci.by_peer = (info.flags & SSL_CONN_CLOSE_FLAG_LOCAL) == 0;
  ci.is_app = (info.flags & SSL_CONN_CLOSE_FLAG_TRANSPORT) == 0;
  ci.error_code = info.error_code;
  if (info.reason != nullptr) ci.reason.assign(info.reason, info.reason_len);
  log::debug(log::Layer::quic, "connection closed: by_peer={} app={} code={:#x} reason '{}'", ci.by_peer, ci.is_app,
             ci.error_code, ci.reason);
  closed_ = std::move(ci);
}

void Endpoint::drain_outgoing() {
  std::array<uint8_t, 65536> buf;
  for (;;) {
    int n = BIO_read(app_bio_.get(), buf.data(), static_cast<int>(buf.size()));
    if (n <= 0) break;
    send_(std::span<const uint8_t>(buf.data(), static_cast<size_t>(n)));
    ++datagrams_sent_;
    bytes_sent_ += static_cast<uint64_t>(n);
  }
  ERR_clear_error();
}

std::optional<std::chrono::milliseconds> Endpoint::next_timeout() const {
  SSL* ticker = role_ == Role::server ? listener_.get() : connection_.get();
  timeval tv{};
  int infinite = 0;
  if (SSL_get_event_timeout(ticker, &tv, &infinite) != 1) {
    ERR_clear_error();
    return std::nullopt;
  }
  if (infinite) return std::nullopt;
  // Round up: a deadline 0.3 ms away reported as 0 ("run now") would make
  // the driver spin until it actually passes.
  auto us = std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
  return std::chrono::ceil<std::chrono::milliseconds>(us);
}

SSL* Endpoint::connection() const { return connection_.get(); }

std::vector<uint8_t> Endpoint::export_keying_material(std::string_view label, size_t length) const {
  if (!handshake_done_ || !connection_) throw Error(ExitCode::failure, "TLS exporter: handshake not complete");
  std::vector<uint8_t> out(length);
  ERR_clear_error();
  if (SSL_export_keying_material(connection_.get(), out.data(), out.size(), label.data(), label.size(), nullptr, 0,
                                 /*use_context=*/0) != 1)
    fail("SSL_export_keying_material");
  return out;
}

void Endpoint::close(uint64_t app_error, std::string_view reason) {
  if (close_started_) return;
  close_started_ = true;
  close_code_ = app_error;
  close_reason_ = std::string(reason);
  if (!closed_) closed_ = CloseInfo{false, true, app_error, close_reason_};
  if (!connection_) {
    // Server that never accepted anything: nobody to tell.
    shutdown_done_ = true;
    return;
  }
  continue_shutdown();
  ERR_clear_error();
  drain_outgoing();
}

// A normal (not RAPID) shutdown: stream data already written is flushed
// before CONNECTION_CLOSE, so a close right after the last write loses
// nothing, and the RFC 9000 closing period runs so a lost CONNECTION_CLOSE is
// repeated if the peer keeps sending. Both are bounded by the idle timeout.
void Endpoint::continue_shutdown() {
  SSL_SHUTDOWN_EX_ARGS args{close_code_, close_reason_.c_str()};
  int r = SSL_shutdown_ex(connection_.get(), SSL_SHUTDOWN_FLAG_NO_BLOCK, &args, sizeof args);
  if (r == 1) {
    shutdown_done_ = true;
  } else if (r < 0) {
    // Nothing more can be done on this connection (e.g. it never started).
    log::debug(log::Layer::quic, "SSL_shutdown_ex: {}", openssl_errors());
    shutdown_done_ = true;
  }
}

bool Endpoint::shutdown_complete() const {
  if (close_started_) return shutdown_done_;
  return closed_.has_value();
}

}  // namespace peersock::ossl_quic

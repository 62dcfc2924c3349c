// The QUIC engine: ngtcp2 fed the way its own examples feed it, minus the
// sockets (endpoint.hpp says why ngtcp2, and who does the I/O).
#include "peersock/quic/endpoint.hpp"

#include <netinet/in.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_ossl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "internal.hpp"
#include "peersock/c_boundary.hpp"
#include "peersock/error.hpp"
#include "peersock/log.hpp"
#include "peersock/protocol/version.hpp"
#include "tls.hpp"

namespace peersock::quic {
namespace {

using log::Layer;

}  // namespace

// Paths. ngtcp2 wants a network path for every packet. The ICE layer owns
// the real addresses and may switch pairs underneath; QUIC sees a made-up
// path, so a pair switch is no migration (no path validation, no new CIDs
// needed). The path changes only when we decide so: resume_path() gives it
// a new generation, encoded in the addresses' third octet (127.0.G.1 local,
// 127.1.G.1 remote) -- the address and not only the port, since ngtcp2
// resets a server's congestion state only when the peer's address changes.
struct Endpoint::Path {
  sockaddr_in local{}, remote{};
  ngtcp2_path path{};
  explicit Path(uint8_t generation) {
    local.sin_family = remote.sin_family = AF_INET;
    local.sin_addr.s_addr = htonl(0x7f000001u | (uint32_t{generation} << 8));
    remote.sin_addr.s_addr = htonl(0x7f010001u | (uint32_t{generation} << 8));
    local.sin_port = htons(1);
    remote.sin_port = htons(2);
    path.local = {reinterpret_cast<ngtcp2_sockaddr*>(&local), sizeof local};
    path.remote = {reinterpret_cast<ngtcp2_sockaddr*>(&remote), sizeof remote};
  }
};

namespace {

// Largest UDP payload over IPv4 (65535 - 8 UDP - 20 IP); anything bigger
// cannot have come from a real datagram path.
constexpr size_t kMaxDatagram = 65527;
// Flow control (RFC 9000 §4). ngtcp2 auto-tunes each stream's window up to
// the max when the reader keeps up within an RTT. 16 MiB per stream carries
// 1 Gbit/s at 130 ms RTT; it is also what a stalled local reader can make us
// hold for its stream (32 MiB let a stalled reader's whole 32 MiB test
// download be buffered: the window grew while the local socket buffers
// filled).
//
// The connection window is fixed at 64 MiB from the start, not auto-tuned:
// the bytes a stalled reader leaves unread count against it, and ngtcp2
// grows it only while MAX_DATA goes out within 2 RTTs of the last one. An
// auto-tuned window that had reached 16 MiB when one reader stalled with its
// stream window full left nothing for the other streams, and no consumption
// to grow it again: the tunnel stalled (test_slow_reader, once in a CI run).
// Fixed at 64 MiB, three readers stalled at full windows still leave a
// quarter of it; it costs no memory by itself (only bytes actually received
// and not yet read are held, and each stream's are bounded by its window).
constexpr uint64_t kInitialStreamWindow = 1 << 20;
constexpr uint64_t kMaxStreamWindow = 16 << 20;
constexpr uint64_t kConnWindow = 64 << 20;
static_assert(kConnWindow >= 4 * kMaxStreamWindow, "a stalled stream must not take the whole connection window");
// Streams the peer may have open at once; one more is granted each time one
// of them closes. OpenSSL's stack grants 100 and raises the limit as streams
// are opened, so it carried 1000 connections at once; ngtcp2 raises it only
// as streams close, and at 100 a tunnel carried 98 of 1000 and made the rest
// wait. An idle stream costs about 10 KiB and, on the connecting side, one
// descriptor, so 1024 at once is cheap; a limit is still needed, since each
// stream the peer opens makes us dial a local connection.
constexpr uint64_t kMaxStreams = 1024;
// How long close() waits for the peer to acknowledge written stream data.
constexpr Timestamp kCloseFlushNs = 3'000'000'000ULL;
// The largest packet we send: what fits a 1500-byte MTU over IPv6 (1500 -
// 40 - 8). PMTUD (below) probes up to it.
constexpr size_t kMaxTxUdpPayload = 1452;
// Datagrams per write pass at most (one send call).
constexpr size_t kMaxBatch = 64;
// What we advertise as max_datagram_frame_size: any UDP payload fits in
// the frame; what limits a datagram is the path (max_datagram_payload()).
constexpr uint64_t kMaxDatagramFrame = 65535;
// DATAGRAM send queue: what waits for the congestion window. 1024 datagrams
// (kMaxDatagramQueue, endpoint.hpp)
// or 2 MiB, about 17 ms at 1 Gbit/s: a burst from the local application
// rides it out, a sustained overload is dropped at once instead of aging
// in a queue (old UDP data is worth less than new: games, VoIP, DNS
// retries). The receive queue is drained after every QUIC run (the
// forwarder), so its bound only matters when the local socket is stuck.
constexpr size_t kMaxDatagramQueueBytes = 2 << 20;
constexpr size_t kMaxDatagramRxQueue = 4096;
constexpr size_t kMaxDatagramRxQueueBytes = 8 << 20;
// Every AEAD of QUIC's TLS 1.3 cipher suites (AES-GCM, ChaCha20-Poly1305,
// AES-CCM) adds a 16-byte tag.
constexpr size_t kAeadTag = 16;

void random_bytes(uint8_t* dest, size_t len) {
  if (RAND_bytes(dest, static_cast<int>(len)) != 1) throw Error(ExitCode::failure, "RAND_bytes failed");
}

ngtcp2_cid random_cid(size_t len) {
  ngtcp2_cid cid{};
  cid.datalen = len;
  random_bytes(cid.data, len);
  return cid;
}

std::string describe_ccerr(const ngtcp2_ccerr& e) {
  std::string reason(reinterpret_cast<const char*>(e.reason), e.reasonlen);
  if (e.type == NGTCP2_CCERR_TYPE_TRANSPORT) {
    // 0x100-0x1ff: a TLS alert (RFC 9001 §4.8).
    if (e.error_code >= 0x100 && e.error_code <= 0x1ff)
      return fmt::format("handshake alert {}{}", e.error_code - 0x100, reason.empty() ? "" : ": " + reason);
    return fmt::format("transport error {:#x}{}", e.error_code, reason.empty() ? "" : ": " + reason);
  }
  return reason;
}

}  // namespace

std::string engine_versions() {
  return fmt::format("ngtcp2 {} with {}", ngtcp2_version(0)->version_str, OpenSSL_version(OPENSSL_VERSION));
}

struct Endpoint::ConnRef {
  ngtcp2_crypto_conn_ref ref{};
};

Endpoint::Endpoint(Role role, Transmit transmit, const EndpointOptions& options, Timestamp now)
    : role_(role),
      transmit_(std::move(transmit)),
      options_(options),
      created_(now),
      negotiation_(std::make_unique<tls::Negotiation>()),
      ctx_(nullptr, SSL_CTX_free),
      conn_ref_(std::make_unique<ConnRef>()),
      path_(std::make_unique<Path>(0)) {
  conn_ref_->ref.get_conn = &conn_of;
  conn_ref_->ref.user_data = this;
  negotiation_->cap = options.max_version;
  negotiation_->peer_body_version = options.peer_body_version;
  negotiation_->on_selected = [this](int version) { on_version_selected(version); };
  ctx_.reset(tls::make_context(role, negotiation_.get()).release());
  if (role_ == Role::client) create_client(now);
}

Endpoint::~Endpoint() {
  if (datagrams_sent_ > 0) {
    log::debug(Layer::quic, "sent {} datagrams, {} bytes, {} bytes on average", datagrams_sent_, bytes_sent_,
               bytes_sent_ / datagrams_sent_);
  }
  // The connection first: freeing it may still reach the TLS objects.
  if (conn_) ngtcp2_conn_del(conn_);
  if (ossl_ctx_) ngtcp2_crypto_ossl_ctx_del(ossl_ctx_);
  if (ssl_) {
    SSL_set_app_data(ssl_, nullptr);
    SSL_free(ssl_);
  }
}

namespace {
void fill_settings(ngtcp2_settings& settings, const EndpointOptions& options, Timestamp now) {
  ngtcp2_settings_default(&settings);
  settings.initial_ts = now;
  settings.cc_algo = options.congestion == Congestion::bbr ? NGTCP2_CC_ALGO_BBR : NGTCP2_CC_ALGO_CUBIC;
  settings.max_window = kConnWindow;
  settings.max_stream_window = kMaxStreamWindow;
  // Our peers' own ICE pair carries more than 1200 bytes almost always;
  // ngtcp2's PMTUD starts at 1200 and probes upwards, so a path that does
  // not (a TURN relay inside a 1500-byte MTU) simply stays lower. Towards an
  // OpenSSL peer the peer's max_udp_payload_size transport parameter caps it.
  settings.max_tx_udp_payload_size = kMaxTxUdpPayload;
}

// Half the idle timeout, at most 7.5 s: the effective idle timeout is the
// smaller of both sides' (an OpenSSL peer's is 30 s), so a long one of ours
// must not make our PINGs rarer than the peer's timeout needs.
ngtcp2_duration keep_alive(const ngtcp2_transport_params& params) {
  return std::min<ngtcp2_duration>(params.max_idle_timeout / 2, 7500 * NGTCP2_MILLISECONDS);
}

void fill_params(ngtcp2_transport_params& params, const EndpointOptions& options) {
  ngtcp2_transport_params_default(&params);
  params.initial_max_stream_data_bidi_local = kInitialStreamWindow;
  params.initial_max_stream_data_bidi_remote = kInitialStreamWindow;
  params.initial_max_stream_data_uni = 0;
  params.initial_max_data = kConnWindow;
  params.initial_max_streams_bidi = kMaxStreams;
  params.initial_max_streams_uni = 0;
  params.max_idle_timeout = static_cast<ngtcp2_duration>(options.idle_timeout.count()) * NGTCP2_MILLISECONDS;
  params.active_connection_id_limit = 4;
  // The client offers every version up to its cap, so it advertises what
  // its highest one needs; the server decides once it has selected one
  // (Endpoint::on_version_selected).
  if (options.datagrams && protocol::carries_udp(options.max_version))
    params.max_datagram_frame_size = kMaxDatagramFrame;
}
}  // namespace

void Endpoint::create_client(Timestamp now) {
  ngtcp2_cid dcid = random_cid(18), scid = random_cid(17);
  ngtcp2_settings settings;
  fill_settings(settings, options_, now);
  ngtcp2_transport_params params;
  fill_params(params, options_);
  int rv = ngtcp2_conn_client_new(&conn_, &dcid, &scid, &path_->path, NGTCP2_PROTO_VER_V1, &callback_table(role_),
                                  &settings, &params, nullptr, this);
  if (rv != 0) throw Error(ExitCode::failure, fmt::format("ngtcp2_conn_client_new: {}", ngtcp2_strerror(rv)));
  std::string offer = alpn::client_offer(options_.max_version);
  if (!options_.client_alpn.empty()) {
    if (options_.client_alpn.size() > 255) throw Error(ExitCode::failure, "invalid ALPN protocol name");
    offer = std::string(1, static_cast<char>(options_.client_alpn.size())) + options_.client_alpn;
  }
  ssl_ = tls::make_session(ctx_.get(), role_, offer);
  SSL_set_app_data(ssl_, &conn_ref_->ref);
  if (ngtcp2_crypto_ossl_ctx_new(&ossl_ctx_, ssl_) != 0)
    throw Error(ExitCode::failure, "ngtcp2_crypto_ossl_ctx_new failed");
  ngtcp2_conn_set_tls_native_handle(conn_, ossl_ctx_);
  ngtcp2_conn_set_keep_alive_timeout(conn_, keep_alive(params));
}

// The first Initial from the client makes the connection. Anything else
// before it (stray datagrams, a late packet of an earlier attempt) is dropped.
bool Endpoint::create_server(std::span<const uint8_t> first, Timestamp now) {
  ngtcp2_pkt_hd hd{};
  if (ngtcp2_accept(&hd, first.data(), first.size()) != 0) return false;
  ngtcp2_cid scid = random_cid(17);
  ngtcp2_settings settings;
  fill_settings(settings, options_, now);
  ngtcp2_transport_params params;
  fill_params(params, options_);
  params.max_datagram_frame_size = 0;  // on_version_selected
  params.original_dcid = hd.dcid;
  params.original_dcid_present = 1;
  params.stateless_reset_token_present = 1;
  random_bytes(params.stateless_reset_token, sizeof params.stateless_reset_token);
  int rv = ngtcp2_conn_server_new(&conn_, &hd.scid, &scid, &path_->path, hd.version, &callback_table(role_),
                                  &settings, &params, nullptr, this);
  if (rv != 0) {
    log::debug(Layer::quic, "ngtcp2_conn_server_new: {}", ngtcp2_strerror(rv));
    conn_ = nullptr;
    return false;
  }
  ssl_ = tls::make_session(ctx_.get(), role_, {});
  SSL_set_app_data(ssl_, &conn_ref_->ref);
  if (ngtcp2_crypto_ossl_ctx_new(&ossl_ctx_, ssl_) != 0)
    throw Error(ExitCode::failure, "ngtcp2_crypto_ossl_ctx_new failed");
  ngtcp2_conn_set_tls_native_handle(conn_, ossl_ctx_);
  ngtcp2_conn_set_keep_alive_timeout(conn_, keep_alive(params));
  log::debug(Layer::quic, "accepted a QUIC connection");
  return true;
}

void Endpoint::receive_datagram(std::span<const uint8_t> datagram, Timestamp now) {
  if (datagram.empty() || datagram.size() > kMaxDatagram) return;
  if (!conn_) {
    if (role_ != Role::server || close_requested_ || closed_ || !create_server(datagram, now)) return;
  }
  if (close_sent_) {
    // Closing period (RFC 9000 §10.2.1): answer with our close again.
    if (!close_packet_.empty()) {
      size_t size = close_packet_.size();
      transmit(close_packet_, std::span<const size_t>(&size, 1));
    }
    return;
  }
  if (closed_ && !close_requested_) return;  // draining, idle or failed: nothing more to read
  if (resume_enabled_ && last_datagram_ != 0 && now - last_datagram_ >= kResumeAfterNs) resume_path(now);
  last_datagram_ = now;
  ngtcp2_pkt_info pi{};
  int rv = ngtcp2_conn_read_pkt(conn_, &path_->path, &pi, datagram.data(), datagram.size(), now);
  if (rv == 0) last_received_ = now;
  if (rv != 0) on_fatal_read(rv, now);
  sweep();
}

std::optional<Timestamp> Endpoint::probe_due() const {
  if (!resume_enabled_ || close_requested_ || last_datagram_ == 0) return std::nullopt;
  if (echo_probes_ > 0) return echo_next_;
  return std::max(last_datagram_ + kResumeAfterNs, last_probe_ + kProbeIntervalNs);
}

void Endpoint::enable_path_resumption() {
  if (!conn_ || resume_enabled_) return;
  resume_enabled_ = true;
  ngtcp2_conn_set_keep_alive_timeout(conn_, kResumeKeepAliveNs);
}

// The first datagram after a silence: the path is back (endpoint.hpp,
// kResumeAfterNs). Failures leave the path as it was: the connection then
// recovers the slow way, at its next probe timeout.
void Endpoint::resume_path(Timestamp now) {
  auto next = std::make_unique<Path>(static_cast<uint8_t>(resumptions_ + 1));
  const double silent_s = static_cast<double>(now - last_datagram_) / 1e9;
  echo_probes_ = kResumeEchoProbes;  // the other side may still be silent
  echo_next_ = now;
  if (role_ == Role::client) {
    // Needs a spare connection ID from the server (active_connection_id_limit).
    int rv = ngtcp2_conn_initiate_immediate_migration(conn_, &next->path, now);
    if (rv != 0) {
      log::debug(Layer::quic, "path back after {:.1f} s of silence; not migrating: {}", silent_s, ngtcp2_strerror(rv));
      return;
    }
  }
  // The server needs nothing more: the next packet from the "new" address
  // makes ngtcp2 validate it and start over on it.
  path_ = std::move(next);
  ++resumptions_;
  log::debug(Layer::quic, "path back after {:.1f} s of silence: resumed as path {}", silent_s, resumptions_);
}

void Endpoint::on_fatal_read(int rv, Timestamp now) {
  switch (rv) {
    case NGTCP2_ERR_DRAINING: {
      // The peer closed the connection.
      const ngtcp2_ccerr* e = ngtcp2_conn_get_ccerr(conn_);
      CloseInfo info{true, e->type == NGTCP2_CCERR_TYPE_APPLICATION, e->error_code, describe_ccerr(*e)};
      log::debug(Layer::quic, "the peer closed the connection: app={} code={:#x}", info.is_app, info.error_code);
      if (!closed_) closed_ = std::move(info);
      close_sent_ = close_requested_;  // nothing more to send in the draining period
      return;
    }
    case NGTCP2_ERR_CLOSING: return;
    case NGTCP2_ERR_DROP_CONN:
      if (!closed_) closed_ = CloseInfo{false, false, 0, "connection dropped"};
      return;
    default: fail(rv, now);
  }
}

// A local or protocol error: tell the peer (CONNECTION_CLOSE) and stop.
void Endpoint::fail(int liberr, Timestamp now) {
  std::string why = ngtcp2_strerror(liberr);
  if (liberr == NGTCP2_ERR_CRYPTO) {
    uint8_t alert = ngtcp2_conn_get_tls_alert(conn_);
    why = fmt::format("handshake failed (TLS alert {})", alert);
  }
  log::debug(Layer::quic, "connection error: {}", why);
  if (!closed_) closed_ = CloseInfo{false, false, 0, why};
  if (close_sent_) return;
  ngtcp2_ccerr ccerr;
  ngtcp2_ccerr_default(&ccerr);
  if (liberr == NGTCP2_ERR_CRYPTO) {
    // The TLS alert itself (e.g. 120 no_application_protocol), so that the
    // peer learns why; ngtcp2_ccerr_set_liberr would say only "protocol
    // violation".
    ngtcp2_ccerr_set_tls_alert(&ccerr, ngtcp2_conn_get_tls_alert(conn_), nullptr, 0);
  } else {
    ngtcp2_ccerr_set_liberr(&ccerr, liberr, nullptr, 0);
  }
  std::array<uint8_t, 1500> buf;
  ngtcp2_pkt_info pi{};
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  ngtcp2_ssize n = ngtcp2_conn_write_connection_close(conn_, &ps.path, &pi, buf.data(), buf.size(), &ccerr, now);
  close_requested_ = close_sent_ = true;
  if (n > 0) {
    close_packet_.assign(buf.data(), buf.data() + n);
    size_t size = close_packet_.size();
    transmit(close_packet_, std::span<const size_t>(&size, 1));
  }
}

void Endpoint::handle_expiry(Timestamp now) {
  if (!conn_ || close_sent_ || (closed_ && !close_requested_)) return;
  if (auto due = probe_due(); due && *due <= now) {
    static constexpr uint8_t probe[] = {kPathProbe};
    static constexpr size_t size = sizeof probe;
    last_probe_ = now;
    if (echo_probes_ > 0) {
      --echo_probes_;
      echo_next_ = now + kProbeIntervalNs;
    }
    transmit(probe, std::span<const size_t>(&size, 1));
  }
  int rv = ngtcp2_conn_handle_expiry(conn_, now);
  if (rv == NGTCP2_ERR_IDLE_CLOSE) {
    log::debug(Layer::quic, "idle timeout");
    if (!closed_) closed_ = CloseInfo{false, false, 0, "no answer from the peer (idle timeout)"};
    close_sent_ = close_requested_;
    return;
  }
  if (rv != 0) {
    fail(rv, now);
    return;
  }
  write(now);
}

std::optional<Timestamp> Endpoint::expiry() const {
  if (!conn_ || close_sent_ || (closed_ && !close_requested_)) return std::nullopt;
  Timestamp t = ngtcp2_conn_get_expiry(conn_);
  if (close_requested_) t = std::min(t, close_deadline_);
  if (auto due = probe_due()) t = std::min(t, *due);
  if (t == UINT64_MAX) return std::nullopt;
  return t;
}

bool Endpoint::all_delivered() const {
  return std::all_of(streams_.begin(), streams_.end(), [](const auto& kv) {
    const StreamState& s = kv.second;
    if (s.tx_reset || s.closed) return true;
    return s.tx.acked() == s.tx.written() && (!s.fin_wanted || s.fin_acked);
  });
}

void Endpoint::write(Timestamp now) {
  if (!conn_ || close_sent_ || (closed_ && !close_requested_)) return;
  if (close_requested_ && (!handshake_done_ || all_delivered() || now >= close_deadline_)) {
    write_close(now);
    return;
  }
  const size_t path_size = std::max<size_t>(ngtcp2_conn_get_path_max_tx_udp_payload_size(conn_), 1200);
  const size_t quantum = ngtcp2_conn_get_send_quantum(conn_);
  const size_t max_pkts = std::clamp<size_t>(quantum / path_size, 1, kMaxBatch);
  // Room for kMaxTxUdpPayload in every packet, not only the path's size:
  // ngtcp2 writes its PMTUD probes (larger than the path's size so far)
  // only into a buffer that holds them. With the path's size here the
  // probes never went out and every connection stayed at 1200 bytes
  // (measured: max_datagram_payload() 1157 before and after 10 s).
  const size_t max_size = std::max(path_size, kMaxTxUdpPayload);
  out_.resize(max_pkts * max_size);
  out_sizes_.clear();
  size_t used = 0;
  ngtcp2_pkt_info pi{};
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);

  // Streams blocked only by the connection's window get another chance
  // whenever it has room again.
  if (ngtcp2_conn_get_max_data_left(conn_) > 0) {
    for (auto& [id, s] : streams_) {
      if (s.blocked && ngtcp2_conn_get_max_stream_data_left(conn_, id) > 0) {
        s.blocked = false;
        queue_send(s);
      }
    }
  }

  const bool datagrams = datagrams_enabled();
  const size_t datagram_max = max_datagram_payload();
  while (out_sizes_.size() < max_pkts) {
    uint8_t* dest = out_.data() + used;
    size_t cursor = 0;  // next candidate in sendable_ for this packet
    int64_t last = -1;  // the stream whose data ended the packet
    ngtcp2_ssize n = 0;
    // DATAGRAM frames first: UDP traffic is what waits badly (a game's
    // position, a voice frame), while a stream's bytes wait in its buffer
    // and TCP holds the application back. Then stream data fills the rest.
    bool packet_done = false;
    while (datagrams && !tx_datagrams_.empty()) {
      std::vector<uint8_t>& d = tx_datagrams_.front();
      if (d.size() > datagram_max) {  // the path's limit cannot shrink below what was checked; be sure anyway
        ++datagram_stats_.too_large;
        pop_datagram();
        continue;
      }
      int accepted = 0;
      ngtcp2_vec v{d.data(), d.size()};
      n = ngtcp2_conn_writev_datagram(conn_, &ps.path, &pi, dest, max_size, &accepted, NGTCP2_WRITE_DATAGRAM_FLAG_MORE,
                                      next_datagram_id_, &v, 1, now);
      if (accepted) {
        ++next_datagram_id_;
        ++datagram_stats_.sent;
        datagram_stats_.sent_bytes += d.size();
        pop_datagram();
      }
      if (n == NGTCP2_ERR_WRITE_MORE) continue;  // room left in this packet
      if (n == NGTCP2_ERR_INVALID_ARGUMENT) {    // over the peer's max_datagram_frame_size
        ++datagram_stats_.too_large;
        pop_datagram();
        continue;
      }
      if (n < 0) {
        fail(static_cast<int>(n), now);
        return;
      }
      packet_done = true;  // a full packet (n > 0), or congestion / pacing limited (0)
      break;
    }
    for (; !packet_done;) {
      StreamState* s = nullptr;
      while (cursor < sendable_.size()) {
        s = find(sendable_[cursor]);
        bool has_work = s && !s->tx_reset && !s->blocked && !s->closed &&
                        (s->tx.unsent_bytes() > 0 || (s->fin_wanted && !s->fin_sent));
        if (has_work) break;
        if (s) s->queued = false;
        sendable_.erase(sendable_.begin() + static_cast<std::ptrdiff_t>(cursor));
        s = nullptr;
      }
      std::array<std::span<const uint8_t>, 8> runs;
      std::array<ngtcp2_vec, 8> vec{};
      size_t nvec = 0, offered = 0;
      uint32_t flags = s ? NGTCP2_WRITE_STREAM_FLAG_MORE : 0;
      int64_t sid = -1;
      if (s) {
        sid = s->id;
        nvec = s->tx.unsent(runs);
        for (size_t i = 0; i < nvec; ++i) {
          vec[i] = {const_cast<uint8_t*>(runs[i].data()), runs[i].size()};
          offered += runs[i].size();
        }
        if (s->fin_wanted && offered == s->tx.unsent_bytes()) flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
      }
      ngtcp2_ssize datalen = -1;
      n = ngtcp2_conn_writev_stream(conn_, &ps.path, &pi, dest, max_size, &datalen, flags, sid, vec.data(), nvec, now);
      if (s && datalen >= 0) {
        s->tx.mark_sent(static_cast<size_t>(datalen));
        if ((flags & NGTCP2_WRITE_STREAM_FLAG_FIN) && static_cast<size_t>(datalen) == offered) {
          s->fin_sent = true;
          s->fin_alone = offered == 0;
        }
        if (s->want_write && s->tx.unsent_bytes() < kMaxUnsent / 2) mark_ready(*s);
      }
      if (n == NGTCP2_ERR_WRITE_MORE) {
        ++cursor;  // this stream gave all it could; room is left for the next
        continue;
      }
      if (n == NGTCP2_ERR_STREAM_DATA_BLOCKED) {
        s->blocked = true;
        ++cursor;
        continue;
      }
      if (n == NGTCP2_ERR_STREAM_SHUT_WR || n == NGTCP2_ERR_STREAM_NOT_FOUND) {
        // The peer asked us to stop sending (ngtcp2 reset the stream).
        s->tx_reset = true;
        s->tx.clear();
        mark_ready(*s);
        ++cursor;
        continue;
      }
      if (n < 0) {
        fail(static_cast<int>(n), now);
        return;
      }
      last = sid;
      break;
    }
    if (n == 0) break;  // nothing left to send, or congestion / pacing limited
    out_sizes_.push_back(static_cast<size_t>(n));
    used += static_cast<size_t>(n);
    // Round robin: the stream that filled this packet goes to the back.
    if (last >= 0 && !sendable_.empty() && sendable_.front() == last) {
      sendable_.pop_front();
      sendable_.push_back(last);
    }
  }
  if (!out_sizes_.empty()) transmit(std::span<const uint8_t>(out_.data(), used), out_sizes_);
  ngtcp2_conn_update_pkt_tx_time(conn_, now);
  sweep();
}

void Endpoint::pop_datagram() {
  tx_datagram_bytes_ -= tx_datagrams_.front().size();
  tx_datagrams_.pop_front();
}

void Endpoint::write_close(Timestamp now) {
  ngtcp2_ccerr ccerr;
  ngtcp2_ccerr_default(&ccerr);
  ngtcp2_ccerr_set_application_error(&ccerr, close_code_, reinterpret_cast<const uint8_t*>(close_reason_.data()),
                                     close_reason_.size());
  std::array<uint8_t, 1500> buf;
  ngtcp2_pkt_info pi{};
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  ngtcp2_ssize n = ngtcp2_conn_write_connection_close(conn_, &ps.path, &pi, buf.data(), buf.size(), &ccerr, now);
  close_sent_ = true;
  if (n > 0) {
    close_packet_.assign(buf.data(), buf.data() + n);
    size_t size = close_packet_.size();
    transmit(close_packet_, std::span<const size_t>(&size, 1));
  } else if (n < 0) {
    log::debug(Layer::quic, "write_connection_close: {}", ngtcp2_strerror(static_cast<int>(n)));
  }
}

void Endpoint::transmit(std::span<const uint8_t> bytes, std::span<const size_t> sizes) {
  datagrams_sent_ += sizes.size();
  bytes_sent_ += bytes.size();
  transmit_(Batch{bytes, sizes});
}

void Endpoint::close(uint64_t app_error, std::string_view reason, Timestamp now) {
  if (close_requested_) return;
  close_requested_ = true;
  close_code_ = app_error;
  close_reason_ = std::string(reason.substr(0, 256));
  // A peer that has not answered for kResumeAfterNs (the session gives up
  // on a silent peer) would only make the flush last its whole deadline:
  // 3 s more before a dead peer's side exits, for nothing.
  const bool silent = last_datagram_ != 0 && now - last_datagram_ >= kResumeAfterNs;
  close_deadline_ = silent ? now : now + kCloseFlushNs;
  if (!closed_) closed_ = CloseInfo{false, true, app_error, close_reason_};
  if (!conn_) {
    close_sent_ = true;  // a server that never heard from anyone: nobody to tell
    return;
  }
  write(now);
}

// Server, from the ALPN selection callback (before the handshake keys, so
// before our transport parameters are encoded): DATAGRAM support only for a
// version that carries UDP.
void Endpoint::on_version_selected(int version) {
  if (!conn_ || !options_.datagrams || !protocol::carries_udp(version)) return;
  ngtcp2_transport_params params = *ngtcp2_conn_get_local_transport_params2(conn_);
  params.max_datagram_frame_size = kMaxDatagramFrame;
  int rv = ngtcp2_conn_set_local_transport_params(conn_, &params);
  c_boundary("the ALPN selection", [&] {
    if (rv != 0) log::debug(Layer::quic, "set_local_transport_params: {}", ngtcp2_strerror(rv));
  });
}

bool Endpoint::shutdown_complete() const {
  if (close_requested_) return close_sent_;
  return closed_.has_value();
}

std::vector<uint8_t> Endpoint::export_keying_material(std::string_view label, size_t length) const {
  if (!app_keys_ready() || ssl_ == nullptr) throw Error(ExitCode::failure, "TLS exporter: handshake not complete");
  std::vector<uint8_t> out(length);
  ERR_clear_error();
  if (SSL_export_keying_material(ssl_, out.data(), out.size(), label.data(), label.size(), nullptr, 0,
                                 /*use_context=*/0) != 1)
    throw Error(ExitCode::failure, "SSL_export_keying_material: " + tls::errors());
  return out;
}

std::string Endpoint::alpn() const {
  if (ssl_ == nullptr) return {};
  const unsigned char* p = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl_, &p, &len);
  return std::string(reinterpret_cast<const char*>(p), len);
}

alpn::Outcome Endpoint::negotiated() const {
  if (role_ == Role::server) return alpn::server_outcome(negotiation_->selection, options_.peer_body_version);
  const bool original = ssl_ != nullptr && tls::is_original_certificate(ssl_);
  return alpn::client_outcome(alpn(), original, options_.max_version, options_.peer_body_version);
}

std::optional<alpn::Selection> Endpoint::selection() const {
  if (role_ != Role::server || !negotiation_->offered) return std::nullopt;
  return negotiation_->selection;
}

bool Endpoint::presented_original_identity() const { return negotiation_->original_identity; }

bool Endpoint::datagrams_enabled() const {
  if (!conn_ || !handshake_done_ || closed_) return false;
  const ngtcp2_transport_params* local = ngtcp2_conn_get_local_transport_params2(conn_);
  const ngtcp2_transport_params* remote = ngtcp2_conn_get_remote_transport_params2(conn_);
  return local && remote && local->max_datagram_frame_size > 0 && remote->max_datagram_frame_size > 0;
}

// A 1-RTT packet around one DATAGRAM frame: the first byte, the peer's
// connection id, a packet number of up to 4 bytes, the AEAD tag; the frame's
// type byte and its length (a varint of up to 4 bytes below 2^30).
size_t Endpoint::datagram_overhead() const { return 1 + ngtcp2_conn_get_dcid2(conn_)->datalen + 4 + kAeadTag + 1 + 4; }

size_t Endpoint::max_datagram_payload() const {
  if (!datagrams_enabled()) return 0;
  const size_t path = ngtcp2_conn_get_path_max_tx_udp_payload_size(conn_);
  const size_t overhead = datagram_overhead();
  const uint64_t frame = ngtcp2_conn_get_remote_transport_params2(conn_)->max_datagram_frame_size;
  const size_t by_frame = frame > 5 ? static_cast<size_t>(std::min<uint64_t>(frame - 5, kMaxDatagram)) : 0;
  return std::min(path > overhead ? path - overhead : 0, by_frame);
}

DatagramResult Endpoint::send_datagram(std::span<const uint8_t> payload) {
  if (!datagrams_enabled() || close_requested_) return DatagramResult::unavailable;
  if (payload.size() > max_datagram_payload()) {
    ++datagram_stats_.too_large;
    return DatagramResult::too_large;
  }
  if (tx_datagrams_.size() >= kMaxDatagramQueue || tx_datagram_bytes_ + payload.size() > kMaxDatagramQueueBytes) {
    ++datagram_stats_.queue_full;
    return DatagramResult::queue_full;
  }
  tx_datagrams_.emplace_back(payload.begin(), payload.end());
  tx_datagram_bytes_ += payload.size();
  return DatagramResult::queued;
}

void Endpoint::accept_datagrams(bool on) {
  accept_datagrams_ = on;
  if (!on) {
    rx_datagrams_.clear();
    rx_datagram_bytes_ = 0;
  }
}

void Endpoint::receive_datagram_frame(std::span<const uint8_t> payload) {
  if (!accept_datagrams_ || rx_datagrams_.size() >= kMaxDatagramRxQueue ||
      rx_datagram_bytes_ + payload.size() > kMaxDatagramRxQueueBytes) {
    ++datagram_stats_.rx_dropped;
    return;
  }
  rx_datagrams_.emplace_back(payload.begin(), payload.end());
  rx_datagram_bytes_ += payload.size();
}

std::optional<std::vector<uint8_t>> Endpoint::take_datagram() {
  if (rx_datagrams_.empty()) return std::nullopt;
  std::vector<uint8_t> out = std::move(rx_datagrams_.front());
  rx_datagrams_.pop_front();
  rx_datagram_bytes_ -= out.size();
  ++datagram_stats_.received;
  datagram_stats_.received_bytes += out.size();
  return out;
}

ConnStats Endpoint::stats() const {
  ConnStats out;
  if (!conn_) return out;
  ngtcp2_conn_info info{};
  ngtcp2_conn_get_conn_info(conn_, &info);
  if (info.min_rtt != UINT64_MAX) {
    out.rtt_ms = static_cast<double>(info.smoothed_rtt) / 1e6;
    out.min_rtt_ms = static_cast<double>(info.min_rtt) / 1e6;
  }
  out.cwnd = info.cwnd;
  out.bytes_in_flight = info.bytes_in_flight;
  out.max_datagram = ngtcp2_conn_get_path_max_tx_udp_payload_size(conn_);
  out.last_received = last_received_;
  return out;
}

}  // namespace peersock::quic

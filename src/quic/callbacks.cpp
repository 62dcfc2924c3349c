// ngtcp2's C callbacks for the endpoint (endpoint.hpp).
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <openssl/rand.h>

#include <cstring>

#include "internal.hpp"
#include "peersock/c_boundary.hpp"
#include "peersock/log.hpp"

namespace peersock::quic {

using log::Layer;

// ngtcp2's C callbacks. Each finds its Endpoint through user_data and never
// throws (an exception must not cross ngtcp2's C frames): those that
// allocate or log run through c_boundary_or, so that bad_alloc becomes
// NGTCP2_ERR_CALLBACK_FAILURE and ngtcp2's own error path.
struct Endpoint::Callbacks {
  static Endpoint& self(void* user_data) { return *static_cast<Endpoint*>(user_data); }

  static void rand(uint8_t* dest, size_t len, const ngtcp2_rand_ctx*) {
    if (RAND_bytes(dest, static_cast<int>(len)) != 1) std::memset(dest, 0, len);  // never fails on Linux
  }

  static int new_connection_id(ngtcp2_conn*, ngtcp2_cid* cid, uint8_t* token, size_t cidlen, void*) {
    cid->datalen = cidlen;
    if (RAND_bytes(cid->data, static_cast<int>(cidlen)) != 1 || RAND_bytes(token, NGTCP2_STATELESS_RESET_TOKENLEN) != 1)
      return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
  }

  static int handshake_completed(ngtcp2_conn*, void* user_data) {
    return c_boundary_or(int{NGTCP2_ERR_CALLBACK_FAILURE}, [&]() -> int {
      Endpoint& e = self(user_data);
      e.handshake_done_ = true;
      log::debug(Layer::quic, "{} handshake done (ALPN '{}')", e.role_ == Role::client ? "client" : "server", e.alpn());
      return 0;
    });
  }

  static int recv_tx_key(ngtcp2_conn*, ngtcp2_encryption_level level, void* user_data) {
    if (level == NGTCP2_ENCRYPTION_LEVEL_1RTT) self(user_data).app_tx_key_ = true;
    return 0;
  }

  static int stream_open(ngtcp2_conn*, int64_t id, void* user_data) {
    return c_boundary_or(int{NGTCP2_ERR_CALLBACK_FAILURE}, [&]() -> int {
      Endpoint& e = self(user_data);
      auto [it, fresh] = e.streams_.try_emplace(id);
      if (fresh) {
        it->second.id = id;
        e.accept_queue_.push_back(id);
      }
      return 0;
    });
  }

  static int recv_stream_data(ngtcp2_conn*, uint32_t flags, int64_t id, uint64_t, const uint8_t* data, size_t len,
                              void* user_data, void*) {
    return c_boundary_or(int{NGTCP2_ERR_CALLBACK_FAILURE}, [&]() -> int {
      Endpoint& e = self(user_data);
      StreamState* s = e.find(id);
      if (s == nullptr || s->released || s->rx_stopped) {
        // Nobody will read it: let the flow-control windows move on.
        ngtcp2_conn_extend_max_stream_offset(e.conn_, id, len);
        ngtcp2_conn_extend_max_offset(e.conn_, len);
        return 0;
      }
      if (len > 0) s->rx.append(data, len);
      s->rx_total += len;
      if (flags & NGTCP2_STREAM_DATA_FLAG_FIN) s->rx_fin = true;
      e.mark_ready(*s);
      return 0;
    });
  }

  static int acked_stream_data_offset(ngtcp2_conn*, int64_t id, uint64_t offset, uint64_t len, void* user_data, void*) {
    return c_boundary_or(int{NGTCP2_ERR_CALLBACK_FAILURE}, [&]() -> int {
      Endpoint& e = self(user_data);
      if (StreamState* s = e.find(id)) {
        s->tx.acked_to(offset + len);
        // ngtcp2 reports no FIN acknowledgement of its own. A FIN sent with
        // the last bytes is retransmitted with them, so once every byte is
        // acknowledged so is the FIN; a FIN sent alone is acknowledged by
        // the one call without data (ngtcp2 makes it only for a FIN frame).
        if (s->fin_sent && (s->fin_alone ? len == 0 : s->tx.acked() == s->tx.written())) s->fin_acked = true;
        if (s->want_write && s->tx.unsent_bytes() < kMaxUnsent / 2) e.mark_ready(*s);
      }
      return 0;
    });
  }

  static int stream_close(ngtcp2_conn* conn, uint32_t, int64_t id, uint64_t, void* user_data, void*) {
    return c_boundary_or(int{NGTCP2_ERR_CALLBACK_FAILURE}, [&]() -> int {
      Endpoint& e = self(user_data);
      if (!local_stream(e.role_, id)) ngtcp2_conn_extend_max_streams_bidi(conn, 1);
      if (StreamState* s = e.find(id)) {
        s->closed = true;
        if (!s->rx_fin) s->rx_reset = true;
        if (!s->fin_sent) s->tx_reset = true;
        e.mark_ready(*s);
        e.graveyard_.push_back(id);  // erased once ngtcp2 has returned (sweep)
      }
      return 0;
    });
  }

  static int stream_reset(ngtcp2_conn*, int64_t id, uint64_t, uint64_t, void* user_data, void*) {
    Endpoint& e = self(user_data);
    if (StreamState* s = e.find(id)) {
      s->rx_reset = true;
      e.mark_ready(*s);
    }
    return 0;
  }

  static int extend_max_stream_data(ngtcp2_conn*, int64_t id, uint64_t, void* user_data, void*) {
    Endpoint& e = self(user_data);
    if (StreamState* s = e.find(id)) {
      s->blocked = false;
      e.queue_send(*s);
    }
    return 0;
  }

  static int recv_datagram(ngtcp2_conn*, uint32_t, const uint8_t* data, size_t len, void* user_data) {
    return c_boundary_or(int{NGTCP2_ERR_CALLBACK_FAILURE}, [&]() -> int {
      self(user_data).receive_datagram_frame({data, len});
      return 0;
    });
  }

  static int lost_datagram(ngtcp2_conn*, uint64_t, void* user_data) {
    ++self(user_data).datagram_stats_.lost;
    return 0;
  }

  static ngtcp2_conn* get_conn(ngtcp2_crypto_conn_ref* ref) { return static_cast<Endpoint*>(ref->user_data)->conn_; }

  static const ngtcp2_callbacks& table(Role role) {
    static const ngtcp2_callbacks tables[2] = {make(Role::client), make(Role::server)};
    return tables[role == Role::client ? 0 : 1];
  }

  static ngtcp2_callbacks make(Role role) {
    ngtcp2_callbacks cb{};
    if (role == Role::client) {
      cb.client_initial = ngtcp2_crypto_client_initial_cb;
      cb.recv_retry = ngtcp2_crypto_recv_retry_cb;
    } else {
      cb.recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
    }
    cb.recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
    cb.encrypt = ngtcp2_crypto_encrypt_cb;
    cb.decrypt = ngtcp2_crypto_decrypt_cb;
    cb.hp_mask = ngtcp2_crypto_hp_mask_cb;
    cb.update_key = ngtcp2_crypto_update_key_cb;
    cb.delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
    cb.delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
    cb.get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
    cb.version_negotiation = ngtcp2_crypto_version_negotiation_cb;
    cb.rand = rand;
    cb.get_new_connection_id = new_connection_id;
    cb.handshake_completed = handshake_completed;
    cb.recv_tx_key = recv_tx_key;
    cb.stream_open = stream_open;
    cb.recv_stream_data = recv_stream_data;
    cb.acked_stream_data_offset = acked_stream_data_offset;
    cb.stream_close = stream_close;
    cb.stream_reset = stream_reset;
    cb.extend_max_stream_data = extend_max_stream_data;
    cb.recv_datagram = recv_datagram;
    cb.lost_datagram = lost_datagram;
    return cb;
  }
};

const ngtcp2_callbacks& callback_table(Role role) { return Endpoint::Callbacks::table(role); }
ngtcp2_conn* conn_of(ngtcp2_crypto_conn_ref* ref) { return Endpoint::Callbacks::get_conn(ref); }

}  // namespace peersock::quic

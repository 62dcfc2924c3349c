#include "peersock/rendezvous/client.hpp"

#include <libsoup/soup.h>

#include "peersock/c_boundary.hpp"
#include "peersock/log.hpp"
#include "peersock/rendezvous/protocol.hpp"

namespace peersock::rendezvous {

using log::Layer;

Client::Client(std::string url, ClientCallbacks callbacks, guint connect_timeout_ms)
    : url_(std::move(url)), callbacks_(std::move(callbacks)), session_(soup_session_new()) {
  g_autoptr(SoupMessage) message = soup_message_new("GET", url_.c_str());
  if (message == nullptr) throw UsageError(fmt::format("bad rendezvous URL '{}'", url_));
  timeout_ = g_timeout_add(connect_timeout_ms, &Client::on_timeout, this);
  log::debug(Layer::rendezvous, "connecting to {}", url_);
  soup_session_websocket_connect_async(session_.get(), message, nullptr, nullptr, G_PRIORITY_DEFAULT,
                                       cancellable_.get(), &Client::on_connected, this);
}

// The members release themselves; a pending connect attempt ends with
// G_IO_ERROR_CANCELLED and does not touch `this`.
Client::~Client() {
  if (connection_) g_signal_handlers_disconnect_by_data(connection_.get(), this);
}

void Client::fail(const Error& error) {
  if (failed_ || closing_) return;
  failed_ = true;
  if (callbacks_.failed) callbacks_.failed(error);
}

gboolean Client::on_timeout(gpointer self) {
  return c_boundary("the rendezvous connect timeout", [&]() -> gboolean {
    auto* client = static_cast<Client*>(self);
    client->timeout_.fired();
    client->cancellable_.cancel();
    client->fail(
        Error(ExitCode::relay, fmt::format("cannot reach the rendezvous server at {}: timed out", client->url_)));
    return G_SOURCE_REMOVE;
  });
}

void Client::on_connected(GObject* source, GAsyncResult* result, gpointer self) {
  c_boundary("the rendezvous connect", [&] {
    g_autoptr(GError) error = nullptr;
    SoupWebsocketConnection* connection = soup_session_websocket_connect_finish(SOUP_SESSION(source), result, &error);
    if (error != nullptr && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) return;  // self may be gone
    auto* client = static_cast<Client*>(self);
    client->timeout_.reset();
    if (connection == nullptr) {
      client->fail(Error(ExitCode::relay, fmt::format("cannot reach the rendezvous server at {}: {}", client->url_,
                                                      error ? error->message : "unknown error")));
      return;
    }
    client->connection_.reset(connection);
    soup_websocket_connection_set_max_incoming_payload_size(connection, kMaxFrameBytes);
    g_signal_connect(connection, "message", G_CALLBACK(&Client::on_message), client);
    g_signal_connect(connection, "closed", G_CALLBACK(&Client::on_closed), client);
    g_signal_connect(connection, "error", G_CALLBACK(&Client::on_error), client);
    log::debug(Layer::rendezvous, "connected");
    if (client->callbacks_.connected) client->callbacks_.connected();
  });
}

void Client::on_message(SoupWebsocketConnection*, gint type, GBytes* message, gpointer self) {
  c_boundary("a rendezvous message", [&] {
    auto* client = static_cast<Client*>(self);
    if (client->closing_ || client->failed_) return;
    if (type != SOUP_WEBSOCKET_DATA_TEXT) {
      client->fail(CounterpartyError("the rendezvous server sent a binary websocket frame"));
      return;
    }
    gsize size = 0;
    const auto* data = static_cast<const char*>(g_bytes_get_data(message, &size));
    log::debug(Layer::rendezvous, "<- {}", std::string_view(data, std::min<gsize>(size, 300)));
    if (client->callbacks_.text) client->callbacks_.text(std::string_view(data, size));
  });
}

void Client::on_error(SoupWebsocketConnection*, GError* error, gpointer self) {
  c_boundary("a rendezvous websocket error", [&] {
    auto* client = static_cast<Client*>(self);
    log::debug(Layer::rendezvous, "websocket error: {}", error ? error->message : "?");
    if (error && error->domain == SOUP_WEBSOCKET_ERROR && error->code == SOUP_WEBSOCKET_CLOSE_TOO_BIG) {
      client->frame_too_big_ = true;
    }
  });
}

void Client::on_closed(SoupWebsocketConnection*, gpointer self) {
  c_boundary("the rendezvous websocket close", [&] {
    auto* client = static_cast<Client*>(self);
    client->closed_ = true;
    log::debug(Layer::rendezvous, "websocket closed");
    // libsoup closes the connection itself (after an "error" signal with code
    // 1009) when a frame exceeds our limit: the relay's illegal input, not a
    // server shutdown.
    if (client->frame_too_big_) {
      client->fail(CounterpartyError(
          fmt::format("the rendezvous server sent a websocket frame over the limit of {} KiB", kMaxFrameBytes / 1024)));
      return;
    }
    client->fail(Error(ExitCode::relay, "the rendezvous server closed the connection"));
  });
}

void Client::send(const std::vector<std::string>& frames) {
  if (!connection_ || closed_ || closing_) return;
  for (const auto& frame : frames) {
    log::debug(Layer::rendezvous, "-> {}", frame);
    soup_websocket_connection_send_text(connection_.get(), frame.c_str());
  }
}

void Client::close() {
  if (closing_) return;
  closing_ = true;
  timeout_.reset();
  cancellable_.cancel();
  if (connection_ && !closed_ && soup_websocket_connection_get_state(connection_.get()) == SOUP_WEBSOCKET_STATE_OPEN) {
    soup_websocket_connection_close(connection_.get(), SOUP_WEBSOCKET_CLOSE_NORMAL, nullptr);
  } else {
    closed_ = true;
  }
}

}  // namespace peersock::rendezvous

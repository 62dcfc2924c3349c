// Moves mailbox-protocol text frames over a websocket (libsoup 3, the same
// libsoup that libnice loads on Debian 12: two versions in one process abort).
#pragma once

#include <gio/gio.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "peersock/error.hpp"
#include "peersock/glib/raii.hpp"

typedef struct _SoupSession SoupSession;
typedef struct _SoupWebsocketConnection SoupWebsocketConnection;

namespace peersock::rendezvous {

struct ClientCallbacks {
  std::function<void()> connected;
  std::function<void(std::string_view text)> text;  // one incoming text frame
  std::function<void(const Error&)> failed;         // connect failure or unexpected close
};

class Client {
 public:
  // Starts connecting to `url` (ws:// or wss://). Connect attempts give up
  // after `connect_timeout_ms` with Error(relay).
  Client(std::string url, ClientCallbacks callbacks, guint connect_timeout_ms = 15000);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void send(const std::vector<std::string>& frames);
  // Normal close; after it no callback fires. `closed()` turns true when the
  // close handshake finished (or immediately if there is no connection).
  void close();
  bool closed() const { return !connection_ || closed_; }

 private:
  static void on_connected(GObject* source, GAsyncResult* result, gpointer self);
  static void on_message(SoupWebsocketConnection*, gint type, GBytes* message, gpointer self);
  static void on_closed(SoupWebsocketConnection*, gpointer self);
  static void on_error(SoupWebsocketConnection*, GError* error, gpointer self);
  static gboolean on_timeout(gpointer self);
  void fail(const Error& error);

  std::string url_;
  ClientCallbacks callbacks_;
  glib::ObjectPtr<SoupSession> session_;
  glib::ObjectPtr<SoupWebsocketConnection> connection_;  // once connected
  glib::Cancellable cancellable_;                        // the connect attempt
  glib::SourceId timeout_;                               // the connect attempt's deadline
  bool closing_ = false;
  bool closed_ = false;
  bool failed_ = false;
  bool frame_too_big_ = false;  // libsoup refused an oversized frame
};

}  // namespace peersock::rendezvous

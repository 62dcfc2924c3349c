// The nameplates currently claimed on the mailbox server, for completing a
// code while the user types it: a connection in the lister role (bind, then
// `list` on request). It fits ui::NameplateLister through
// ui::NameplateListerFor; this layer does not know ui.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "peersock/rendezvous/client.hpp"
#include "peersock/rendezvous/protocol.hpp"

namespace peersock::rendezvous {

class NameplateLister {
 public:
  using Listed = std::function<void(std::vector<std::string> nameplates)>;
  using Failed = std::function<void(const std::string& why)>;

  // Does not connect yet: start() does.
  explicit NameplateLister(std::string relay_url);
  ~NameplateLister();  // stop()
  NameplateLister(const NameplateLister&) = delete;
  NameplateLister& operator=(const NameplateLister&) = delete;

  // Connects and asks for a first list (sent right after the welcome).
  // `listed` gets each list (valid nameplates only), `failed` the reason no
  // more will come: a bad URL (from within start()), an unreachable server,
  // a server error or a malformed answer. Call once.
  void start(Listed listed, Failed failed);
  // Asks for a fresh list; nothing before start() or after failed/stop().
  void request();
  // Closes the connection; no callback after it. Idempotent.
  void stop();

 private:
  void on_text(std::string_view text);
  void fail(const std::string& why);

  std::string url_;
  Protocol protocol_;
  std::unique_ptr<Client> client_;
  Listed listed_;
  Failed failed_;
  bool done_ = false;  // failed or stopped
};

}  // namespace peersock::rendezvous

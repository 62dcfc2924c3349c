#include "peersock/rendezvous/nameplate_lister.hpp"

#include <exception>
#include <utility>
#include <variant>

#include "peersock/error.hpp"

namespace peersock::rendezvous {

NameplateLister::NameplateLister(std::string relay_url)
    : url_(std::move(relay_url)), protocol_(Role::lister, random_side()) {}

NameplateLister::~NameplateLister() { stop(); }

void NameplateLister::start(Listed listed, Failed failed) {
  listed_ = std::move(listed);
  failed_ = std::move(failed);
  try {
    client_ = std::make_unique<Client>(url_, ClientCallbacks{
                                                 nullptr,
                                                 [this](std::string_view text) { on_text(text); },
                                                 [this](const Error& e) { fail(e.what()); },
                                             });
  } catch (const std::exception& e) {
    fail(e.what());
    return;
  }
  protocol_.list_nameplates();  // held until the welcome, then sent
}

void NameplateLister::request() {
  if (done_ || !client_) return;
  client_->send(protocol_.list_nameplates().to_send);
}

void NameplateLister::stop() {
  done_ = true;
  if (client_) client_->close();
  client_.reset();
}

void NameplateLister::on_text(std::string_view text) {
  if (done_) return;
  try {
    Output out = protocol_.on_text(text);
    client_->send(out.to_send);
    for (auto& event : out.events) {
      if (auto* list = std::get_if<event::Nameplates>(&event)) {
        if (listed_) listed_(std::move(list->ids));
        if (done_) return;  // stopped from within
      }
    }
  } catch (const std::exception& e) {
    fail(e.what());
  }
}

void NameplateLister::fail(const std::string& why) {
  if (done_) return;
  done_ = true;
  if (failed_) failed_(why);
}

}  // namespace peersock::rendezvous

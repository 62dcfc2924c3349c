// Transitional: prompt_code(relay_url, ...) as src/cli calls it today, with
// the nameplates of the mailbox server. It is its own library (ps_ui_mailbox,
// src/ui/meson.build) because ui itself may not use rendezvous; both go once
// src/cli makes these three lines its own.
#include "peersock/rendezvous/nameplate_lister.hpp"
#include "peersock/ui/code_prompt.hpp"

namespace peersock::ui {

code::Code prompt_code(const std::string& relay_url, bool stdin_is_data) {
  rendezvous::NameplateLister mailbox(relay_url);
  NameplateListerFor lister(mailbox);
  return prompt_code(lister, stdin_is_data);
}

}  // namespace peersock::ui

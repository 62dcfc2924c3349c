#include "peersock/ui/line_editor.hpp"

#include <fmt/core.h>
#include <openssl/crypto.h>

#include "peersock/code/code.hpp"

namespace peersock::ui {
namespace {

constexpr char ctrl(char c) { return static_cast<char>(c & 0x1f); }

}  // namespace

LineEditor::Action LineEditor::feed(char byte) {
  switch (escape_) {
    case Escape::none:
      if (byte == '\x1b') {
        escape_ = Escape::esc;
        return Action::none;
      }
      return key(byte);
    case Escape::esc:
      // ESC [ ... and ESC O x (application cursor mode) are sequences; ESC
      // followed by anything else is dropped with it (Alt-key).
      if (byte == '[' || byte == 'O') {
        escape_ = Escape::csi;
        csi_params_.clear();
        return Action::none;
      }
      escape_ = Escape::none;
      return Action::none;
    case Escape::csi:
      if ((byte >= '0' && byte <= '9') || byte == ';') {
        if (csi_params_.size() < 16) csi_params_ += byte;
        return Action::none;
      }
      escape_ = Escape::none;
      return csi_final(byte);
  }
  return Action::none;
}

LineEditor::Action LineEditor::csi_final(char final) {
  switch (final) {
    case 'C':
      if (cursor_ < text_.size()) ++cursor_;
      return Action::redraw;
    case 'D':
      if (cursor_ > 0) --cursor_;
      return Action::redraw;
    case 'H': cursor_ = 0; return Action::redraw;
    case 'F': cursor_ = text_.size(); return Action::redraw;
    case '~':
      if (csi_params_ == "3") {
        if (cursor_ < text_.size()) text_.erase(cursor_, 1);
      } else if (csi_params_ == "1" || csi_params_ == "7") {
        cursor_ = 0;
      } else if (csi_params_ == "4" || csi_params_ == "8") {
        cursor_ = text_.size();
      }
      return Action::redraw;
    default: return Action::none;
  }
}

LineEditor::Action LineEditor::key(char byte) {
  switch (byte) {
    case '\r':
    case '\n': return Action::accept;
    case '\t': return Action::complete;
    case ctrl('C'): return Action::cancel;
    case ctrl('D'):
      if (text_.empty()) return Action::cancel;
      if (cursor_ < text_.size()) text_.erase(cursor_, 1);
      return Action::redraw;
    case '\x7f':
    case ctrl('H'):
      if (cursor_ > 0) text_.erase(--cursor_, 1);
      return Action::redraw;
    case ctrl('A'): cursor_ = 0; return Action::redraw;
    case ctrl('E'): cursor_ = text_.size(); return Action::redraw;
    case ctrl('B'):
      if (cursor_ > 0) --cursor_;
      return Action::redraw;
    case ctrl('F'):
      if (cursor_ < text_.size()) ++cursor_;
      return Action::redraw;
    case ctrl('U'):
      text_.erase(0, cursor_);
      cursor_ = 0;
      return Action::redraw;
    case ctrl('K'): text_.erase(cursor_); return Action::redraw;
    case ctrl('W'): {
      // Back over separators right before the cursor, then over the word.
      size_t start = cursor_;
      while (start > 0 && code::is_separator(text_[start - 1])) --start;
      while (start > 0 && !code::is_separator(text_[start - 1])) --start;
      text_.erase(start, cursor_ - start);
      cursor_ = start;
      return Action::redraw;
    }
    case ctrl('L'): return Action::redraw;
    default: break;
  }
  const auto u = static_cast<unsigned char>(byte);
  if (u < 0x20 || u >= 0x7f) return Action::none;  // other controls, non-ASCII: not part of a code
  insert(std::string_view(&byte, 1));
  return Action::redraw;
}

void LineEditor::insert(std::string_view text) {
  const size_t room = max_length_ > text_.size() ? max_length_ - text_.size() : 0;
  text = text.substr(0, room);
  text_.insert(cursor_, text);
  cursor_ += text.size();
}

std::string LineEditor::render(std::string_view prompt) const {
  std::string out = fmt::format("\r{}{}\x1b[K", prompt, text_);
  if (cursor_ < text_.size()) out += fmt::format("\x1b[{}D", text_.size() - cursor_);
  return out;
}

void LineEditor::wipe() {
  OPENSSL_cleanse(text_.data(), text_.size());
  text_.clear();
  cursor_ = 0;
}

}  // namespace peersock::ui

// A small line editor for the code prompt (no GNU readline: peersock is MIT).
// Pure: bytes from a raw-mode terminal go in, the caller learns what to do
// (accept, cancel, complete) and asks for the bytes that redraw the line.
// Keys: printable ASCII inserts; Backspace/Ctrl-H, Delete/Ctrl-D (not on an
// empty line: that cancels), Left/Right/Ctrl-B/Ctrl-F, Home/End/Ctrl-A/Ctrl-E,
// Ctrl-U (kill to start), Ctrl-K (kill to end), Ctrl-W (kill the word before
// the cursor, up to a '-'), Ctrl-L (redraw), Tab (complete), Enter, Ctrl-C.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace peersock::ui {

class LineEditor {
 public:
  enum class Action { none, redraw, complete, accept, cancel };

  explicit LineEditor(size_t max_length = 256) : max_length_(max_length) {}
  ~LineEditor() { wipe(); }
  LineEditor(const LineEditor&) = delete;
  LineEditor& operator=(const LineEditor&) = delete;

  // One byte from the terminal. Multi-byte escape sequences (arrows, Home,
  // Delete) are collected across calls.
  Action feed(char byte);

  // Inserts at the cursor (completions); bytes beyond max_length are dropped.
  void insert(std::string_view text);

  const std::string& text() const { return text_; }
  size_t cursor() const { return cursor_; }
  std::string_view before_cursor() const { return std::string_view(text_).substr(0, cursor_); }

  // Bytes that redraw `prompt` + the line and put the terminal cursor in place.
  std::string render(std::string_view prompt) const;

  // Overwrites the text (it is a secret) and empties the line.
  void wipe();

 private:
  enum class Escape { none, esc, csi };
  Action key(char byte);
  Action csi_final(char final);

  size_t max_length_;
  std::string text_;
  size_t cursor_ = 0;
  Escape escape_ = Escape::none;
  std::string csi_params_;
};

}  // namespace peersock::ui

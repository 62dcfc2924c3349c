#include "peersock/ui/completion.hpp"

#include <fmt/core.h>

#include <algorithm>

#include "peersock/code/code.hpp"

namespace peersock::ui {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

}  // namespace

Completion complete_code(std::string_view before_cursor, const std::vector<std::string>& nameplates) {
  Completion result;
  // Words may be separated the way people read them out ("3 eight dino").
  size_t dash = std::string_view::npos;
  for (size_t i = before_cursor.size(); i > 0; --i) {
    if (code::is_separator(before_cursor[i - 1])) {
      dash = i - 1;
      break;
    }
  }
  const std::string token = lower(dash == std::string_view::npos ? before_cursor : before_cursor.substr(dash + 1));
  std::vector<std::string> candidates;
  if (dash == std::string_view::npos) {
    result.nameplate = true;
    for (const auto& n : nameplates) {
      if (starts_with(n, token)) candidates.push_back(n);
    }
    // Shorter nameplates first, then numerically: 1 2 10 11.
    std::sort(candidates.begin(), candidates.end(), [](const std::string& a, const std::string& b) {
      return a.size() != b.size() ? a.size() < b.size() : a < b;
    });
    candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
  } else {
    const auto& words = code::wordlist();
    auto it = std::lower_bound(words.begin(), words.end(), std::string_view(token));
    for (; it != words.end() && starts_with(*it, token); ++it) candidates.emplace_back(*it);
  }
  if (candidates.empty()) return result;
  if (candidates.size() == 1) {
    result.insert = candidates[0].substr(token.size()) + "-";
    return result;
  }
  // Extend to the longest common prefix of all candidates.
  std::string common = candidates[0];
  for (const auto& c : candidates) {
    size_t n = 0;
    while (n < common.size() && n < c.size() && common[n] == c[n]) ++n;
    common.resize(n);
  }
  result.insert = common.substr(std::min(token.size(), common.size()));
  result.choices = std::move(candidates);
  return result;
}

std::string format_choices(const std::vector<std::string>& choices, size_t width, size_t max_lines) {
  size_t longest = 1;
  for (const auto& c : choices) longest = std::max(longest, c.size());
  const size_t column = longest + 2;
  const size_t per_line = std::max<size_t>(1, (width > 1 ? width - 1 : 79) / column);
  std::string out;
  size_t shown = 0, lines = 0;
  while (shown < choices.size() && lines < max_lines) {
    for (size_t k = 0; k < per_line && shown < choices.size(); ++k, ++shown) {
      out += choices[shown];
      if (k + 1 < per_line && shown + 1 < choices.size()) out.append(column - choices[shown].size(), ' ');
    }
    out += "\r\n";
    ++lines;
  }
  if (shown < choices.size()) out += fmt::format("... and {} more\r\n", choices.size() - shown);
  return out;
}

}  // namespace peersock::ui

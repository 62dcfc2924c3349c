// --help: the overview or one subcommand's help, with the options from the
// settings table (config::table()) and the Option table (options.hpp).
#include <fmt/core.h>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "peersock/config/table.hpp"

namespace peersock::cli {

namespace {

constexpr size_t kWidth = 79;       // a terminal's 80 columns, less one
constexpr size_t kHelpColumn = 23;  // "  SPELLING" padded to here

// "  SPELLING             help, wrapped at kWidth with continuation lines
//                        indented to kHelpColumn"
std::string option_line(std::string_view spelling, std::string_view help) {
  std::string out = "  " + std::string(spelling);
  if (help.empty()) return out + "\n";
  out += out.size() + 1 <= kHelpColumn ? std::string(kHelpColumn - out.size(), ' ') : std::string(2, ' ');
  size_t column = out.size();
  bool first = true;
  while (!help.empty()) {
    const size_t space = help.find(' ');
    const std::string_view word = help.substr(0, space);
    help.remove_prefix(space == std::string_view::npos ? help.size() : space + 1);
    if (!first && column + 1 + word.size() > kWidth) {
      out += "\n" + std::string(kHelpColumn, ' ');
      column = kHelpColumn;
      first = true;
    }
    if (!first) {
      out += ' ';
      ++column;
    }
    out += word;
    column += word.size();
    first = false;
  }
  return out + "\n";
}

std::string spelling(const Option& o) {
  if (!o.display.empty()) return std::string(o.display);
  std::string out = o.alias.empty() ? "" : std::string(o.alias) + ", ";
  out += o.name;
  if (!o.arg.empty()) out += " " + std::string(o.arg);
  return out;
}

std::string option_lines(Option::Group group) {
  std::string out;
  for (const Option& o : options()) {
    if (o.group == group && !o.help.empty()) out += option_line(spelling(o), o.help);
  }
  return out;
}

// Flags first, then the settings only the environment sets.
std::string setting_lines() {
  std::string out;
  for (const config::Setting& row : config::table()) {
    if (row.flag.empty() || row.help.empty()) continue;
    out += option_line(row.arg.empty() ? std::string(row.flag) : fmt::format("{} {}", row.flag, row.arg), row.help);
  }
  for (const config::Setting& row : config::table()) {
    if (!row.flag.empty() || row.env.empty() || row.help.empty()) continue;
    out += option_line(fmt::format("{}={}", row.env, row.arg), row.help);
  }
  return out;
}

std::string options_help() {
  return "The code (it never has to be on the command line, where others can see it):\n" +
         option_lines(Option::Group::code) +
         "\nPairing (later sessions need no code; `peersock peers` lists them):\n" +
         option_lines(Option::Group::pairing) + "\nOptions (flags > environment > config file > defaults):\n" +
         setting_lines() + option_lines(Option::Group::output) +
         R"(
Exit codes: 0 ok, 1 internal error, 2 usage, 3 code mismatch, 4 no network
path, 5 peer gone, 6 rendezvous server failed, 7 local socket error,
8 peer protocol violation, 130 interrupted.
)";
}

}  // namespace

std::string usage_text(const Command* command) {
  std::string out;
  if (command != nullptr) {
    out += fmt::format("Usage: peersock [OPTIONS] {} {}\n\n{}.\n\n{}\n", command->name, command->usage,
                       command->summary, command->details);
    out += "The side given no CODE prints one (and the command for the other side).\n\n";
    out += options_help();
    return out;
  }
  out += "peersock: live connections between two machines behind NAT, set up with\na short code.\n\n";
  out += "Usage:\n";
  for (const auto& c : commands()) {
    out += fmt::format("  peersock [OPTIONS] {} {}\n      {}\n      e.g. {}\n", c.name, c.usage, c.summary, c.example);
  }
  out += "  peersock peers [list | forget NAME]\n      the remembered peers (--remember NAME), or forget one\n";
  out += "\nThe side given no CODE prints one; give it to the other side.\n\n";
  out += options_help();
  out += "\nMore: man peersock, and `peersock SUBCOMMAND --help`.\n";
  return out;
}

}  // namespace peersock::cli

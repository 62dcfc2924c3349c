// --print-config: every effective setting, where it came from and how it
// can be set. The settings are config::table()'s named rows; the config
// file, the code and --code-words are the CLI's own.
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "peersock/config/table.hpp"

namespace peersock::cli {

namespace {

struct Row {
  std::string key, value;
  config::Origin origin;
  // How it can be set: flags, environment variables, "[section] key"s.
  std::vector<std::string> flags, env, file;
};

void add_unique(std::vector<std::string>& list, std::string_view item) {
  if (item.empty()) return;
  if (std::find(list.begin(), list.end(), item) == list.end()) list.emplace_back(item);
}

// One Row per named row of the table, with the spellings of the unnamed rows
// under it.
void add_settings(std::vector<Row>& rows, const config::Settings& s, const config::Origins& o) {
  for (const config::Setting& row : config::table()) {
    if (!row.name.empty()) rows.push_back({std::string(row.name), row.show(s), o.*row.origin, {}, {}, {}});
    Row& r = rows.back();
    add_unique(r.flags, row.flag);
    add_unique(r.env, row.env);
    if (!row.key.empty()) add_unique(r.file, config::file_key(row));
  }
}

std::string origin_text(const config::Origin& o) {
  if (o.detail.empty()) return std::string(config::source_name(o.source));
  return fmt::format("{} {}", config::source_name(o.source), o.detail);
}

}  // namespace

std::string format_config(const Parsed& p, bool json) {
  std::vector<Row> rows;
  add_settings(rows, p.options.settings, p.origins);

  const bool config_exists = access(p.config_path.c_str(), F_OK) == 0;
  rows.push_back({"config",
                  p.config_path + (config_exists ? "" : " (not found)"),
                  p.config_origin,
                  {"--config"},
                  {"PEERSOCK_CONFIG"},
                  {}});

  std::string code_value;
  switch (p.code_source) {
    case CodeSource::generate: code_value = "(none: this side generates one)"; break;
    case CodeSource::prompt: code_value = "(asked at the prompt)"; break;
    default: code_value = "(given, not shown)"; break;
  }
  const config::Origin code_origin =
      p.code_source == CodeSource::environment ? config::Origin{config::Source::environment, "PEERSOCK_CODE"}
      : p.code_source == CodeSource::generate
          ? config::Origin{}
          : config::Origin{config::Source::flag, std::string(code_source_name(p.code_source))};
  rows.push_back({"code", code_value, code_origin, {"--join", "--code-file"}, {"PEERSOCK_CODE"}, {}});
  rows.push_back({"code-words",
                  std::to_string(p.options.code_words),
                  p.code_words_given ? config::Origin{config::Source::flag, "--code-words"} : config::Origin{},
                  {"--code-words"},
                  {},
                  {}});

  if (json) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& r : rows) {
      j[r.key] = {{"value", r.value},          {"source", config::source_name(r.origin.source)},
                  {"detail", r.origin.detail}, {"flags", r.flags},
                  {"environment", r.env},      {"file", r.file}};
    }
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  size_t width = 0;
  for (const auto& r : rows) width = std::max(width, r.value.size());
  std::string out;
  for (const auto& r : rows) out += fmt::format("{:<14} {:<{}}  {}\n", r.key, r.value, width, origin_text(r.origin));
  return out;
}

}  // namespace peersock::cli

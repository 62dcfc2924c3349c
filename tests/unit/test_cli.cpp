#include <glib.h>
#include <glib/gstdio.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "peersock/code/code.hpp"
#include "peersock/config/table.hpp"
#include "peersock/error.hpp"

namespace peersock::cli {
namespace {

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = g_dir_make_tmp("peersock-cli-XXXXXX", nullptr);
    ASSERT_NE(dir_, nullptr);
    config_ = std::string(dir_) + "/peersock.conf";
  }
  void TearDown() override {
    for (auto& f : extra_files_) g_remove(f.c_str());
    g_remove(config_.c_str());
    g_rmdir(dir_);
    g_free(dir_);
  }
  void write_config(const std::string& text) { std::ofstream(config_) << text; }
  Parsed parse(std::vector<std::string> args) {
    args.insert(args.begin(), {"peersock", "--config", config_});
    return parse_raw(std::move(args));
  }
  // Without --config; the environment is `env_` only, never the real one.
  Parsed parse_raw(std::vector<std::string> args) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    auto lookup = [this](std::string_view name) -> std::optional<std::string> {
      auto it = env_.find(std::string(name));
      if (it == env_.end()) return std::nullopt;
      return it->second;
    };
    return parse_args(static_cast<int>(argv.size()), argv.data(), lookup);
  }
  std::string write_file(const std::string& name, const std::string& text) {
    std::string path = std::string(dir_) + "/" + name;
    std::ofstream(path) << text;
    extra_files_.push_back(path);
    return path;
  }
  std::map<std::string, std::string> env_;
  std::vector<std::string> extra_files_;
  gchar* dir_ = nullptr;
  std::string config_;
};

TEST_F(CliTest, FlagsOverrideConfigFileWhichOverridesDefaults) {
  write_config(
      "[ice]\nstun = 192.0.2.1\nstun-port = 1000\nturn = 192.0.2.2\n[rendezvous]\nurl = ws://127.0.0.1:9/v1\n");
  auto p = parse({"--stun", "127.0.0.1:3478", "stdio-a"});
  EXPECT_EQ(p.options.settings.stun.host, "127.0.0.1");  // flag wins over file
  EXPECT_EQ(p.options.settings.stun.port, 3478);
  EXPECT_EQ(p.options.settings.turn.host, "192.0.2.2");  // file wins over default
  EXPECT_EQ(p.options.settings.relay_url, "ws://127.0.0.1:9/v1");
  EXPECT_EQ(p.options.settings.turn_user, "free");  // default kept
}

TEST_F(CliTest, EmptyValueDisablesServers) {
  auto p = parse({"--stun=", "--turn", "", "--relay=ws://127.0.0.1:4000/v1", "stdio-b"});
  EXPECT_FALSE(p.options.settings.stun.enabled());
  EXPECT_FALSE(p.options.settings.turn.enabled());
  EXPECT_TRUE(std::holds_alternative<forward::StdioB>(p.options.mode));
}

TEST_F(CliTest, StdioDirections) {
  auto plain = parse({"stdio-a"});
  EXPECT_TRUE(forward::stdio_directions(plain.options.mode).send);
  EXPECT_TRUE(forward::stdio_directions(plain.options.mode).receive);
  EXPECT_FALSE(plain.stdio_directions_given);
  auto recv = parse({"--recv-only", "stdio-b"});
  EXPECT_FALSE(forward::stdio_directions(recv.options.mode).send);
  EXPECT_TRUE(forward::stdio_directions(recv.options.mode).receive);
  EXPECT_TRUE(recv.stdio_directions_given);
  auto send = parse({"stdio-a", "--send-only"});
  EXPECT_TRUE(forward::stdio_directions(send.options.mode).send);
  EXPECT_FALSE(forward::stdio_directions(send.options.mode).receive);
  EXPECT_THROW(parse({"--send-only", "--recv-only", "stdio-a"}), UsageError);
  EXPECT_THROW(parse({"--send-only", "listen", "5900"}), UsageError);
}

TEST_F(CliTest, SubcommandsAndCode) {
  auto l = parse({"listen", "5900", "7-abandon-zoo-lab-name"});
  ASSERT_TRUE(std::holds_alternative<forward::ListenTcp>(l.options.mode));
  EXPECT_EQ(std::get<forward::ListenTcp>(l.options.mode).port, 5900);
  EXPECT_EQ(std::get<forward::ListenTcp>(l.options.mode).bind_address, "127.0.0.1");
  ASSERT_TRUE(l.options.code);
  EXPECT_EQ(l.options.code->text, "7-abandon-zoo-lab-name");
  EXPECT_TRUE(forward::is_opener(l.options.mode));
  auto c = parse({"connect", "localhost:22"});
  EXPECT_EQ(forward::connect_target(c.options.mode), "localhost:22");
  EXPECT_FALSE(c.options.code);
  EXPECT_FALSE(forward::is_opener(c.options.mode));
  auto b = parse({"--bind", "0.0.0.0", "listen", "5900"});
  EXPECT_EQ(std::get<forward::ListenTcp>(b.options.mode).bind_address, "0.0.0.0");
  auto u = parse({"connect-unix", "/tmp/x.sock"});
  EXPECT_TRUE(std::holds_alternative<forward::ConnectUnix>(u.options.mode));
  EXPECT_FALSE(forward::is_opener(u.options.mode));
  EXPECT_TRUE(forward::is_opener(parse({"listen-unix", "/tmp/y.sock"}).options.mode));
}

TEST_F(CliTest, BadInputQuotesTheBadValue) {
  auto expect_usage = [&](std::vector<std::string> args, const std::string& needle) {
    try {
      parse(args);
      ADD_FAILURE() << "no error for " << needle;
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_usage({"listen", "99999"}, "'99999'");
  expect_usage({"connect", "nohost"}, "'nohost'");
  expect_usage({"frobnicate"}, "'frobnicate'");
  expect_usage({"--bogus", "stdio-a"}, "'--bogus'");
  expect_usage({"stdio-a", "7-notaword-zoo-lab-name"}, "'notaword'");
  expect_usage({"stdio-a", "7", "extra"}, "'extra'");
  expect_usage({"--relay", "http://x", "stdio-a"}, "'http://x'");
  expect_usage({}, "missing subcommand");
}

TEST_F(CliTest, MalformedConfigNamesFileAndLine) {
  write_config("[ice]\nstun-port = banana\n");
  try {
    parse({"stdio-a"});
    ADD_FAILURE();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(config_ + ":2"), std::string::npos) << e.what();
  }
}

TEST_F(CliTest, FlagsBeatEnvironmentWhichBeatsTheFile) {
  write_config("[ice]\nstun = 192.0.2.1\nturn = 192.0.2.2\nturn-user = fileuser\n");
  env_ = {{"PEERSOCK_STUN", "192.0.2.3"}, {"PEERSOCK_TURN", "192.0.2.4:1"}, {"PEERSOCK_RELAY", "ws://127.0.0.1:7/v1"}};
  auto p = parse({"--turn", "192.0.2.5", "stdio-a"});
  const auto& s = p.options.settings;
  EXPECT_EQ(s.stun.host, "192.0.2.3");  // environment over file
  EXPECT_EQ(p.origins.stun.source, config::Source::environment);
  EXPECT_EQ(s.turn.host, "192.0.2.5");  // flag over environment
  EXPECT_EQ(s.turn.port, config::kDefaultStunPort);
  EXPECT_EQ(p.origins.turn.source, config::Source::flag);
  EXPECT_EQ(p.origins.turn.detail, "--turn");
  EXPECT_EQ(s.turn_user, "fileuser");  // file over default
  EXPECT_EQ(p.origins.turn_user.source, config::Source::file);
  EXPECT_EQ(s.relay_url, "ws://127.0.0.1:7/v1");
  EXPECT_EQ(s.turn_password, "free");  // default
  EXPECT_EQ(p.origins.turn_password.source, config::Source::defaults);
}

TEST_F(CliTest, ConfigPathFromFlagEnvironmentOrDefault) {
  std::string other = write_file("other.conf", "[ice]\nturn-user = fromenvfile\n");
  env_ = {{"PEERSOCK_CONFIG", other}};
  auto p = parse_raw({"peersock", "stdio-a"});
  EXPECT_EQ(p.options.settings.turn_user, "fromenvfile");
  EXPECT_EQ(p.config_origin.source, config::Source::environment);
  write_config("[ice]\nturn-user = fromflagfile\n");
  p = parse({"stdio-a"});  // --config wins over PEERSOCK_CONFIG
  EXPECT_EQ(p.options.settings.turn_user, "fromflagfile");
  EXPECT_EQ(p.config_origin.source, config::Source::flag);
  env_.clear();
  p = parse_raw({"peersock", "--print-config"});
  EXPECT_EQ(p.config_path, config::default_path());
}

TEST_F(CliTest, CodeSources) {
  auto argv_code = parse({"listen", "5900", "7-abandon-zoo-lab-name"});
  EXPECT_EQ(argv_code.code_source, CodeSource::argv);
  EXPECT_EQ(argv_code.code_argv_index, 5);  // peersock --config FILE listen 5900 CODE
  EXPECT_EQ(argv_code.secret_args, (std::vector<std::pair<int, size_t>>{{5, 0}}));
  auto passwords = parse({"--turn-password", "pw1", "--turn-password=pw2", "stdio-a"});
  EXPECT_EQ(passwords.secret_args, (std::vector<std::pair<int, size_t>>{{4, 0}, {5, 16}}));
  EXPECT_EQ(passwords.options.settings.turn_password, "pw2");

  auto dash = parse({"listen", "5900", "-"});
  EXPECT_EQ(dash.code_source, CodeSource::prompt);
  EXPECT_FALSE(dash.options.code);
  EXPECT_EQ(parse({"--join", "stdio-b"}).code_source, CodeSource::prompt);
  EXPECT_EQ(parse({"stdio-b", "-", "--join"}).code_source, CodeSource::prompt);

  std::string file = write_file("code", "  7-Abandon-zoo-lab-name  \nsecond line ignored\n");
  auto from_file = parse({"--code-file", file, "connect", "localhost:22"});
  EXPECT_EQ(from_file.code_source, CodeSource::file);
  ASSERT_TRUE(from_file.options.code);
  EXPECT_EQ(from_file.options.code->text, "7-abandon-zoo-lab-name");

  env_ = {{"PEERSOCK_CODE", "8-zoo-zoo"}};
  auto from_env = parse({"stdio-a"});
  EXPECT_EQ(from_env.code_source, CodeSource::environment);
  ASSERT_TRUE(from_env.options.code);
  EXPECT_EQ(from_env.options.code->text, "8-zoo-zoo");
  // Anything on the command line beats the environment.
  EXPECT_EQ(parse({"stdio-a", "-"}).code_source, CodeSource::prompt);
  EXPECT_EQ(parse({"stdio-a", "9-zoo-zoo"}).options.code->text, "9-zoo-zoo");
  env_ = {{"PEERSOCK_CODE", "  "}};
  EXPECT_EQ(parse({"stdio-a"}).code_source, CodeSource::generate);  // blank = unset
}

TEST_F(CliTest, CodeSourceErrors) {
  auto expect_usage = [&](std::vector<std::string> args, const std::string& needle) {
    try {
      parse(args);
      ADD_FAILURE() << "no error for " << needle;
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  std::string file = write_file("code", "7-abandon-zoo\n");
  expect_usage({"stdio-a", "7-abandon-zoo", "--join"}, "only one way");
  expect_usage({"stdio-a", "-", "--code-file", file}, "only one way");
  expect_usage({"--code-file", std::string(dir_) + "/missing", "stdio-a"}, "cannot open");
  expect_usage({"--code-file", write_file("empty", "\n"), "stdio-a"}, "is empty");
  expect_usage({"--code-file", write_file("bad", "7-notaword-zoo\n"), "stdio-a"},
               "--code-file: 'notaword' is not a code word");
  expect_usage({"--code-file", write_file("long", std::string(2000, 'a')), "stdio-a"}, "too long");
  expect_usage({"--code-words", "3", "stdio-a", "7-abandon-zoo"}, "--code-words applies only");
  expect_usage({"--code-words", "1", "stdio-a"}, "'1'");
  expect_usage({"--code-words", "9", "stdio-a"}, "'9'");
  expect_usage({"--json=yes", "stdio-a"}, "takes no value");
  expect_usage({"--debug=ice,nope", "stdio-a"}, "'nope'");
  env_ = {{"PEERSOCK_CODE", "7-notaword-zoo"}};
  expect_usage({"stdio-a"}, "PEERSOCK_CODE: 'notaword' is not a code word");
  env_ = {{"PEERSOCK_RELAY", "http://nope"}};
  expect_usage({"stdio-a"}, "PEERSOCK_RELAY: 'http://nope'");
}

TEST_F(CliTest, CodeWordsForTheGeneratingSide) {
  EXPECT_EQ(parse({"stdio-a"}).options.code_words, code::kDefaultWords);
  EXPECT_EQ(parse({"--code-words", "2", "stdio-a"}).options.code_words, 2);
  EXPECT_EQ(parse({"--code-words=8", "listen", "1"}).options.code_words, 8);
}

TEST_F(CliTest, PrintConfigShowsOriginsButNoSecrets) {
  write_config("[ice]\nturn-password = hunter2\n");
  env_ = {{"PEERSOCK_CODE", "7-abandon-zoo-lab-name"}, {"PEERSOCK_STUN", ""}};
  auto p = parse({"--print-config", "--relay", "ws://127.0.0.1:4/v1"});
  EXPECT_TRUE(p.print_config);
  for (bool json : {false, true}) {
    std::string out = format_config(p, json);
    EXPECT_EQ(out.find("hunter2"), std::string::npos) << out;
    EXPECT_EQ(out.find("abandon"), std::string::npos) << out;
    EXPECT_NE(out.find("ws://127.0.0.1:4/v1"), std::string::npos) << out;
    EXPECT_NE(out.find("PEERSOCK_STUN"), std::string::npos) << out;
    EXPECT_NE(out.find("PEERSOCK_CODE"), std::string::npos) << out;
    EXPECT_NE(out.find(config_ + ":2"), std::string::npos) << out;  // where the password came from
    EXPECT_NE(out.find("--relay"), std::string::npos) << out;
  }
  std::string text = format_config(p, false);
  EXPECT_NE(text.find("(hidden)"), std::string::npos) << text;
  EXPECT_NE(text.find("(disabled)"), std::string::npos) << text;
}

TEST_F(CliTest, OutputFormat) {
  auto fmt = [&](std::vector<std::string> args, bool tty, std::string_view term = "xterm") {
    // stdio: stdin and stdout are pipes here
    return output_format(parse(std::move(args)), tty, term);
  };
  EXPECT_EQ(fmt({"listen", "1"}, true), log::Format::tty);
  EXPECT_EQ(fmt({"listen", "1"}, false), log::Format::plain);
  EXPECT_EQ(fmt({"listen", "1"}, true, "dumb"), log::Format::plain);
  EXPECT_EQ(fmt({"listen", "1"}, true, ""), log::Format::plain);
  EXPECT_EQ(fmt({"--no-status", "connect", "h:1"}, true), log::Format::plain);
  // stdio: the terminal may be ssh's (ProxyCommand); only with --status.
  EXPECT_EQ(fmt({"stdio-b"}, true), log::Format::plain);
  // ...but when stdin or stdout is the terminal (the tar cases), there is
  // progress to show.
  EXPECT_EQ(output_format(parse({"stdio-b"}), true, "xterm", true), log::Format::tty);
  EXPECT_EQ(output_format(parse({"--no-status", "stdio-b"}), true, "xterm", true), log::Format::plain);
  EXPECT_EQ(fmt({"--status", "stdio-a"}, true), log::Format::tty);
  EXPECT_EQ(fmt({"--status", "stdio-a"}, false), log::Format::plain);
  EXPECT_EQ(fmt({"--json", "--status", "listen", "1"}, true), log::Format::json);
}

TEST_F(CliTest, HelpForEachSubcommand) {
  for (const auto& c : commands()) {
    auto p = parse({std::string(c.name), "--help"});
    EXPECT_TRUE(p.help);
    ASSERT_EQ(p.command, &c);
    std::string text = usage_text(p.command);
    EXPECT_NE(text.find("Usage: peersock [OPTIONS] " + std::string(c.name)), std::string::npos) << text;
    EXPECT_NE(text.find("Examples:"), std::string::npos) << text;
    auto h = parse({"help", std::string(c.name)});
    EXPECT_TRUE(h.help);
    EXPECT_EQ(h.command, &c);
  }
  for (const Command* c :
       {static_cast<const Command*>(nullptr), &commands()[0], &commands()[1], &commands()[2], &commands()[3]}) {
    std::string help = usage_text(c);
    size_t start = 0;
    while (start < help.size()) {
      size_t end = help.find('\n', start);
      if (end == std::string::npos) end = help.size();
      EXPECT_LE(end - start, 80u) << help.substr(start, end - start);  // fits a terminal
      start = end + 1;
    }
  }
  auto overview = parse({"--help"});
  EXPECT_EQ(overview.command, nullptr);
  std::string text = usage_text(nullptr);
  for (const auto& c : commands()) EXPECT_NE(text.find(std::string(c.example)), std::string::npos);
  EXPECT_NE(text.find("PEERSOCK_CODE"), std::string::npos);
}

TEST_F(CliTest, RelayPolicyFlagsAndConfigKeys) {
  write_config("[ice]\nno-relay = true\n");
  auto p = parse({"stdio-a"});
  EXPECT_TRUE(p.options.settings.no_relay);
  EXPECT_FALSE(p.options.settings.force_relay);
  auto f = parse({"--force-relay", "stdio-a"});  // the flag overrides the file
  EXPECT_TRUE(f.options.settings.force_relay);
  EXPECT_FALSE(f.options.settings.no_relay);
  write_config("");
  EXPECT_THROW(parse({"--force-relay", "--turn", "", "stdio-a"}), UsageError);
  EXPECT_THROW(parse({"--no-relay=yes", "stdio-a"}), UsageError);
  write_config("[ice]\nforce-relay = maybe\n");
  try {
    parse({"stdio-a"});
    FAIL() << "expected a UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("'maybe'"), std::string::npos) << e.what();
  }
}

TEST_F(CliTest, SettingFlagsFromTheTable) {
  auto usage_error = [&](std::vector<std::string> args) -> std::string {
    try {
      parse(std::move(args));
    } catch (const UsageError& e) {
      return e.what();
    }
    ADD_FAILURE() << "no error";
    return {};
  };
  EXPECT_EQ(usage_error({"--force-relay=yes", "stdio-a"}), "option --force-relay takes no value (got 'yes')");
  EXPECT_EQ(usage_error({"stdio-a", "--stun"}), "option --stun needs a value");
  EXPECT_EQ(usage_error({"--stun", "h:99999", "stdio-a"}), "--stun: bad port '99999' in 'h:99999'");
  EXPECT_EQ(usage_error({"--congestion=reno", "stdio-a"}), "--congestion: 'reno' is not bbr or cubic");
  EXPECT_EQ(usage_error({"--force-relay", "--turn=", "stdio-a"}),
            "--force-relay needs a TURN server (--turn HOST[:PORT])");
  write_config("[ice]\nforce-relay = true\nno-relay = true\n");
  EXPECT_EQ(usage_error({"stdio-a"}), "force-relay and no-relay contradict each other (check the config file)");
  write_config("[quic]\ncongestion = cubic\n");
  env_ = {{"PEERSOCK_CONGESTION", "bbr"}};
  auto p = parse({"stdio-a"});
  EXPECT_EQ(p.options.settings.congestion, config::Congestion::bbr);  // environment over file
  p = parse({"--congestion", "cubic", "stdio-a"});
  EXPECT_EQ(p.options.settings.congestion, config::Congestion::cubic);  // flag over environment
  EXPECT_EQ(p.origins.congestion.detail, "--congestion");
  p = parse({"--force-relay", "--no-relay", "stdio-a"});  // the last one wins
  EXPECT_TRUE(p.options.settings.no_relay);
  EXPECT_FALSE(p.options.settings.force_relay);
  env_ = {{"PEERSOCK_UDP_GSO", "0"}};
  p = parse({"stdio-a"});
  EXPECT_FALSE(p.options.settings.direct_send);
  EXPECT_NE(format_config(p, false).find("environment PEERSOCK_UDP_GSO"), std::string::npos) << format_config(p, false);
}

TEST_F(CliTest, HelpAndPrintConfigCoverTheTable) {
  const std::string help = usage_text(nullptr);
  auto p = parse({"--print-config"});
  const std::string text = format_config(p, false);
  const std::string json = format_config(p, true);
  for (const config::Setting& row : config::table()) {
    if (!row.flag.empty()) {
      EXPECT_NE(help.find("  " + std::string(row.flag)), std::string::npos) << row.flag;
    } else if (!row.env.empty()) {
      EXPECT_NE(help.find("  " + std::string(row.env) + "="), std::string::npos) << row.env;
    }
    if (row.name.empty()) continue;
    EXPECT_NE(("\n" + text).find("\n" + std::string(row.name) + " "), std::string::npos) << row.name << " in\n" << text;
    EXPECT_NE(json.find("\"" + std::string(row.name) + "\":{"), std::string::npos) << row.name;
  }
  EXPECT_NE(json.find(R"("file":["[ice] stun","[ice] stun-port"])"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("flags":["--force-relay","--no-relay"])"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("environment":["PEERSOCK_UDP_GSO"])"), std::string::npos) << json;
}

}  // namespace
}  // namespace peersock::cli

#include <gtest/gtest.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <fstream>
#include <string>
#include <vector>

#include "cli/commands.hpp"
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
    g_remove(config_.c_str());
    g_rmdir(dir_);
    g_free(dir_);
  }
  void write_config(const std::string& text) { std::ofstream(config_) << text; }
  Parsed parse(std::vector<std::string> args) {
    args.insert(args.begin(), {"peersock", "--config", config_});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    return parse_args(static_cast<int>(argv.size()), argv.data());
  }
  gchar* dir_ = nullptr;
  std::string config_;
};

TEST_F(CliTest, FlagsOverrideConfigFileWhichOverridesDefaults) {
  write_config("[ice]\nstun = 192.0.2.1\nstun-port = 1000\nturn = 192.0.2.2\n[rendezvous]\nurl = ws://127.0.0.1:9/v1\n");
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
  EXPECT_EQ(p.options.mode.kind, session::ModeKind::stdio_b);
}

TEST_F(CliTest, SubcommandsAndCode) {
  auto l = parse({"listen", "5900", "7-abandon-zoo-lab-name"});
  EXPECT_EQ(l.options.mode.kind, session::ModeKind::listen);
  EXPECT_EQ(l.options.mode.port, 5900);
  ASSERT_TRUE(l.options.code);
  EXPECT_EQ(l.options.code->text, "7-abandon-zoo-lab-name");
  EXPECT_TRUE(l.options.mode.opener());
  auto c = parse({"connect", "localhost:22"});
  EXPECT_EQ(c.options.mode.target, "localhost:22");
  EXPECT_FALSE(c.options.code);
  EXPECT_FALSE(c.options.mode.opener());
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

}  // namespace
}  // namespace peersock::cli

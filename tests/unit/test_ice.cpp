// The ice body codec: exact wire form (the original peer parses it), round
// trips, and one test per validation rule, since decode() is the first line
// of defence against what the peer sends.
#include <gtest/gtest.h>

#include <string>

#include "peersock/error.hpp"
#include "peersock/ice/agent.hpp"
#include "peersock/ice/body.hpp"

namespace peersock::ice {
namespace {

constexpr const char* kUfrag = "AbC+";
constexpr const char* kPwd = "0123456789abcdefghij/+";  // 22 chars

Description sample() {
  Description d;
  d.ufrag = kUfrag;
  d.password = kPwd;
  Candidate host;
  host.foundation = "1";
  host.address = "192.168.1.10";
  host.port = 50000;
  host.transport = Transport::udp;
  host.priority = 2130706431;
  host.type = CandidateType::host;
  Candidate srflx;
  srflx.foundation = "2";
  srflx.address = "2001:db8::1";
  srflx.port = 40000;
  srflx.transport = Transport::udp;
  srflx.priority = 1694498815;
  srflx.type = CandidateType::server_reflexive;
  srflx.base_address = "fe80::1";
  srflx.base_port = 50001;
  Candidate active;
  active.foundation = "3";
  active.address = "10.0.0.1";
  active.port = 0;
  active.transport = Transport::tcp_active;
  active.priority = 4294967295u;
  active.type = CandidateType::host;
  d.candidates = {host, srflx, active};
  return d;
}

bool same(const Candidate& a, const Candidate& b) {
  return a.foundation == b.foundation && a.address == b.address && a.port == b.port && a.transport == b.transport &&
         a.priority == b.priority && a.type == b.type && a.base_address == b.base_address && a.base_port == b.base_port;
}

void expect_same(const Description& a, const Description& b) {
  EXPECT_EQ(a.ufrag, b.ufrag);
  EXPECT_EQ(a.password, b.password);
  EXPECT_EQ(a.version, b.version);
  ASSERT_EQ(a.candidates.size(), b.candidates.size());
  for (size_t i = 0; i < a.candidates.size(); ++i) EXPECT_TRUE(same(a.candidates[i], b.candidates[i])) << i;
}

TEST(IceBody, ExactEncoding) {
  Description d = sample();
  EXPECT_EQ(encode(d), R"({"c":[)"
                       R"({"a":"192.168.1.10","f":"1","l":2130706431,"p":50000,"t":0,"tr":0},)"
                       R"({"a":"2001:db8::1","ba":"fe80::1","bp":50001,"f":"2","l":1694498815,"p":40000,"t":1,"tr":0},)"
                       R"({"a":"10.0.0.1","f":"3","l":4294967295,"p":0,"t":0,"tr":1}],)"
                       R"("p":"0123456789abcdefghij/+","u":"AbC+"})");
  d.version = kOurVersion;
  d.candidates.clear();
  EXPECT_EQ(encode(d), R"({"c":[],"p":"0123456789abcdefghij/+","u":"AbC+","v":7})");
}

TEST(IceBody, RoundTrip) {
  Description d = sample();
  expect_same(decode(encode(d)), d);
  d.version = kOurVersion;
  Description back = decode(encode(d));
  EXPECT_EQ(back.version, 7);
  expect_same(back, d);
  d.version = 1000;
  EXPECT_EQ(decode(encode(d)).version, 1000);
}

TEST(IceBody, OriginalFormatDecodesAsVersion1) {
  // As the original writes it: no "v"; unknown extra keys are ignored.
  Description d = decode(
      R"({"c":[{"a":"203.0.113.5","f":"4","l":100,"p":3478,"t":3,"tr":0,"zz":1}],"p":"xxxxxxxxxxxxxxxxxxxxxxxx","u":"wxyz","extra":{"k":[1]}})");
  EXPECT_EQ(d.version, 1);
  EXPECT_EQ(d.ufrag, "wxyz");
  ASSERT_EQ(d.candidates.size(), 1u);
  EXPECT_EQ(d.candidates[0].type, CandidateType::relayed);
  EXPECT_EQ(d.candidates[0].port, 3478);
  EXPECT_FALSE(d.candidates[0].base_address);
  EXPECT_FALSE(d.candidates[0].base_port);
}

TEST(IceBody, RelayOverTcpWithBasePortZeroDecodes) {
  // libnice's relay candidate over TURN-TCP: the base has no port.
  Description d = decode(
      R"({"c":[{"a":"203.0.113.10","ba":"10.1.0.2","bp":0,"f":"3","l":337658111,"p":61898,"t":3,"tr":0}],"p":"xxxxxxxxxxxxxxxxxxxxxxxx","u":"wxyz","v":2})");
  ASSERT_EQ(d.candidates.size(), 1u);
  EXPECT_EQ(d.candidates[0].base_port, 0);
  EXPECT_EQ(d.candidates[0].port, 61898);
}

// Decoding `body` fails with a CounterpartyError containing `needle`.
void expect_rejected(const std::string& body, const std::string& needle) {
  try {
    decode(body);
    ADD_FAILURE() << "accepted: " << body.substr(0, 120);
  } catch (const CounterpartyError& e) {
    EXPECT_EQ(e.code(), ExitCode::protocol);
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "message: " << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception: " << e.what();
  }
}

// A body with valid credentials and the given candidate list text.
std::string with_candidates(const std::string& list) {
  return R"({"c":[)" + list + R"(],"p":"0123456789abcdefghij/+","u":"AbC+"})";
}

// A valid candidate with one key replaced (or removed when value is empty).
std::string candidate(const std::string& key, const std::string& value) {
  std::string out = "{";
  const std::pair<const char*, const char*> fields[] = {
      {"a", R"("1.2.3.4")"}, {"f", R"("1")"}, {"l", "1"}, {"p", "5"}, {"t", "0"}, {"tr", "0"}};
  bool first = true;
  for (auto [k, v] : fields) {
    std::string val = key == k ? value : v;
    if (val.empty()) continue;
    if (!first) out += ",";
    first = false;
    out += "\"" + std::string(k) + "\":" + val;
  }
  if (key == "ba" || key == "bp") {
    out += ",\"" + key + "\":" + value;
  }
  return out + "}";
}

TEST(IceBody, ModeRoundTripsAndIsCheckedOnReceipt) {
  Description d = sample();
  d.mode = "listen-unix";
  std::string body = encode(d);
  EXPECT_NE(body.find("\"m\":\"listen-unix\""), std::string::npos);
  EXPECT_EQ(decode(body).mode, "listen-unix");
  EXPECT_EQ(decode(encode(sample())).mode, "") << "absent: the original, older releases";
  std::string base = encode(sample());
  base.pop_back();  // the closing brace
  for (const char* bad : {R"(,"m":5})", R"(,"m":""})", R"(,"m":"Listen"})", R"(,"m":"a\u001b[2J"})",
                          R"(,"m":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"})"}) {
    EXPECT_THROW(decode(base + bad), CounterpartyError) << bad;
  }
  EXPECT_EQ(decode(base + R"(,"m":"listen-udp"})").mode, "listen-udp") << "a later release's mode is kept";
}

TEST(IceBody, TopLevelValidation) {
  expect_rejected("", "not valid JSON");
  expect_rejected("{", "not valid JSON");
  expect_rejected("[]", "expected a JSON object, got array");
  expect_rejected("\"s\"", "expected a JSON object, got string");
  expect_rejected(std::string(60000, '['), "nested deeper");
  expect_rejected(std::string(kMaxBodyBytes + 1, ' '), "exceeds the limit");
  expect_rejected(R"({"c":[],"p":"0123456789abcdefghij/+"})", "missing \"u\"");
  expect_rejected(R"({"c":[],"u":"AbC+"})", "missing \"p\"");
  expect_rejected(R"({"p":"0123456789abcdefghij/+","u":"AbC+"})", "missing \"c\"");
  expect_rejected(R"({"c":{},"p":"0123456789abcdefghij/+","u":"AbC+"})", "\"c\" must be an array");
  expect_rejected(R"({"c":[],"p":"0123456789abcdefghij/+","u":5})", "\"u\" must be a string");
  expect_rejected(R"({"c":[],"p":"0123456789abcdefghij/+","u":"abc"})", "ufrag \"u\" must be 4..256");
  expect_rejected(R"({"c":[],"p":"0123456789abcdefghij/+","u":")" + std::string(257, 'a') + "\"}", "ufrag");
  expect_rejected(R"({"c":[],"p":"0123456789abcdefghij/+","u":"ab-c"})", "ufrag \"u\" contains");
  expect_rejected(R"({"c":[],"p":"0123456789abcdefghij/","u":"AbC+"})", "password \"p\" must be 22..256");
  expect_rejected(R"({"c":[],"p":"0123456789abcdefghij/\n","u":"AbC+"})", "password \"p\" contains");
  expect_rejected(R"({"c":[],"p":"0123456789abcdefghij/+","u":"AbC+","v":0})", "version \"v\" 0 out of range");
  expect_rejected(R"({"c":[],"p":"0123456789abcdefghij/+","u":"AbC+","v":1001})", "out of range");
  expect_rejected(R"({"c":[],"p":"0123456789abcdefghij/+","u":"AbC+","v":"2"})", "must be an integer");
  expect_rejected(R"({"c":[],"p":"0123456789abcdefghij/+","u":"AbC+","v":2.0})", "must be an integer");
}

TEST(IceBody, DepthLimitCountsOnlyStructure) {
  // Brackets in a string do not count; 32 levels are still accepted.
  EXPECT_NO_THROW(
      decode(R"({"c":[],"p":"0123456789abcdefghij/+","u":"AbC+","x":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["})"));
  EXPECT_NO_THROW(decode(R"({"c":[],"p":"0123456789abcdefghij/+","u":"AbC+","x":)" + std::string(31, '[') +
                         std::string(31, ']') + "}"));
  expect_rejected(
      R"({"c":[],"p":"0123456789abcdefghij/+","u":"AbC+","x":)" + std::string(32, '[') + std::string(32, ']') + "}",
      "nested deeper");
}

TEST(IceBody, CandidateValidation) {
  // Sanity: the helper's default candidate is valid.
  EXPECT_EQ(decode(with_candidates(candidate("", ""))).candidates.size(), 1u);

  expect_rejected(with_candidates(candidate("", "") + ",5"), "candidate 1: must be an object");
  expect_rejected(with_candidates(candidate("f", "")), "candidate 0: missing \"f\"");
  expect_rejected(with_candidates(candidate("f", R"("")")), "candidate 0: foundation \"f\" must be 1..32");
  expect_rejected(with_candidates(candidate("f", "\"" + std::string(33, '1') + "\"")), "foundation");
  expect_rejected(with_candidates(candidate("f", R"("1 2")")), "foundation \"f\" contains");
  expect_rejected(with_candidates(candidate("f", "1")), "\"f\" must be a string, got number");

  expect_rejected(with_candidates(candidate("a", "")), "missing \"a\"");
  for (const char* addr : {R"("1.2.3")", R"("1.2.3.256")", R"("host.example")", R"("[::1]")", R"("fe80::1%eth0")",
                           R"("1.2.3.4\u0000")", R"("")", R"("1.2.3.4 ")"}) {
    expect_rejected(with_candidates(candidate("a", addr)), "candidate 0: \"a\" is not a numeric IPv4 or IPv6");
  }
  expect_rejected(with_candidates(candidate("a", "16909060")), "\"a\" must be a string");

  expect_rejected(with_candidates(candidate("p", "")), "missing \"p\"");
  expect_rejected(with_candidates(candidate("p", "70000")), "candidate 0: port 70000 out of range");
  expect_rejected(with_candidates(candidate("p", "-1")), "port -1 out of range");
  expect_rejected(with_candidates(candidate("p", "0")), "port 0 out of range 1..65535");
  expect_rejected(with_candidates(candidate("p", "5.5")), "\"p\" (port) must be an integer");
  expect_rejected(with_candidates(candidate("p", R"("5")")), "\"p\" (port) must be an integer, got string");
  EXPECT_EQ(decode(with_candidates(candidate("p", "65535"))).candidates[0].port, 65535);

  expect_rejected(with_candidates(candidate("tr", "4")), "transport 4 out of range 0..3");
  expect_rejected(with_candidates(candidate("tr", "")), "missing \"tr\"");
  expect_rejected(with_candidates(candidate("t", "-1")), "type -1 out of range 0..3");
  expect_rejected(with_candidates(candidate("t", "true")), "\"t\" (type) must be an integer, got boolean");

  expect_rejected(with_candidates(candidate("l", "4294967296")), "priority 4294967296 out of range");
  expect_rejected(with_candidates(candidate("l", "-5")), "priority -5 out of range");
  expect_rejected(with_candidates(candidate("l", "1e3")), "must be an integer");
  expect_rejected(with_candidates(candidate("l", "18446744073709551616")), "must be an integer");
  EXPECT_EQ(decode(with_candidates(candidate("l", "4294967295"))).candidates[0].priority, 4294967295u);

  // ba and bp: both or neither, each validated like a and p.
  expect_rejected(with_candidates(R"({"a":"1.2.3.4","ba":"1.2.3.5","f":"1","l":1,"p":5,"t":1,"tr":0})"),
                  "candidate 0: \"ba\" and \"bp\" must be present together");
  expect_rejected(with_candidates(R"({"a":"1.2.3.4","bp":6,"f":"1","l":1,"p":5,"t":1,"tr":0})"), "together");
  expect_rejected(with_candidates(R"({"a":"1.2.3.4","ba":"x","bp":6,"f":"1","l":1,"p":5,"t":1,"tr":0})"),
                  "\"ba\" is not a numeric");
  expect_rejected(with_candidates(R"({"a":"1.2.3.4","ba":"::1","bp":65536,"f":"1","l":1,"p":5,"t":1,"tr":0})"),
                  "port 65536 out of range");
  expect_rejected(with_candidates(R"({"a":"1.2.3.4","ba":"::1","bp":"6","f":"1","l":1,"p":5,"t":1,"tr":0})"),
                  "\"bp\" (port) must be an integer");

  // The index names the bad candidate.
  expect_rejected(with_candidates(candidate("", "") + "," + candidate("", "") + "," + candidate("p", "99999")),
                  "candidate 2: port 99999");
}

TEST(IceBody, PortZeroOnlyForActiveTcp) {
  Description d = decode(with_candidates(R"({"a":"::1","f":"1","l":1,"p":0,"t":0,"tr":1})"));
  EXPECT_EQ(d.candidates[0].transport, Transport::tcp_active);
  EXPECT_EQ(d.candidates[0].port, 0);
  for (const char* tr : {"0", "2", "3"}) {
    expect_rejected(with_candidates(std::string(R"({"a":"::1","f":"1","l":1,"p":0,"t":0,"tr":)") + tr + "}"),
                    "port 0 out of range");
  }
}

TEST(IceBody, CandidateCountLimit) {
  std::string list64;
  for (size_t i = 0; i < kMaxCandidates; ++i) list64 += (i ? "," : "") + candidate("", "");
  EXPECT_EQ(decode(with_candidates(list64)).candidates.size(), kMaxCandidates);
  expect_rejected(with_candidates(list64 + "," + candidate("", "")), "65 candidates exceed the limit of 64");
}

TEST(IceBody, LongestCredentialsAccepted) {
  std::string u(256, 'u');
  std::string p(256, 'p');
  Description d = decode(R"({"c":[],"p":")" + p + R"(","u":")" + u + "\"}");
  EXPECT_EQ(d.ufrag, u);
  EXPECT_EQ(d.password, p);
}

}  // namespace
}  // namespace peersock::ice

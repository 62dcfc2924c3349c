// The `ice` body codec (docs/protocol.md §2.5). decode() is the first code that
// touches what the peer sent, relayed by a server we do not trust either, so
// it checks every field against what libnice could legitimately produce and
// names the offending candidate and key in its error.
#include "peersock/ice/body.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <nlohmann/json.hpp>

#include "peersock/error.hpp"
#include "peersock/text.hpp"

namespace peersock::ice {

namespace {

using json = nlohmann::json;

// nlohmann's parser recurses per nesting level; a valid body nests 3 deep.
// Checked before parsing so that a body of nested '[' cannot overflow the
// stack.
constexpr int kMaxDepth = 32;

// RFC 5245 §15.1: ufrag 4..256 and password 22..256 ice-chars; foundation
// 1..32 ice-chars.
constexpr size_t kMinUfrag = 4;
constexpr size_t kMinPassword = 22;
constexpr size_t kMaxCredential = 256;
constexpr size_t kMaxFoundation = 32;
constexpr int kMaxVersion = 1000;

[[noreturn]] void bad(const std::string& what) { throw CounterpartyError("peer's ice body: " + what); }

// RFC 5245 ice-char = ALPHA / DIGIT / "+" / "/".
bool is_ice_chars(const std::string& s) {
  for (char c : s) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
    if (!ok) return false;
  }
  return true;
}

bool is_ip_literal(const std::string& s) {
  // inet_pton stops at a NUL, so "1.2.3.4\0junk" must be refused up front;
  // the length cap also keeps junk out of libnice.
  if (s.empty() || s.size() >= INET6_ADDRSTRLEN || s.find('\0') != std::string::npos) return false;
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// `where` prefixes messages: "" for top-level keys, "candidate 3: " inside c.
const json& require(const json& obj, const std::string& where, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) bad(where + "missing \"" + key + "\"");
  return *it;
}

const std::string& require_string(const json& obj, const std::string& where, const char* key) {
  const json& v = require(obj, where, key);
  if (!v.is_string()) bad(where + "\"" + key + "\" must be a string, got " + v.type_name());
  return v.get_ref<const std::string&>();
}

// An integer field within [lo, hi]. Floats (even 1.0) are refused: libnice
// values are integers and nlohmann writes integers without a fraction.
int64_t require_int(const json& obj, const std::string& where, const char* key, int64_t lo, int64_t hi,
                    const char* meaning) {
  const json& v = require(obj, where, key);
  if (!v.is_number_integer()) bad(where + "\"" + key + "\" (" + meaning + ") must be an integer, got " + v.type_name());
  if (v.is_number_unsigned()) {
    auto u = v.get<uint64_t>();
    // Values above INT64_MAX arrive here; lo/hi may be negative in general.
    bool below = lo > 0 && u < static_cast<uint64_t>(lo);
    bool above = hi < 0 || u > static_cast<uint64_t>(hi);
    if (below || above) {
      bad(where + meaning + " " + std::to_string(u) + " out of range " + std::to_string(lo) + ".." +
          std::to_string(hi));
    }
    return static_cast<int64_t>(u);
  }
  auto i = v.get<int64_t>();
  if (i < lo || i > hi) {
    bad(where + meaning + " " + std::to_string(i) + " out of range " + std::to_string(lo) + ".." + std::to_string(hi));
  }
  return i;
}

const std::string& require_credential(const json& obj, const char* key, size_t min, const char* meaning) {
  const std::string& s = require_string(obj, "", key);
  if (s.size() < min || s.size() > kMaxCredential) {
    bad(std::string(meaning) + " must be " + std::to_string(min) + ".." + std::to_string(kMaxCredential) +
        " characters, got " + std::to_string(s.size()));
  }
  if (!is_ice_chars(s)) bad(std::string(meaning) + " contains characters other than A-Z a-z 0-9 + /");
  return s;
}

std::string require_address(const json& obj, const std::string& where, const char* key) {
  const std::string& s = require_string(obj, where, key);
  if (!is_ip_literal(s)) bad(where + "\"" + key + "\" is not a numeric IPv4 or IPv6 address");
  return s;
}

// Port 0 is what libnice reports for an active TCP candidate (it connects
// out and has no listening port); anything else must be a real port.
uint16_t require_port(const json& obj, const std::string& where, const char* key, Transport transport) {
  auto lo = transport == Transport::tcp_active ? 0 : 1;
  return static_cast<uint16_t>(require_int(obj, where, key, lo, 65535, "port"));
}

Candidate decode_candidate(const json& c, size_t index) {
  std::string where = "candidate " + std::to_string(index) + ": ";
  if (!c.is_object()) bad(where + "must be an object, got " + c.type_name());
  Candidate out;
  out.foundation = require_string(c, where, "f");
  if (out.foundation.empty() || out.foundation.size() > kMaxFoundation) {
    bad(where + "foundation \"f\" must be 1.." + std::to_string(kMaxFoundation) + " characters, got " +
        std::to_string(out.foundation.size()));
  }
  if (!is_ice_chars(out.foundation)) bad(where + "foundation \"f\" contains characters other than A-Z a-z 0-9 + /");
  out.address = require_address(c, where, "a");
  out.transport = static_cast<Transport>(require_int(c, where, "tr", 0, 3, "transport"));
  out.port = require_port(c, where, "p", out.transport);
  out.type = static_cast<CandidateType>(require_int(c, where, "t", 0, 3, "type"));
  out.priority = static_cast<uint32_t>(require_int(c, where, "l", 0, UINT32_MAX, "priority"));
  bool has_ba = c.contains("ba");
  bool has_bp = c.contains("bp");
  if (has_ba != has_bp) bad(where + "\"ba\" and \"bp\" must be present together");
  if (has_ba) {
    out.base_address = require_address(c, where, "ba");
    // Port 0 is legitimate here: libnice's relay candidate over TURN-TCP has
    // a base without a port (the TCP socket to the server is the base).
    out.base_port = static_cast<uint16_t>(require_int(c, where, "bp", 0, 65535, "port"));
  }
  return out;
}

}  // namespace

std::string encode(const Description& description) {
  json candidates = json::array();
  for (const Candidate& c : description.candidates) {
    json j = {{"f", c.foundation}, {"a", c.address},
              {"p", c.port},       {"tr", static_cast<int>(c.transport)},
              {"l", c.priority},   {"t", static_cast<int>(c.type)}};
    if (c.base_address) {
      assert(c.base_port && "base_address and base_port go together");
      j["ba"] = *c.base_address;
      j["bp"] = c.base_port.value_or(c.port);
    }
    candidates.push_back(std::move(j));
  }
  // json objects are std::map-backed, so dump() writes keys sorted, exactly
  // like the original.
  json body = {{"u", description.ufrag}, {"p", description.password}, {"c", std::move(candidates)}};
  if (description.version > 1) body["v"] = description.version;
  if (!description.mode.empty()) body["m"] = description.mode;
  if (!description.label.empty()) body["n"] = description.label;
  return body.dump();
}

Description decode(std::string_view body) {
  if (body.size() > kMaxBodyBytes) {
    bad(std::to_string(body.size()) + " bytes exceeds the limit of " + std::to_string(kMaxBodyBytes));
  }
  if (!text::json_depth_within(body, kMaxDepth))
    bad("JSON nested deeper than " + std::to_string(kMaxDepth) + " levels");
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) bad("not valid JSON");
  if (!j.is_object()) bad(std::string("expected a JSON object, got ") + j.type_name());

  Description out;
  out.ufrag = require_credential(j, "u", kMinUfrag, "ufrag \"u\"");
  out.password = require_credential(j, "p", kMinPassword, "password \"p\"");
  if (j.contains("v")) out.version = static_cast<int>(require_int(j, "", "v", 1, kMaxVersion, "version \"v\""));
  if (j.contains("m")) {
    out.mode = require_string(j, "", "m");
    const bool name_chars = std::all_of(out.mode.begin(), out.mode.end(), [](char ch) {
      return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
    });
    if (out.mode.empty() || out.mode.size() > kMaxModeName || !name_chars)
      bad("mode \"m\" must be 1.." + std::to_string(kMaxModeName) + " characters of a-z 0-9 -");
  }
  if (j.contains("n")) {
    const std::string& label = require_string(j, "", "n");
    if (label.size() > kMaxLabelOnWire) bad("label \"n\" longer than " + std::to_string(kMaxLabelOnWire) + " bytes");
    for (char ch : label)
      if (ch >= 0x20 && ch <= 0x7e && out.label.size() < kMaxLabel) out.label += ch;
  }

  const json& c = require(j, "", "c");
  if (!c.is_array()) bad(std::string("\"c\" must be an array, got ") + c.type_name());
  if (c.size() > kMaxCandidates) {
    bad(std::to_string(c.size()) + " candidates exceed the limit of " + std::to_string(kMaxCandidates));
  }
  out.candidates.reserve(c.size());
  for (size_t i = 0; i < c.size(); ++i) out.candidates.push_back(decode_candidate(c[i], i));
  return out;
}

}  // namespace peersock::ice

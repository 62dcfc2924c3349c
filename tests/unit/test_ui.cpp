// The pure parts of the user interface: formatting, rate meter, status
// line, code completion, the line editor; and the JSON events Status writes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "peersock/code/code.hpp"
#include "peersock/c_boundary.hpp"
#include "peersock/log.hpp"
#include "peersock/text.hpp"
#include "peersock/ui/code_prompt.hpp"
#include "peersock/ui/completion.hpp"
#include "peersock/ui/format.hpp"
#include "peersock/ui/line_editor.hpp"
#include "peersock/ui/status.hpp"

namespace peersock::ui {
namespace {

TEST(Format, Bytes) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(1023), "1023 B");
  EXPECT_EQ(format_bytes(1024), "1.0 KiB");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(10u << 20), "10.0 MiB");
  EXPECT_EQ(format_bytes(1023u << 20), "1.0 GiB");
  EXPECT_EQ(format_bytes(uint64_t{5} << 40), "5.0 TiB");
  EXPECT_EQ(format_bytes(UINT64_MAX), "16.0 EiB");
  // Never four digits before the point (the status line has no room).
  for (uint64_t b : {uint64_t{1023} << 10, uint64_t{1024} * 1000 - 1, uint64_t{999} << 20}) {
    EXPECT_LE(format_bytes(b).size(), 9u) << format_bytes(b);
  }
}

TEST(Format, RateAndDuration) {
  EXPECT_EQ(format_rate(0), "0 B/s");
  EXPECT_EQ(format_rate(-5), "0 B/s");
  EXPECT_EQ(format_rate(340 * 1024), "340.0 KiB/s");
  EXPECT_EQ(format_duration(0), "0s");
  EXPECT_EQ(format_duration(59.9), "59s");
  EXPECT_EQ(format_duration(65), "1m05s");
  EXPECT_EQ(format_duration(3725), "1h02m");
}

TEST(RateMeter, SlopeOverTheWindow) {
  RateMeter m(2'000'000);
  EXPECT_EQ(m.bytes_per_second(), 0);
  m.add(0, 0);
  EXPECT_EQ(m.bytes_per_second(), 0);  // one sample: no slope
  m.add(1'000'000, 1 << 20);
  EXPECT_DOUBLE_EQ(m.bytes_per_second(), 1 << 20);
  m.add(2'000'000, 3 << 20);
  EXPECT_DOUBLE_EQ(m.bytes_per_second(), 1.5 * (1 << 20));
  // After the window the old samples are gone: only the last two seconds count.
  m.add(3'000'000, 3 << 20);
  m.add(4'000'000, 3 << 20);
  EXPECT_DOUBLE_EQ(m.bytes_per_second(), 0);
}

TEST(StatusLine, Phases) {
  Snapshot s;
  s.phase_seconds = 65;
  EXPECT_EQ(status_line(s, 200), "contacting the rendezvous server... 1m05s");
  s.phase = Phase::waiting;
  EXPECT_EQ(status_line(s, 200), "waiting for the other side... 1m05s");
  s.phase = Phase::finding_path;
  EXPECT_EQ(status_line(s, 200), "finding a network path... 1m05s");
  s.phase = Phase::authenticating;
  s.relayed = false;
  s.phase_seconds = 1;
  EXPECT_EQ(status_line(s, 200), "authenticating (direct)... 1s");
  s.phase = Phase::connected;
  s.relayed = true;
  s.rtt_ms = 23.4;
  s.sent = 1536;
  s.received = 10u << 20;
  s.send_rate = 1024;
  s.receive_rate = 0;
  s.open_connections = 2;
  EXPECT_EQ(status_line(s, 200),
            "connected, via TURN relay, rtt 23 ms | sent 1.5 KiB 1.0 KiB/s | received 10.0 MiB 0 B/s | 2 connections");
  s.stdio = true;
  s.rtt_ms.reset();
  EXPECT_EQ(status_line(s, 200), "connected, via TURN relay | sent 1.5 KiB 1.0 KiB/s | received 10.0 MiB 0 B/s");
}

TEST(StatusLine, SilenceReplacesTheLastRtt) {
  Snapshot s;
  s.phase = Phase::connected;
  s.relayed = false;
  s.rtt_ms = 12;
  s.silent_s = 7.4;
  s.stdio = true;
  EXPECT_EQ(status_line(s, 200), "connected, direct, reconnecting\u2026 no answer for 7 s | sent 0 B 0 B/s | received 0 B 0 B/s");
}

TEST(StatusLine, CutToTheTerminalWidth) {
  Snapshot s;
  s.phase = Phase::connected;
  EXPECT_EQ(status_line(s, 20).size(), 19u);  // last column stays free
  EXPECT_LE(status_line(s, 1).size(), 200u);
}

TEST(Completion, NameplateFromTheServersList) {
  Completion c = complete_code("", {"4"});
  EXPECT_TRUE(c.nameplate);
  EXPECT_EQ(c.insert, "4-");
  c = complete_code("1", {"1", "12", "7"});
  EXPECT_EQ(c.insert, "");
  EXPECT_EQ(c.choices, (std::vector<std::string>{"1", "12"}));
  c = complete_code("", {"12", "10", "2"});
  EXPECT_EQ(c.choices, (std::vector<std::string>{"2", "10", "12"}));  // numeric order
  c = complete_code("3", {"1", "12"});
  EXPECT_EQ(c.insert, "");
  EXPECT_TRUE(c.choices.empty());
  c = complete_code("1", {"12", "13", "145"});
  EXPECT_EQ(c.insert, "");
  c = complete_code("", {"123", "124"});
  EXPECT_EQ(c.insert, "12");  // common prefix
}

TEST(Completion, Words) {
  Completion c = complete_code("7-aban", {});
  EXPECT_FALSE(c.nameplate);
  EXPECT_EQ(c.insert, "don-");
  c = complete_code("7-abandon-ABAND", {});  // typed in capitals
  EXPECT_EQ(c.insert, "on-");
  c = complete_code("7-act", {});  // a whole word that begins longer ones: act, action, actor, ...
  EXPECT_EQ(c.insert, "");
  EXPECT_EQ(c.choices.front(), "act");
  c = complete_code("7-abandon-zoo-ab", {});
  EXPECT_EQ(c.insert, "");
  ASSERT_GE(c.choices.size(), 5u);
  EXPECT_EQ(c.choices[0], "abandon");
  c = complete_code("7-sta", {});
  EXPECT_EQ(c.insert, "");  // stable stadium staff ... : no longer common prefix
  c = complete_code("7-xyz", {});
  EXPECT_TRUE(c.choices.empty());
  EXPECT_EQ(c.insert, "");
  c = complete_code("7-", {});
  EXPECT_EQ(c.choices.size(), 2048u);
}

// Typed the way it is read out: a space (or comma) separates the parts too.
TEST(Completion, WordsAfterSpaces) {
  Completion c = complete_code("3 eigh", {});
  EXPECT_FALSE(c.nameplate);
  EXPECT_EQ(c.insert, "t-");
  c = complete_code("3 eight dino", {});
  EXPECT_EQ(c.insert, "saur-");
  c = complete_code("3, eight, ", {});
  EXPECT_EQ(c.choices.size(), 2048u);
  c = complete_code("3 ", {"3", "31"});
  EXPECT_FALSE(c.nameplate);
}

TEST(LineEditor, CtrlWStopsAtSpaces) {
  LineEditor e;
  for (char ch : std::string_view("3 eight dinosaur ")) e.feed(ch);
  e.feed('\x17');
  EXPECT_EQ(e.text(), "3 eight ");
  e.feed('\x17');
  EXPECT_EQ(e.text(), "3 ");
}

TEST(Completion, FourLettersAlwaysSuffice) {
  // The property the prompt's hint promises: four letters identify every
  // word of four or more letters (BIP-39 was designed so); a three-letter
  // word is typed whole.
  size_t short_words = 0;
  for (auto word : code::wordlist()) {
    if (word.size() < 4) {
      ++short_words;
      continue;
    }
    Completion c = complete_code("1-" + std::string(word.substr(0, 4)), {});
    EXPECT_EQ("1-" + std::string(word.substr(0, 4)) + c.insert, "1-" + std::string(word) + "-") << word;
  }
  EXPECT_GT(short_words, 0u);
}

TEST(Completion, ChoicesInColumnsWithALimit) {
  EXPECT_EQ(format_choices({"ab", "abc"}, 80), "ab   abc\r\n");
  std::vector<std::string> many(100, "word");
  std::string out = format_choices(many, 20, 2);
  EXPECT_EQ(out, "word  word  word\r\nword  word  word\r\n... and 94 more\r\n");  // 3 per 19 columns
}

LineEditor::Action feed_all(LineEditor& e, std::string_view bytes) {
  LineEditor::Action last = LineEditor::Action::none;
  for (char c : bytes) last = e.feed(c);
  return last;
}

TEST(LineEditor, TypingAndEditing) {
  LineEditor e;
  EXPECT_EQ(feed_all(e, "7-abc"), LineEditor::Action::redraw);
  EXPECT_EQ(e.text(), "7-abc");
  feed_all(e, "\x7f");
  EXPECT_EQ(e.text(), "7-ab");
  feed_all(e, "\x1b[D\x1b[D");  // two left
  EXPECT_EQ(e.cursor(), 2u);
  feed_all(e, "X");
  EXPECT_EQ(e.text(), "7-Xab");
  EXPECT_EQ(e.before_cursor(), "7-X");
  feed_all(e, "\x1b[3~");  // Delete
  EXPECT_EQ(e.text(), "7-Xb");
  feed_all(e, "\x05");  // Ctrl-E
  EXPECT_EQ(e.cursor(), 4u);
  feed_all(e, "\x01");  // Ctrl-A
  EXPECT_EQ(e.cursor(), 0u);
  feed_all(e, "\x1bOF");  // End in application mode
  EXPECT_EQ(e.cursor(), 4u);
  feed_all(e, "-cd-");
  feed_all(e, "\x17");  // Ctrl-W: back over the dash and the word
  EXPECT_EQ(e.text(), "7-Xb-");
  feed_all(e, "\x15");  // Ctrl-U
  EXPECT_EQ(e.text(), "");
  EXPECT_EQ(feed_all(e, "\xc3\xa9\x02"), LineEditor::Action::redraw);  // non-ASCII dropped; Ctrl-B
  EXPECT_EQ(e.text(), "");
}

TEST(LineEditor, KeysThatEndOrComplete) {
  LineEditor e;
  EXPECT_EQ(e.feed('\t'), LineEditor::Action::complete);
  EXPECT_EQ(e.feed('\x04'), LineEditor::Action::cancel);  // Ctrl-D on an empty line
  feed_all(e, "1");
  EXPECT_EQ(e.feed('\x04'), LineEditor::Action::redraw);  // not empty: delete forward
  EXPECT_EQ(e.feed('\r'), LineEditor::Action::accept);
  EXPECT_EQ(e.feed('\n'), LineEditor::Action::accept);
  EXPECT_EQ(e.feed('\x03'), LineEditor::Action::cancel);
}

TEST(LineEditor, BoundedAndRendered) {
  LineEditor e(5);
  feed_all(e, "1234567");
  EXPECT_EQ(e.text(), "12345");
  e.insert("zz");
  EXPECT_EQ(e.text(), "12345");
  feed_all(e, "\x1b[D\x1b[D");
  EXPECT_EQ(e.render("> "), "\r> 12345\x1b[K\x1b[2D");
  e.wipe();
  EXPECT_EQ(e.text(), "");
  EXPECT_EQ(e.render("> "), "\r> \x1b[K");
}

TEST(LineEditor, RandomKeysKeepTheInvariants) {
  // Whatever arrives from the terminal (line noise, pasted binary): the line
  // stays printable ASCII within its bound, the cursor inside it, and the
  // completion never fails.
  uint32_t x = 12345;
  auto next = [&] { return x = x * 1664525u + 1013904223u; };
  LineEditor e(64);
  const std::vector<std::string> nameplates = {"1", "12", "7"};
  for (int i = 0; i < 200000; ++i) {
    const char byte = static_cast<char>(next() >> 24);
    if (e.feed(byte) == LineEditor::Action::complete) {
      Completion c = complete_code(e.before_cursor(), nameplates);
      e.insert(c.insert);
    }
    ASSERT_LE(e.text().size(), 64u);
    ASSERT_LE(e.cursor(), e.text().size());
    for (char c : e.text()) ASSERT_TRUE(c >= 0x20 && c < 0x7f) << static_cast<int>(c);
    if (i % 1000 == 0) e.wipe();
  }
}

// Status in json format: every line is one JSON object with "event" and "t".
std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << line;
    if (j.is_discarded()) continue;
    EXPECT_TRUE(j.contains("event") && j["event"].is_string()) << line;
    EXPECT_TRUE(j.contains("t") && j["t"].is_number()) << line;
    out.push_back(j);
  }
  return out;
}

TEST(StatusJson, EventsAreOneObjectPerLine) {
  log::configure({false, 0, log::Format::json});
  testing::internal::CaptureStderr();
  {
    Status status(false);
    int a = 0, b = 0;
    uint64_t a_sent = 10;
    status.set_sampler([&] { return std::vector<ConnectionSample>{{&a, a_sent, 20}}; });
    status.phase(Phase::contacting);
    status.code("7-abandon-zoo", "peersock listen 5900 7-abandon-zoo");
    status.phase(Phase::waiting);
    status.phase(Phase::finding_path);
    status.path(PathInfo{false, "10.0.0.1:1", "10.0.0.2:2", "udp"});
    status.phase(Phase::authenticating);
    status.authenticated("authenticated; forwarding stdin/stdout");
    status.connection_opened(&a);
    status.connection_opened(&b);
    status.connection_closed(&b, 5, 6, true);
    status.connection_closed(&b, 5, 6, true);  // reported twice: counted once
    status.motd("hello\x1b[31m");
    log::debug_line(log::Layer::ice, "a debug line");
    log::error_line("a refused connection");
    status.finished(ExitCode::code_mismatch, "connection code mismatch");
    EXPECT_EQ(status.snapshot().sent, 15u);
    EXPECT_EQ(status.snapshot().received, 26u);
  }
  auto events = json_lines(testing::internal::GetCapturedStderr());
  log::configure({});
  std::vector<std::string> names;
  for (auto& e : events) names.push_back(e["event"]);
  EXPECT_EQ(names, (std::vector<std::string>{"contacting", "code", "waiting", "finding-path", "path", "authenticating",
                                             "authenticated", "connected", "connection-opened", "connection-opened",
                                             "connection-closed", "motd", "debug", "warning", "error", "stats"}));
  auto find = [&](const std::string& name) {
    for (auto& e : events) {
      if (e["event"] == name) return e;
    }
    return nlohmann::json();
  };
  EXPECT_EQ(find("code")["code"], "7-abandon-zoo");
  EXPECT_EQ(find("code")["command"], "peersock listen 5900 7-abandon-zoo");
  EXPECT_EQ(find("path")["relayed"], false);
  EXPECT_EQ(find("path")["remote"], "10.0.0.2:2");
  EXPECT_EQ(find("connection-closed")["id"], 2);
  EXPECT_EQ(find("connection-closed")["sent"], 5);
  EXPECT_EQ(find("connection-closed")["clean"], true);
  EXPECT_EQ(find("motd")["message"], "hello?[31m");  // no escape sequences reach a terminal
  EXPECT_EQ(find("debug")["layer"], "ice");
  EXPECT_EQ(find("error")["kind"], "code-mismatch");
  EXPECT_EQ(find("error")["exit_code"], 3);
  EXPECT_EQ(find("stats")["final"], true);
  EXPECT_EQ(find("stats")["sent"], 15);
}

TEST(StripControls, ControlsBecomeQuestionMarks) {
  using text::strip_controls;
  EXPECT_EQ(strip_controls("plain text, 100% ASCII ~"), "plain text, 100% ASCII ~");
  EXPECT_EQ(strip_controls(std::string_view("a\nb\rc\td\x1b[31me\x7f\x00" "f", 16)), "a?b?c?d?[31me??f");
  // C1 as raw bytes (a Latin-1 terminal's CSI) and UTF-8 encoded (U+009B,
  // which xterm executes as CSI in UTF-8 mode).
  EXPECT_EQ(strip_controls("\x9b" "31m"), "?31m");
  EXPECT_EQ(strip_controls("\xc2\x9b" "31m \xc2\x85"), "?31m ?");
  // Bidi override and isolate: the reader would see the text reordered.
  EXPECT_EQ(strip_controls("abc\xe2\x80\xae" "cba\xe2\x81\xa6"), "abc?cba?");
  // Well-formed UTF-8 passes: the path line's arrow, accents, an emoji.
  EXPECT_EQ(strip_controls("a \u2194 b, caf\u00e9 \U0001F600"), "a \u2194 b, caf\u00e9 \U0001F600");
  // Ill-formed: overlong '/', a lone surrogate, a truncated sequence, a
  // stray continuation byte, above U+10FFFF.
  EXPECT_EQ(strip_controls("\xc0\xaf|\xed\xa0\x80|\xe2\x86|\x80|\xf4\x90\x80\x80"), "??|???|??|?|????");
}

TEST(CBoundary, PassesResultsAndTurnsExceptionsIntoAnExit) {
  EXPECT_EQ(c_boundary("test", [] { return 7; }), 7);
  EXPECT_EQ(c_boundary_or(-1, []() -> int { throw std::runtime_error("x"); }), -1);
  EXPECT_EQ(c_boundary_or(-1, [] { return 3; }), 3);
  // What reaches a C frame ends the process with one line and the
  // exception's exit code: never std::terminate.
  EXPECT_EXIT(c_boundary("a test callback", []() -> int { throw Error(ExitCode::relay, "boom\nfake line"); }),
              testing::ExitedWithCode(6), "peersock: internal error in a test callback: boom\\?fake line");
  EXPECT_EXIT(c_boundary("a test callback", [] { throw 42; }), testing::ExitedWithCode(1),
              "internal error in a test callback: unknown exception");
}

TEST(StatusPlain, AMotdCannotPrintALineOfItsOwn) {
  log::configure({});
  testing::internal::CaptureStderr();
  {
    Status status(false);
    status.motd("maintenance tonight\nConnection code: 12-fake-fake-fake-fake\r\x1b[2K\xc2\x9b" "1A");
  }
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "Message from the rendezvous server: maintenance tonight?Connection code: 12-fake-fake-fake-fake??[2K?1A\n");
}

TEST(StatusPlain, EveryLineIsSanitisedOnTheWayOut) {
  log::configure({});
  testing::internal::CaptureStderr();
  log::say_line("from the peer:\nConnection code: 1-x");
  log::error_line("close reason \x1b]0;title\x07");
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "from the peer:?Connection code: 1-x\npeersock: close reason ?]0;title?\n");
}

TEST(StatusPlain, TheLinesScriptsRelyOn) {
  log::configure({});
  testing::internal::CaptureStderr();
  {
    Status status(true);
    status.phase(Phase::contacting);
    status.code("7-abandon-zoo", "peersock stdio-b --join");
    status.phase(Phase::waiting);
    status.path(PathInfo{true, "a:1", "b:2", "udp", "203.0.113.1:3478", "udp"});
    status.authenticated("authenticated; forwarding stdin/stdout");
    status.finished(ExitCode::no_path, "no network path to the peer");
  }
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "Contacting the rendezvous server...\n"
            "Connection code: 7-abandon-zoo\n"
            "On the other side run: peersock stdio-b --join\n"
            "and type the code there (or give it with PEERSOCK_CODE or --code-file)\n"
            "Waiting for the other side...\n"
            "connected via TURN relay 203.0.113.1:3478 (direct path not possible)\n"
            "authenticated; forwarding stdin/stdout\n"
            "peersock: no network path to the peer\n");
}

TEST(StatusPlain, PathLineAndRttFromTheSession) {
  log::configure({});
  testing::internal::CaptureStderr();
  {
    Status status(false);
    status.path(PathInfo{false, "a:1", "b:2", "udp"}, 12.5);
    EXPECT_EQ(status.snapshot().rtt_ms, 12.5);
    EXPECT_EQ(status.snapshot().relayed, false);
    status.set_rtt(20);
    EXPECT_EQ(status.snapshot().rtt_ms, 20);
  }
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "connected directly (udp, a:1 \u2194 b:2), rtt 12 ms\n");
}

TEST(PathLine, DirectRelayedAndPeerRelay) {
  PathInfo direct;
  direct.transport = "udp";
  direct.local = "203.0.113.7:41000";
  direct.remote = "198.51.100.9:52011";
  EXPECT_EQ(path_line(direct, 12.4),
            "connected directly (udp, 203.0.113.7:41000 \u2194 198.51.100.9:52011), rtt 12 ms");
  EXPECT_EQ(path_line(direct), "connected directly (udp, 203.0.113.7:41000 \u2194 198.51.100.9:52011)");
  PathInfo relay = direct;
  relay.relayed = true;
  relay.relay_server = "203.0.113.1:3478";
  relay.relay_transport = "udp";
  EXPECT_EQ(path_line(relay, 40), "connected via TURN relay 203.0.113.1:3478 (direct path not possible), rtt 40 ms");
  EXPECT_EQ(path_line(relay, 0.34), "connected via TURN relay 203.0.113.1:3478 (direct path not possible), rtt 0.3 ms");
  EXPECT_EQ(path_line(relay, 9.96), "connected via TURN relay 203.0.113.1:3478 (direct path not possible), rtt 10 ms");
  relay.relay_transport = "tcp";
  EXPECT_EQ(path_line(relay, 40),
            "connected via TURN relay 203.0.113.1:3478 (over tcp; direct path not possible), rtt 40 ms");
  relay.relay_server.clear();
  EXPECT_EQ(path_line(relay), "connected via the peer's TURN relay 198.51.100.9:52011 (direct path not possible)");
}

// The adapter forwards all three calls to whatever it wraps.
TEST(NameplateListerFor, ForwardsToItsSource) {
  struct Source {
    NameplateLister::Listed listed;
    NameplateLister::Failed failed;
    int requests = 0;
    bool stopped = false;
    void start(NameplateLister::Listed l, NameplateLister::Failed f) {
      listed = std::move(l);
      failed = std::move(f);
    }
    void request() { ++requests; }
    void stop() { stopped = true; }
  } source;
  NameplateListerFor adapter(source);
  NameplateLister& lister = adapter;
  std::vector<std::string> got;
  std::string why;
  lister.start([&](std::vector<std::string> ids) { got = std::move(ids); }, [&](const std::string& w) { why = w; });
  lister.request();
  source.listed({"4", "17"});
  source.failed("gone");
  lister.stop();
  EXPECT_EQ(got, (std::vector<std::string>{"4", "17"}));
  EXPECT_EQ(why, "gone");
  EXPECT_EQ(source.requests, 1);
  EXPECT_TRUE(source.stopped);
}

TEST(StatusPlain, QuietKeepsTheCodeAndErrors) {
  log::configure({true, 0, log::Format::plain});
  testing::internal::CaptureStderr();
  {
    Status status(false);
    status.phase(Phase::contacting);
    status.code("7-abandon-zoo", "peersock listen 1 --join");
    status.phase(Phase::waiting);
    status.finished(ExitCode::relay, "rendezvous server error");
  }
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "Connection code: 7-abandon-zoo\n"
            "On the other side run: peersock listen 1 --join\n"
            "and type the code there (or give it with PEERSOCK_CODE or --code-file)\n"
            "peersock: rendezvous server error\n");
  log::configure({});
}

TEST(DebugList, LayersAndErrors) {
  EXPECT_EQ(log::parse_debug_list("all"), ~0u);
  EXPECT_EQ(log::parse_debug_list("ice,quic"), (1u << 1) | (1u << 2));
  try {
    log::parse_debug_list("ice,bogus");
    ADD_FAILURE();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("'bogus'"), std::string::npos);
  }
}

}  // namespace
}  // namespace peersock::ui

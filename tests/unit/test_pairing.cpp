// pairing/: secrets, ids, the file format and the store.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "peersock/error.hpp"
#include "peersock/pairing/hello.hpp"
#include "peersock/pairing/pairing.hpp"
#include "peersock/pairing/store.hpp"

namespace peersock::pairing {
namespace {

Key key_of(uint8_t fill) {
  Key k{};
  k.fill(fill);
  return k;
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/peersock-pairing-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { (void)std::system(("rm -rf '" + path + "'").c_str()); }
};

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

mode_t mode_of(const std::string& path) {
  struct stat st{};
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

TEST(PairingNames, FileNameSafeOnly) {
  for (const char* ok : {"laptop", "server.home", "a", "x_1-2", "A.b"}) EXPECT_NO_THROW(check_name(ok)) << ok;
  for (const char* bad : {"", ".hidden", "-opt", "a/b", "..", "a b", "caf\xc3\xa9", "tab\t"})
    EXPECT_THROW(check_name(bad), UsageError) << bad;
  EXPECT_NO_THROW(check_name(std::string(64, 'a')));
  EXPECT_THROW(check_name(std::string(65, 'a')), UsageError);
  try {
    check_name("a/b");
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("'a/b'"), std::string::npos) << e.what();
  }
}

TEST(PairingSecrets, BothSidesDeriveTheSameAndEachValueIsDistinct) {
  std::array<uint8_t, 32> smp{};
  smp.fill(7);
  Key p1 = pairing_secret(smp), p2 = pairing_secret(smp);
  EXPECT_EQ(p1, p2);
  smp[0] ^= 1;
  EXPECT_NE(pairing_secret(smp), p1);
  EXPECT_NE(mailbox_key(p1), p1);
  // Session codes depend on both nonces and are not the secret.
  std::string c = session_code(p1, "aa", "bb");
  EXPECT_EQ(c.size(), 64u);
  EXPECT_EQ(c, session_code(p1, "aa", "bb"));
  EXPECT_NE(c, session_code(p1, "aa", "bc"));
  EXPECT_NE(c, session_code(p1, "ab", "bb"));
  // The separator keeps ("a","ab") apart from ("aa","b").
  EXPECT_NE(session_code(p1, "a", "ab"), session_code(p1, "aa", "b"));
}

TEST(PairingMailbox, NewIdEachWindowLooksLikeAMailboxId) {
  Key k = mailbox_key(key_of(1));
  std::set<std::string> ids;
  for (uint64_t w = 0; w < 100; ++w) {
    std::string id = mailbox_id(k, w);
    EXPECT_EQ(id.size(), 26u);
    for (char c : id) EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7')) << id;
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 100u);
  EXPECT_EQ(mailbox_id(k, 5), mailbox_id(k, 5));
  EXPECT_NE(mailbox_id(k, 5), mailbox_id(mailbox_key(key_of(2)), 5));
  EXPECT_EQ(window_of(2 * kWindowSeconds), 2u);
  EXPECT_EQ(window_of(2 * kWindowSeconds - 1), 1u);
  EXPECT_EQ(window_of(-5), 0u);
  EXPECT_EQ(window_of(10, 5), 2u);
}

TEST(PairingMac, ConstantTimeCompareAndLabelSeparation) {
  Key k = key_of(3);
  std::string m = mac_hex(k, "hello", "n1");
  EXPECT_EQ(m.size(), 64u);
  EXPECT_TRUE(mac_equal(m, mac_hex(k, "hello", "n1")));
  EXPECT_FALSE(mac_equal(m, mac_hex(k, "hello", "n2")));
  EXPECT_FALSE(mac_equal(m, mac_hex(k, "hellon", "1")));
  EXPECT_FALSE(mac_equal(m, m.substr(1)));
}

TEST(PairingFile, RoundTripsAndForgetting) {
  Pairing p = make("laptop", key_of(9), "bob's laptop\x01\n", 1700000000);
  EXPECT_EQ(p.label, "bob's laptop");
  p.last_used = 1700000500;
  Pairing q = parse(format(p), "laptop");
  EXPECT_EQ(q.name, "laptop");
  EXPECT_EQ(q.secret, p.secret);
  EXPECT_EQ(q.mailbox_key, p.mailbox_key);
  EXPECT_EQ(q.label, p.label);
  EXPECT_EQ(q.created, 1700000000);
  EXPECT_EQ(q.last_used, 1700000500);
  EXPECT_EQ(q.forgotten, 0);

  Pairing gone = forget(q, 1700000900);
  EXPECT_FALSE(gone.secret);
  EXPECT_EQ(gone.mailbox_key, p.mailbox_key);
  std::string text = format(gone);
  EXPECT_EQ(text.find("secret"), std::string::npos);
  Pairing g2 = parse(text, "laptop");
  EXPECT_FALSE(g2.secret);
  EXPECT_EQ(g2.forgotten, 1700000900);
  EXPECT_EQ(g2.mailbox_key, p.mailbox_key);
}

TEST(PairingFile, RejectsAnythingElseWithTheLine) {
  Pairing p = make("x", key_of(4), "lab", 10);
  const std::string good = format(p);
  auto fails = [](const std::string& text, const std::string& needle) {
    try {
      parse(text, "x");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::local);
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  fails("", "empty");
  fails("peersock-pairing 2\n", "line 1");
  fails(good.substr(0, good.size() - 1), "no newline");
  fails(good + "label again\n", "twice");
  fails(good + "colour blue\n", "unknown key 'colour'");
  std::string bad_hex = good;
  bad_hex.replace(bad_hex.find("secret ") + 7, 1, "G");
  fails(bad_hex, "hex");
  std::string wrong_key = good;
  size_t at = wrong_key.find("mailbox-key ") + 12;
  wrong_key[at] = wrong_key[at] == '0' ? '1' : '0';
  fails(wrong_key, "does not belong");
  std::string bad_time = good;
  bad_time.replace(bad_time.find("created 10"), 10, "created -1");
  fails(bad_time, "not a time");
  fails(good + "forgotten 5\n", "must not keep its secret");
  std::string no_secret = good;
  no_secret.erase(no_secret.find("secret "), 72);
  fails(no_secret, "neither");
  fails(good + std::string(5000, '#'), "larger than");
  std::string ctrl = good;
  ctrl.replace(ctrl.find("label lab"), 9, "label l\x1b[2J");
  fails(ctrl, "printable");
}

TEST(PairingStore, SavesPrivatelyAtomicallyAndLists) {
  TempDir tmp;
  const std::string dir = tmp.path + "/data/peersock/peers";
  Store store(dir);
  EXPECT_FALSE(store.load("laptop"));
  EXPECT_TRUE(store.list().empty());
  const mode_t old_umask = umask(0);  // the most permissive umask: modes must not follow it
  store.save(make("laptop", key_of(1), "L", 100));
  umask(old_umask);
  EXPECT_EQ(mode_of(dir), 0700u);
  EXPECT_EQ(mode_of(dir + "/laptop"), 0600u);
  auto loaded = store.load("laptop");
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->secret, key_of(1));

  // A crash before the rename leaves the old pairing (and a temporary file
  // that list() skips).
  const std::string before = read_file(dir + "/laptop");
  EXPECT_THROW(store.save(make("laptop", key_of(2), "L2", 200), [] { throw Error(ExitCode::failure, "crash"); }),
               Error);
  EXPECT_EQ(read_file(dir + "/laptop"), before);
  std::ofstream(dir + "/.laptop.999.tmp") << "half a file";
  store.save(make("server", key_of(3), "S", 300));
  auto all = store.list();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "laptop");
  EXPECT_EQ(all[1].name, "server");

  // Others may not read it: refused, with the file and a way out.
  ASSERT_EQ(chmod((dir + "/server").c_str(), 0644), 0);
  try {
    store.load("server");
    ADD_FAILURE() << "a 0644 pairing file was used";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::local);
    EXPECT_NE(std::string(e.what()).find("chmod 600"), std::string::npos) << e.what();
  }
  // A directory made open by hand is tightened on the next save.
  ASSERT_EQ(chmod(dir.c_str(), 0755), 0);
  store.save(make("laptop", key_of(4), "L", 400));
  EXPECT_EQ(mode_of(dir), 0700u);
}

TEST(PairingStore, DefaultDirFollowsXdg) {
  auto env = [](std::map<std::string, std::string> m) {
    return [m](const char* k) -> const char* {
      auto it = m.find(k);
      return it == m.end() ? nullptr : it->second.c_str();
    };
  };
  EXPECT_EQ(Store::default_dir(env({{"XDG_DATA_HOME", "/x"}, {"HOME", "/h"}})), "/x/peersock/peers");
  EXPECT_EQ(Store::default_dir(env({{"XDG_DATA_HOME", "rel"}, {"HOME", "/h"}})), "/h/.local/share/peersock/peers");
  EXPECT_THROW(Store::default_dir(env({})), Error);
}

}  // namespace
}  // namespace peersock::pairing

namespace peersock::pairing {
namespace {

const std::string kNonceA(32, 'a'), kNonceB(32, 'b'), kNonceC(32, 'c'), kNonceD(32, 'd');

Pairing paired_with(uint8_t fill) { return make("p", key_of(fill), "", 1); }

// Delivers every message `from` adds to `to`, returning to's output.
HelloOutput deliver(const HelloOutput& from, Hello& to, int64_t now, const std::string& next_nonce = kNonceD) {
  HelloOutput all;
  for (const auto& m : from.to_add) {
    auto o = to.on_message(m.phase, m.body, now, next_nonce);
    all.to_add.insert(all.to_add.end(), o.to_add.begin(), o.to_add.end());
    all.events.insert(all.events.end(), o.events.begin(), o.events.end());
  }
  return all;
}

TEST(PairingHello, ClientAndServerAgreeOnATicketAndSessionMailbox) {
  const int64_t now = 1'700'000'000;
  Pairing p = paired_with(5);
  Hello client(Hello::Role::client, p, window_of(now), kNonceA);
  Hello server(Hello::Role::server, p, window_of(now), kNonceB);
  EXPECT_TRUE(server.start(now).to_add.empty()) << "the server waits for hellos";
  HelloOutput hello = client.start(now);
  ASSERT_EQ(hello.to_add.size(), 1u);
  EXPECT_EQ(hello.to_add[0].phase, kHelloPhase);
  EXPECT_EQ(hello.to_add[0].body.find(std::string(64, '0')), std::string::npos);
  HelloOutput answer = deliver(hello, server, now + 3, kNonceC);
  ASSERT_EQ(answer.events.size(), 1u);
  auto* s = std::get_if<hello::Paired>(&answer.events[0]);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->ticket.client_nonce, kNonceA);
  EXPECT_EQ(s->ticket.server_nonce, kNonceC);
  HelloOutput done = deliver(answer, client, now + 3);
  ASSERT_EQ(done.events.size(), 1u);
  auto* c = std::get_if<hello::Paired>(&done.events[0]);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->ticket.server_nonce, kNonceC);
  EXPECT_EQ(session_mailbox_id(p.mailbox_key, c->ticket), session_mailbox_id(p.mailbox_key, s->ticket));
  EXPECT_NE(session_mailbox_id(p.mailbox_key, c->ticket), mailbox_id(p.mailbox_key, window_of(now)));
  // The same hello again (the mailbox replays it): not answered twice.
  EXPECT_TRUE(deliver(hello, server, now + 10).events.empty());
  EXPECT_EQ(server.ignored(), 1u);
}

TEST(PairingHello, NothingForgedStaleOrFromAnotherWindowIsAnswered) {
  const int64_t now = 1'700'000'000;
  Pairing p = paired_with(5);
  Hello server(Hello::Role::server, p, window_of(now), kNonceB);
  // Another pairing's hello (wrong key), another window's, a stale one.
  EXPECT_TRUE(deliver(Hello(Hello::Role::client, paired_with(6), window_of(now), kNonceA).start(now), server, now)
                  .events.empty());
  EXPECT_TRUE(deliver(Hello(Hello::Role::client, p, window_of(now) + 1, kNonceA).start(now), server, now)
                  .events.empty());
  EXPECT_TRUE(deliver(Hello(Hello::Role::client, p, window_of(now), kNonceA).start(now - kHelloMaxAgeSeconds - 1),
                      server, now)
                  .events.empty());
  for (const char* junk : {"", "{}", "[1]", "{\"n\":1,\"t\":2,\"m\":3}", "not json", "{\"n\":\"x\"}"})
    EXPECT_TRUE(server.on_message(kHelloPhase, junk, now, kNonceD).events.empty()) << junk;
  EXPECT_TRUE(server.on_message(kHelloPhase, std::string(600, ' '), now, kNonceD).events.empty());
  EXPECT_EQ(server.ignored(), 10u);
  // Other phases are none of the hello's business.
  EXPECT_TRUE(server.on_message("ice", "{}", now, kNonceD).events.empty());
  EXPECT_EQ(server.ignored(), 10u);
  // Still answers a real one.
  EXPECT_EQ(deliver(Hello(Hello::Role::client, p, window_of(now), kNonceA).start(now), server, now).events.size(), 1u);
}

TEST(PairingHello, OneServerAnswersManyClientsEachWithItsOwnTicket) {
  const int64_t now = 1'700'000'000;
  Pairing p = paired_with(5);
  Hello server(Hello::Role::server, p, window_of(now), kNonceB);
  Hello c1(Hello::Role::client, p, window_of(now), kNonceA), c2(Hello::Role::client, p, window_of(now), kNonceC);
  HelloOutput a1 = deliver(c1.start(now), server, now, std::string(32, '1'));
  HelloOutput a2 = deliver(c2.start(now), server, now, std::string(32, '2'));
  // Each client takes its own welcome and ignores the other's.
  HelloOutput both;
  both.to_add = a1.to_add;
  both.to_add.insert(both.to_add.end(), a2.to_add.begin(), a2.to_add.end());
  auto r1 = deliver(both, c1, now), r2 = deliver(both, c2, now);
  ASSERT_EQ(r1.events.size(), 1u);
  ASSERT_EQ(r2.events.size(), 1u);
  EXPECT_EQ(std::get<hello::Paired>(r1.events[0]).ticket.server_nonce, std::string(32, '1'));
  EXPECT_EQ(std::get<hello::Paired>(r2.events[0]).ticket.server_nonce, std::string(32, '2'));
  // A client that sees another client's hello (and no welcome yet) knows
  // that both sides open streams.
  Hello c3(Hello::Role::client, p, window_of(now), kNonceD);
  auto r3 = deliver(c1.start(now), c3, now);
  ASSERT_EQ(r3.events.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<hello::BothClients>(r3.events[0]));
}

TEST(PairingHello, ATombstoneTellsTheOtherSideAndNothingElse) {
  const int64_t now = 1'700'000'000;
  Pairing p = paired_with(5);
  Pairing gone = forget(p, now);
  for (auto role : {Hello::Role::client, Hello::Role::server}) {
    Hello dead(role, gone, window_of(now), kNonceA);
    HelloOutput notice = dead.start(now);
    ASSERT_EQ(notice.to_add.size(), 1u);
    EXPECT_EQ(notice.to_add[0].phase, kForgottenPhase);
    EXPECT_TRUE(notice.events.empty());
    for (auto other_role : {Hello::Role::client, Hello::Role::server}) {
      Hello alive(other_role, p, window_of(now), kNonceB);
      auto r = deliver(notice, alive, now);
      ASSERT_EQ(r.events.size(), 1u);
      EXPECT_TRUE(std::holds_alternative<hello::Forgotten>(r.events[0]));
      // Another window's notice is worth nothing.
      Hello later(other_role, p, window_of(now) + 1, kNonceB);
      EXPECT_TRUE(deliver(notice, later, now).events.empty());
    }
    // The tombstone answers no hello.
    EXPECT_TRUE(deliver(Hello(Hello::Role::client, p, window_of(now), kNonceC).start(now), dead, now).events.empty());
  }
}

}  // namespace
}  // namespace peersock::pairing

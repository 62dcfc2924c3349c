// The version negotiation by ALPN as pure functions (quic/alpn.hpp): the
// client's offer, the server's choice from untrusted offer bytes, and what
// each side concludes (docs/protocol.md §3.1). The handshake itself with
// these choices: test_quic.cpp (QuicNegotiation).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "peersock/quic/alpn.hpp"

namespace peersock::quic::alpn {
namespace {

std::span<const uint8_t> bytes(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

std::string wire(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += static_cast<char>(n.size()) + n;
  return out;
}

std::string chosen(const std::string& offer, const Selection& s) { return offer.substr(s.offset, s.length); }

TEST(Alpn, TheClientOffersEveryVersionNewestFirstThenPlain) {
  EXPECT_EQ(client_offer(4), wire({"x-peersock/4", "x-peersock/3", "x-peersock/2", "x-peersock/1", "x-peersock"}));
  EXPECT_EQ(client_offer(1), wire({"x-peersock/1", "x-peersock"}));
  EXPECT_EQ(client_offer(0), client_offer(1)) << "the cap is clamped";
}

TEST(Alpn, NamesAndTheirVersions) {
  EXPECT_EQ(version_of("x-peersock"), 0);
  EXPECT_EQ(version_of("x-peersock/1"), 1);
  EXPECT_EQ(version_of("x-peersock/1000"), 1000);
  for (const char* bad : {"x-peersock/", "x-peersock/0", "x-peersock/04", "x-peersock/1001", "x-peersock/3a",
                          "x-peersock/-1", "x-peersock3", "x-peersockX", "h3", "", "X-PEERSOCK/2"})
    EXPECT_EQ(version_of(bad), -1) << bad;
}

TEST(Alpn, TheServerPicksTheHighestVersionBothSpeak) {
  const std::string offer = client_offer(5);
  auto s = select(bytes(offer), 4, 5);
  ASSERT_TRUE(s.ok);
  EXPECT_EQ(chosen(offer, s), "x-peersock/4");
  EXPECT_EQ(s.version, 4);
  EXPECT_EQ(s.client_max, 5);
  EXPECT_FALSE(s.original_identity);
  // Order does not matter: the highest, wherever it is.
  const std::string shuffled = wire({"x-peersock", "x-peersock/2", "x-peersock/3", "x-peersock/1"});
  EXPECT_EQ(chosen(shuffled, select(bytes(shuffled), 4, 3)), "x-peersock/3");
  // A server capped at 1 picks /1, not plain.
  EXPECT_EQ(chosen(offer, select(bytes(offer), 1, 5)), "x-peersock/1");
}

TEST(Alpn, APlainOnlyOfferFallsBackToTheBody) {
  const std::string plain = wire({"x-peersock"});
  auto original = select(bytes(plain), 4, 1);
  ASSERT_TRUE(original.ok);
  EXPECT_EQ(chosen(plain, original), "x-peersock");
  EXPECT_EQ(original.version, 1);
  EXPECT_TRUE(original.original_identity) << "the original pins its own certificate";
  auto older = select(bytes(plain), 4, 3);
  EXPECT_EQ(older.version, 3);
  EXPECT_FALSE(older.original_identity) << "our older releases verify nothing: the fresh key";
  EXPECT_EQ(select(bytes(plain), 2, 3).version, 2);
  EXPECT_EQ(select(bytes(plain), 4, 9).version, 4);
}

TEST(Alpn, NothingWeSpeakOrAMalformedListIsRefused) {
  for (const std::string& offer :
       {wire({"h3"}), wire({"x-peersock/0", "x-notpeersock"}), std::string(), std::string("\x05x-pe", 5),
        std::string("\x00", 1), wire({"x-peersock"}) + std::string("\x09", 1), std::string("\x0ax-peersock\x00", 12)})
    EXPECT_FALSE(select(bytes(offer), 4, 4).ok) << offer.size();
  // Versions only above our cap and no plain: nothing in common.
  EXPECT_FALSE(select(bytes(wire({"x-peersock/7"})), 4, 7).ok);
  // ... with plain: v1.
  auto s = select(bytes(wire({"x-peersock/7", "x-peersock"})), 4, 7);
  ASSERT_TRUE(s.ok);
  EXPECT_EQ(s.version, 1);
  EXPECT_FALSE(s.original_identity);
}

TEST(Alpn, TheRawExtensionsListNeedsItsExactLength) {
  const std::string list = client_offer(2);
  std::string ext = std::string(1, '\0') + static_cast<char>(list.size()) + list;
  auto got = protocol_list(bytes(ext));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(got.data()), got.size()), list);
  EXPECT_TRUE(protocol_list(bytes(ext + "x")).empty());
  EXPECT_TRUE(protocol_list(bytes(ext.substr(0, ext.size() - 1))).empty());
  EXPECT_TRUE(protocol_list(bytes(std::string(1, '\0'))).empty());
  EXPECT_TRUE(protocol_list(bytes(std::string())).empty());
}

TEST(Alpn, TheServerSeesABodyThatDisagreesWithTheOffer) {
  const std::string offer = client_offer(4);
  EXPECT_FALSE(server_outcome(select(bytes(offer), 4, 4), 4).version_changed);
  EXPECT_TRUE(server_outcome(select(bytes(offer), 4, 1), 1).version_changed) << "v stripped";
  EXPECT_TRUE(server_outcome(select(bytes(offer), 4, 3), 3).version_changed) << "v lowered";
  // A v1-capped client (PEERSOCK_PROTOCOL=1) writes no v; "v":3 added.
  const std::string capped = client_offer(1);
  EXPECT_FALSE(server_outcome(select(bytes(capped), 4, 1), 1).version_changed);
  EXPECT_TRUE(server_outcome(select(bytes(capped), 4, 3), 3).version_changed);
  // Plain only: nothing to check against; the original is recognised.
  const std::string plain = wire({"x-peersock"});
  auto o = server_outcome(select(bytes(plain), 4, 1), 1);
  EXPECT_TRUE(o.peer_is_original);
  EXPECT_FALSE(o.version_changed);
  EXPECT_FALSE(server_outcome(select(bytes(plain), 4, 2), 2).peer_is_original);
}

TEST(Alpn, TheClientSeesABodyThatDisagreesWithTheChoice) {
  auto fine = client_outcome("x-peersock/4", false, 4, 4);
  EXPECT_EQ(fine.version, 4);
  EXPECT_FALSE(fine.version_changed);
  EXPECT_FALSE(client_outcome("x-peersock/4", false, 4, 5).version_changed) << "a newer server";
  EXPECT_FALSE(client_outcome("x-peersock/2", false, 4, 2).version_changed) << "a server capped at 2";
  EXPECT_TRUE(client_outcome("x-peersock/4", false, 4, 1).version_changed) << "v stripped";
  EXPECT_TRUE(client_outcome("x-peersock/1", false, 4, 3).version_changed) << "v1 server, v:3 added";
  EXPECT_TRUE(client_outcome("x-peersock/5", false, 4, 5).version_changed) << "above what we offered";
  // Plain with the original's certificate: the original, whose body has no v.
  auto original = client_outcome("x-peersock", true, 4, 1);
  EXPECT_TRUE(original.peer_is_original);
  EXPECT_EQ(original.version, 1);
  EXPECT_FALSE(original.version_changed);
  EXPECT_TRUE(client_outcome("x-peersock", true, 4, 3).version_changed) << "v:3 added to the original's body";
  // Plain with another certificate: an older release; its body decides.
  auto older = client_outcome("x-peersock", false, 4, 3);
  EXPECT_EQ(older.version, 3);
  EXPECT_FALSE(older.peer_is_original);
  EXPECT_FALSE(older.version_changed);
  EXPECT_EQ(client_outcome("x-peersock", false, 2, 3).version, 2);
}

}  // namespace
}  // namespace peersock::quic::alpn

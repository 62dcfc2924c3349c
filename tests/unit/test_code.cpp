#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "peersock/code/code.hpp"
#include "peersock/error.hpp"

namespace code = peersock::code;

namespace {

// SHA-256 of data/bip39-english.txt; the list is one word per line with a
// final newline, so hashing the compiled words the same way must match.
constexpr const char* kListSha256 = "2f5eed53a4727b4bf8880d8f3f199efc90e58503646d9ff8eff3a2ed3b24dbda";

std::string sha256_hex(const std::string& data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  EXPECT_EQ(EVP_Digest(data.data(), data.size(), md.data(), &len, EVP_sha256(), nullptr), 1);
  std::string hex;
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned int i = 0; i < len; ++i) {
    hex += kHex[md[i] >> 4];
    hex += kHex[md[i] & 0xf];
  }
  return hex;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t dash = s.find('-', start);
    out.push_back(s.substr(start, dash == std::string::npos ? std::string::npos : dash - start));
    if (dash == std::string::npos) return out;
    start = dash + 1;
  }
}

// Returns the UsageError message of parse(typed), or fails the test.
std::string parse_error(const std::string& typed) {
  try {
    code::parse(typed);
  } catch (const peersock::UsageError& e) {
    EXPECT_EQ(e.code(), peersock::ExitCode::usage);
    return e.what();
  }
  ADD_FAILURE() << "parse('" << typed << "') did not throw";
  return {};
}

std::string generate_error(const std::string& nameplate, int words) {
  try {
    code::generate(nameplate, words);
  } catch (const peersock::UsageError& e) {
    return e.what();
  }
  ADD_FAILURE() << "generate('" << nameplate << "', " << words << ") did not throw";
  return {};
}

}  // namespace

TEST(Wordlist, MatchesDataFileHash) {
  std::string joined;
  for (std::string_view w : code::wordlist()) {
    joined += w;
    joined += '\n';
  }
  EXPECT_EQ(sha256_hex(joined), kListSha256);
}

TEST(Wordlist, IsSortedAndUnique) {
  const auto& list = code::wordlist();
  EXPECT_TRUE(std::adjacent_find(list.begin(), list.end(),
                                 [](std::string_view a, std::string_view b) { return a >= b; }) == list.end());
  EXPECT_EQ(list.front(), "abandon");
  EXPECT_EQ(list.back(), "zoo");
}

TEST(Wordlist, EveryWordMapsBackToItsIndex) {
  const auto& list = code::wordlist();
  for (size_t i = 0; i < list.size(); ++i) {
    ASSERT_EQ(code::word_index(list[i]), static_cast<int>(i)) << list[i];
  }
}

TEST(Wordlist, NonWordsHaveNoIndex) {
  for (std::string_view w : {"", "zebraa", "abando", "Abandon", "zzz", "a", "abandon ", "zoo\n"}) {
    EXPECT_EQ(code::word_index(w), -1) << "'" << w << "'";
  }
}

TEST(Generate, ShapeAndRoundTrip) {
  for (int n = code::kMinWords; n <= code::kMaxWords; ++n) {
    const std::string c = code::generate("42", n);
    const auto parts = split(c);
    ASSERT_EQ(parts.size(), static_cast<size_t>(n) + 1) << c;
    EXPECT_EQ(parts[0], "42");
    const code::Code parsed = code::parse(c);
    EXPECT_EQ(parsed.text, c);
    EXPECT_EQ(parsed.nameplate, "42");
    EXPECT_EQ(parsed.words.size(), static_cast<size_t>(n));
  }
  EXPECT_EQ(split(code::generate("7")).size(), static_cast<size_t>(code::kDefaultWords) + 1);
}

// A million words: every one must be in the list, and with 2048 equally
// likely words each expects ~488 hits, so a word never drawn (or a count far
// off that) means the draw is broken or biased.
TEST(Generate, MillionDrawsCoverTheWholeList) {
  std::vector<int> hits(code::kWordCount, 0);
  constexpr int kWords = code::kMaxWords;
  constexpr int kDraws = 1'000'000 / kWords;
  for (int i = 0; i < kDraws; ++i) {
    const auto parts = split(code::generate("1", kWords));
    ASSERT_EQ(parts.size(), static_cast<size_t>(kWords) + 1);
    for (size_t j = 1; j < parts.size(); ++j) {
      const int idx = code::word_index(parts[j]);
      ASSERT_GE(idx, 0) << "'" << parts[j] << "' is not in the list";
      ++hits[static_cast<size_t>(idx)];
    }
  }
  const auto [lo, hi] = std::minmax_element(hits.begin(), hits.end());
  EXPECT_GT(*lo, 0) << "word '" << code::wordlist()[static_cast<size_t>(lo - hits.begin())] << "' never drawn";
  // Mean 488, sd ~22: these bounds are > 8 sd away, so they fail only on a real bias.
  EXPECT_GT(*lo, 300);
  EXPECT_LT(*hi, 700);
}

TEST(Generate, RejectsBadNameplates) {
  EXPECT_NE(generate_error("", 4).find("nameplate ''"), std::string::npos);
  EXPECT_NE(generate_error("x7", 4).find("nameplate 'x7' is not a number"), std::string::npos);
  EXPECT_NE(generate_error("7 ", 4).find("'7 '"), std::string::npos);
  EXPECT_NE(generate_error("-7", 4).find("'-7'"), std::string::npos);
  EXPECT_NE(generate_error("1234567890", 4).find("'1234567890'"), std::string::npos);
  EXPECT_NO_THROW(code::generate("123456789", 4));
}

TEST(Generate, RejectsBadWordCounts) {
  EXPECT_NE(generate_error("7", code::kMinWords - 1).find(std::to_string(code::kMinWords - 1)), std::string::npos);
  EXPECT_NE(generate_error("7", code::kMaxWords + 1).find(std::to_string(code::kMaxWords + 1)), std::string::npos);
  EXPECT_NE(generate_error("7", 0).find('0'), std::string::npos);
  EXPECT_NE(generate_error("7", -3).find("-3"), std::string::npos);
}

TEST(Parse, AcceptsAndNormalises) {
  const code::Code c = code::parse("  \t 17-Abandon-ZOO-ability\r\n");
  EXPECT_EQ(c.nameplate, "17");
  EXPECT_EQ(c.words, (std::vector<std::string>{"abandon", "zoo", "ability"}));
  EXPECT_EQ(c.text, "17-abandon-zoo-ability");

  EXPECT_EQ(code::parse("0-zoo-zoo").text, "0-zoo-zoo");
  EXPECT_EQ(code::parse("123456789-abandon-abandon").nameplate, "123456789");
  std::string longest = "5";
  for (int i = 0; i < code::kMaxWords; ++i) longest += "-abandon";
  EXPECT_EQ(code::parse(longest).words.size(), static_cast<size_t>(code::kMaxWords));
}

TEST(Parse, RejectsNameplates) {
  EXPECT_NE(parse_error("x7-abandon-zoo").find("nameplate 'x7' is not a number"), std::string::npos);
  EXPECT_NE(parse_error("-abandon-zoo").find("nameplate 'abandon'"), std::string::npos);
  EXPECT_NE(parse_error("7a-abandon-zoo").find("'7a'"), std::string::npos);
  EXPECT_NE(parse_error("+7-abandon-zoo").find("'+7'"), std::string::npos);
  EXPECT_NE(parse_error("1234567890-abandon-zoo").find("'1234567890'"), std::string::npos);
  // Full-width digits are not ASCII digits and must not be normalised into them.
  EXPECT_NE(parse_error("\xef\xbc\x97-abandon-zoo").find("nameplate"), std::string::npos);
}

TEST(Parse, RejectsWordCounts) {
  EXPECT_NE(parse_error("7").find("code '7' has no words"), std::string::npos);
  EXPECT_NE(parse_error("").find("nameplate ''"), std::string::npos);
  EXPECT_NE(parse_error("   ").find("nameplate ''"), std::string::npos);
  EXPECT_NE(parse_error("7-abandon").find("1 word"), std::string::npos);
  std::string nine = "7";
  for (int i = 0; i < code::kMaxWords + 1; ++i) nine += "-zoo";
  const std::string msg = parse_error(nine);
  EXPECT_NE(msg.find(std::to_string(code::kMaxWords + 1) + " words"), std::string::npos) << msg;
  // The words are the secret: a count error must not echo them.
  EXPECT_EQ(msg.find("zoo"), std::string::npos) << msg;
}

TEST(Parse, RejectsWordsNamingTheBadOne) {
  EXPECT_NE(parse_error("7-abandon-xyzzyq").find("'xyzzyq' is not a code word (word 2)"), std::string::npos);
  EXPECT_NE(parse_error("7-Xyzzyq-abandon").find("'xyzzyq' is not a code word (word 1)"), std::string::npos);
  EXPECT_NE(parse_error("7-abandon-qqqqq").find("'qqqqq' is not a code word (word 2)"), std::string::npos);
  // Only ASCII is lowercased; a non-ASCII letter stays and fails, quoted safely.
  EXPECT_NE(parse_error("7-\xc3\x80"
                        "bandon-zoo")
                .find("'\\xc3\\x80bandon'"),
            std::string::npos);
  EXPECT_NE(parse_error("7-aban\x1b"
                        "don-zoo")
                .find("'aban\\x1bdon'"),
            std::string::npos);
}

// Codes read out over the phone or retyped: spaces and other separators
// between the parts are the canonical '-', in any number and mix.
TEST(Parse, AcceptsSeparatorsPeopleUse) {
  const std::string canonical = "3-eight-dinosaur-toward-demise";
  for (const char* typed : {"3 eight dinosaur toward demise", "3-eight dinosaur toward-demise",
                            "3, eight, dinosaur, toward, demise", "  3  Eight\tDinosaur   TOWARD demise. ",
                            "3 - eight - dinosaur - toward - demise", "3.eight.dinosaur.toward.demise",
                            "3_eight_dinosaur_toward_demise", "3;eight:dinosaur/toward demise",
                            "3--eight--dinosaur--toward--demise", "-3-eight-dinosaur-toward-demise-",
                            "3\xc2\xa0" "eight dinosaur toward demise",                // no-break space
                            "3\xe2\x80\x93" "eight\xe2\x80\x94" "dinosaur toward demise",  // en dash, em dash
                            "3\xe2\x88\x92" "eight dinosaur\xe2\x80\x90toward demise"}) {  // minus, hyphen
    const code::Code c = code::parse(typed);
    EXPECT_EQ(c.text, canonical) << "'" << typed << "'";
    EXPECT_EQ(c.nameplate, "3");
    EXPECT_EQ(c.words, (std::vector<std::string>{"eight", "dinosaur", "toward", "demise"}));
  }
}

TEST(Normalize, CanonicalForm) {
  EXPECT_EQ(code::normalize("3 eight dinosaur"), "3-eight-dinosaur");
  EXPECT_EQ(code::normalize(" , 3 ,, EIGHT ; "), "3-eight");
  EXPECT_EQ(code::normalize(""), "");
  EXPECT_EQ(code::normalize(" - , "), "");
  // Other bytes stay, so that validation can name them.
  EXPECT_EQ(code::normalize("7+abandon"), "7+abandon");
  EXPECT_EQ(code::normalize("7 \xc3\x80" "bandon"), "7-\xc3\x80" "bandon");
  EXPECT_EQ(code::normalize("7\xe2\x80"), "7\xe2\x80");  // a cut-off sequence is not a dash
  for (char c : std::string(" \t\r\n-,.;:_/")) EXPECT_TRUE(code::is_separator(c)) << int(c);
  for (char c : std::string("a0+'\"!?#")) EXPECT_FALSE(code::is_separator(c)) << c;
}

TEST(Parse, SeparatorsDoNotHideBadParts) {
  EXPECT_NE(parse_error("3 eight").find("1 word"), std::string::npos);
  EXPECT_NE(parse_error("three eight dinosaur").find("nameplate 'three' is not a number"), std::string::npos);
  EXPECT_NE(parse_error("3 eight xyzzyq toward").find("'xyzzyq' is not a code word (word 2)"), std::string::npos);
  EXPECT_NE(parse_error(" , ").find("nameplate ''"), std::string::npos);
}

TEST(Parse, SuggestsTheNearestWord) {
  // The issue's example: two letters swapped.
  EXPECT_NE(parse_error("3-eight-excses-toward").find("'excses' is not a code word; did you mean 'excess'?"),
            std::string::npos);
  EXPECT_NE(parse_error("3 eight dinosuar toward").find("'dinosuar' is not a code word; did you mean 'dinosaur'?"),
            std::string::npos);
  EXPECT_NE(parse_error("3-abandn-zoo").find("did you mean 'abandon'?"), std::string::npos);   // a letter missing
  EXPECT_NE(parse_error("3-abandoon-zoo").find("did you mean 'abandon'?"), std::string::npos);  // one too many
  EXPECT_NE(parse_error("3-zebraa-zoo").find("did you mean 'zebra'?"), std::string::npos);
  EXPECT_NE(parse_error("3-aban-zoo").find("did you mean 'abandon'?"), std::string::npos);  // four letters identify it
  // Nothing close: no guess.
  const std::string far = parse_error("3-qqqqqqqq-zoo");
  EXPECT_EQ(far.find("did you mean"), std::string::npos) << far;
}

TEST(NearestWords, CloseEnoughOnly) {
  using V = std::vector<std::string_view>;
  EXPECT_EQ(code::nearest_words("excses"), V{"excess"});
  EXPECT_EQ(code::nearest_words("zoo"), V{});  // a word of the list has no "nearest"
  EXPECT_EQ(code::nearest_words(""), V{});
  EXPECT_EQ(code::nearest_words("qqqqqqqq"), V{});
  // Short words: only one edit away ("zqq" is two from "zoo").
  EXPECT_EQ(code::nearest_words("zqq"), V{});
  // Equally near words are all named, in list order; too many are none.
  const V cat = code::nearest_words("cax");
  EXPECT_GE(cat.size(), 2u);
  EXPECT_LE(cat.size(), 3u);
  EXPECT_TRUE(std::is_sorted(cat.begin(), cat.end()));
  EXPECT_EQ(code::nearest_words("xa"), V{});
  // Every word one substitution away from itself finds itself among the nearest.
  for (std::string_view w : code::wordlist()) {
    std::string typo(w);
    typo[typo.size() / 2] = typo[typo.size() / 2] == 'q' ? 'x' : 'q';
    if (code::word_index(typo) >= 0) continue;
    const V near = code::nearest_words(typo);
    if (near.empty()) continue;  // more than 3 equally near
    EXPECT_NE(std::find(near.begin(), near.end(), w), near.end()) << typo;
  }
}

TEST(Parse, SuggestionMessagesList) {
  const std::string msg = parse_error("3-cax-zoo");
  EXPECT_NE(msg.find("'cax' is not a code word; did you mean '"), std::string::npos) << msg;
  EXPECT_NE(msg.find("' or '"), std::string::npos) << msg;
}

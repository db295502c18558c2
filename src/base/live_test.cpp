#include "base/live.hpp"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace hikyaku::base {
namespace {

TEST(Live, AReaderKeepsTheValueItTookAcrossAReplace) {
  Live<std::string> live(std::make_shared<const std::string>("first"));
  auto taken = live.get();
  std::weak_ptr<const std::string> first = taken;
  live.replace(std::make_shared<const std::string>("second"));
  EXPECT_EQ(*taken, "first");         // unchanged in the reader's hands
  EXPECT_EQ(*live.get(), "second");   // new readers get the new one
  taken.reset();
  EXPECT_TRUE(first.expired());       // freed by its last reader
}

TEST(Live, ConcurrentReadersSeeWholeValues) {
  Live<std::vector<int>> live(std::make_shared<const std::vector<int>>(100, 0));
  std::atomic<bool> stop{false};
  std::atomic<int> torn{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      while (!stop) {
        auto v = live.get();
        for (int x : *v)
          if (x != v->front()) ++torn;
      }
    });
  }
  for (int i = 1; i <= 2000; ++i) live.replace(std::make_shared<const std::vector<int>>(100, i));
  stop = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(torn, 0);
  EXPECT_EQ(live.get()->front(), 2000);
}

}  // namespace
}  // namespace hikyaku::base

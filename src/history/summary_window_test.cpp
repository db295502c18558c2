#include "history/summary_window.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace hikyaku::history {
namespace {

using namespace std::chrono_literals;

// 2026-12-05 10:30 UTC: the window's last hour starts at 10:00.
constexpr TimePoint kNow = TimePoint(std::chrono::sys_days(std::chrono::year(2026) / 12 / 5)) + 10h + 30min;

TEST(SummaryWindowTest, CountsForwardsInTheHourOfTheirTime) {
  SummaryWindow w(kNow);
  w.add_forwards(kNow, "delivered", 3, 2);
  w.add_forwards(kNow - 1h, "diverted", 1, 0);
  w.add_forwards(kNow - 2h, "deferred", 2, 0);
  w.add_forwards(kNow - 2h, "failed", 1, 0);
  w.add_forwards(kNow - 8 * 24h, "delivered", 5, 5);  // before the window
  const Summary s = w.summary();
  EXPECT_EQ(s.first_hour, kNow - 30min - 167h);
  EXPECT_EQ(s.hours[Summary::kHours - 1][0], 3u);
  EXPECT_EQ(s.hours[Summary::kHours - 2][1], 1u);
  EXPECT_EQ(s.hours[Summary::kHours - 3][2], 2u);
  EXPECT_EQ(s.forward_attempts, 7u);
  EXPECT_EQ(s.forwards_delivered, 3u);
  EXPECT_EQ(s.forwards_delivered_tls, 2u);
}

TEST(SummaryWindowTest, HoursFallOutAsTimeAdvances) {
  SummaryWindow w(kNow);
  w.add_forwards(kNow - 167h, "delivered", 1, 0);  // the window's first hour
  w.add_forwards(kNow, "diverted", 2, 0);
  w.add_latency(kNow - 167h, 9.0);
  w.add_latency(kNow, 1.0);
  w.advance(kNow - 5h);  // never backwards
  EXPECT_EQ(w.summary().forward_attempts, 3u);

  w.advance(kNow + 1h);
  Summary s = w.summary();
  EXPECT_EQ(s.forward_attempts, 2u);
  EXPECT_EQ(s.hours[Summary::kHours - 2][1], 2u);
  EXPECT_EQ(s.hours[Summary::kHours - 1][1], 0u);
  EXPECT_EQ(s.p99, 1.0);

  // An attempt past the window's end moves it.
  w.add_forwards(kNow + 3h, "delivered", 4, 0);
  s = w.summary();
  EXPECT_EQ(s.first_hour, kNow - 30min - 164h);
  EXPECT_EQ(s.hours[Summary::kHours - 1][0], 4u);
  EXPECT_EQ(s.hours[Summary::kHours - 4][1], 2u);

  w.advance(kNow + 24h * 30);
  s = w.summary();
  EXPECT_EQ(s.forward_attempts, 0u);
  EXPECT_LT(s.p50, 0);
}

TEST(SummaryWindowTest, PercentilesOfTheLatestTimedForwards) {
  SummaryWindow w(kNow);
  for (int i = 1; i <= 100; ++i) w.add_latency(kNow, 0.01 * i);
  w.add_latency(kNow, -1);  // not timed
  Summary s = w.summary();
  EXPECT_NEAR(s.p50, 0.50, 1e-9);
  EXPECT_NEAR(s.p90, 0.90, 1e-9);
  EXPECT_NEAR(s.p99, 0.99, 1e-9);
  // Only the latest kLatencySamples count.
  for (size_t i = 0; i < SummaryWindow::kLatencySamples; ++i) w.add_latency(kNow, 2.0);
  s = w.summary();
  EXPECT_EQ(s.p50, 2.0);
  EXPECT_EQ(s.p99, 2.0);
}

TEST(SummaryWindowTest, KeepsTheLatestDiversionsFirst) {
  SummaryWindow w(kNow);
  // Loaded latest first...
  w.add_oldest_diversion("Q2", {kNow - 1h, "b", "", "", ""});
  w.add_oldest_diversion("Q1", {kNow - 2h, "a", "", "", ""});
  // ...then written as they come.
  w.add_diversion("Q3", {kNow, "c", "", "5.7.1 spam", "mailbox:fallback"});
  Summary s = w.summary();
  ASSERT_EQ(s.diversions.size(), 3u);
  EXPECT_EQ(s.diversions[0].from, "c");
  EXPECT_EQ(s.diversions[2].from, "a");
  w.prune_diversions(kNow - 90min);
  EXPECT_EQ(w.summary().diversions.size(), 2u);
  for (size_t i = 0; i < Summary::kDiversions + 5; ++i)
    w.add_diversion("Q" + std::to_string(10 + i), {kNow, std::to_string(i), "", "", ""});
  s = w.summary();
  ASSERT_EQ(s.diversions.size(), Summary::kDiversions);
  EXPECT_EQ(s.diversions[0].from, std::to_string(Summary::kDiversions + 4));
}

TEST(SummaryWindowTest, ADiversionListedBeforeItsMessageIsNamedLater) {
  // The forward overlaps the spool's flush: its refusal and diversion can
  // be written before the message's own row.
  SummaryWindow w(kNow);
  w.add_diversion("Q1", {kNow, "", "", "5.7.1 spam", "mailbox:fallback"});
  w.add_diversion("Q2", {kNow, "", "", "5.7.1 spam", "mailbox:fallback"});
  w.name_diversions("Q1", "Alice <alice@example.org>", "Hello");
  const Summary s = w.summary();
  ASSERT_EQ(s.diversions.size(), 2u);
  EXPECT_EQ(s.diversions[1].from, "Alice <alice@example.org>");
  EXPECT_EQ(s.diversions[1].subject, "Hello");
  EXPECT_EQ(s.diversions[0].from, "");  // Q2's row has not come
}

}  // namespace
}  // namespace hikyaku::history

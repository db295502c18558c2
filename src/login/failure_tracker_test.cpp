// The lockout of issue 13 item 4, with the time as an argument: the limit
// within the window locks one source out for the lockout time, others stay
// free; IPv6 sources are /64 prefixes; memory stays bounded.
#include "login/failure_tracker.hpp"

#include <gtest/gtest.h>

namespace hikyaku::login {
namespace {

using namespace std::chrono_literals;
using Clock = FailureTracker::Clock;
const Clock::time_point kT0{std::chrono::hours(1000)};

TEST(FailureTracker, TheLimitWithinTheWindowLocksOneSourceOut) {
  FailureTracker t({.limit = 3, .window = 600s, .lockout = 300s});
  EXPECT_FALSE(t.failed("192.0.2.7", kT0));
  EXPECT_FALSE(t.failed("192.0.2.7", kT0 + 1s));
  EXPECT_FALSE(t.locked_until("192.0.2.7", kT0 + 2s));
  EXPECT_TRUE(t.failed("192.0.2.7", kT0 + 2s));  // the third locks
  ASSERT_TRUE(t.locked_until("192.0.2.7", kT0 + 3s));
  EXPECT_EQ(*t.locked_until("192.0.2.7", kT0 + 3s), kT0 + 2s + 300s);
  EXPECT_FALSE(t.locked_until("192.0.2.8", kT0 + 3s)) << "another source logs in normally";
  EXPECT_FALSE(t.failed("192.0.2.7", kT0 + 10s)) << "failures while locked do not extend it";
  EXPECT_TRUE(t.locked_until("192.0.2.7", kT0 + 2s + 299s));
  EXPECT_FALSE(t.locked_until("192.0.2.7", kT0 + 2s + 300s)) << "the lockout ends";
  EXPECT_FALSE(t.failed("192.0.2.7", kT0 + 400s)) << "and the count starts again";
}

TEST(FailureTracker, FailuresOlderThanTheWindowDoNotCount) {
  FailureTracker t({.limit = 3, .window = 60s, .lockout = 300s});
  EXPECT_FALSE(t.failed("192.0.2.7", kT0));
  EXPECT_FALSE(t.failed("192.0.2.7", kT0 + 30s));
  EXPECT_FALSE(t.failed("192.0.2.7", kT0 + 61s));  // the first has left the window
  EXPECT_TRUE(t.failed("192.0.2.7", kT0 + 62s));
}

TEST(FailureTracker, LimitZeroNeverLocks) {
  FailureTracker t({.limit = 0});
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(t.failed("192.0.2.7", kT0));
  EXPECT_FALSE(t.locked_until("192.0.2.7", kT0));
  EXPECT_EQ(t.sources(), 0u);
}

TEST(FailureTracker, SourcesAreIpv4AddressesAndIpv6Slash64s_RFC4291_2_5_4) {
  EXPECT_EQ(FailureTracker::source_of("192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(FailureTracker::source_of("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
  EXPECT_EQ(FailureTracker::source_of("::ffff:192.0.2.7"), "192.0.2.7");
  FailureTracker t({.limit = 2, .window = 600s, .lockout = 600s});
  EXPECT_FALSE(t.failed("2001:db8:1:2::1", kT0));
  EXPECT_TRUE(t.failed("2001:db8:1:2::99", kT0)) << "the same /64";
  EXPECT_TRUE(t.locked_until("2001:db8:1:2:ffff::", kT0));
  EXPECT_FALSE(t.locked_until("2001:db8:1:3::1", kT0));
}

TEST(FailureTracker, MemoryIsBounded) {
  FailureTracker t({.limit = 5, .window = 60s, .lockout = 60s, .max_sources = 100});
  for (int i = 0; i < 1000; ++i) (void)t.failed("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256),
                                                kT0 + std::chrono::seconds(i));
  EXPECT_LE(t.sources(), 100u);
  // A locked source survives the pruning of expired ones.
  FailureTracker u({.limit = 2, .window = 600s, .lockout = 3600s, .max_sources = 10});
  EXPECT_FALSE(u.failed("192.0.2.1", kT0));
  EXPECT_TRUE(u.failed("192.0.2.1", kT0));
  for (int i = 0; i < 50; ++i) (void)u.failed("10.1.0." + std::to_string(i), kT0 + 120s + std::chrono::seconds(i));
  EXPECT_LE(u.sources(), 10u);
  EXPECT_TRUE(u.locked_until("192.0.2.1", kT0 + 200s)) << "the least recently seen, but locked: kept";
}

}  // namespace
}  // namespace hikyaku::login

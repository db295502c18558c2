// The pause-and-ramp state machine of one destination (issue 17, Gmail's
// 421 4.7.28 guidance): every transition, table-driven, and the durable
// form (saved/restore, with clamping).
#include "delivery/state/destination_pace.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace hikyaku::delivery::state {
namespace {

using namespace std::chrono_literals;
using Phase = DestinationPace::Phase;
using TimePoint = DestinationPace::TimePoint;

const TimePoint kT0 = TimePoint(std::chrono::seconds(1795000000));

PaceOptions options() {
  PaceOptions o;
  o.pause = 10min;
  o.normal = 3;
  o.lifetime = 1h;
  return o;
}

// One step of a scenario: an event at a time, then what must hold.
struct Step {
  enum class Event { none, rate_limit, success, expire } event;
  std::chrono::seconds at;  // after kT0
  bool want_changed;
  Phase want_phase;
  unsigned want_allowed;
  std::chrono::seconds want_next_start;  // after kT0
};

struct Scenario {
  const char* name;
  std::vector<Step> steps;
};

TEST(DestinationPace, EveryTransition) {
  using E = Step::Event;
  const std::vector<Scenario> scenarios = {
      {"normal stays normal without a rate limit",
       {{E::none, 0s, false, Phase::normal, 3, 0s},
        {E::success, 5s, false, Phase::normal, 3, 5s},
        {E::expire, 2h, false, Phase::normal, 3, 2h}}},
      {"rate limit pauses: no connection for the pause, then one",
       {{E::rate_limit, 0s, true, Phase::paused, 0, 600s},
        {E::none, 599s, false, Phase::paused, 0, 600s},
        {E::none, 600s, false, Phase::ramping, 1, 600s}}},
      {"each success during the ramp allows one more, then normal",
       {{E::rate_limit, 0s, true, Phase::paused, 0, 600s},
        {E::success, 601s, true, Phase::ramping, 2, 601s},
        {E::success, 602s, true, Phase::normal, 3, 602s},
        {E::success, 603s, false, Phase::normal, 3, 603s}}},
      {"a success during the pause changes nothing",
       {{E::rate_limit, 0s, true, Phase::paused, 0, 600s},
        {E::success, 30s, false, Phase::paused, 0, 600s},
        {E::none, 600s, false, Phase::ramping, 1, 600s}}},
      {"a rate limit during the pause is the same episode",
       {{E::rate_limit, 0s, true, Phase::paused, 0, 600s},
        {E::rate_limit, 1s, false, Phase::paused, 0, 600s}}},
      {"a rate limit during the ramp doubles the pause, up to 8 times",
       {{E::rate_limit, 0s, true, Phase::paused, 0, 600s},
        {E::rate_limit, 600s, true, Phase::paused, 0, 1800s},      // 20 min
        {E::success, 1800s, true, Phase::ramping, 2, 1800s},
        {E::rate_limit, 1801s, true, Phase::paused, 0, 4201s},     // 40 min, back to 1
        {E::rate_limit, 4201s, true, Phase::paused, 0, 9001s},     // 80 min (8 × 10)
        {E::rate_limit, 9001s, true, Phase::paused, 0, 13801s},    // still 80 min: the cap
        {E::none, 13801s, false, Phase::ramping, 1, 13801s}}},
      {"back to normal resets the pause to the configured one",
       {{E::rate_limit, 0s, true, Phase::paused, 0, 600s},
        {E::rate_limit, 600s, true, Phase::paused, 0, 1800s},
        {E::success, 1800s, true, Phase::ramping, 2, 1800s},
        {E::success, 1801s, true, Phase::normal, 3, 1801s},
        {E::rate_limit, 1802s, true, Phase::paused, 0, 2402s}}},
      {"no news for the lifetime after the pause: forgotten",
       {{E::rate_limit, 0s, true, Phase::paused, 0, 600s},
        {E::expire, 4199s, false, Phase::ramping, 1, 4199s},
        {E::expire, 4200s, true, Phase::normal, 3, 4200s}}},
      {"a success refreshes the lifetime",
       {{E::rate_limit, 0s, true, Phase::paused, 0, 600s},
        {E::success, 4000s, true, Phase::ramping, 2, 4000s},
        {E::expire, 7599s, false, Phase::ramping, 2, 7599s},
        {E::expire, 7600s, true, Phase::normal, 3, 7600s}}},
      {"the pause itself never expires",
       {{E::rate_limit, 0s, true, Phase::paused, 0, 600s},
        {E::expire, 599s, false, Phase::paused, 0, 600s}}},
  };
  const PaceOptions o = options();
  for (const auto& sc : scenarios) {
    DestinationPace p;
    size_t i = 0;
    for (const auto& st : sc.steps) {
      const TimePoint now = kT0 + st.at;
      bool changed = false;
      switch (st.event) {
        case E::none:
          break;
        case E::rate_limit:
          changed = p.rate_limited(now, o);
          break;
        case E::success:
          changed = p.succeeded(now, o);
          break;
        case E::expire:
          changed = p.expire(now);
          break;
      }
      SCOPED_TRACE(std::string(sc.name) + ", step " + std::to_string(i++));
      EXPECT_EQ(changed, st.want_changed);
      EXPECT_EQ(p.phase(now), st.want_phase);
      EXPECT_EQ(p.allowed(now, o), st.want_allowed);
      EXPECT_EQ(p.next_start(now), kT0 + st.want_next_start);
      EXPECT_EQ(p.limited(), st.want_phase != Phase::normal);
      EXPECT_EQ(p.may_start(now, 0, o), st.want_allowed > 0);
      EXPECT_FALSE(p.may_start(now, st.want_allowed, o));
    }
  }
}

TEST(DestinationPace, ConcurrencyOfOneIsNormalAfterTheFirstSuccess) {
  PaceOptions o = options();
  o.normal = 1;
  DestinationPace p;
  ASSERT_TRUE(p.rate_limited(kT0, o));
  EXPECT_EQ(p.allowed(kT0 + 10min, o), 1u);
  EXPECT_TRUE(p.succeeded(kT0 + 10min, o));
  EXPECT_FALSE(p.limited());
}

TEST(DestinationPace, SavedAndRestored) {
  const PaceOptions o = options();
  DestinationPace p;
  p.rate_limited(kT0 + 500ms, o);
  auto s = p.saved("gmail.com");
  EXPECT_EQ(s.domain, "gmail.com");
  EXPECT_EQ(s.pause, 10min);
  EXPECT_EQ(s.paused_until, kT0 + 601s);  // rounded up to whole seconds, never early
  EXPECT_EQ(s.connections, 1u);
  EXPECT_EQ(s.until, kT0 + 601s + 1h);
  auto r = DestinationPace::restore(s, kT0 + 10s, o);
  EXPECT_EQ(r.phase(kT0 + 10s), Phase::paused);
  EXPECT_EQ(r.next_start(kT0 + 10s), kT0 + 601s);
  EXPECT_EQ(r.allowed(kT0 + 601s, o), 1u);
  EXPECT_EQ(r.saved("gmail.com"), s);
  // A repeat after the restore doubles the saved pause.
  EXPECT_TRUE(r.rate_limited(kT0 + 601s, o));
  EXPECT_EQ(r.pause(), 20min);
}

TEST(DestinationPace, RestoreClamps) {
  const PaceOptions o = options();
  const TimePoint now = kT0;
  struct Case {
    const char* name;
    DestinationState in;
    std::chrono::milliseconds want_pause;
    TimePoint want_paused_until;
    unsigned want_connections;
    TimePoint want_until;
  };
  const std::vector<Case> cases = {
      // A version 1 line: pause unknown, no pause pending, one connection.
      {"version 1", {"a.test", 0ms, TimePoint{}, 1, now + 30min}, 10min, TimePoint{}, 1, now + 30min},
      {"pause below the configured one", {"a.test", 1s, now + 5s, 1, now + 1h}, 10min, now + 5s, 1, now + 1h},
      {"pause above the cap", {"a.test", 24h, now + 24h, 1, now + 25h}, 80min, now + 80min, 1, now + 80min + 1h},
      {"more connections than normal", {"a.test", 10min, now + 5min, 7, now + 1h}, 10min, now + 5min, 3, now + 1h},
  };
  for (const auto& c : cases) {
    auto r = DestinationPace::restore(c.in, now, o);
    EXPECT_TRUE(r.limited()) << c.name;
    EXPECT_EQ(r.pause(), c.want_pause) << c.name;
    EXPECT_EQ(r.paused_until(), c.want_paused_until) << c.name;
    EXPECT_EQ(r.saved("a.test").connections, c.want_connections) << c.name;
    EXPECT_EQ(r.until(), c.want_until) << c.name;
  }
  // A ramp already at the normal concurrency is no limit at all.
  auto done = DestinationPace::restore({"a.test", 10min, TimePoint{}, 3, now + 1h}, now, o);
  EXPECT_FALSE(done.limited());
}

}  // namespace
}  // namespace hikyaku::delivery::state

// AnswerSet and resolve_then(): a synchronous decision run on answers
// fetched asynchronously, against FakeResolver (immediate and deferred) and
// an AnswerCache.
#include "dns/resolution.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "dns/answer_cache.hpp"
#include "dns/fake_resolver.hpp"

namespace hikyaku::dns {
namespace {

// A route decision like the SMTP client's (deterministic): the domain's MX
// hosts in order, each with its addresses; "TEMP" on a DNS error. It looks
// up every host before judging, so one round fetches all their addresses.
std::string route(Resolver& r, const std::string& domain) {
  auto mx = r.mx(domain);
  if (mx.status != Status::ok) return mx.status == Status::nxdomain ? "NXDOMAIN" : "TEMP";
  std::string out;
  bool temp = false;
  for (const auto& host : mx.records) {
    auto a = r.a(host.exchange);
    auto aaaa = r.aaaa(host.exchange);
    temp = temp || a.status == Status::temp_error || aaaa.status == Status::temp_error;
    out += host.exchange + "=";
    for (const auto& ip : a.records) out += ip.to_string() + ",";
    for (const auto& ip : aaaa.records) out += ip.to_string() + ",";
    out += ";";
  }
  return temp ? "TEMP" : out;
}

FakeResolver mail_zone() {
  FakeResolver r;
  r.add_mx("example.test", 10, "mx1.example.test");
  r.add_mx("example.test", 20, "mx2.example.test");
  r.add_a("mx1.example.test", "192.0.2.1");
  r.add_a("mx1.example.test", "2001:db8::1");
  r.add_a("mx2.example.test", "192.0.2.2");
  return r;
}

// Runs resolve_then with route(); returns the result once done ran.
struct RouteRun {
  std::optional<std::string> result;
  int decisions = 0;
};

void start_route(AsyncResolver& resolver, RouteRun& run, unsigned max_rounds = 32) {
  resolve_then<std::string>(
      resolver,
      [&run](Resolver& r) {
        ++run.decisions;
        return route(r, "Example.TEST");
      },
      [&run](std::string result) { run.result = std::move(result); }, max_rounds);
}

TEST(AnswerSet, AnswersWhatItHoldsAndRecordsEachMissOnce) {
  AnswerSet set;
  Answer mx;
  mx.status = Status::ok;
  mx.mx = {{10, "mx.example.test"}};
  set.add(Question::of(Type::mx, "example.test"), mx);
  EXPECT_EQ(set.mx("EXAMPLE.test.").records.at(0).exchange, "mx.example.test") << "names normalised";
  EXPECT_TRUE(set.missing().empty());
  EXPECT_EQ(set.txt("example.test").status, Status::temp_error);
  EXPECT_EQ(set.txt("Example.Test").status, Status::temp_error);
  EXPECT_EQ(set.ptr(*IpAddress::parse("192.0.2.1")).status, Status::temp_error);
  auto missing = set.take_missing();
  EXPECT_EQ(missing, (std::set<Question>{Question::of(Type::txt, "example.test"),
                                         Question::reverse(*IpAddress::parse("192.0.2.1"))}));
  EXPECT_TRUE(set.missing().empty());
  EXPECT_EQ(set.size(), 1u);
}

TEST(ResolveThen, SameResultAsTheSynchronousDecision) {
  FakeResolver sync = mail_zone();
  std::string want = route(sync, "example.test");
  ASSERT_EQ(want, "mx1.example.test=192.0.2.1,2001:db8::1,;mx2.example.test=192.0.2.2,;");

  FakeResolver async = mail_zone();
  RouteRun run;
  start_route(async, run);
  ASSERT_TRUE(run.result) << "immediate answers: done before resolve_then returns";
  EXPECT_EQ(*run.result, want);
  EXPECT_EQ(run.decisions, 3) << "MX, then the hosts' A and AAAA together, then decided";
  EXPECT_EQ(async.asked().size(), 5u) << "each question asked once";
}

TEST(ResolveThen, AnswersDeliveredLater) {
  FakeResolver async = mail_zone();
  async.set_deferred(true);
  RouteRun run;
  start_route(async, run);
  EXPECT_FALSE(run.result);
  EXPECT_EQ(async.pending(), 1u) << "the MX question";
  int deliveries = 0;
  // Out of order, as a real resolver may answer.
  while (!run.result && deliveries < 10) {
    async.deliver_pending(/*newest_first=*/true);
    ++deliveries;
  }
  ASSERT_TRUE(run.result);
  EXPECT_EQ(*run.result, "mx1.example.test=192.0.2.1,2001:db8::1,;mx2.example.test=192.0.2.2,;");
  EXPECT_EQ(deliveries, 2);
  EXPECT_EQ(async.pending(), 0u);
}

TEST(ResolveThen, QuestionAskedTwiceInOneRoundGoesUpstreamOnce) {
  FakeResolver async = mail_zone();
  async.set_deferred(true);
  std::optional<std::string> result;
  resolve_then<std::string>(
      async,
      [](Resolver& r) {
        // The same question three ways (case, trailing dot), and another.
        auto first = r.mx("example.test");
        auto again = r.mx("EXAMPLE.TEST.");
        auto other = r.txt("example.test");
        return std::to_string(first.records.size() + again.records.size()) + "/" +
               std::to_string(static_cast<int>(other.status));
      },
      [&](std::string r) { result = std::move(r); });
  EXPECT_EQ(async.pending(), 2u) << "MX once, TXT once";
  async.deliver_pending();
  ASSERT_TRUE(result);
  EXPECT_EQ(*result, "4/0");
  EXPECT_EQ(async.asked().size(), 2u);
}

// A chain of TXT records: each names the next (like SPF include: chains).
std::string follow_chain(Resolver& r, int& steps) {
  std::string name = "n0.test";
  steps = 0;
  while (true) {
    auto txt = r.txt(name);
    if (txt.status != Status::ok) return "stopped at " + name;
    if (txt.records.empty() || txt.records[0] == "end") return "end after " + std::to_string(steps);
    name = txt.records[0];
    ++steps;
  }
}

TEST(ResolveThen, RoundBoundHolds) {
  FakeResolver zone;
  for (int i = 0; i < 100; ++i) zone.add_txt("n" + std::to_string(i) + ".test", "n" + std::to_string(i + 1) + ".test");
  zone.set_deferred(true);
  int decisions = 0;
  std::optional<std::string> result;
  resolve_then<std::string>(
      zone,
      [&](Resolver& r) {
        ++decisions;
        int steps = 0;
        return follow_chain(r, steps);
      },
      [&](std::string r) { result = std::move(r); }, /*max_rounds=*/5);
  while (!result && zone.deliver_pending() > 0) {
  }
  ASSERT_TRUE(result);
  EXPECT_EQ(decisions, 5);
  EXPECT_EQ(zone.asked().size(), 4u) << "the fifth run's miss is not asked";
  EXPECT_EQ(*result, "stopped at n4.test") << "the last result, its miss a temp_error";

  // The default bound is 32 runs.
  FakeResolver deep;
  for (int i = 0; i < 100; ++i) deep.add_txt("n" + std::to_string(i) + ".test", "n" + std::to_string(i + 1) + ".test");
  decisions = 0;
  result.reset();
  resolve_then<std::string>(
      deep,
      [&](Resolver& r) {
        ++decisions;
        int steps = 0;
        return follow_chain(r, steps);
      },
      [&](std::string r) { result = std::move(r); });
  ASSERT_TRUE(result);
  EXPECT_EQ(decisions, 32);
  EXPECT_EQ(*result, "stopped at n31.test");
}

TEST(ResolveThen, ZeroTtlAnswersLastTheWholeDecision) {
  // Through a cache that keeps nothing with TTL 0 (FakeResolver's default
  // TTL), each question is still asked once: the AnswerSet holds them.
  FakeResolver zone;
  for (int i = 0; i < 10; ++i) zone.add_txt("n" + std::to_string(i) + ".test", "n" + std::to_string(i + 1) + ".test");
  zone.add_txt("n10.test", "end");
  AnswerCache cache(zone);
  std::optional<std::string> result;
  resolve_then<std::string>(
      cache,
      [](Resolver& r) {
        int steps = 0;
        return follow_chain(r, steps);
      },
      [&](std::string r) { result = std::move(r); });
  ASSERT_TRUE(result);
  EXPECT_EQ(*result, "end after 10");
  EXPECT_EQ(zone.asked().size(), 11u);
  EXPECT_EQ(cache.size(), 0u) << "nothing kept in the cache";
}

TEST(ResolveThen, TwoDecisionsShareUpstreamQueriesThroughTheCache) {
  FakeResolver zone = mail_zone();
  zone.set_deferred(true);
  AnswerCache cache(zone);
  RouteRun first, second;
  start_route(cache, first);
  start_route(cache, second);
  while ((!first.result || !second.result) && zone.deliver_pending() > 0) {
  }
  ASSERT_TRUE(first.result && second.result);
  EXPECT_EQ(*first.result, *second.result);
  EXPECT_EQ(zone.asked().size(), 5u) << "coalesced: each question once for both";
}

TEST(ResolveThen, DnsErrorsReachTheDecision_RFC7208_2_6_7) {
  FakeResolver zone = mail_zone();
  zone.set_temp_error("mx2.example.test");
  RouteRun run;
  start_route(zone, run);
  ASSERT_TRUE(run.result);
  EXPECT_EQ(*run.result, "TEMP") << "an upstream temp_error is an answer, not a miss";
  EXPECT_EQ(run.decisions, 3);

  FakeResolver empty;
  RouteRun nx;
  start_route(empty, nx);
  EXPECT_EQ(nx.result, "NXDOMAIN");
}

}  // namespace
}  // namespace hikyaku::dns

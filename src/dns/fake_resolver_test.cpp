// FakeResolver as an AsyncResolver: immediate and deferred delivery.
#include "dns/fake_resolver.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace hikyaku::dns {
namespace {

FakeResolver zone() {
  FakeResolver r;
  r.add_txt("example.test", "v=spf1 mx -all");
  r.add_mx("example.test", 10, "mx.example.test");
  r.add_a("mx.example.test", "192.0.2.1");
  r.add_a("mx.example.test", "2001:db8::1");
  r.add_ptr("192.0.2.1", "mx.example.test");
  r.set_temp_error("broken.test");
  return r;
}

TEST(FakeResolverAsync, AnswersLikeTheSynchronousLookups) {
  FakeResolver r = zone();
  std::vector<Answer> got;
  auto keep = [&](const Answer& a) { got.push_back(a); };
  r.resolve(Question::of(Type::txt, "EXAMPLE.test."), keep);
  r.resolve(Question::of(Type::mx, "example.test"), keep);
  r.resolve(Question::of(Type::a, "mx.example.test"), keep);
  r.resolve(Question::of(Type::aaaa, "mx.example.test"), keep);
  r.resolve(Question::reverse(*IpAddress::parse("192.0.2.1")), keep);
  r.resolve(Question::of(Type::txt, "nope.example.test"), keep);
  r.resolve(Question::of(Type::txt, "mx.example.test"), keep);
  r.resolve(Question::of(Type::a, "broken.test"), keep);
  ASSERT_EQ(got.size(), 8u) << "immediate mode answers inside resolve()";
  EXPECT_EQ(got[0].texts, std::vector<std::string>{"v=spf1 mx -all"});
  ASSERT_EQ(got[1].mx.size(), 1u);
  EXPECT_EQ(got[1].mx[0].exchange, "mx.example.test");
  ASSERT_EQ(got[2].addresses.size(), 1u);
  EXPECT_EQ(got[2].addresses[0].to_string(), "192.0.2.1");
  ASSERT_EQ(got[3].addresses.size(), 1u);
  EXPECT_EQ(got[3].addresses[0].to_string(), "2001:db8::1");
  EXPECT_EQ(got[4].texts, std::vector<std::string>{"mx.example.test"});
  EXPECT_EQ(got[5].status, Status::nxdomain);
  EXPECT_EQ(got[6].status, Status::ok) << "RFC 2308 NODATA";
  EXPECT_TRUE(got[6].texts.empty());
  EXPECT_EQ(got[7].status, Status::temp_error);
  EXPECT_EQ(r.queries(), 8);
  EXPECT_EQ(r.asked().size(), 8u);
}

TEST(FakeResolverAsync, DeferredAnswersWaitForDeliverPending) {
  FakeResolver r = zone();
  r.set_deferred(true);
  std::vector<std::string> order;
  r.resolve(Question::of(Type::txt, "example.test"), [&](const Answer&) { order.push_back("txt"); });
  r.resolve(Question::of(Type::mx, "example.test"), [&](const Answer& a) {
    order.push_back("mx");
    // Asked from a callback: waits for the next delivery.
    r.resolve(Question::of(Type::a, a.mx.at(0).exchange), [&](const Answer&) { order.push_back("a"); });
  });
  EXPECT_TRUE(order.empty());
  EXPECT_EQ(r.pending(), 2u);
  EXPECT_EQ(r.deliver_pending(/*newest_first=*/true), 2u);
  EXPECT_EQ(order, (std::vector<std::string>{"mx", "txt"}));
  EXPECT_EQ(r.pending(), 1u);
  EXPECT_EQ(r.deliver_pending(), 1u);
  EXPECT_EQ(order, (std::vector<std::string>{"mx", "txt", "a"}));
  EXPECT_EQ(r.deliver_pending(), 0u);
}

}  // namespace
}  // namespace hikyaku::dns

// UnboundWatch: an io_context drives UnboundResolver's asynchronous role
// against a real dnsmasq on loopback (the fixture of the dns tests).
#include "dns/asio/unbound_watch.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <string>

#include "dns/answer_cache.hpp"
#include "dns/dnsmasq_for_test.hpp"
#include "dns/resolution.hpp"

namespace hikyaku::dns::asio {
namespace {

class UnboundWatchTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server = new test_support::Dnsmasq({
        "--mx-host=example.test,mx.example.test,10",
        "--host-record=mx.example.test,127.0.0.2,::2",
        "--txt-record=example.test,v=spf1 mx -all",
        "--ptr-record=3.0.0.127.in-addr.arpa,host.example.test",
    });
  }
  static void TearDownTestSuite() {
    delete server;
    server = nullptr;
  }
  void SetUp() override {
    if (!server->ready()) GTEST_FAIL() << "dnsmasq did not start on port " << server->port();
    auto created = UnboundResolver::create({config::Endpoint{"127.0.0.1", server->port()}});
    ASSERT_TRUE(created.ok()) << created.error().message;
    resolver_ = std::move(created).value();
  }
  // Run the loop until `finished` or 10 s (a guard, not a synchronisation).
  bool run_until(const std::function<bool()>& finished) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!finished() && std::chrono::steady_clock::now() < deadline) {
      io_.run_for(std::chrono::milliseconds(50));
      if (io_.stopped()) io_.restart();
    }
    return finished();
  }

  static test_support::Dnsmasq* server;
  boost::asio::io_context io_;
  std::unique_ptr<UnboundResolver> resolver_;
};

test_support::Dnsmasq* UnboundWatchTest::server = nullptr;

TEST_F(UnboundWatchTest, ResolvesEveryTypeOnTheLoop_RFC1035_RFC2308) {
  UnboundWatch watch(io_, *resolver_);
  std::map<std::string, Answer> got;
  auto keep = [&](const std::string& name) { return [&got, name](const Answer& a) { got[name] = a; }; };
  resolver_->resolve(Question::of(Type::txt, "example.test"), keep("txt"));
  resolver_->resolve(Question::of(Type::mx, "example.test"), keep("mx"));
  resolver_->resolve(Question::of(Type::a, "mx.example.test"), keep("a"));
  resolver_->resolve(Question::of(Type::aaaa, "mx.example.test"), keep("aaaa"));
  resolver_->resolve(Question::reverse(*IpAddress::parse("127.0.0.3")), keep("ptr"));
  resolver_->resolve(Question::of(Type::a, "nope.example.test"), keep("nxdomain"));
  resolver_->resolve(Question::of(Type::txt, "mx.example.test"), keep("nodata"));
  EXPECT_TRUE(got.empty()) << "nothing answered before the loop runs";
  ASSERT_TRUE(run_until([&] { return got.size() == 7; })) << got.size() << " of 7 answered";

  EXPECT_EQ(got["txt"].status, Status::ok);
  EXPECT_EQ(got["txt"].texts, std::vector<std::string>{"v=spf1 mx -all"});
  ASSERT_EQ(got["mx"].mx.size(), 1u);
  EXPECT_EQ(got["mx"].mx[0], (MxRecord{10, "mx.example.test"}));
  ASSERT_EQ(got["a"].addresses.size(), 1u);
  EXPECT_EQ(got["a"].addresses[0].to_string(), "127.0.0.2");
  ASSERT_EQ(got["aaaa"].addresses.size(), 1u);
  EXPECT_EQ(got["aaaa"].addresses[0].to_string(), "::2");
  EXPECT_EQ(got["ptr"].texts, std::vector<std::string>{"host.example.test"});
  EXPECT_EQ(got["nxdomain"].status, Status::nxdomain);
  EXPECT_EQ(got["nodata"].status, Status::ok);
  EXPECT_TRUE(got["nodata"].texts.empty());
  EXPECT_EQ(resolver_->outstanding(), 0u);
}

TEST_F(UnboundWatchTest, DecisionThroughCacheAndResolveThen) {
  UnboundWatch watch(io_, *resolver_);
  AnswerCache cache(*resolver_);
  std::optional<std::string> result;
  resolve_then<std::string>(
      cache,
      [](Resolver& r) {
        auto mx = r.mx("example.test");
        if (mx.status != Status::ok || mx.records.empty()) return std::string("no mx");
        auto a = r.a(mx.records[0].exchange);
        if (a.status != Status::ok || a.records.empty()) return std::string("no address");
        return a.records[0].to_string();
      },
      [&](std::string r) { result = std::move(r); });
  ASSERT_TRUE(run_until([&] { return result.has_value(); }));
  EXPECT_EQ(*result, "127.0.0.2");
}

TEST_F(UnboundWatchTest, StopLeavesTheFdToLibunbound) {
  int fd = resolver_->fd();
  std::optional<Answer> first;
  {
    UnboundWatch watch(io_, *resolver_);
    EXPECT_TRUE(watch.running());
    resolver_->resolve(Question::of(Type::txt, "example.test"), [&](const Answer& a) { first = a; });
    ASSERT_TRUE(run_until([&] { return first.has_value(); }));
    watch.stop();
    EXPECT_FALSE(watch.running());
    watch.stop();  // idempotent
  }
  io_.restart();
  io_.poll();  // the cancelled wait's handler runs after the watch is gone
  EXPECT_NE(fcntl(fd, F_GETFD), -1) << "the watch released libunbound's fd instead of closing it";

  // A stopped watch processes nothing; a new watch picks the answer up.
  std::optional<Answer> second;
  resolver_->resolve(Question::of(Type::mx, "example.test"), [&](const Answer& a) { second = a; });
  io_.restart();
  io_.run_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(second) << "no watch, no process()";
  UnboundWatch again(io_, *resolver_);
  ASSERT_TRUE(run_until([&] { return second.has_value(); }));
  EXPECT_EQ(second->mx.size(), 1u);
}

}  // namespace
}  // namespace hikyaku::dns::asio

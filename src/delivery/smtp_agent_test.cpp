// SmtpAgent's routing (RFC 5321 §5.1, RFC 7505) against dns::FakeResolver,
// what deliver_now() takes on the event loop, and the SRS secret file. The
// Asio conversation itself is covered by tests/integration/test_smtp_client.py
// against aiosmtpd far sides.
#include "delivery/smtp_agent.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "dns/caching_resolver.hpp"
#include "dns/fake_resolver.hpp"
#include "net/asio.hpp"

namespace hikyaku::delivery {
namespace {

using smtp::client::Outcome;

TEST(ResolveRoute, Rfc5321_5_1_MxOrderWithAddresses) {
  dns::FakeResolver r;
  r.add_mx("gmail.test", 20, "alt1.gmail.test");
  r.add_mx("gmail.test", 10, "mx.gmail.test");
  r.add_a("mx.gmail.test", "127.0.0.2");
  r.add_a("mx.gmail.test", "::2");
  r.add_a("alt1.gmail.test", "127.0.0.3");
  std::mt19937 rng(7);
  auto route = resolve_route(r, "gmail.test", "mx.example.test", rng);
  ASSERT_FALSE(route.failure);
  ASSERT_EQ(route.hosts.size(), 2u);
  EXPECT_EQ(route.hosts[0].name, "mx.gmail.test");
  EXPECT_EQ(route.hosts[0].addresses, (std::vector<std::string>{"127.0.0.2", "::2"}));  // A before AAAA
  EXPECT_EQ(route.hosts[1].addresses, (std::vector<std::string>{"127.0.0.3"}));
}

TEST(ResolveRoute, Failures) {
  dns::FakeResolver r;
  r.add_mx("nullmx.test", 0, "");
  r.add_a("implicit.test", "127.0.0.3");
  r.add_mx("self.test", 10, "mx.example.test");
  r.add_mx("noaddr.test", 10, "ghost.test");
  r.add_mx("tempaddr.test", 10, "flaky.test");
  r.set_temp_error("flaky.test");
  r.set_temp_error("servfail.test");
  struct Case {
    std::string name, domain;
    bool fail;
    Outcome::Kind kind;
    std::string status;
  };
  using K = Outcome::Kind;
  const std::vector<Case> cases = {
      {"rfc7505_null_mx", "nullmx.test", true, K::permanent, "5.1.10"},
      {"nxdomain", "nowhere.test", true, K::permanent, "5.1.2"},
      {"dns_temp", "servfail.test", true, K::temporary, "4.4.3"},
      {"rfc5321_5.1_own_name_only", "self.test", true, K::permanent, "5.4.6"},
      {"no_address", "noaddr.test", true, K::permanent, "5.4.4"},
      {"address_lookup_temp", "tempaddr.test", true, K::temporary, "4.4.3"},
      {"rfc5321_5.1_implicit_mx", "implicit.test", false, K::temporary, ""},
  };
  for (const auto& c : cases) {
    std::mt19937 rng(1);
    auto route = resolve_route(r, c.domain, "mx.example.test", rng);
    ASSERT_EQ(route.failure.has_value(), c.fail) << c.name;
    if (!c.fail) {
      ASSERT_EQ(route.hosts.size(), 1u) << c.name;
      EXPECT_EQ(route.hosts[0].name, c.domain) << c.name;
      continue;
    }
    EXPECT_EQ(route.failure->kind, c.kind) << c.name;
    EXPECT_EQ(route.failure->status, c.status) << c.name << ": got " << route.failure->status;
  }
}

// deliver_now() runs on the event loop: it takes a forward only from memory,
// with a cheap transform and a cached route, never asking DNS itself; the
// conversation then reports later, never within the call.
TEST(SmtpAgentNow, TakesOnlyACachedRouteAMessageInMemoryAndACheapTransform) {
  const auto dir = std::filesystem::temp_directory_path() / ("hk-agent-now-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  config::Config config;
  config.hostname = "mx.example.test";
  config.data_dir = dir;
  dns::FakeResolver zone;
  zone.add_mx("gmail.test", 10, "mx.gmail.test");
  zone.add_a("mx.gmail.test", "127.0.0.2");
  zone.set_ttl(300);
  dns::CachingResolver cache(zone);
  boost::asio::io_context io;
  boost::asio::thread_pool pool(1);
  auto agent = SmtpAgent::create(config, io, pool, cache);
  ASSERT_TRUE(agent.ok());

  mail::Envelope envelope;
  envelope.sender = mail::Address{"s", "example.org"};
  queue::DeliveryRequest request;
  request.queue_id = "Q1";
  request.envelope = &envelope;
  request.recipient = "me@example.test";
  request.target = mail::Target{mail::Target::Kind::forward, "me@gmail.test"};
  request.message = std::make_shared<const std::string>("Subject: t\r\n\r\nx\r\n");
  request.message_size = request.message->size();
  int calls = 0;
  queue::DeliveryOutcome got;
  auto done = [&](queue::DeliveryOutcome o) {
    got = std::move(o);
    ++calls;
  };

  queue::DeliveryRequest on_disk = request;
  on_disk.message = nullptr;
  EXPECT_FALSE((*agent)->deliver_now(on_disk, done)) << "a file to read";
  EXPECT_FALSE((*agent)->deliver_now(request, done)) << "route not cached";
  EXPECT_EQ(zone.queries(), 0) << "a miss never asks DNS on the event loop";

  cache.mx("gmail.test");
  cache.a("mx.gmail.test");
  cache.aaaa("mx.gmail.test");
  const int warmed = zone.queries();
  MessageTransform signing;
  signing.apply = [](const queue::DeliveryRequest&, std::string m, dns::Resolver&) -> base::Result<std::string> {
    return m;
  };
  (*agent)->set_transform(signing);  // no `cheap`: treated as costly
  EXPECT_FALSE((*agent)->deliver_now(request, done)) << "a transform that may sign";

  MessageTransform cheap = signing;
  cheap.cheap = [](const queue::DeliveryRequest&) { return true; };
  (*agent)->set_transform(cheap);
  EXPECT_TRUE((*agent)->deliver_now(request, done));
  EXPECT_EQ(zone.queries(), warmed);
  EXPECT_EQ(calls, 0) << "done is called later, never within deliver_now()";
  (*agent)->stop();  // the io_context never ran: reported as interrupted
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(got.kind, queue::DeliveryOutcome::Kind::temporary);
  EXPECT_EQ(got.status, "4.3.2");
  pool.join();
  std::filesystem::remove_all(dir);
}

TEST(SrsSecrets, OnePerLine) {
  auto dir = std::filesystem::temp_directory_path() / ("srs-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir / "s") << "  first-secret \r\n\nsecond\n";
  }
  auto s = read_srs_secrets(dir / "s");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, (std::vector<std::string>{"first-secret", "second"}));
  {
    std::ofstream(dir / "empty") << "\n\n";
  }
  EXPECT_FALSE(read_srs_secrets(dir / "empty").ok());
  EXPECT_FALSE(read_srs_secrets(dir / "missing").ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hikyaku::delivery

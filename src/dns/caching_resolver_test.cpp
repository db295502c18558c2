#include "dns/caching_resolver.hpp"

#include <gtest/gtest.h>

#include "dns/fake_resolver.hpp"

namespace hikyaku::dns {
namespace {

// A resolver whose answers carry a TTL, counting the queries it gets.
class TtlResolver final : public Resolver {
 public:
  uint32_t ttl = 300;
  Status status = Status::ok;
  int queries = 0;
  LookupResult<std::string> txt(std::string_view) override { return make<std::string>("v=spf1 -all"); }
  LookupResult<MxRecord> mx(std::string_view) override { return make<MxRecord>(MxRecord{10, "mx.example"}); }
  LookupResult<IpAddress> a(std::string_view) override { return make<IpAddress>(*IpAddress::parse("192.0.2.1")); }
  LookupResult<IpAddress> aaaa(std::string_view) override { return make<IpAddress>(*IpAddress::parse("::1")); }
  LookupResult<std::string> ptr(const IpAddress&) override { return make<std::string>("host.example"); }

 private:
  template <class T>
  LookupResult<T> make(T value) {
    ++queries;
    LookupResult<T> r;
    r.status = status;
    r.ttl = ttl;
    if (status == Status::ok) r.records.push_back(std::move(value));
    return r;
  }
};

TEST(CachingResolver, AnswersWithinTtlComeFromTheCache_RFC1035_3_2_1) {
  TtlResolver inner;
  CachingResolver cache(inner);
  EXPECT_EQ(cache.mx("Example.COM").records.at(0).exchange, "mx.example");
  EXPECT_EQ(cache.mx("example.com.").records.at(0).exchange, "mx.example");
  EXPECT_EQ(inner.queries, 1) << "same name, any case or trailing dot: one query";
  cache.txt("example.com");
  EXPECT_EQ(inner.queries, 2) << "another type is another entry";
}

TEST(CachingResolver, ZeroTtlAndErrorsAreNeverCached_RFC2308) {
  TtlResolver inner;
  CachingResolver cache(inner);
  inner.ttl = 0;
  cache.a("a.example");
  cache.a("a.example");
  EXPECT_EQ(inner.queries, 2);
  inner.ttl = 300;
  inner.status = Status::temp_error;
  cache.a("b.example");
  cache.a("b.example");
  EXPECT_EQ(inner.queries, 4) << "a SERVFAIL/timeout must be asked again";
  inner.status = Status::nxdomain;
  EXPECT_EQ(cache.a("c.example").status, Status::nxdomain);
  EXPECT_EQ(cache.a("c.example").status, Status::nxdomain);
  EXPECT_EQ(inner.queries, 5) << "NXDOMAIN is cached for its TTL";
}

TEST(CachingResolver, NegativeAnswerWithoutSoaKeptBriefly_RFC2308_5) {
  // TTL 0 on NXDOMAIN/NODATA: the server sent no SOA (dnsmasq). Kept 30 s
  // like AnswerCache; a positive answer with TTL 0 still is not.
  TtlResolver inner;
  CachingResolver cache(inner);
  inner.ttl = 0;
  inner.status = Status::nxdomain;
  cache.txt("_dmarc.example");
  EXPECT_EQ(cache.txt("_dmarc.example").status, Status::nxdomain);
  EXPECT_EQ(inner.queries, 1);
  CacheOnlyResolver view(cache);
  EXPECT_EQ(view.txt("_dmarc.example").status, Status::nxdomain);
  EXPECT_FALSE(view.missed()) << "the event loop sees it too";
}

TEST(CachingResolver, BoundedSize) {
  TtlResolver inner;
  CachingResolver cache(inner, 3600, 4);
  for (int i = 0; i < 10; ++i) cache.a("h" + std::to_string(i) + ".example");
  EXPECT_LE(cache.size(), 4u);
}

TEST(CacheOnlyResolver, AnswersOnlyWhatTheCacheHoldsAndRecordsTheMiss) {
  TtlResolver inner;
  CachingResolver cache(inner);
  CacheOnlyResolver cold(cache);
  EXPECT_EQ(cold.mx("example.com").status, Status::temp_error);
  EXPECT_TRUE(cold.missed());
  EXPECT_EQ(inner.queries, 0) << "a miss never reaches the blocking resolver";

  cache.mx("example.com");
  cache.a("mx.example");
  CacheOnlyResolver warm(cache);
  EXPECT_EQ(warm.mx("EXAMPLE.com.").records.at(0).exchange, "mx.example");
  EXPECT_EQ(warm.a("mx.example").records.size(), 1u);
  EXPECT_FALSE(warm.missed());
  EXPECT_EQ(warm.aaaa("mx.example").status, Status::temp_error);
  EXPECT_TRUE(warm.missed()) << "one miss voids the whole decision";
  EXPECT_EQ(inner.queries, 2);
}

TEST(CacheOnlyResolver, ExpiredAndUncacheableAnswersAreNotAtHand_RFC2308_5) {
  TtlResolver inner;
  CachingResolver cache(inner);
  inner.status = Status::temp_error;  // SERVFAIL: never cached
  cache.txt("example.com");
  inner.status = Status::ok;
  inner.ttl = 0;  // "do not cache"
  cache.a("example.com");
  CacheOnlyResolver view(cache);
  view.txt("example.com");
  EXPECT_TRUE(view.missed());
  CacheOnlyResolver view2(cache);
  view2.a("example.com");
  EXPECT_TRUE(view2.missed());

  // A resolver without a cache has nothing at hand.
  FakeResolver fake;
  fake.add_a("example.com", "192.0.2.1");
  CacheOnlyResolver direct(fake);
  EXPECT_EQ(direct.a("example.com").status, Status::temp_error);
  EXPECT_TRUE(direct.missed());
}

}  // namespace
}  // namespace hikyaku::dns

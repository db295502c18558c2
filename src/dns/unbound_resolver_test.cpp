// UnboundResolver against a real dnsmasq on a free loopback port (PEERS.md),
// plus table tests of the wire-format rdata parsers (RFC 1035 §3.3).
#include "dns/unbound_resolver.hpp"

#include <gtest/gtest.h>
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "dns/dnsmasq_for_test.hpp"

namespace hikyaku::dns {
namespace {

using namespace std::string_literals;

// ---------------------------------------------------------------------------
// Wire parsers.

TEST(UnboundWire, TxtConcatenatesCharacterStrings_RFC7208_3_3) {
  struct Case {
    const char* name;
    std::string rdata;
    std::optional<std::string> want;
  };
  const Case cases[] = {
      {"one string", "\x05hello"s, "hello"},
      {"two strings", "\x03"s + "v=s" + "\x05pf1 a", "v=spf1 a"},
      {"empty string", "\x00"s, ""},
      {"truncated", "\x05hel"s, std::nullopt},
  };
  for (const auto& c : cases) {
    auto got = wire::parse_txt(c.rdata);
    EXPECT_EQ(got, c.want) << c.name;
  }
}

TEST(UnboundWire, MxAndNullMx_RFC1035_3_3_9_RFC7505) {
  auto mx = wire::parse_mx("\x00\x0a\x02mx\x07" "example\x04test\x00"s);
  ASSERT_TRUE(mx);
  EXPECT_EQ(mx->preference, 10);
  EXPECT_EQ(mx->exchange, "mx.example.test");

  auto null_mx = wire::parse_mx("\x00\x00\x00"s);
  ASSERT_TRUE(null_mx);
  EXPECT_EQ(null_mx->preference, 0);
  EXPECT_EQ(null_mx->exchange, "");

  EXPECT_FALSE(wire::parse_mx("\x00\x0a"s)) << "no exchange";
  EXPECT_FALSE(wire::parse_mx("\x00\x0a\xc0\x0c"s)) << "compression pointer";
  EXPECT_FALSE(wire::parse_mx("\x00\x0a\x02mx\x00junk"s)) << "trailing bytes";
}

TEST(UnboundWire, NameEscapesOddBytes_RFC1035_5_1) {
  EXPECT_EQ(wire::parse_name("\x03" "a.b\x01 \x00"s), "a\\.b.\\032");
  EXPECT_FALSE(wire::parse_name("\x05" "ab"s)) << "label past the end";
  std::string too_long;
  for (int i = 0; i < 5; ++i) too_long += "\x3f" + std::string(63, 'a');
  too_long += '\0';
  EXPECT_FALSE(wire::parse_name(too_long)) << "more than 255 octets";
}

TEST(UnboundWire, NameAtMost255OctetsWithTheRootLabel_RFC1035_3_1) {
  // "label octets and label length octets" — the root's zero length octet
  // included: three 63-octet labels and one of 61 make 255 octets.
  std::string three(3 * 64, 'a');
  for (size_t i = 0; i < 3; ++i) three[i * 64] = '\x3f';
  auto name = [&](size_t last) { return three + static_cast<char>(last) + std::string(last, 'b') + '\0'; };
  ASSERT_EQ(name(61).size(), 255u);
  EXPECT_TRUE(wire::parse_name(name(61)));
  EXPECT_FALSE(wire::parse_name(name(62))) << "256 octets (found by fuzz/dns_rdata_fuzz.cpp's bound)";
  EXPECT_FALSE(wire::parse_mx("\x00\x0a"s + name(62)));
}

// A DNS message: header with the counts, then the sections' bytes.
std::string message(uint16_t qd, uint16_t an, uint16_t ns, const std::string& body) {
  std::string m = "\x12\x34\x81\x83"s;  // ID, QR RD RA, NXDOMAIN
  for (uint16_t n : {qd, an, ns, uint16_t{0}}) {
    m += static_cast<char>(n >> 8);
    m += static_cast<char>(n & 0xff);
  }
  return m + body;
}

TEST(UnboundWire, NegativeTtlIsTheSoaMinimum_RFC2308_5) {
  const std::string question = "\x04nope\x07" "example\x04test\x00\x00\x10\x00\x01"s;  // at offset 12
  // SOA for example.test (a pointer to offset 17), TTL 3600, MINIMUM 300.
  auto soa = [](uint32_t ttl, uint32_t minimum) {
    std::string rdata = "\x02ns\xc0\x11\x0ahostmaster\xc0\x11"s;
    for (uint32_t v : {1u, 7200u, 900u, 1209600u, minimum})
      for (int shift = 24; shift >= 0; shift -= 8) rdata += static_cast<char>((v >> shift) & 0xff);
    std::string rr = "\xc0\x11\x00\x06\x00\x01"s;
    for (int shift = 24; shift >= 0; shift -= 8) rr += static_cast<char>((ttl >> shift) & 0xff);
    rr += static_cast<char>(rdata.size() >> 8);
    rr += static_cast<char>(rdata.size() & 0xff);
    return rr + rdata;
  };
  // The EDNS OPT record whose "TTL" is the DO flag (what fooled ub_result.ttl).
  const std::string opt = "\x00\x00\x29\x04\xd0\x00\x00\x80\x00\x00\x00"s;
  struct Case {
    const char* name;
    std::string m;
    std::optional<uint32_t> want;
  };
  const Case cases[] = {
      {"SOA MINIMUM below its TTL", message(1, 0, 1, question + soa(3600, 300)), 300u},
      {"SOA TTL below MINIMUM", message(1, 0, 1, question + soa(60, 300)), 60u},
      {"no SOA (dnsmasq), OPT not counted", message(1, 0, 0, question + opt), std::nullopt},
      {"truncated SOA", message(1, 0, 1, (question + soa(60, 300)).substr(0, question.size() + 20)), std::nullopt},
      {"short header", "\x12\x34"s, std::nullopt},
      {"TTL with the top bit set is 0 (RFC 2181 §8)", message(1, 0, 1, question + soa(0x80000000u, 0x80000001u)), 0u},
  };
  for (const auto& c : cases) EXPECT_EQ(wire::negative_ttl(c.m), c.want) << c.name;
}

TEST(UnboundWire, Addresses) {
  auto a = wire::parse_a("\x7f\x00\x00\x02"s);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->to_string(), "127.0.0.2");
  EXPECT_FALSE(wire::parse_a("\x7f\x00\x00"s));
  auto aaaa = wire::parse_aaaa(std::string(15, '\0') + "\x02");
  ASSERT_TRUE(aaaa);
  EXPECT_TRUE(aaaa->v6);
  EXPECT_EQ(aaaa->to_string(), "::2");
  EXPECT_FALSE(wire::parse_aaaa(std::string(4, '\0')));
}

// ---------------------------------------------------------------------------
// A real dnsmasq on loopback.

using test_support::Dnsmasq;

class UnboundResolverTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dnsmasq_ = new Dnsmasq({
        "--mx-host=example.test,mx.example.test,10",
        "--mx-host=example.test,mx2.example.test,20",
        "--host-record=mx.example.test,127.0.0.2,::2",
        "--txt-record=example.test,v=spf1 mx -all",
        // Two character-strings: a DKIM key longer than 255 bytes is split so.
        "--txt-record=sel._domainkey.example.test," + std::string(200, 'a') + "," + std::string(100, 'b'),
        "--ptr-record=3.0.0.127.in-addr.arpa,host.example.test",
    });
  }
  static void TearDownTestSuite() {
    delete dnsmasq_;
    dnsmasq_ = nullptr;
  }
  void SetUp() override {
    if (!dnsmasq_->ready()) GTEST_FAIL() << "dnsmasq did not start on port " << dnsmasq_->port();
    auto created = UnboundResolver::create({config::Endpoint{"127.0.0.1", dnsmasq_->port()}});
    ASSERT_TRUE(created.ok()) << created.error().message;
    resolver_ = std::move(created).value();
  }

  static Dnsmasq* dnsmasq_;
  std::unique_ptr<UnboundResolver> resolver_;
};

Dnsmasq* UnboundResolverTest::dnsmasq_ = nullptr;

TEST_F(UnboundResolverTest, TxtFromReservedTestTld_RFC6761_6_2) {
  auto r = resolver_->txt("example.test");
  ASSERT_EQ(r.status, Status::ok);
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.records[0], "v=spf1 mx -all");
}

TEST_F(UnboundResolverTest, TxtSplitStringsAreJoined_RFC6376_3_6_2_2) {
  auto r = resolver_->txt("sel._domainkey.example.test.");
  ASSERT_EQ(r.status, Status::ok);
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.records[0], std::string(200, 'a') + std::string(100, 'b'));
}

TEST_F(UnboundResolverTest, MxRecords_RFC5321_5_1) {
  auto r = resolver_->mx("example.test");
  ASSERT_EQ(r.status, Status::ok);
  ASSERT_EQ(r.records.size(), 2u);
  std::sort(r.records.begin(), r.records.end(),
            [](const MxRecord& x, const MxRecord& y) { return x.preference < y.preference; });
  EXPECT_EQ(r.records[0].preference, 10);
  EXPECT_EQ(r.records[0].exchange, "mx.example.test");
  EXPECT_EQ(r.records[1].preference, 20);
  EXPECT_EQ(r.records[1].exchange, "mx2.example.test");
}

TEST_F(UnboundResolverTest, AAndAaaa) {
  auto a = resolver_->a("mx.example.test");
  ASSERT_EQ(a.status, Status::ok);
  ASSERT_EQ(a.records.size(), 1u);
  EXPECT_EQ(a.records[0].to_string(), "127.0.0.2");
  auto aaaa = resolver_->aaaa("mx.example.test");
  ASSERT_EQ(aaaa.status, Status::ok);
  ASSERT_EQ(aaaa.records.size(), 1u);
  EXPECT_EQ(aaaa.records[0].to_string(), "::2");
}

TEST_F(UnboundResolverTest, PtrInLoopbackReverseZone_RFC6761_6_3) {
  // 127.in-addr.arpa is answered locally by default; with servers set it is
  // asked of them like every other name.
  auto r = resolver_->ptr(*IpAddress::parse("127.0.0.3"));
  ASSERT_EQ(r.status, Status::ok);
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.records[0], "host.example.test");
}

TEST_F(UnboundResolverTest, NxdomainVsNodata_RFC2308) {
  EXPECT_EQ(resolver_->txt("nope.example.test").status, Status::nxdomain);
  EXPECT_EQ(resolver_->a("nope.example.test").status, Status::nxdomain);
  auto nodata = resolver_->txt("mx.example.test");
  EXPECT_EQ(nodata.status, Status::ok);
  EXPECT_TRUE(nodata.records.empty());
}

TEST_F(UnboundResolverTest, BadNameIsPermError) {
  EXPECT_EQ(resolver_->txt("").status, Status::perm_error);
  EXPECT_EQ(resolver_->txt(std::string(300, 'a')).status, Status::perm_error);
  EXPECT_EQ(resolver_->txt("a\0b"s).status, Status::perm_error);
}

TEST_F(UnboundResolverTest, ConcurrentLookupsShareOneContext) {
  std::vector<std::thread> threads;
  std::vector<int> good(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        auto r = resolver_->mx("example.test");
        auto n = resolver_->a("nope.example.test");
        if (r.status == Status::ok && r.records.size() == 2 && n.status == Status::nxdomain) ++good[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(good[t], 25) << "thread " << t;
}

TEST_F(UnboundResolverTest, RefusedIsTempError_RFC7208_2_6_7) {
  // dnsmasq answers REFUSED for names outside its --local zones: any rcode
  // but NOERROR/NXDOMAIN is temporary. (A silent server also gives
  // temp_error, after libunbound's retries: about 17 s, too slow to test here.)
  EXPECT_EQ(resolver_->txt("example.com").status, Status::temp_error);
}

// ---------------------------------------------------------------------------
// The asynchronous role, driven by poll() on fd() (dns/asio/ does the same
// with Asio).

// Wait for fd() and process() until `finished` or 10 s; false on timeout.
bool drive(UnboundResolver& r, const std::function<bool()>& finished) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!finished()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    pollfd p{r.fd(), POLLIN, 0};
    (void)poll(&p, 1, 100);
    r.process();
  }
  return true;
}

TEST_F(UnboundResolverTest, AsyncAnswersFollowTheSynchronousRules_RFC2308_RFC7208_2_6_7) {
  struct Case {
    const char* name;
    Question q;
  };
  const Case cases[] = {
      {"txt", Question::of(Type::txt, "example.test")},
      {"split txt (RFC 6376 §3.6.2.2)", Question::of(Type::txt, "sel._domainkey.example.test")},
      {"mx", Question::of(Type::mx, "example.test")},
      {"a", Question::of(Type::a, "mx.example.test")},
      {"aaaa", Question::of(Type::aaaa, "mx.example.test")},
      {"ptr (RFC 6761 §6.3)", Question::reverse(*IpAddress::parse("127.0.0.3"))},
      {"nxdomain", Question::of(Type::txt, "nope.example.test")},
      {"nodata", Question::of(Type::txt, "mx.example.test")},
      {"refused: temp_error", Question::of(Type::txt, "example.com")},
      {"bad name: perm_error", Question{Type::txt, std::string(300, 'a')}},
  };
  std::vector<std::optional<Answer>> got(std::size(cases));
  for (size_t i = 0; i < std::size(cases); ++i)
    resolver_->resolve(cases[i].q, [&got, i](const Answer& a) { got[i] = a; });
  EXPECT_TRUE(got.back()) << "a name that cannot be asked is answered at once";
  ASSERT_TRUE(drive(*resolver_, [&] { return resolver_->outstanding() == 0; }));
  for (size_t i = 0; i < std::size(cases); ++i) {
    ASSERT_TRUE(got[i]) << cases[i].name;
    const Question& q = cases[i].q;
    Answer want;
    switch (q.type) {
      case Type::txt: want = to_answer(resolver_->txt(q.name)); break;
      case Type::mx: want = to_answer(resolver_->mx(q.name)); break;
      case Type::a: want = to_answer(resolver_->a(q.name)); break;
      case Type::aaaa: want = to_answer(resolver_->aaaa(q.name)); break;
      case Type::ptr: want = to_answer(resolver_->ptr(*IpAddress::parse("127.0.0.3"))); break;
    }
    std::sort(got[i]->mx.begin(), got[i]->mx.end(),
              [](const MxRecord& x, const MxRecord& y) { return x.preference < y.preference; });
    std::sort(want.mx.begin(), want.mx.end(),
              [](const MxRecord& x, const MxRecord& y) { return x.preference < y.preference; });
    EXPECT_EQ(got[i]->status, want.status) << cases[i].name;
    EXPECT_EQ(got[i]->texts, want.texts) << cases[i].name;
    EXPECT_EQ(got[i]->mx, want.mx) << cases[i].name;
    EXPECT_EQ(got[i]->addresses, want.addresses) << cases[i].name;
  }
  EXPECT_EQ(got[0]->texts, std::vector<std::string>{"v=spf1 mx -all"});
  EXPECT_EQ(got[1]->texts, std::vector<std::string>{std::string(200, 'a') + std::string(100, 'b')});
  EXPECT_EQ(got[2]->mx.size(), 2u);
  EXPECT_EQ(got[5]->texts, std::vector<std::string>{"host.example.test"});
  EXPECT_EQ(got[6]->status, Status::nxdomain);
  EXPECT_EQ(got[7]->status, Status::ok);
  EXPECT_TRUE(got[7]->texts.empty());
  EXPECT_EQ(got[8]->status, Status::temp_error);
  EXPECT_EQ(got[9]->status, Status::perm_error);
}

TEST_F(UnboundResolverTest, NegativeAnswerTtlWithoutSoaIsZero_RFC2308_5) {
  // dnsmasq answers NXDOMAIN/NODATA for its --local zone without an SOA:
  // there is no negative TTL (ub_result.ttl says 32768, the DO flag of the
  // OPT record), so the answer carries 0 and AnswerCache applies its
  // negative_ttl_without_soa.
  EXPECT_EQ(resolver_->txt("nope.example.test").ttl, 0u);
  EXPECT_EQ(resolver_->txt("mx.example.test").ttl, 0u);
  std::vector<Answer> got;
  resolver_->resolve(Question::of(Type::txt, "nope.example.test"), [&](const Answer& a) { got.push_back(a); });
  resolver_->resolve(Question::of(Type::mx, "mx.example.test"), [&](const Answer& a) { got.push_back(a); });
  ASSERT_TRUE(drive(*resolver_, [&] { return got.size() == 2; }));
  for (const auto& a : got) {
    EXPECT_NE(a.status, Status::temp_error);
    EXPECT_EQ(a.ttl, 0u);
    EXPECT_FALSE(a.ttl_from_soa);
  }
}

TEST_F(UnboundResolverTest, CallbackMayAskAgain) {
  std::optional<Answer> address;
  resolver_->resolve(Question::of(Type::mx, "example.test"), [&](const Answer& mx) {
    // The preference-10 host (the server may list the two MX in any order).
    auto best = std::min_element(mx.mx.begin(), mx.mx.end(),
                                 [](const MxRecord& x, const MxRecord& y) { return x.preference < y.preference; });
    ASSERT_NE(best, mx.mx.end());
    resolver_->resolve(Question::of(Type::a, best->exchange), [&](const Answer& a) { address = a; });
  });
  ASSERT_TRUE(drive(*resolver_, [&] { return address.has_value(); }));
  ASSERT_EQ(address->addresses.size(), 1u);
  EXPECT_EQ(address->addresses[0].to_string(), "127.0.0.2");
}

TEST_F(UnboundResolverTest, DestructorCancelsOutstandingQuestions) {
  int fd = resolver_->fd();
  EXPECT_GE(fd, 0);
  EXPECT_EQ(resolver_->fd(), fd) << "constant for the resolver's life";
  int called = 0;
  for (int i = 0; i < 20; ++i)
    resolver_->resolve(Question::of(Type::a, "h" + std::to_string(i) + ".example.test"), [&](const Answer&) { ++called; });
  EXPECT_EQ(resolver_->outstanding(), 20u);
  resolver_.reset();  // LeakSanitizer checks that the Pendings are freed
  EXPECT_EQ(called, 0) << "callbacks of cancelled questions are never called";
}

TEST(UnboundResolverCreate, BadServerAddressIsAnError) {
  auto r = UnboundResolver::create({config::Endpoint{"not an address", 53}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("libunbound"), std::string::npos) << r.error().message;
}

TEST(UnboundResolverCreate, Ipv6ServerAccepted) {
  // config::Endpoint holds "[::1]:53" without brackets; libunbound wants "::1@53".
  auto r = UnboundResolver::create({config::Endpoint{"::1", 53}});
  EXPECT_TRUE(r.ok()) << r.error().message;
}

TEST(UnboundResolverCreate, SystemResolversLoad) {
  // No query: the machine may be offline. Loading resolv.conf and hosts works.
  auto r = UnboundResolver::create({});
  EXPECT_TRUE(r.ok()) << r.error().message;
}

}  // namespace
}  // namespace hikyaku::dns

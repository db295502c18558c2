// UnboundResolver against a real dnsmasq on a free loopback port (PEERS.md),
// plus table tests of the wire-format rdata parsers (RFC 1035 §3.3).
#include "dns/unbound_resolver.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

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

// A port that was free a moment ago (UDP and TCP both unbound when checked).
uint16_t free_port() {
  for (int attempt = 0; attempt < 20; ++attempt) {
    int udp = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(udp, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        getsockname(udp, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      close(udp);
      continue;
    }
    int tcp = socket(AF_INET, SOCK_STREAM, 0);
    bool tcp_free = bind(tcp, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(tcp);
    close(udp);
    if (tcp_free) return ntohs(addr.sin_port);
  }
  return 0;
}

// True once a server on `port` answers a DNS query (any rcode).
bool answers(uint16_t port) {
  // Header: ID 0x4242, RD, one question "ready.test. IN A".
  std::string q = "\x42\x42\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"s;
  q += "\x05ready\x04test\x00"s;
  q += "\x00\x01\x00\x01"s;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = false;
  if (sendto(fd, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr) ==
      static_cast<ssize_t>(q.size())) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) == 1) {
      char buf[512];
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      ok = n >= 12 && buf[0] == 0x42 && buf[1] == 0x42;
    }
  }
  close(fd);
  return ok;
}

class Dnsmasq {
 public:
  explicit Dnsmasq(const std::vector<std::string>& records) {
    port_ = free_port();
    if (port_ == 0) return;
    std::vector<std::string> args = {"dnsmasq",
                                     "--no-daemon",
                                     "--no-resolv",
                                     "--no-hosts",
                                     "--port=" + std::to_string(port_),
                                     "--listen-address=127.0.0.1",
                                     "--bind-interfaces",
                                     "--conf-file=/dev/null",
                                     "--local=/test/"};
    args.insert(args.end(), records.begin(), records.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      // Child: quiet dnsmasq's log on stderr.
      int devnull = open("/dev/null", O_WRONLY);
      if (devnull >= 0) dup2(devnull, STDERR_FILENO);
      execvp("dnsmasq", argv.data());
      execv("/usr/sbin/dnsmasq", argv.data());
      _exit(127);
    }
    // Wait on a condition (STYLE R13): the first answer, for up to 10 s.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (answers(port_)) {
        ready_ = true;
        return;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;  // it exited (port taken, bad option)
        return;
      }
    }
  }
  ~Dnsmasq() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
  }
  Dnsmasq(const Dnsmasq&) = delete;
  Dnsmasq& operator=(const Dnsmasq&) = delete;

  bool ready() const { return ready_; }
  uint16_t port() const { return port_; }

 private:
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  bool ready_ = false;
};

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

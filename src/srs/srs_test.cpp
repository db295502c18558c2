// SRS tests: libsrs2/postsrsd address format (SRS0/SRS1), rotation,
// expiry, tampering and case-insensitivity. The fixed vectors were computed
// independently with Python's hmac/base64 modules.
#include <fstream>
#include <filesystem>
#include <unistd.h>

#include <gtest/gtest.h>

#include "srs/srs.hpp"

namespace hikyaku::srs {
namespace {

using std::chrono::hours;
using std::chrono::seconds;

// 2023-11-14T22:13:20Z: day 19675, 19675 mod 1024 = 219 = "G3".
const base::Clock::time_point kNow{seconds(1700000000)};

mail::Address addr(std::string local, std::string domain) { return {std::move(local), std::move(domain)}; }

TEST(Srs, Srs0VectorAndRoundTrip) {
  base::FakeClock clock(kNow);
  Rewriter rw({{"tops3cr3t"}}, clock);
  auto fwd = rw.forward(addr("Alice", "example.com"), "fwd.example.org");
  EXPECT_EQ(fwd.str(), "SRS0=PGkz=G3=example.com=Alice@fwd.example.org");
  auto back = rw.reverse(fwd);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->str(), "Alice@example.com");
}

TEST(Srs, Srs1ReforwardVectorAndTwoStepReverse) {
  base::FakeClock clock(kNow);
  Rewriter first({{"tops3cr3t"}}, clock);
  Rewriter second({{"other"}}, clock);
  auto srs0 = first.forward(addr("Alice", "example.com"), "fwd1.example.net");
  auto srs1 = second.forward(srs0, "fwd2.example.org");
  EXPECT_EQ(srs1.str(), "SRS1=EHPD=fwd1.example.net==PGkz=G3=example.com=Alice@fwd2.example.org");
  // A third forwarder keeps the first forwarder and the SRS0 part.
  Rewriter third({{"third"}}, clock);
  auto again = third.forward(srs1, "fwd3.example.com");
  EXPECT_TRUE(again.local.starts_with("SRS1=")) << again.str();
  EXPECT_TRUE(again.local.ends_with("=fwd1.example.net==PGkz=G3=example.com=Alice")) << again.str();
  auto back3 = third.reverse(again);
  ASSERT_TRUE(back3.ok());
  EXPECT_EQ(back3->str(), srs0.str());
  // The second forwarder sends bounces straight to the first.
  auto back = second.reverse(srs1);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->str(), srs0.str());
  auto orig = first.reverse(back.value());
  ASSERT_TRUE(orig.ok()) << orig.error().message;
  EXPECT_EQ(orig->str(), "Alice@example.com");
}

TEST(Srs, RotationFirstSignsAllVerify) {
  base::FakeClock clock(kNow);
  Rewriter old_rw({{"old"}}, clock);
  Rewriter rotated({{"new", "old"}}, clock);
  Rewriter new_only({{"new"}}, clock);
  auto signed_old = old_rw.forward(addr("bob", "example.com"), "fwd.example.org");
  EXPECT_TRUE(rotated.reverse(signed_old).ok());
  EXPECT_EQ(new_only.decode(signed_old).error, Errc::bad_hash);
  auto signed_new = rotated.forward(addr("bob", "example.com"), "fwd.example.org");
  EXPECT_TRUE(new_only.reverse(signed_new).ok());
  EXPECT_EQ(old_rw.decode(signed_new).error, Errc::bad_hash);
}

TEST(Srs, MaximumAge) {
  struct Case {
    const char* name;
    hours later;
    Errc want;
  };
  const Case cases[] = {
      {"same day", hours(0), Errc::ok},
      {"21 days (default max)", hours(24 * 21), Errc::ok},
      {"22 days", hours(24 * 22), Errc::expired},
      {"1000 days", hours(24 * 1000), Errc::expired},
      {"1024 days wraps to today (10-bit stamp)", hours(24 * 1024), Errc::ok},
  };
  for (const auto& c : cases) {
    base::FakeClock clock(kNow);
    Rewriter rw({{"s"}}, clock);
    auto fwd = rw.forward(addr("carol", "example.com"), "fwd.example.org");
    clock.advance(c.later);
    EXPECT_EQ(rw.decode(fwd).error, c.want) << c.name;
  }
  base::FakeClock clock(kNow);
  Rewriter short_lived({{"s"}, 2}, clock);
  auto fwd = short_lived.forward(addr("carol", "example.com"), "fwd.example.org");
  clock.advance(hours(24 * 3));
  EXPECT_EQ(short_lived.decode(fwd).error, Errc::expired) << "max_age_days=2";
}

TEST(Srs, DecodeErrorsAsValues) {
  base::FakeClock clock(kNow);
  Rewriter rw({{"tops3cr3t"}}, clock);
  struct Case {
    const char* name;
    std::string local;
    Errc want;
  };
  const Case cases[] = {
      {"valid", "SRS0=PGkz=G3=example.com=Alice", Errc::ok},
      {"hash case-insensitive", "SRS0=pgkz=G3=example.com=Alice", Errc::ok},
      {"all lowercase", "srs0=pgkz=g3=example.com=alice", Errc::ok},
      {"all uppercase", "SRS0=PGKZ=G3=EXAMPLE.COM=ALICE", Errc::ok},
      {"tampered hash", "SRS0=PGkY=G3=example.com=Alice", Errc::bad_hash},
      {"tampered domain", "SRS0=PGkz=G3=example.org=Alice", Errc::bad_hash},
      {"tampered local", "SRS0=PGkz=G3=example.com=Mallory", Errc::bad_hash},
      {"tampered stamp", "SRS0=PGkz=G4=example.com=Alice", Errc::bad_hash},
      {"short hash", "SRS0=PGk=G3=example.com=Alice", Errc::bad_hash},
      {"missing fields", "SRS0=PGkz=G3", Errc::malformed},
      {"empty domain", "SRS0=PGkz=G3==Alice", Errc::malformed},
      {"empty local", "SRS0=PGkz=G3=example.com=", Errc::malformed},
      {"3-char stamp", "SRS0=PGkz=G3A=example.com=Alice", Errc::malformed},
      {"SRS1 without SRS0 part", "SRS1=EHPD=fwd1.example.net", Errc::malformed},
      {"SRS1 bad hash", "SRS1=AAAA=fwd1.example.net==PGkz=G3=example.com=Alice", Errc::bad_hash},
      {"plain address", "alice", Errc::not_srs},
      {"SRS2 is not SRS", "SRS2=x=y", Errc::not_srs},
  };
  for (const auto& c : cases) {
    auto d = rw.decode(addr(c.local, "fwd.example.org"));
    EXPECT_EQ(d.error, c.want) << c.name << ": got " << to_string(d.error) << ", want " << to_string(c.want);
  }
  auto r = rw.reverse(addr("SRS0=PGkY=G3=example.com=Alice", "fwd.example.org"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "bad SRS hash");
}

TEST(Srs, LocalPartWithSeparatorsRoundTrips) {
  base::FakeClock clock(kNow);
  Rewriter rw({{"k"}}, clock);
  for (const char* local : {"a=b", "x+tag", "SRS", "srs0", "\"quoted local\"", "a==b="}) {
    auto fwd = rw.forward(addr(local, "example.com"), "fwd.example.org");
    auto back = rw.reverse(fwd);
    ASSERT_TRUE(back.ok()) << local << ": " << back.error().message;
    EXPECT_EQ(back->local, local);
    EXPECT_EQ(back->domain, "example.com");
  }
}

TEST(Srs, ForwardLeavesNullAndOwnDomainAlone) {
  base::FakeClock clock(kNow);
  Rewriter rw({{"k"}}, clock);
  EXPECT_TRUE(rw.forward(mail::Address{}, "fwd.example.org").empty());
  EXPECT_EQ(rw.forward(addr("me", "fwd.example.org"), "FWD.example.org").str(), "me@fwd.example.org");
  // A hidden forward's copy always carries its identity: a bounce to a
  // sender of ours would otherwise reach that sender, not the fallback.
  Config cfg{{"k"}};
  cfg.identities = {"owner@gmail.test"};
  Rewriter hidden(cfg, clock);
  auto fwd = hidden.forward(addr("me", "fwd.example.org"), "fwd.example.org", "owner@gmail.test");
  EXPECT_TRUE(fwd.local.starts_with("SRS0=")) << fwd.str();
  auto d = hidden.decode(fwd);
  ASSERT_EQ(d.error, Errc::ok);
  EXPECT_EQ(d.address.str(), "me@fwd.example.org");
  EXPECT_EQ(d.identity, "owner@gmail.test");
}

TEST(Srs, IsSrs) {
  struct Case {
    const char* local;
    bool want;
  };
  const Case cases[] = {{"SRS0=a=b=c=d", true}, {"srs0+a=b=c=d", true}, {"SRS1-x", true},
                        {"SRS0", false},        {"SRS3=x", false},      {"alice", false},
                        {"", false},            {"SRS0x", false}};
  for (const auto& c : cases) EXPECT_EQ(is_srs(c.local), c.want) << c.local;
}

// Issue 4: a hidden forward signs with its derived key
// (HMAC-SHA256(secret, "hikyaku-srs-hidden:" + address); vector from Python's
// hmac module); decode() names the forward whose key matched, the plain
// secret gives an empty identity, and an unknown identity does not verify.
TEST(Srs, HiddenForwardKeyIsDistinguishable) {
  base::FakeClock clock(kNow);
  Config cfg{{"tops3cr3t"}};
  cfg.identities = {"owner-ex@gmail.test", "other@gmail.test"};
  Rewriter rw(cfg, clock);
  auto hidden = rw.forward(addr("Alice", "example.com"), "fwd.example.org", "Owner-Ex@gmail.test");
  EXPECT_EQ(hidden.str(), "SRS0=t0wO=G3=example.com=Alice@fwd.example.org");
  auto d = rw.decode(hidden);
  ASSERT_EQ(d.error, Errc::ok);
  EXPECT_EQ(d.address.str(), "Alice@example.com");
  EXPECT_EQ(d.identity, "owner-ex@gmail.test");

  auto plain = rw.forward(addr("Alice", "example.com"), "fwd.example.org");
  EXPECT_EQ(plain.str(), "SRS0=PGkz=G3=example.com=Alice@fwd.example.org");
  auto p = rw.decode(plain);
  ASSERT_EQ(p.error, Errc::ok);
  EXPECT_EQ(p.identity, "");

  // A rewriter that does not know the identity refuses the hidden address.
  Rewriter bare({{"tops3cr3t"}}, clock);
  EXPECT_EQ(bare.decode(hidden).error, Errc::bad_hash);

  // Re-forwarding (SRS1) keeps the identity too.
  auto srs1 = rw.forward(addr("SRS0=abcd=G3=example.com=Alice", "first.example"), "fwd.example.org",
                         "other@gmail.test");
  auto d1 = rw.decode(srs1);
  ASSERT_EQ(d1.error, Errc::ok);
  EXPECT_EQ(d1.identity, "other@gmail.test");
}

TEST(SrsSecrets, OnePerLine) {
  auto dir = std::filesystem::temp_directory_path() / ("srs-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir / "s") << "  first-secret \r\n\nsecond\n";
  }
  auto s = read_secrets(dir / "s");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, (std::vector<std::string>{"first-secret", "second"}));
  {
    std::ofstream(dir / "empty") << "\n\n";
  }
  EXPECT_FALSE(read_secrets(dir / "empty").ok());
  EXPECT_FALSE(read_secrets(dir / "missing").ok());
  // Readable by every user: a warning (check-config prints it, serve logs it).
  std::filesystem::permissions(dir / "s", std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  EXPECT_FALSE(secret_file_warning(dir / "s").has_value());
  std::filesystem::permissions(dir / "s", std::filesystem::perms::others_read, std::filesystem::perm_options::add);
  ASSERT_TRUE(secret_file_warning(dir / "s").has_value());
  EXPECT_NE(secret_file_warning(dir / "s")->find("readable by every user: chmod o-r"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hikyaku::srs

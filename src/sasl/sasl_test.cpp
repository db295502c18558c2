#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "base/strings.hpp"
#include "sasl/credential_store.hpp"
#include "sasl/login.hpp"
#include "sasl/plain.hpp"

namespace hikyaku::sasl {
namespace {

using namespace std::string_literals;

struct PlainCase {
  std::string name;
  std::string raw;  // before base64
  bool ok;
  std::string authzid, authcid, password;
};

TEST(Plain, Rfc4616Section2Table) {
  const PlainCase cases[] = {
      {"no_authzid", "\0tim\0tanstaaftanstaaf"s, true, "", "tim", "tanstaaftanstaaf"},
      {"with_authzid", "Ursel\0Kurt\0xipj3plmq"s, true, "Ursel", "Kurt", "xipj3plmq"},
      {"one_nul", "tim\0pw"s, false, "", "", ""},
      {"no_nul", "timpw"s, false, "", "", ""},
      {"three_nuls", "\0tim\0pw\0x"s, false, "", "", ""},
      {"empty_authcid", "\0\0pw"s, false, "", "", ""},
      {"empty_password", "\0tim\0"s, false, "", "", ""},
      {"long_password", "\0tim\0"s + std::string(256, 'p'), false, "", "", ""},
      {"utf8_password", "\0tim\0p\xc3\xa4ss"s, true, "", "tim", "p\xc3\xa4ss"},
  };
  for (const auto& c : cases) {
    auto got = decode_plain(base::base64_encode(c.raw));
    ASSERT_EQ(got.has_value(), c.ok) << c.name;
    if (!c.ok) continue;
    EXPECT_EQ(got->authzid, c.authzid) << c.name;
    EXPECT_EQ(got->authcid, c.authcid) << c.name;
    EXPECT_EQ(got->password, c.password) << c.name;
  }
}

TEST(Plain, Rfc4648BadBase64Refused) {
  EXPECT_FALSE(decode_plain("not base64!"));
  EXPECT_FALSE(decode_plain("AGFsaWNl"));  // "\0alice": one NUL only
  EXPECT_FALSE(decode_plain("="));         // empty response is not a PLAIN message
}

TEST(Plain, Rfc5034Section4EmptyResponseAndCancel) {
  EXPECT_EQ(decode_response("="), std::string());
  EXPECT_EQ(decode_response("YWJj"), std::string("abc"));
  EXPECT_FALSE(decode_response("Y"));
  EXPECT_TRUE(is_cancel("*"));
  EXPECT_TRUE(is_cancel(" * "));
  EXPECT_FALSE(is_cancel("**"));
  EXPECT_FALSE(is_cancel("Kg=="));
}

TEST(Login, ChallengesThenDone) {
  LoginExchange ex;
  auto s = ex.start();
  ASSERT_EQ(s.kind, LoginExchange::Step::Kind::challenge);
  EXPECT_EQ(base::base64_decode(s.challenge), std::string("Username:"));
  s = ex.respond(base::base64_encode("alice"));
  ASSERT_EQ(s.kind, LoginExchange::Step::Kind::challenge);
  EXPECT_EQ(base::base64_decode(s.challenge), std::string("Password:"));
  s = ex.respond(base::base64_encode("secret"));
  EXPECT_EQ(s.kind, LoginExchange::Step::Kind::done);
  EXPECT_EQ(ex.user(), "alice");
  EXPECT_EQ(ex.password(), "secret");
  EXPECT_EQ(ex.respond("x").kind, LoginExchange::Step::Kind::error);
}

TEST(Login, Rfc4954Section4InitialResponseAndCancel) {
  LoginExchange ex;
  auto s = ex.start(base::base64_encode("bob"));
  ASSERT_EQ(s.kind, LoginExchange::Step::Kind::challenge);
  EXPECT_EQ(ex.user(), "bob");
  EXPECT_EQ(ex.respond("*").kind, LoginExchange::Step::Kind::cancelled);

  LoginExchange bad;
  bad.start();
  EXPECT_EQ(bad.respond("%%%").kind, LoginExchange::Step::Kind::error);
  LoginExchange empty;
  empty.start();
  EXPECT_EQ(empty.respond("=").kind, LoginExchange::Step::Kind::error);
}

class CredentialStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("hikyaku-sasl-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(CredentialStoreTest, SetVerifyListRemove) {
  CredentialStore store(dir_ / "users");
  auto none = store.users();
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  EXPECT_FALSE(store.verify("alice", "pw"));

  ASSERT_TRUE(store.set_password("alice", "correct horse").ok());
  ASSERT_TRUE(store.set_password("bob", "battery staple").ok());
  EXPECT_TRUE(store.verify("alice", "correct horse"));
  EXPECT_FALSE(store.verify("alice", "battery staple"));
  EXPECT_FALSE(store.verify("Alice", "correct horse"));
  EXPECT_TRUE(store.verify("bob", "battery staple"));

  // Replacing keeps one line per user.
  ASSERT_TRUE(store.set_password("alice", "new one").ok());
  EXPECT_FALSE(store.verify("alice", "correct horse"));
  EXPECT_TRUE(store.verify("alice", "new one"));
  auto users = store.users();
  ASSERT_TRUE(users.ok());
  EXPECT_EQ(*users, (std::vector<std::string>{"alice", "bob"}));

  ASSERT_TRUE(store.remove("bob").ok());
  EXPECT_FALSE(store.verify("bob", "battery staple"));
  EXPECT_FALSE(store.remove("bob").ok());
  users = store.users();
  ASSERT_TRUE(users.ok());
  EXPECT_EQ(*users, (std::vector<std::string>{"alice"}));
}

TEST_F(CredentialStoreTest, FileFormatAndMode) {
  CredentialStore store(dir_ / "sub" / "users");
  // A password that cannot occur in base64 by chance (the salt and hash are
  // random base64: a short one like "pw" sometimes does, a flaky test).
  const std::string password = "not in base64!";
  ASSERT_TRUE(store.set_password("alice", password).ok());
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "sub" / "users").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream in(dir_ / "sub" / "users");
  std::string line;
  std::getline(in, line);
  EXPECT_TRUE(line.rfind("alice:$argon2id$", 0) == 0) << line;
  EXPECT_EQ(line.find(password), std::string::npos);
  // No temporary files left behind.
  int files = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir_ / "sub")) ++files;
  EXPECT_EQ(files, 1);
}

TEST_F(CredentialStoreTest, RejectsBadNamesAndEmptyPasswords) {
  CredentialStore store(dir_ / "users");
  EXPECT_FALSE(store.set_password("", "pw").ok());
  EXPECT_FALSE(store.set_password("a:b", "pw").ok());
  EXPECT_FALSE(store.set_password("a\nb", "pw").ok());
  EXPECT_FALSE(store.set_password("alice", "").ok());
}

TEST_F(CredentialStoreTest, MalformedLinesIgnoredAndExternalEditsSeen) {
  {
    std::ofstream out(dir_ / "users");
    out << "garbage line\nbob:not-a-hash\n";
  }
  CredentialStore store(dir_ / "users");
  EXPECT_FALSE(store.verify("bob", "x"));
  CredentialStore other(dir_ / "users");
  ASSERT_TRUE(other.set_password("carol", "pw").ok());
  EXPECT_TRUE(store.verify("carol", "pw"));  // re-read, no stale cache
}

}  // namespace
}  // namespace hikyaku::sasl

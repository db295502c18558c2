#include "mailbox/quota.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "base/file.hpp"
#include "mailbox/maildir.hpp"

namespace hikyaku::mailbox {
namespace {
namespace fs = std::filesystem;

class QuotaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/quota_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_TRUE(Maildir(dir_, false).create());
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const fs::path& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
  }
  std::string read(const fs::path& path) {
    auto text = base::read_file(path);
    return text ? *text : std::string("<missing>");
  }

  fs::path dir_;
};

TEST_F(QuotaTest, RecalculatesOverTheMaildirAndItsFolders) {
  Maildir inbox(dir_, false);
  ASSERT_TRUE(inbox.deliver("Subject: a\r\n\r\nhello\r\n"));  // 18 bytes on disk
  // Nothing is recorded for a Maildir without a quota file.
  EXPECT_FALSE(fs::exists(dir_ / "maildirsize"));
  // A Maildir++ folder counts; a file without S= is measured; tmp/ is not counted.
  ASSERT_TRUE(Maildir(dir_ / ".Sent", false).create());
  write(dir_ / ".Sent" / "cur" / "1.2.host:2,S", std::string(100, 'x'));
  write(dir_ / "tmp" / "partial", std::string(1000, 'x'));

  const Quota quota(dir_, 1000);
  EXPECT_FALSE(quota.recorded());
  auto u = quota.usage();
  ASSERT_TRUE(u);
  EXPECT_EQ(u->bytes, 118u);
  EXPECT_EQ(u->messages, 2u);
  EXPECT_EQ(read(dir_ / "maildirsize"), "1000S\n118 2\n");
  ASSERT_TRUE(quota.recorded());
  EXPECT_EQ(quota.recorded()->bytes, 118u);
}

TEST_F(QuotaTest, EveryWriterOfTheMaildirRecordsItsChange) {
  const Quota quota(dir_, 1000);
  ASSERT_TRUE(quota.recalculate());
  Maildir inbox(dir_, false);
  auto uid = inbox.deliver("Subject: a\r\n\r\nhello\r\n");
  ASSERT_TRUE(uid);
  ASSERT_TRUE(inbox.deliver(std::string(500, 'z')));
  EXPECT_EQ(read(dir_ / "maildirsize"), "1000S\n0 0\n18 1\n500 1\n");
  EXPECT_EQ(quota.recorded()->bytes, 518u);
  EXPECT_EQ(quota.recorded()->messages, 2u);

  auto found = inbox.find(*uid);
  ASSERT_TRUE(found);
  ASSERT_TRUE(inbox.remove(*found));
  ASSERT_TRUE(inbox.remove(*found));  // already gone: not counted twice
  EXPECT_EQ(quota.recorded()->bytes, 500u);
  EXPECT_EQ(quota.recorded()->messages, 1u);
}

TEST_F(QuotaTest, FullAndExceeded) {
  const Quota quota(dir_, 100);
  EXPECT_FALSE(quota.full({99, 1}));
  EXPECT_TRUE(quota.full({100, 1}));
  EXPECT_FALSE(quota.exceeded_by({60, 1}, 40));
  EXPECT_TRUE(quota.exceeded_by({60, 1}, 41));
}

// Anything the file cannot be trusted for is recalculated, never believed.
TEST_F(QuotaTest, UntrustworthyFilesAreRecalculated) {
  const Quota quota(dir_, 1000);
  const fs::path file = dir_ / "maildirsize";
  for (const std::string& text : {
           std::string("2000S\n10 1\n"),          // another limit
           std::string("1000C\n10 1\n"),          // no storage limit
           std::string("1000S\n10 1"),            // a torn last line
           std::string("1000S\n10 x\n"),          // malformed
           std::string("1000S\n10 1\n-20 -2\n"),  // negative
           std::string("junk"),                   // no definition line
           "1000S\n" + std::string(5120, '\n'),   // grown too large
       }) {
    write(file, text);
    EXPECT_FALSE(quota.recorded()) << text.substr(0, 40);
    auto u = quota.usage();
    ASSERT_TRUE(u);
    EXPECT_EQ(u->bytes, 0u);
    EXPECT_EQ(read(file), "1000S\n0 0\n");
  }
  write(file, "1000S,50C\n10 1\n+5 +1\n");  // Courier's form with a count limit and signs
  ASSERT_TRUE(quota.recorded());
  EXPECT_EQ(quota.recorded()->bytes, 15u);
}

// "Over the limit" is believed for 15 minutes (Maildir++): other programs
// remove messages without recording it.
TEST_F(QuotaTest, AnOldOverLimitRecordIsCheckedAgain) {
  const Quota quota(dir_, 1000);
  const fs::path file = dir_ / "maildirsize";
  write(file, "1000S\n5000 3\n");
  ASSERT_TRUE(quota.recorded());
  EXPECT_TRUE(quota.full(*quota.recorded()));
  struct timespec old[2] = {{std::time(nullptr) - 16 * 60, 0}, {std::time(nullptr) - 16 * 60, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, file.c_str(), old, 0), 0);
  EXPECT_FALSE(quota.recorded());
  auto u = quota.usage();
  ASSERT_TRUE(u);
  EXPECT_EQ(u->bytes, 0u);
  // Under the limit, an old record is still good.
  write(file, "1000S\n500 3\n");
  ASSERT_EQ(::utimensat(AT_FDCWD, file.c_str(), old, 0), 0);
  ASSERT_TRUE(quota.recorded());
  EXPECT_EQ(quota.recorded()->bytes, 500u);
}

TEST(MaildirSizes, StoredSizeCountsCrlfAsLf) {
  EXPECT_EQ(Maildir::stored_size("a\r\nb\r\n"), 4u);
  EXPECT_EQ(Maildir::stored_size("a\rb\n"), 4u);
  EXPECT_EQ(Maildir::stored_size(""), 0u);
  EXPECT_EQ(Maildir::stored_size("\r\n\r\n"), Maildir::to_stored("\r\n\r\n").size());
}

}  // namespace
}  // namespace hikyaku::mailbox

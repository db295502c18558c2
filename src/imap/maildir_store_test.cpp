// Unit tests for the Maildir-backed IMAP store: persistent UIDs and
// UIDVALIDITY (RFC 3501 §2.3.1.1), flags in the ":2," suffix, new/ → cur/
// on claim (\Recent), CRLF output and sizes, concurrent stores.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <filesystem>
#include <thread>

#include "base/file.hpp"
#include "imap/maildir_store.hpp"
#include "imap/protocol/response.hpp"

namespace hikyaku::imap {
namespace {

namespace fs = std::filesystem;
using protocol::kDeleted;
using protocol::kSeen;

class MaildirStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/imap_store_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_TRUE(mailbox::Maildir(dir_).create());
  }
  void TearDown() override { fs::remove_all(dir_); }
  MaildirStore store() { return MaildirStore(mailbox::Maildir(dir_, false), locks_.mutex_for("alice"), false); }
  fs::path dir_;
  MailboxLocks locks_;
};

TEST_F(MaildirStoreTest, Rfc3501Section2_3_1_1UidsPersistAndAscend) {
  mailbox::Maildir md(dir_, false);
  ASSERT_TRUE(md.deliver("Subject: one\n\nbody\n"));
  ASSERT_TRUE(md.deliver("Subject: two\n\nbody\n"));
  auto s = store();
  auto a = s.scan(false);
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_EQ(a->messages.size(), 2u);
  EXPECT_EQ(a->messages[0].uid, 1u);
  EXPECT_EQ(a->messages[1].uid, 2u);
  EXPECT_EQ(a->uidnext, 3u);
  EXPECT_TRUE(a->messages[0].recent);
  EXPECT_TRUE(fs::exists(dir_ / MaildirStore::kUidListName));

  // A new store object (a new session, or after a restart) sees the same.
  ASSERT_TRUE(s.expunge(a->messages[0]));
  ASSERT_TRUE(md.deliver("Subject: three\n\nbody\n"));
  auto other = store();
  auto b = other.scan(true);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->uidvalidity, a->uidvalidity);
  ASSERT_EQ(b->messages.size(), 2u);
  EXPECT_EQ(b->messages[0].uid, 2u);
  EXPECT_EQ(b->messages[1].uid, 3u);  // never reuses 1
  // Claimed: moved to cur/, no longer recent for anyone else.
  EXPECT_TRUE(fs::is_empty(dir_ / "new"));
  auto c = store().scan(false);
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->messages[0].recent);
}

TEST_F(MaildirStoreTest, FlagsLiveInTheInfoSuffixAndReadServesCrlf) {
  mailbox::Maildir md(dir_, false);
  ASSERT_TRUE(md.deliver("Subject: one\n\nline\n"));
  auto s = store();
  auto snap = s.scan(true);
  ASSERT_TRUE(snap);
  auto m = snap->messages[0];
  EXPECT_EQ(m.size, std::string("Subject: one\r\n\r\nline\r\n").size());
  auto content = s.read(m);
  ASSERT_TRUE(content);
  ASSERT_TRUE(*content);
  EXPECT_EQ(**content, "Subject: one\r\n\r\nline\r\n");
  ASSERT_TRUE(s.set_flags(m, kSeen | kDeleted, {}));
  auto listed = md.list();
  ASSERT_TRUE(listed);
  EXPECT_EQ((*listed)[0].flags, "ST");
  auto again = store().scan(false);
  EXPECT_EQ(again->messages[0].flags, kSeen | kDeleted);
}

TEST_F(MaildirStoreTest, KeywordsAreLettersNamedInDovecotKeywords) {
  mailbox::Maildir md(dir_, false);
  ASSERT_TRUE(md.deliver("Subject: one\n\nline\n"));
  auto s = store();
  auto snap = s.scan(true);
  ASSERT_TRUE(s.set_flags(snap->messages[0], kSeen, {"$Forwarded", "Junk"}));
  auto text = base::read_file(dir_ / "dovecot-keywords");
  ASSERT_TRUE(text);
  EXPECT_EQ(*text, "0 $Forwarded\n1 Junk\n");
  EXPECT_EQ((*md.list())[0].flags, "Sab");
  auto again = store().scan(false);
  EXPECT_EQ(again->messages[0].keywords, (protocol::Keywords{"$Forwarded", "Junk"}));
  std::vector<std::string> many;
  for (int i = 0; i < 27; ++i) many.push_back("k" + std::to_string(i));
  EXPECT_FALSE(s.set_flags(again->messages[0], 0, many));  // 26 letters only
}

// Another session changes a message's flags (a rename) or a POP3 client
// removes it after this store's scan: read() follows the rename, and tells
// "gone" (an empty optional) from a storage failure.
TEST_F(MaildirStoreTest, ReadFollowsRenamesAndReportsExpungedMessagesAsGone) {
  mailbox::Maildir md(dir_, false);
  ASSERT_TRUE(md.deliver("Subject: one\n\nline\n"));
  ASSERT_TRUE(md.deliver("Subject: two\n\nline\n"));
  auto s = store();
  auto snap = s.scan(true);
  ASSERT_TRUE(snap);
  ASSERT_EQ(snap->messages.size(), 2u);
  auto other = store();
  ASSERT_TRUE(other.scan(false));
  ASSERT_TRUE(other.set_flags(snap->messages[0], kSeen, {}));  // renamed under `s`
  ASSERT_TRUE(other.expunge(snap->messages[1]));
  auto renamed = s.read(snap->messages[0]);
  ASSERT_TRUE(renamed) << renamed.error().message;
  ASSERT_TRUE(*renamed);
  EXPECT_EQ(**renamed, "Subject: one\r\n\r\nline\r\n");
  auto gone = s.read(snap->messages[1]);
  ASSERT_TRUE(gone) << gone.error().message;
  EXPECT_FALSE(*gone);
}

TEST_F(MaildirStoreTest, AppendAssignsTheNextUidAndKeepsTheDate) {
  auto s = store();
  auto appended = s.append("Subject: a\r\n\r\nx\r\n", kSeen, {}, 1700000000);
  ASSERT_TRUE(appended) << appended.error().message;
  EXPECT_EQ(appended->uid, 1u);
  auto snap = s.scan(false);
  EXPECT_EQ(appended->uidvalidity, snap->uidvalidity);  // RFC 4315 APPENDUID, never 0
  EXPECT_NE(appended->uidvalidity, 0u);
  EXPECT_EQ(appended->key, snap->messages[0].key);
  ASSERT_EQ(snap->messages.size(), 1u);
  EXPECT_EQ(snap->messages[0].internal_date, 1700000000);
  EXPECT_EQ(snap->messages[0].flags, kSeen);
  EXPECT_TRUE(snap->messages[0].recent);  // RFC 3501 §6.3.11: \Recent is set on APPEND
}

TEST_F(MaildirStoreTest, CorruptUidListStartsANewValidity) {
  mailbox::Maildir md(dir_, false);
  ASSERT_TRUE(md.deliver("Subject: one\n\nbody\n"));
  ASSERT_TRUE(base::write_file_durable(dir_ / "x.tmp", dir_ / MaildirStore::kUidListName, "garbage\n", false));
  auto snap = store().scan(false);
  ASSERT_TRUE(snap);
  EXPECT_NE(snap->uidvalidity, 0u);
  EXPECT_EQ(snap->messages[0].uid, 1u);
}

TEST_F(MaildirStoreTest, ConcurrentAppendsNeverShareAUid) {
  std::vector<uint32_t> uids[4];
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto s = store();
      for (int i = 0; i < 10; ++i) {
        auto appended = s.append("Subject: c\r\n\r\nx\r\n", 0, {}, std::nullopt);
        if (appended) uids[t].push_back(appended->uid);
        (void)s.scan(true);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::vector<uint32_t> all;
  for (auto& v : uids) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), 40u);
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end());
  EXPECT_EQ(all.back(), 40u);
}

}  // namespace
}  // namespace hikyaku::imap

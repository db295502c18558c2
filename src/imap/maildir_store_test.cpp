// Unit tests for the Maildir-backed IMAP store: persistent UIDs and
// UIDVALIDITY (RFC 3501 §2.3.1.1), modseqs (RFC 7162 §3.1) in the version 2
// uidlist and the upgrade of a version 1 list, flags in the ":2," suffix, new/ → cur/
// on claim (\Recent), CRLF output and sizes, concurrent stores; the
// account's Maildir++ folders (create, list, rename, delete, INBOX rename,
// UIDVALIDITY of a recreated folder, the quota over all folders).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <filesystem>
#include <set>
#include <thread>

#include "base/file.hpp"
#include "imap/maildir_store.hpp"
#include "imap/protocol/response.hpp"
#include "mailbox/quota.hpp"

namespace hikyaku::imap {
namespace {

namespace fs = std::filesystem;
using protocol::kDeleted;
using protocol::kDraft;
using protocol::kFlagged;
using protocol::kSeen;
using FlagState = protocol::MailStore::FlagState;

class MaildirStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/imap_store_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_TRUE(mailbox::Maildir(dir_).create());
  }
  void TearDown() override { fs::remove_all(dir_); }
  MaildirStore store() { return MaildirStore(mailbox::Maildir(dir_, false), locks_.folder("alice"), false); }
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

TEST_F(MaildirStoreTest, AClaimIsNotedForTheIdleWatch) {
  mailbox::Maildir md(dir_, false);
  ASSERT_TRUE(md.deliver("Subject: one\n\nbody\n"));
  const std::string name = fs::directory_iterator(dir_ / "new")->path().filename().string();
  auto quiet = std::make_shared<QuietMoves>();
  quiet->watching((dir_ / "new").string(), true);  // as MaildirWatch does for a session in IDLE
  quiet->watching((dir_ / "cur").string(), true);
  MaildirStore s(mailbox::Maildir(dir_, false), locks_.folder("alice"), false, 0, quiet);
  ASSERT_TRUE(s.scan(false));
  EXPECT_EQ(quiet->noted(), 0u);  // looked at, not claimed
  ASSERT_TRUE(s.scan(true));
  EXPECT_TRUE(fs::exists(dir_ / "cur" / (name + ":2,")));
  // Exactly the two paths of the rename the watch will see.
  EXPECT_TRUE(quiet->consume((dir_ / "new" / name).string()));
  EXPECT_TRUE(quiet->consume((dir_ / "cur" / (name + ":2,")).string()));
  EXPECT_EQ(quiet->noted(), 0u);
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

// RFC 3502 §6.3.11 MULTIAPPEND: every message or none.
TEST_F(MaildirStoreTest, Rfc3502AppendAllIsAllOrNothing) {
  auto s = store();
  std::vector<protocol::NewMessage> batch = {
      {"Subject: 1\r\n\r\none\r\n", kSeen, {}, 1700000000},
      {"Subject: 2\r\n\r\ntwo\r\n", kFlagged, {"$Label1"}, std::nullopt},
      {"Subject: 3\r\n\r\nthree\r\n", 0, {}, 1700000100},
  };
  auto appended = s.append_all(batch);
  ASSERT_TRUE(appended) << appended.error().message;
  ASSERT_EQ(appended->size(), 3u);
  auto snap = s.scan(false);
  ASSERT_TRUE(snap);
  ASSERT_EQ(snap->messages.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*appended)[i].uid, i + 1) << i;  // in the order given
    EXPECT_EQ((*appended)[i].key, snap->messages[i].key) << i;
  }
  EXPECT_EQ(snap->messages[0].flags, kSeen);
  EXPECT_EQ(snap->messages[0].internal_date, 1700000000);
  EXPECT_EQ(snap->messages[1].keywords, protocol::Keywords{"$Label1"});
  EXPECT_EQ(snap->messages[2].internal_date, 1700000100);
  EXPECT_EQ(**s.read(snap->messages[2]), "Subject: 3\r\n\r\nthree\r\n");

  // The last message needs a 27th keyword: none of the batch is stored.
  protocol::Keywords many;
  for (char c = 'a'; c <= 'z'; ++c) many.push_back(std::string("kw") + c);
  many.push_back("one-too-many");
  std::vector<protocol::NewMessage> failing = {
      {"Subject: 4\r\n\r\nx\r\n", 0, {}, std::nullopt},
      {"Subject: 5\r\n\r\nx\r\n", 0, many, std::nullopt},
  };
  EXPECT_FALSE(s.append_all(failing));
  EXPECT_EQ(s.scan(false)->messages.size(), 3u);
  EXPECT_TRUE(fs::is_empty(dir_ / "new"));
  EXPECT_TRUE(fs::is_empty(dir_ / "tmp"));
}

TEST_F(MaildirStoreTest, CorruptUidListStartsANewValidity) {
  mailbox::Maildir md(dir_, false);
  auto name = md.deliver("Subject: one\n\nbody\n");
  ASSERT_TRUE(name);
  ASSERT_TRUE(base::write_file_durable(dir_ / "x.tmp", dir_ / MaildirStore::kUidListName, "garbage\n", false));
  auto snap = store().scan(false);
  ASSERT_TRUE(snap);
  EXPECT_NE(snap->uidvalidity, 0u);
  EXPECT_EQ(snap->messages[0].uid, 1u);
  // Version 2 (RFC 7162 modseqs): an entry's modseq above HIGHESTMODSEQ, a
  // modseq 0, letters without "2,", a missing HIGHESTMODSEQ: not ours.
  for (const std::string& bad : {"hikyaku-uidlist 2 555 3 3 3\n2 " + *name + " 4 2,\n",
                                 "hikyaku-uidlist 2 555 3 3 3\n2 " + *name + " 0 2,\n",
                                 "hikyaku-uidlist 2 555 3 3 3\n2 " + *name + " 3 S\n",
                                 "hikyaku-uidlist 2 555 3 3\n2 " + *name + " 3 2,\n",
                                 "hikyaku-uidlist 3 555 3 3 3\n2 " + *name + " 3 2,\n"}) {
    ASSERT_TRUE(base::write_file_durable(dir_ / "x.tmp", dir_ / MaildirStore::kUidListName, bad, false));
    auto again = store().scan(false);
    ASSERT_TRUE(again);
    EXPECT_NE(again->uidvalidity, 555u) << bad;
    EXPECT_EQ(again->messages[0].uid, 1u) << bad;
  }
  ASSERT_TRUE(base::write_file_durable(dir_ / "x.tmp", dir_ / MaildirStore::kUidListName,
                                       "hikyaku-uidlist 2 555 3 3 3\n2 " + *name + " 3 2,\n", false));
  auto good = store().scan(false);
  ASSERT_TRUE(good);
  EXPECT_EQ(good->uidvalidity, 555u);
  EXPECT_EQ(good->messages[0].uid, 2u);
  EXPECT_EQ(good->messages[0].modseq, 3u);
}

// RFC 7162 §3.1: a MODSEQ per message and the folder's HIGHESTMODSEQ, kept
// in the uidlist: ascending, the same for every store object (every
// session, and after a restart), a rename by another program numbered once
// at the next scan, one modseq per changed message of a batch, never going
// back when a message goes.
TEST_F(MaildirStoreTest, Rfc7162ModseqsPersistAndAscend) {
  mailbox::Maildir md(dir_, false);
  ASSERT_TRUE(md.deliver("Subject: one\n\nbody\n"));
  ASSERT_TRUE(md.deliver("Subject: two\n\nbody\n"));
  auto s = store();
  auto a = s.scan(true);  // the claim (new/ → cur/) changes no flags: no new modseq
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_EQ(a->messages.size(), 2u);
  EXPECT_EQ(a->messages[0].modseq, 2u);
  EXPECT_EQ(a->messages[1].modseq, 3u);
  EXPECT_EQ(a->highest_modseq, 3u);
  const auto m0 = a->messages[0];
  const auto m1 = a->messages[1];

  ASSERT_TRUE(s.set_flags(m0, kSeen, {}));
  auto b = store().scan(false);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->messages[0].modseq, 4u);
  EXPECT_EQ(b->messages[1].modseq, 3u);
  EXPECT_EQ(b->highest_modseq, 4u);

  // Another program (mutt, POP3, Dovecot) renames message 2.
  auto info = md.find(m1.key.str());
  ASSERT_TRUE(info);
  ASSERT_TRUE(md.set_flags(*info, "F"));
  auto c = s.scan(false);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->messages[1].flags, kFlagged);
  EXPECT_EQ(c->messages[1].modseq, 5u);
  EXPECT_EQ(s.scan(false)->messages[1].modseq, 5u);  // numbered once
  auto other = store().scan(false);
  EXPECT_EQ(other->messages[1].modseq, 5u);
  EXPECT_EQ(other->highest_modseq, 5u);

  // A change that must not apply (UNCHANGEDSINCE failed): nothing renamed.
  auto skipped = s.update_flags(m0, [](FlagState& st) {
    EXPECT_EQ(st.modseq, 4u);
    st.flags = 0;
    st.skip = true;
  });
  ASSERT_TRUE(skipped);
  ASSERT_TRUE(*skipped);
  EXPECT_EQ((*skipped)->modseq, 4u);
  EXPECT_EQ(md.find(m0.key.str())->flags, "S");

  // A batch: results in order, one new modseq each; a change that changes
  // nothing keeps its modseq.
  auto all = s.update_flags_all({m0, m1}, [](FlagState& st) { st.flags |= kDraft; });
  ASSERT_EQ(all.size(), 2u);
  ASSERT_TRUE(all[0] && *all[0]);
  ASSERT_TRUE(all[1] && *all[1]);
  EXPECT_EQ((*all[0])->modseq, 6u);
  EXPECT_EQ((*all[1])->modseq, 7u);
  auto same = s.update_flags(m0, [](FlagState& st) { st.flags |= kDraft; });
  ASSERT_TRUE(same && *same);
  EXPECT_EQ((*same)->modseq, 6u);

  // An expunge: HIGHESTMODSEQ grows, the others keep theirs.
  ASSERT_TRUE(s.expunge(m1));
  auto d = store().scan(false);
  ASSERT_TRUE(d);
  ASSERT_EQ(d->messages.size(), 1u);
  EXPECT_EQ(d->messages[0].modseq, 6u);
  EXPECT_EQ(d->highest_modseq, 8u);
  auto text = base::read_file(dir_ / MaildirStore::kUidListName);
  ASSERT_TRUE(text);
  EXPECT_TRUE(text->starts_with("hikyaku-uidlist 2 ")) << *text;
  EXPECT_NE(text->find("\n1 " + m0.key.str() + " 6 2,DS\n"), std::string::npos) << *text;
}

// A version 1 uidlist (an older hikyaku's) keeps its UIDVALIDITY and UIDs;
// every message has modseq 1 and the list is rewritten as version 2.
TEST_F(MaildirStoreTest, Version1UidListIsUpgraded) {
  mailbox::Maildir md(dir_, false);
  auto n1 = md.deliver("Subject: one\n\nbody\n");
  auto n2 = md.deliver("Subject: two\n\nbody\n");
  ASSERT_TRUE(n1 && n2);
  const std::string v1 = "hikyaku-uidlist 1 777 3 3\n1 " + *n1 + "\n2 " + *n2 + "\n";
  ASSERT_TRUE(base::write_file_durable(dir_ / "x.tmp", dir_ / MaildirStore::kUidListName, v1, false));
  auto s = store();
  auto snap = s.scan(false);
  ASSERT_TRUE(snap) << snap.error().message;
  EXPECT_EQ(snap->uidvalidity, 777u);
  ASSERT_EQ(snap->messages.size(), 2u);
  EXPECT_EQ(snap->messages[0].uid, 1u);
  EXPECT_EQ(snap->messages[1].uid, 2u);
  EXPECT_EQ(snap->messages[0].modseq, 1u);
  EXPECT_EQ(snap->messages[1].modseq, 1u);
  EXPECT_EQ(snap->highest_modseq, 1u);
  auto text = base::read_file(dir_ / MaildirStore::kUidListName);
  ASSERT_TRUE(text);
  EXPECT_EQ(*text, "hikyaku-uidlist 2 777 3 3 1\n1 " + *n1 + " 1 2,\n2 " + *n2 + " 1 2,\n");
  // A later change gets the next modseq.
  ASSERT_TRUE(s.set_flags(snap->messages[1], kSeen, {}));
  auto again = store().scan(false);
  EXPECT_EQ(again->messages[0].modseq, 1u);
  EXPECT_EQ(again->messages[1].modseq, 2u);
  EXPECT_EQ(again->highest_modseq, 2u);
  // A STORE straight onto a version 1 list (no scan in between) numbers it first.
  ASSERT_TRUE(base::write_file_durable(dir_ / "x.tmp", dir_ / MaildirStore::kUidListName, v1, false));
  auto direct = store().update_flags(snap->messages[0], [](FlagState& st) { st.flags = kFlagged; });
  ASSERT_TRUE(direct && *direct);
  EXPECT_EQ((*direct)->modseq, 2u);
  auto last = store().scan(false);
  EXPECT_EQ(last->uidvalidity, 777u);
  EXPECT_EQ(last->messages[0].modseq, 2u);
  EXPECT_EQ(last->messages[1].modseq, 1u);
  EXPECT_EQ(last->highest_modseq, 2u);
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

// The rescan rule (maildir_store.hpp, Rescan): a scan reuses the previous
// result while cur/, new/, the uidlist and dovecot-keywords are as stat'ed
// then and were older than that scan by 1 s. Tests cannot set a ctime back
// (utimensat sets it to now), so they set the mtimes back and the store's
// clock ahead; a change made later then differs at least in its mtime.
class MaildirRescanTest : public MaildirStoreTest {
 protected:
  static constexpr time_t kAhead = 10;
  // The mtimes of every object a scan stats, an hour back.
  void age() const {
    const time_t past = ::time(nullptr) - 3600;
    const timespec times[2] = {{past, 0}, {past, 0}};
    for (const char* name : {"cur", "new", MaildirStore::kUidListName, "dovecot-keywords"}) {
      (void)::utimensat(AT_FDCWD, (dir_ / name).c_str(), times, 0);  // one that is absent stays so
    }
  }
  // `s` claimed and scanned, with old timestamps: its next scan reuses the
  // last result (checked).
  void settle(MaildirStore& s) const {
    s.clock_ahead_for_test(kAhead);
    ASSERT_TRUE(s.scan(true));
    age();
    ASSERT_TRUE(s.scan(true));  // lists: the claim above changed the folder
    const size_t full = s.full_scans_for_test();
    ASSERT_TRUE(s.scan(true));
    ASSERT_EQ(s.full_scans_for_test(), full) << "the skip path was not taken";
  }
  fs::path only_file(const char* sub) const { return fs::directory_iterator(dir_ / sub)->path(); }
  // Rewrite a file in place: the same inode (and here the same size).
  static void overwrite(const fs::path& path, const std::string& text) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    ::close(fd);
  }
};

TEST_F(MaildirRescanTest, AnUnchangedFolderIsNotListedAgain) {
  mailbox::Maildir md(dir_, false);
  ASSERT_TRUE(md.deliver("Subject: one\n\nbody\n"));
  ASSERT_TRUE(md.deliver("Subject: two\n\nbody\n"));
  auto s = store();
  s.clock_ahead_for_test(kAhead);
  auto first = s.scan(false);
  ASSERT_TRUE(first);
  age();
  auto listed = s.scan(false);  // the first scan wrote the uidlist: listed again, then kept
  ASSERT_TRUE(listed);
  EXPECT_EQ(s.full_scans_for_test(), 2u);
  for (int i = 0; i < 3; ++i) {
    auto again = s.scan(false);
    ASSERT_TRUE(again);
    EXPECT_EQ(s.full_scans_for_test(), 2u);
    EXPECT_EQ(again->uidvalidity, listed->uidvalidity);
    EXPECT_EQ(again->uidnext, listed->uidnext);
    EXPECT_EQ(again->highest_modseq, listed->highest_modseq);
    ASSERT_EQ(again->messages.size(), 2u);
    EXPECT_EQ(again->messages[1].key, listed->messages[1].key);
    EXPECT_TRUE(again->messages[1].recent);  // unclaimed
  }
  // Timestamps within 1 s of the scan (the real clock): always listed. (A
  // state of its own: store() would share the result `s` keeps.)
  MaildirStore fresh(mailbox::Maildir(dir_, false), std::make_shared<SharedFolder>(), false);
  ASSERT_TRUE(fresh.scan(false));
  ASSERT_TRUE(fresh.scan(false));
  EXPECT_EQ(fresh.full_scans_for_test(), 2u);
}

TEST_F(MaildirRescanTest, SessionsOfOneFolderShareTheResultAndItsChanges) {
  mailbox::Maildir md(dir_, false);
  ASSERT_TRUE(md.deliver("Subject: one\n\nbody\n"));
  ASSERT_TRUE(md.deliver("Subject: two\n\nbody\n"));
  auto a = store();
  settle(a);
  ASSERT_EQ(a.full_scans_for_test(), 2u);
  // Another session's store of the same folder is answered from it.
  auto b = store();
  b.clock_ahead_for_test(kAhead);
  auto from_a = b.scan(false);
  ASSERT_TRUE(from_a);
  EXPECT_EQ(b.full_scans_for_test(), 0u);
  ASSERT_EQ(from_a->messages.size(), 2u);
  // A change through b (a flag) drops the result for a as well.
  ASSERT_TRUE(b.set_flags(from_a->messages[0], kSeen, {}));
  auto seen_by_a = a.scan(false);
  ASSERT_TRUE(seen_by_a);
  EXPECT_EQ(a.full_scans_for_test(), 3u);
  EXPECT_TRUE(seen_by_a->messages[0].flags & kSeen);
  // What b learnt of where the file now is serves a's read.
  auto text = a.read(seen_by_a->messages[0]);
  ASSERT_TRUE(text);
  ASSERT_TRUE(text->has_value());
  EXPECT_NE((*text)->find("Subject: one"), std::string::npos);
}

TEST_F(MaildirRescanTest, AClaimIsNotAnsweredFromAResultThatLeftSomethingToClaim) {
  mailbox::Maildir md(dir_, false);
  ASSERT_TRUE(md.deliver("Subject: one\n\nbody\n"));
  auto s = store();
  s.clock_ahead_for_test(kAhead);
  ASSERT_TRUE(s.scan(false));  // numbers it, writes the uidlist
  age();
  ASSERT_TRUE(s.scan(false));
  ASSERT_TRUE(s.scan(false));
  ASSERT_EQ(s.full_scans_for_test(), 2u);
  // RFC 3501 §2.3.2: the read-write scan claims it (new/ → cur/, \Recent).
  auto claimed = s.scan(true);
  ASSERT_TRUE(claimed);
  EXPECT_EQ(s.full_scans_for_test(), 3u);
  EXPECT_TRUE(claimed->messages[0].recent);
  EXPECT_TRUE(fs::is_empty(dir_ / "new"));
  // Kept afterwards as claimed: \Recent for no later scan.
  age();
  auto after = s.scan(false);
  ASSERT_TRUE(after);
  EXPECT_FALSE(after->messages[0].recent);
  auto reused = s.scan(true);
  EXPECT_EQ(s.full_scans_for_test(), 4u);
  EXPECT_FALSE(reused->messages[0].recent);
}

TEST_F(MaildirRescanTest, ADeliveryToNewIsSeen) {
  mailbox::Maildir md(dir_, false);
  ASSERT_TRUE(md.deliver("Subject: one\n\nbody\n"));
  auto s = store();
  settle(s);
  ASSERT_TRUE(md.deliver("Subject: two\n\nbody\n"));  // another process (the MDA)
  auto snap = s.scan(true);
  ASSERT_TRUE(snap);
  ASSERT_EQ(snap->messages.size(), 2u);
  EXPECT_TRUE(snap->messages[1].recent);
  EXPECT_EQ(snap->uidnext, 3u);
}

TEST_F(MaildirRescanTest, AFlagChangeByAnotherSessionIsSeen) {
  mailbox::Maildir md(dir_, false);
  ASSERT_TRUE(md.deliver("Subject: one\n\nbody\n"));
  auto s = store();
  settle(s);
  auto before = s.scan(true);
  auto other = store();
  ASSERT_TRUE(other.set_flags(before->messages[0], kFlagged, {}));
  auto snap = s.scan(true);
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->messages[0].flags, kFlagged);
  EXPECT_GT(snap->messages[0].modseq, before->messages[0].modseq);
}

// A rename by another program (mutt, POP3) keeps the size of cur/ and
// leaves the uidlist alone: cur/'s mtime tells.
TEST_F(MaildirRescanTest, ARenameInCurThatKeepsItsSizeIsSeen) {
  mailbox::Maildir md(dir_, false);
  ASSERT_TRUE(md.deliver("Subject: one\n\nbody\n"));
  auto s = store();
  settle(s);
  const fs::path from = only_file("cur");
  ASSERT_EQ(::rename(from.c_str(), (from.string() + "S").c_str()), 0);  // ":2," → ":2,S"
  auto snap = s.scan(true);
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->messages[0].flags, kSeen);
}

TEST_F(MaildirRescanTest, AnExpungeByAnotherProcessIsSeen) {
  mailbox::Maildir md(dir_, false);
  ASSERT_TRUE(md.deliver("Subject: one\n\nbody\n"));
  ASSERT_TRUE(md.deliver("Subject: two\n\nbody\n"));
  auto s = store();
  settle(s);
  auto before = s.scan(true);
  ASSERT_EQ(::unlink((dir_ / "cur" / (before->messages[0].key.str() + ":2,")).c_str()), 0);  // a POP3 DELE
  auto snap = s.scan(true);
  ASSERT_TRUE(snap);
  ASSERT_EQ(snap->messages.size(), 1u);
  EXPECT_EQ(snap->messages[0].uid, 2u);
}

// Another session rewrites the uidlist in place, keeping its size and
// inode (a new HIGHESTMODSEQ of the same length): its mtime tells.
TEST_F(MaildirRescanTest, AUidListRewriteByAnotherSessionIsSeen) {
  mailbox::Maildir md(dir_, false);
  ASSERT_TRUE(md.deliver("Subject: one\n\nbody\n"));
  auto s = store();
  settle(s);
  auto before = s.scan(true);
  ASSERT_LT(before->highest_modseq, 9u);
  const fs::path list = dir_ / MaildirStore::kUidListName;
  auto text = base::read_file(list);
  ASSERT_TRUE(text);
  const size_t eol = text->find('\n');
  const size_t last_space = text->rfind(' ', eol);
  ASSERT_EQ(eol - last_space, 2u) << *text;  // a one-digit HIGHESTMODSEQ
  (*text)[last_space + 1] = '9';
  overwrite(list, *text);
  auto snap = s.scan(true);
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->highest_modseq, 9u);
}

TEST_F(MaildirRescanTest, AKeywordsFileChangeIsSeen) {
  mailbox::Maildir md(dir_, false);
  ASSERT_TRUE(md.deliver("Subject: one\n\nbody\n"));
  auto s = store();
  auto first = s.scan(true);
  ASSERT_TRUE(s.set_flags(first->messages[0], 0, {"$Label1"}));  // letter a
  settle(s);
  EXPECT_EQ(s.scan(true)->messages[0].keywords, protocol::Keywords{"$Label1"});
  // Another program names letter a anew (written in place, same size).
  auto text = base::read_file(dir_ / "dovecot-keywords");
  ASSERT_EQ(*text, "0 $Label1\n");
  overwrite(dir_ / "dovecot-keywords", "0 $Label2\n");
  auto snap = s.scan(true);
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->messages[0].keywords, protocol::Keywords{"$Label2"});
}

// A local process that sets cur/'s mtime back after renaming in it cannot
// set its ctime back.
TEST_F(MaildirRescanTest, AnMtimeSetBackStillChangesTheCtime) {
  mailbox::Maildir md(dir_, false);
  ASSERT_TRUE(md.deliver("Subject: one\n\nbody\n"));
  auto s = store();
  settle(s);
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "cur").c_str(), &st), 0);
  // In the test the remembered ctime is recent (age() set it): the change
  // must come at a later clock tick, as the 1 s margin ensures for real.
  for (timespec now{}; ::clock_gettime(CLOCK_REALTIME_COARSE, &now) == 0 &&
                       (now.tv_sec < st.st_ctim.tv_sec ||
                        (now.tv_sec == st.st_ctim.tv_sec && now.tv_nsec <= st.st_ctim.tv_nsec));) {
  }
  const fs::path from = only_file("cur");
  ASSERT_EQ(::rename(from.c_str(), (from.string() + "S").c_str()), 0);
  const timespec times[2] = {st.st_atim, st.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, (dir_ / "cur").c_str(), times, 0), 0);
  struct stat after {};
  ASSERT_EQ(::stat((dir_ / "cur").c_str(), &after), 0);
  ASSERT_EQ(after.st_mtim.tv_sec, st.st_mtim.tv_sec);
  ASSERT_EQ(after.st_mtim.tv_nsec, st.st_mtim.tv_nsec);
  auto snap = s.scan(true);
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->messages[0].flags, kSeen);
}

TEST_F(MaildirRescanTest, TheSessionsOwnChangesDropTheResult) {
  mailbox::Maildir md(dir_, false);
  ASSERT_TRUE(md.deliver("Subject: one\n\nbody\n"));
  ASSERT_TRUE(md.deliver("Subject: two\n\nbody\n"));
  auto s = store();
  settle(s);
  auto before = s.scan(true);
  size_t full = s.full_scans_for_test();
  // A STORE that changes nothing on disk still drops it.
  ASSERT_TRUE(s.set_flags(before->messages[0], before->messages[0].flags, {}));
  ASSERT_TRUE(s.scan(true));
  EXPECT_EQ(s.full_scans_for_test(), ++full);
  ASSERT_TRUE(s.expunge(before->messages[0]));
  auto snap = s.scan(true);
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->messages.size(), 1u);
  EXPECT_EQ(s.full_scans_for_test(), ++full);
  ASSERT_TRUE(s.append("Subject: three\r\n\r\nx\r\n", 0, {}, std::nullopt));
  snap = s.scan(true);
  EXPECT_EQ(snap->messages.size(), 2u);
}

class MaildirAccountTest : public MaildirStoreTest {
 protected:
  MaildirAccount account(uint64_t quota = 0) {
    return MaildirAccount(mailbox::Maildir(dir_, false), locks_ptr_, quota);
  }
  std::vector<std::string> names(MaildirAccount& a) {
    std::vector<std::string> out;
    auto folders = a.folders();
    EXPECT_TRUE(folders);
    for (const auto& f : *folders) out.push_back(f.special_use.empty() ? f.name : f.name + " " + f.special_use);
    return out;
  }
  std::shared_ptr<MailboxLocks> locks_ptr_ = std::make_shared<MailboxLocks>();
};

TEST_F(MaildirAccountTest, MaildirPlusPlusLayoutAndSpecialUse) {
  auto a = account();
  ASSERT_TRUE(a.create_special_folders());
  ASSERT_TRUE(a.create("Projects/2026", ""));
  ASSERT_TRUE(a.create("Entw&APw-rfe", ""));
  EXPECT_EQ(a.create("Sent", "").error().error_number, EEXIST);
  EXPECT_EQ(a.create("a.b", "").error().error_number, EINVAL);  // "." separates levels on disk
  // Dovecot's Maildir++ layout: ".Projects.2026" with a maildirfolder file.
  EXPECT_TRUE(fs::is_directory(dir_ / ".Projects.2026" / "cur"));
  EXPECT_TRUE(fs::exists(dir_ / ".Projects.2026" / "maildirfolder"));
  EXPECT_EQ(names(a), (std::vector<std::string>{"INBOX", "Archive \\Archive", "Drafts \\Drafts", "Entw&APw-rfe",
                                                "Junk \\Junk", "Projects/2026", "Sent \\Sent", "Trash \\Trash"}));
  // Directories that are no folders are not listed.
  fs::create_directories(dir_ / ".odd..name" / "cur");
  fs::create_directories(dir_ / ".nocur");
  EXPECT_EQ(names(a).size(), 8u);
  EXPECT_EQ(a.open("nocur").error().error_number, ENOENT);
}

// CREATE-SPECIAL-USE: the use is kept in the folder's own file, seen by a
// new account on the same tree, and moves with the folder on RENAME; a file
// with something else in it gives no use.
TEST_F(MaildirAccountTest, CreatedSpecialUseIsKeptAndMovesWithTheFolder) {
  auto a = account();
  ASSERT_TRUE(a.create("Outbox", "\\Sent"));
  ASSERT_TRUE(a.create("Plain", ""));
  EXPECT_EQ(names(a), (std::vector<std::string>{"INBOX", "Outbox \\Sent", "Plain"}));
  EXPECT_FALSE(fs::exists(dir_ / ".Plain" / "hikyaku-special-use"));
  ASSERT_TRUE(a.rename("Outbox", "Old/Outbox"));
  auto b = account();
  EXPECT_EQ(names(b), (std::vector<std::string>{"INBOX", "Old/Outbox \\Sent", "Plain"}));
  ASSERT_TRUE(base::write_file_durable(dir_ / ".Plain" / "x.tmp", dir_ / ".Plain" / "hikyaku-special-use",
                                       "\\Flagged\n", false));
  EXPECT_EQ(names(b), (std::vector<std::string>{"INBOX", "Old/Outbox \\Sent", "Plain"}));
}

// A store opened before its folder was deleted or renamed knows it is gone.
// A folder another program made with cur/ only: it is listed (cur/ makes a
// folder), and opening it makes new/ and tmp/, so SELECT and APPEND work
// instead of failing with [SERVERBUG].
TEST_F(MaildirAccountTest, AFolderWithoutNewOrTmpCanBeSelectedAndAppendedTo) {
  auto a = account();
  fs::create_directories(dir_ / ".Sent" / "cur");
  auto sent = a.open("Sent");
  ASSERT_TRUE(sent) << sent.error().message;
  auto snap = (*sent)->scan(true);
  ASSERT_TRUE(snap) << snap.error().message;
  EXPECT_TRUE(snap->messages.empty());
  auto appended = (*sent)->append("Subject: x\r\n\r\nbody\r\n", 0, {}, std::nullopt);
  ASSERT_TRUE(appended) << appended.error().message;
  EXPECT_TRUE(fs::is_directory(dir_ / ".Sent" / "tmp"));
  EXPECT_TRUE(fs::is_directory(dir_ / ".Sent" / "new"));
}

TEST_F(MaildirAccountTest, AnOpenStoreSeesItsFolderGo) {
  auto a = account();
  ASSERT_TRUE(a.create("one", ""));
  ASSERT_TRUE(a.create("two", ""));
  auto one = a.open("one");
  auto two = a.open("two");
  auto inbox = a.open("INBOX");
  ASSERT_TRUE(one && two && inbox);
  EXPECT_FALSE((*one)->gone());
  ASSERT_TRUE(a.remove("one"));
  ASSERT_TRUE(a.rename("two", "three"));
  EXPECT_TRUE((*one)->gone());
  EXPECT_TRUE((*two)->gone());
  EXPECT_FALSE((*inbox)->gone());
  ASSERT_TRUE(a.rename("INBOX", "old"));  // INBOX stays, empty
  EXPECT_FALSE((*inbox)->gone());
}

TEST_F(MaildirAccountTest, RenameMovesChildrenAndDeleteLeavesThem) {
  auto a = account();
  ASSERT_TRUE(a.create("work", ""));
  ASSERT_TRUE(a.create("work/2026", ""));
  auto store = a.open("work/2026");
  ASSERT_TRUE(store);
  ASSERT_TRUE((*store)->append("Subject: x\r\n\r\nbody\r\n", kSeen, {"$Forwarded"}, std::nullopt));
  EXPECT_EQ(a.rename("work", "work/inside").error().error_number, EINVAL);
  ASSERT_TRUE(a.rename("work", "job"));
  EXPECT_EQ(names(a), (std::vector<std::string>{"INBOX", "job", "job/2026"}));
  auto moved = a.open("job/2026");
  ASSERT_TRUE(moved);
  auto snap = (*moved)->scan(false);
  ASSERT_TRUE(snap);
  ASSERT_EQ(snap->messages.size(), 1u);
  EXPECT_EQ(snap->messages[0].keywords, protocol::Keywords{"$Forwarded"});
  ASSERT_TRUE(a.create("x", ""));
  EXPECT_EQ(a.rename("job", "x").error().error_number, EEXIST);
  ASSERT_TRUE(a.remove("job"));
  EXPECT_EQ(names(a), (std::vector<std::string>{"INBOX", "job/2026", "x"}));
  EXPECT_EQ(a.remove("job").error().error_number, ENOENT);
  EXPECT_EQ(a.remove("INBOX").error().error_number, EINVAL);
  // A parent that is no folder moves with its children.
  ASSERT_TRUE(a.rename("job", "old"));
  EXPECT_EQ(names(a), (std::vector<std::string>{"INBOX", "old/2026", "x"}));
}

TEST_F(MaildirAccountTest, Rfc3501Section6_3_5RenameInboxMovesItsMessages) {
  mailbox::Maildir md(dir_, false);
  ASSERT_TRUE(md.deliver("Subject: one\n\nbody\n"));
  auto a = account();
  auto inbox = a.open("INBOX");
  ASSERT_TRUE(inbox);
  auto before = (*inbox)->scan(true);
  ASSERT_TRUE(before && before->messages.size() == 1);
  ASSERT_TRUE((*inbox)->set_flags(before->messages[0], kSeen, {"Work"}));
  ASSERT_TRUE(a.rename("INBOX", "Old"));
  auto after = (*inbox)->scan(false);
  ASSERT_TRUE(after);
  EXPECT_TRUE(after->messages.empty());
  auto old = a.open("Old");
  ASSERT_TRUE(old);
  auto moved = (*old)->scan(false);
  ASSERT_TRUE(moved);
  ASSERT_EQ(moved->messages.size(), 1u);
  EXPECT_EQ(moved->messages[0].flags, kSeen);
  EXPECT_EQ(moved->messages[0].keywords, protocol::Keywords{"Work"});  // dovecot-keywords went along
}

TEST_F(MaildirAccountTest, Rfc3501Section2_3_1_1RecreatedFolderGetsANewUidValidity) {
  auto a = account();
  std::set<uint32_t> seen;
  for (int i = 0; i < 3; ++i) {  // within one second
    ASSERT_TRUE(a.create("box", ""));
    auto store = a.open("box");
    ASSERT_TRUE(store);
    auto snap = (*store)->scan(false);
    ASSERT_TRUE(snap);
    EXPECT_TRUE(seen.insert(snap->uidvalidity).second) << snap->uidvalidity;
    ASSERT_TRUE(a.remove("box"));
  }
}

TEST_F(MaildirAccountTest, TwoSessionsCreatingOneFolderAtOnce) {
  // One CREATE wins, the other finds it exists; neither fails otherwise.
  for (int round = 0; round < 40; ++round) {
    std::string name = "box" + std::to_string(round);
    std::atomic<int> created{0}, existed{0}, failed{0};
    auto create = [&] {
      auto a = account();
      auto st = a.create(name, "");
      if (st) {
        ++created;
      } else if (st.error().error_number == EEXIST) {
        ++existed;
      } else {
        ++failed;
      }
    };
    std::thread one(create), two(create);
    one.join();
    two.join();
    EXPECT_EQ(created.load(), 1) << name;
    EXPECT_EQ(existed.load(), 1) << name;
    EXPECT_EQ(failed.load(), 0) << name;
  }
  EXPECT_TRUE(fs::is_empty(dir_ / "tmp"));  // no scratch directory left behind
}

TEST_F(MaildirAccountTest, SubscriptionsKeepNamesThatNeedNotExist) {
  auto a = account();
  ASSERT_TRUE(a.subscribe("gone/child", true));
  ASSERT_TRUE(a.subscribe("Sent", true));
  ASSERT_TRUE(a.subscribe("Sent", true));
  EXPECT_EQ(*a.subscriptions(), (std::vector<std::string>{"INBOX", "gone/child", "Sent"}));
  ASSERT_TRUE(a.subscribe("gone/child", false));
  EXPECT_EQ(*a.subscriptions(), (std::vector<std::string>{"INBOX", "Sent"}));
  // As Dovecot writes it for Maildir++: levels joined by ".", INBOX named.
  EXPECT_EQ(*base::read_file(dir_ / "subscriptions"), "INBOX\nSent\n");
  ASSERT_TRUE(base::write_file_durable(dir_ / "s.tmp", dir_ / "subscriptions", "Projects.2026\nINBOX\n", false));
  EXPECT_EQ(*a.subscriptions(), (std::vector<std::string>{"INBOX", "Projects/2026"}));
}

// A crash between writing the temporary file and its rename leaves it:
// the next change writes over it (before, every later SUBSCRIBE failed).
TEST_F(MaildirAccountTest, ASubscriptionsFileLeftByACrashIsWrittenOver) {
  auto a = account();
  ASSERT_TRUE(base::write_file_durable(dir_ / "x.tmp", dir_ / "subscriptions.hikyaku.tmp", "half\n", false));
  ASSERT_TRUE(a.subscribe("Sent", true));
  EXPECT_EQ(*a.subscriptions(), (std::vector<std::string>{"INBOX", "Sent"}));
  EXPECT_FALSE(fs::exists(dir_ / "subscriptions.hikyaku.tmp"));
}

TEST_F(MaildirAccountTest, QuotaCountsEveryFolder) {
  auto a = account(100000);
  ASSERT_TRUE(a.create("Sent", ""));
  auto sent = a.open("Sent");
  ASSERT_TRUE(sent);
  const std::string message = "Subject: x\n\n" + std::string(3000, 'x') + "\n";
  ASSERT_TRUE((*sent)->append(message, 0, {}, std::nullopt));
  auto q = a.quota();
  ASSERT_TRUE(q && *q);
  EXPECT_EQ((*q)->used, message.size());
  // The change is appended to the top maildirsize, not one in the folder.
  EXPECT_FALSE(fs::exists(dir_ / ".Sent" / "maildirsize"));
  ASSERT_TRUE((*sent)->append(message, 0, {}, std::nullopt));
  EXPECT_EQ((*a.quota())->used, 2 * message.size());
  ASSERT_TRUE(a.remove("Sent"));
  EXPECT_EQ((*a.quota())->used, 0u);
}

// RFC 3502: the quota is checked for the whole batch, before any is stored.
TEST_F(MaildirAccountTest, Rfc3502AppendAllOverQuotaStoresNone) {
  auto a = account(10000);
  auto inbox = a.open("INBOX");
  ASSERT_TRUE(inbox);
  const std::string message = "Subject: x\n\n" + std::string(4000, 'x') + "\n";
  std::vector<protocol::NewMessage> batch(3, protocol::NewMessage{message, 0, {}, std::nullopt});
  auto appended = (*inbox)->append_all(batch);
  ASSERT_FALSE(appended);
  EXPECT_EQ(appended.error().error_number, EDQUOT);
  EXPECT_TRUE((*inbox)->scan(false)->messages.empty());
  batch.pop_back();
  EXPECT_TRUE((*inbox)->append_all(batch));
  EXPECT_EQ((*inbox)->scan(false)->messages.size(), 2u);
}

}  // namespace
}  // namespace hikyaku::imap

#include "mailbox/maildir.hpp"

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <span>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/file.hpp"

namespace hikyaku::mailbox {
namespace {
namespace fs = std::filesystem;

// <digits>.M<digits>P<digits>Q<digits>.<host without / : ,>,S=<digits>,W=<digits>
// (hand-written: GCC 12's <regex> trips -Wmaybe-uninitialized under ASan).
bool matches_convention(std::string_view name) {
  size_t i = 0;
  auto digits = [&] {
    size_t start = i;
    while (i < name.size() && name[i] >= '0' && name[i] <= '9') ++i;
    return i > start;
  };
  auto lit = [&](char c) { return i < name.size() && name[i++] == c; };
  if (!digits() || !lit('.') || !lit('M') || !digits() || !lit('P') || !digits() || !lit('Q') ||
      !digits() || !lit('.')) {
    return false;
  }
  size_t host_start = i;
  while (i < name.size() && name[i] != ',' && name[i] != '/' && name[i] != ':') ++i;
  if (i == host_start) return false;
  if (!lit(',') || !lit('S') || !lit('=') || !digits() || !lit(',') || !lit('W') || !lit('=') || !digits()) {
    return false;
  }
  return i == name.size();
}

class MaildirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/maildir_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(MaildirTest, CreateMakesTmpNewCur) {
  Maildir md(dir_ / "alice");
  ASSERT_TRUE(md.create());
  for (const char* sub : {"tmp", "new", "cur"}) EXPECT_TRUE(fs::is_directory(dir_ / "alice" / sub)) << sub;
  ASSERT_TRUE(md.create());  // idempotent
}

// What a writer that died left in tmp/ (here and in a folder's tmp/) goes
// after 36 hours untouched; anything newer may be a delivery in progress.
TEST_F(MaildirTest, StaleTmpEntriesAreRemovedAfter36Hours) {
  Maildir md(dir_);
  ASSERT_TRUE(md.create());
  ASSERT_TRUE(md.folder(".Sent").create());
  const auto now = std::chrono::system_clock::now();
  auto age = [&](const fs::path& p, std::chrono::hours h) {
    fs::last_write_time(p, fs::file_time_type::clock::now() - h);
  };
  std::ofstream(dir_ / "tmp" / "killed.delivery") << "half";
  age(dir_ / "tmp" / "killed.delivery", std::chrono::hours(37));
  std::ofstream(dir_ / "tmp" / "in.progress") << "being written";
  age(dir_ / "tmp" / "in.progress", std::chrono::hours(35));
  std::ofstream(dir_ / ".Sent" / "tmp" / "killed.append") << "half";
  age(dir_ / ".Sent" / "tmp" / "killed.append", std::chrono::hours(40));
  fs::create_directories(dir_ / "tmp" / "scratch" / "folder");
  age(dir_ / "tmp" / "scratch", std::chrono::hours(48));
  auto removed = md.remove_stale_tmp(now);
  ASSERT_TRUE(removed.ok()) << removed.error().message;
  EXPECT_EQ(*removed, 3u);
  EXPECT_FALSE(fs::exists(dir_ / "tmp" / "killed.delivery"));
  EXPECT_FALSE(fs::exists(dir_ / ".Sent" / "tmp" / "killed.append"));
  EXPECT_FALSE(fs::exists(dir_ / "tmp" / "scratch"));
  EXPECT_TRUE(fs::exists(dir_ / "tmp" / "in.progress"));
  EXPECT_EQ(*Maildir(dir_ / "none").remove_stale_tmp(now), 0u);  // a Maildir not made yet
}

TEST_F(MaildirTest, DeliverNamesFollowConvention) {
  Maildir md(dir_);
  ASSERT_TRUE(md.create());
  auto uid = md.deliver("Subject: a\r\n\r\nbody\r\n");
  ASSERT_TRUE(uid) << uid.error().message;
  // <secs>.M<usecs>P<pid>Q<counter>.<host>,S=<disk>,W=<crlf>
  EXPECT_TRUE(matches_convention(*uid)) << "got " << *uid;
  EXPECT_TRUE(uid->ends_with(",S=17,W=20")) << "got " << *uid;
  EXPECT_LE(uid->size(), 70u) << "RFC 1939 §7 UIDL length";
  for (char c : *uid) EXPECT_TRUE(c >= 0x21 && c <= 0x7e) << "RFC 1939 §7 UIDL charset";
  EXPECT_TRUE(fs::exists(dir_ / "new" / *uid));
  EXPECT_TRUE(fs::is_empty(dir_ / "tmp")) << "tmp/ must be empty after delivery";
}

TEST_F(MaildirTest, StoresLfAndReportsCrlfSize) {
  Maildir md(dir_);
  ASSERT_TRUE(md.create());
  const std::string wire = "From: a@b\r\nSubject: x\r\n\r\nline1\r\nline2\r\n";
  ASSERT_TRUE(md.deliver(wire));
  auto list = md.list();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  auto body = md.read((*list)[0]);
  ASSERT_TRUE(body);
  EXPECT_EQ(*body, "From: a@b\nSubject: x\n\nline1\nline2\n");
  EXPECT_EQ((*list)[0].size, wire.size()) << "size is the CRLF (POP3) size";
  EXPECT_EQ((*list)[0].disk_size, body->size());
  EXPECT_EQ(Maildir::to_network(*body), wire);
  EXPECT_TRUE((*list)[0].in_new);
}

TEST_F(MaildirTest, LineEndingConversions) {
  struct Case {
    const char* name;
    std::string network;
    std::string stored;
  };
  const Case cases[] = {
      {"empty", "", ""},
      {"crlf", "a\r\nb\r\n", "a\nb\n"},
      {"lone cr kept", "a\rb\r\n", "a\rb\n"},
      {"no final newline", "a\r\nb", "a\nb"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(Maildir::to_stored(c.network), c.stored) << c.name;
    EXPECT_EQ(Maildir::to_network(c.stored), c.network) << c.name;
    EXPECT_EQ(Maildir::network_size(c.stored), c.network.size()) << c.name;
  }
  // A file with CRLF already (dropped in by another program) is not doubled.
  EXPECT_EQ(Maildir::to_network("a\r\nb\n"), "a\r\nb\r\n");
  EXPECT_EQ(Maildir::network_size("a\r\nb\n"), 6u);
}

TEST_F(MaildirTest, DeliveredInPartsIsStoredAsTheWholeWouldBe) {
  // The agent hands the added fields and the spooled bytes as two parts; a
  // CRLF split between parts, a lone CR at a part's end and a chunk
  // boundary (256 KiB) inside a line must not change what is stored.
  Maildir md(dir_);
  ASSERT_TRUE(md.create());
  const std::string big = std::string(300 * 1024, 'y') + "\r\n";
  const std::vector<std::vector<std::string>> cases = {
      {"Return-Path: <a@b>\r\n", "From: a@b\r\n\r\nbody\r\n"},
      {"X: 1\r", "\nY: 2\r\n\r\nz\r\n"},
      {"X: 1\r", "Y: 2\r\n\r\nz\r"},
      {"", "a\r\n", "", "b\rc\r\n"},
      {"H: v\r\n\r\n", big, big},
  };
  for (const auto& parts : cases) {
    std::string whole;
    std::vector<std::string_view> views;
    for (const auto& p : parts) {
      whole += p;
      views.emplace_back(p);
    }
    auto uid = md.deliver(std::span<const std::string_view>(views));
    ASSERT_TRUE(uid);
    auto info = md.find(*uid);
    ASSERT_TRUE(info);
    auto stored = md.read(*info);
    ASSERT_TRUE(stored);
    EXPECT_EQ(*stored, Maildir::to_stored(whole));
    EXPECT_EQ(info->disk_size, stored->size());
    EXPECT_EQ(info->size, Maildir::network_size(*stored));
  }
}

TEST_F(MaildirTest, ListOldestFirstAcrossNewAndCur) {
  Maildir md(dir_, /*sync=*/false);
  ASSERT_TRUE(md.create());
  // Foreign names (other MDAs) sort by their leading seconds.
  std::ofstream(dir_ / "cur" / "1000.M5P1.host:2,S") << "old\n";
  std::ofstream(dir_ / "new" / "1000.M7P1.host") << "older-second\n";
  std::ofstream(dir_ / "new" / "999.P1.host") << "oldest\n";
  std::ofstream(dir_ / "new" / ".hidden") << "ignored\n";
  auto uid = md.deliver("newest\r\n");
  ASSERT_TRUE(uid);
  auto list = md.list();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 4u);
  EXPECT_EQ((*list)[0].uid, "999.P1.host");
  EXPECT_EQ((*list)[1].uid, "1000.M5P1.host");
  EXPECT_EQ((*list)[1].flags, "S");
  EXPECT_FALSE((*list)[1].in_new);
  EXPECT_EQ((*list)[2].uid, "1000.M7P1.host");
  EXPECT_EQ((*list)[3].uid, *uid);
  EXPECT_EQ((*list)[0].size, 8u) << "foreign file: size computed from content";
}

// list() reads the directories' entries: only regular files (or links to
// them) are messages. What publish() says of the messages it linked is what
// list() says of them.
TEST_F(MaildirTest, ListKeepsRegularFilesAndPublishAgreesWithIt) {
  Maildir md(dir_, /*sync=*/false);
  ASSERT_TRUE(md.create());
  fs::create_directory(dir_ / "cur" / "1000.M1P1.host:2,S");       // a directory, not a message
  fs::create_symlink("/nonexistent", dir_ / "cur" / "1000.M2P1.host");  // a dangling link
  std::ofstream(dir_ / "outside") << "linked\n";
  fs::create_symlink(dir_ / "outside", dir_ / "cur" / "1000.M3P1.host:2,");
  auto one = md.stage("Subject: x\r\n\r\nbody\r\n");
  auto two = md.stage("Subject: y\r\n\r\nmore\r\n");
  ASSERT_TRUE(one && two);
  EXPECT_EQ(md.list()->size(), 1u) << "staged messages are not visible";
  const std::vector<Maildir::Staged> staged{*one, *two};
  const std::vector<std::string> flags{"SF", ""};
  auto published = md.publish(staged, flags);
  ASSERT_TRUE(published) << published.error().message;
  ASSERT_EQ(published->size(), 2u);
  EXPECT_EQ((*published)[0].flags, "FS");  // sorted, as set_flags() writes them
  EXPECT_FALSE(fs::exists(one->tmp_path));
  EXPECT_FALSE(fs::exists(two->tmp_path));
  auto list = md.list();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].uid, "1000.M3P1.host");
  EXPECT_EQ((*list)[0].size, 8u);
  for (size_t i = 0; i < 2; ++i) {
    const MessageInfo& listed = (*list)[i + 1];
    const MessageInfo& said = (*published)[i];
    EXPECT_EQ(said.uid, listed.uid);
    EXPECT_EQ(said.path, listed.path);
    EXPECT_FALSE(said.in_new);
    EXPECT_EQ(listed.in_new, said.in_new);
    EXPECT_EQ(said.flags, listed.flags);
    EXPECT_EQ(said.size, listed.size);
    EXPECT_EQ(said.disk_size, listed.disk_size);
  }
}

// A batch appears whole or not at all: a link that fails takes back the
// ones made before it, and no staged file is left in tmp/.
TEST_F(MaildirTest, PublishIsAllOrNone) {
  Maildir md(dir_, /*sync=*/false);
  ASSERT_TRUE(md.create());
  std::vector<Maildir::Staged> staged;
  for (const char* text : {"a\r\n", "b\r\n", "c\r\n"}) {
    auto s = md.stage(text);
    ASSERT_TRUE(s);
    staged.push_back(*s);
  }
  std::ofstream(dir_ / "cur" / (staged[2].uid + ":2,S")) << "in the way\n";  // the third cannot be linked
  auto published = md.publish(staged, std::vector<std::string>{"S", "S", "S"});
  ASSERT_FALSE(published);
  EXPECT_NE(published.error().message.find("link"), std::string::npos) << published.error().message;
  auto list = md.list();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u) << "only the file that was in the way";
  EXPECT_EQ((*list)[0].uid, staged[2].uid);
  EXPECT_TRUE(fs::is_empty(dir_ / "tmp"));
  EXPECT_TRUE(fs::is_empty(dir_ / "new"));
  // discard() removes what is not to be published.
  auto s = md.stage("d\r\n");
  ASSERT_TRUE(s);
  md.discard(std::span(&*s, 1));
  EXPECT_TRUE(fs::is_empty(dir_ / "tmp"));
}

TEST_F(MaildirTest, ListTakesTheSizesOfMessagesItKnowsAndReadsTheRest) {
  Maildir md(dir_, /*sync=*/false);
  ASSERT_TRUE(md.create());
  std::ofstream(dir_ / "new" / "1000.P1.host") << "one\n";  // no S=/W=: read to size it
  std::ofstream(dir_ / "new" / "1001.P1.host") << "two two\n";
  auto first = md.list();
  ASSERT_TRUE(first);
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ((*first)[0].size, 5u);
  // Known messages are not read again (a message's bytes never change).
  Maildir::Known known;
  MessageInfo k = (*first)[0];
  k.size = 123;
  k.disk_size = 122;
  known.emplace(k.uid, k);
  auto second = md.list(&known);
  ASSERT_TRUE(second);
  ASSERT_EQ(second->size(), 2u);
  EXPECT_EQ((*second)[0].size, 123u);
  EXPECT_EQ((*second)[0].disk_size, 122u);
  EXPECT_EQ((*second)[1].size, 9u);
}

TEST_F(MaildirTest, RemoveIsIdempotentAndFollowsMoves) {
  Maildir md(dir_);
  ASSERT_TRUE(md.create());
  ASSERT_TRUE(md.deliver("one\r\n"));
  ASSERT_TRUE(md.deliver("two\r\n"));
  auto list = md.list();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  // Another reader moves message 0 to cur/ with flags; our stale info still works.
  MessageInfo moved = (*list)[0];
  ASSERT_TRUE(md.set_flags(moved, "SR"));
  EXPECT_EQ(moved.flags, "RS");
  EXPECT_FALSE(moved.in_new);
  EXPECT_TRUE(fs::exists(dir_ / "cur" / (moved.uid + ":2,RS")));
  auto body = md.read((*list)[0]);
  ASSERT_TRUE(body) << body.error().message;
  EXPECT_EQ(*body, "one\n");
  ASSERT_TRUE(md.remove((*list)[0]));
  ASSERT_TRUE(md.remove((*list)[0])) << "second remove is not an error";
  auto after = md.list();
  ASSERT_TRUE(after);
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ((*after)[0].uid, (*list)[1].uid);
}

TEST_F(MaildirTest, UidIsStableAcrossFlagChanges) {
  Maildir md(dir_);
  ASSERT_TRUE(md.create());
  auto uid = md.deliver("x\r\n");
  ASSERT_TRUE(uid);
  auto found = md.find(*uid);
  ASSERT_TRUE(found);
  ASSERT_TRUE(md.set_flags(*found, "S"));
  auto list = md.list();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].uid, *uid) << "UIDL must not change (RFC 1939 §7)";
  EXPECT_EQ((*list)[0].size, 3u);
}

// Another program put a second file under the same unique name (a backup
// restored beside its original): a flag change that would give the message
// the other file's name fails and keeps both, never replacing one by the
// other (rename(2) would).
TEST_F(MaildirTest, AFlagChangeNeverReplacesAnotherFileOfTheSameName) {
  Maildir md(dir_);
  ASSERT_TRUE(md.create());
  auto uid = md.deliver("original\r\n");
  ASSERT_TRUE(uid);
  const fs::path restored = dir_ / "cur" / (*uid + ":2,S");
  {
    std::ofstream(restored) << "restored copy\n";
  }
  auto found = md.find(*uid);
  ASSERT_TRUE(found);
  ASSERT_TRUE(found->in_new);
  auto st = md.set_flags(*found, "S");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().error_number, EEXIST);
  EXPECT_NE(st.error().message.find("kept both"), std::string::npos) << st.error().message;
  EXPECT_TRUE(fs::exists(dir_ / "new" / *uid));
  std::ifstream in(restored);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "restored copy\n");
}

// Two files under one unique name (another program's doing): each is a
// message of its own. The one a reader knew keeps its name; the other is
// given a fresh one, with its flags.
TEST_F(MaildirTest, TwoFilesOfOneNameBecomeTwoMessages) {
  Maildir md(dir_);
  ASSERT_TRUE(md.create());
  auto uid = md.deliver("original\r\n");
  ASSERT_TRUE(uid);
  std::ofstream(dir_ / "cur" / (*uid + ":2,S")) << "an older version\n";  // not the same bytes
  auto known_before = md.find(*uid);  // what a reader saw before the copy came
  ASSERT_TRUE(known_before);
  Maildir::Known known{{*uid, *known_before}};
  auto list = md.list(&known);
  ASSERT_TRUE(list) << list.error().message;
  ASSERT_EQ(list->size(), 2u);
  const MessageInfo& a = (*list)[0].uid == *uid ? (*list)[0] : (*list)[1];
  const MessageInfo& b = (*list)[0].uid == *uid ? (*list)[1] : (*list)[0];
  EXPECT_EQ(a.uid, *uid);
  EXPECT_TRUE(a.in_new);
  EXPECT_NE(b.uid, *uid);
  EXPECT_EQ(b.flags, "S");
  // Its own sizes, measured afresh (the name it had carried the other's).
  EXPECT_EQ(b.disk_size, 17u);
  EXPECT_NE(b.path.find(",S=17,W=18:2,S"), std::string::npos) << b.path;
  EXPECT_TRUE(fs::exists(b.path)) << b.path;
  EXPECT_TRUE(fs::exists(a.path)) << a.path;
  auto again = md.list();  // stable: nothing more to rename
  ASSERT_TRUE(again);
  EXPECT_EQ(again->size(), 2u);
}

// Names no uidlist line or POP3 UIDL can hold (another program's: empty
// before the info, white space, a control character) are replaced by fresh
// unique names, flags kept, and so are names too long to take their
// flags; other names, even longer than 70 or not ASCII, stay.
TEST_F(MaildirTest, NamesThatCannotBeKeptAreReplaced) {
  Maildir md(dir_, /*sync=*/false);
  ASSERT_TRUE(md.create());
  const std::string kept = "1700000001.M1P1.h\xC3\xB6st-with-a-very-long-name-from-another-tool-longer-than-seventy";
  for (const auto& [sub, name] : std::vector<std::pair<std::string, std::string>>{
           {"cur", ":2,S"},
           {"cur", "1700000002.M1P1.h copy:2,FS"},
           {"new", "1700000003.M1P1.h\tx"},
           {"new", "1700000004.M1P1." + std::string(230, 'h')},  // no room for ":2,S"
           {"new", kept}}) {
    std::ofstream(dir_ / sub / name) << "From: a@b\n\nx\n";
  }
  auto list = md.list();
  ASSERT_TRUE(list) << list.error().message;
  ASSERT_EQ(list->size(), 5u);
  std::multiset<std::string> flags;
  size_t unchanged = 0;
  for (const auto& m : *list) {
    EXPECT_TRUE(fs::exists(m.path)) << m.path;
    EXPECT_FALSE(m.uid.empty());
    EXPECT_EQ(m.uid.find_first_of(" \t"), std::string::npos) << m.uid;
    unchanged += m.uid == kept ? 1 : 0;
    flags.insert(m.flags);
  }
  EXPECT_EQ(unchanged, 1u);
  EXPECT_EQ(flags, (std::multiset<std::string>{"", "", "", "FS", "S"}));
  auto again = md.list();  // the new names are kept
  ASSERT_TRUE(again);
  std::set<std::string> first, second;
  for (const auto& m : *list) first.insert(m.uid);
  for (const auto& m : *again) second.insert(m.uid);
  EXPECT_EQ(first, second);
}

// Our own names stay within the 70 characters a POP3 UIDL may have, also
// for a large message on a host with a long name (the host part is
// shortened). The host name is set in a new UTS namespace of a fresh
// process (the name is read once per process), which needs root.
TEST_F(MaildirTest, OwnNamesFitAPop3Uidl) {
  // Root without CAP_SYS_ADMIN (a default container) cannot either.
  const pid_t probe = ::fork();
  if (probe == 0) std::_Exit(::unshare(CLONE_NEWUTS) == 0 ? 0 : 1);
  int status = 0;
  ASSERT_EQ(::waitpid(probe, &status, 0), probe);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    if (std::getenv("CI") != nullptr) FAIL() << "CI runs the unit tests as root: this one needs a UTS namespace";
    GTEST_SKIP() << "needs a UTS namespace (root with CAP_SYS_ADMIN; CI has it)";
  }
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Maildir md(dir_, /*sync=*/false);
  ASSERT_TRUE(md.create());
  EXPECT_EXIT(
      {
        const std::string host = "ip-172-31-23-117.eu-west-1.compute.internal";
        if (::unshare(CLONE_NEWUTS) != 0 || ::sethostname(host.data(), host.size()) != 0) std::_Exit(3);
        auto uid = md.deliver(std::string(3 * 1024 * 1024, 'x') + "\r\n");
        if (!uid) std::_Exit(2);
        std::_Exit(uid->size() <= 70 && uid->find(".ip-172") != std::string::npos ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

// A file the server may not read (another program's, mode 000) is listed
// with its size on disk: reading it fails, the mailbox does not.
TEST_F(MaildirTest, AnUnreadableFileIsListedAndOnlyItsReadFails) {
  Maildir md(dir_, /*sync=*/false);
  ASSERT_TRUE(md.create());
  ASSERT_TRUE(md.deliver("readable\r\n"));
  const fs::path locked = dir_ / "new" / "1700000000.foreign.host";
  std::ofstream(locked) << "0123456789";
  fs::permissions(dir_, fs::perms::all);
  for (const char* sub : {"new", "cur", "tmp"}) fs::permissions(dir_ / sub, fs::perms::all);
  fs::permissions(locked, fs::perms::none);
  // As root every file is readable: the listing runs as nobody, in a child.
  EXPECT_EXIT(
      {
        if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) std::_Exit(3);
        auto list = md.list();
        if (!list || list->size() != 2) std::_Exit(1);
        for (const auto& m : *list) {
          if (m.path == locked.native() && (m.disk_size != 10 || md.read(m))) std::_Exit(2);
        }
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(MaildirTest, ConcurrentDeliveriesGetUniqueNames) {
  Maildir md(dir_, /*sync=*/false);
  ASSERT_TRUE(md.create());
  std::vector<std::thread> threads;
  std::mutex mu;
  std::set<std::string> uids;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        auto uid = md.deliver("m\r\n");
        ASSERT_TRUE(uid);
        std::lock_guard lock(mu);
        uids.insert(*uid);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(uids.size(), 200u);
  auto list = md.list();
  ASSERT_TRUE(list);
  EXPECT_EQ(list->size(), 200u);
}

TEST_F(MaildirTest, DeliverFailsWithoutDirectories) {
  Maildir md(dir_ / "missing");
  auto uid = md.deliver("x\r\n");
  EXPECT_FALSE(uid);
}

size_t entries(const fs::path& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

// The convention's order (write, fdatasync, link into new/, fsync new/):
// what deliver() leaves is one complete file in new/ and nothing in tmp/.
// (The order of the calls themselves is asserted by
// tests/integration/test_durability_order.py under strace.)
TEST_F(MaildirTest, DeliverLeavesOneCompleteFileInNewAndNothingInTmp) {
  Maildir md(dir_);
  ASSERT_TRUE(md.create());
  auto uid = md.deliver("Subject: a\r\n\r\nbody\r\n");
  ASSERT_TRUE(uid);
  EXPECT_EQ(entries(dir_ / "tmp"), 0u);
  EXPECT_EQ(entries(dir_ / "cur"), 0u);
  ASSERT_EQ(entries(dir_ / "new"), 1u);
  auto data = base::read_file(dir_ / "new" / *uid);
  ASSERT_TRUE(data);
  EXPECT_EQ(*data, "Subject: a\n\nbody\n");
}

// A spare (a file created ahead) takes the next message: it is written,
// flushed and linked into new/ under the message's own name (its sizes
// known only then), and leaves nothing in tmp/; an unused spare is
// removed with its object.
TEST_F(MaildirTest, ASpareTakesTheNextMessageUnderItsOwnName) {
  Maildir md(dir_);
  ASSERT_TRUE(md.create());
  auto spare = md.make_spare();
  ASSERT_TRUE(spare) << spare.error().message;
  ASSERT_TRUE(spare->ready());
  EXPECT_EQ(entries(dir_ / "tmp"), 1u);
  EXPECT_EQ(entries(dir_ / "new"), 0u) << "a spare is never visible to readers";
  const std::string message = "Subject: a\r\n\r\nbody\r\n";
  auto uid = md.deliver(Maildir::Pieces([&](const std::function<void(std::string_view)>& emit) {
                          emit(message);
                          return base::Status{};
                        }),
                        &*spare);
  ASSERT_TRUE(uid) << uid.error().message;
  EXPECT_FALSE(spare->ready()) << "taken";
  EXPECT_EQ(entries(dir_ / "tmp"), 0u);
  ASSERT_EQ(entries(dir_ / "new"), 1u);
  EXPECT_NE(uid->find(",S=17,W=20"), std::string::npos) << *uid;
  auto data = base::read_file(dir_ / "new" / *uid);
  ASSERT_TRUE(data);
  EXPECT_EQ(*data, "Subject: a\n\nbody\n");

  {
    auto unused = md.make_spare();
    ASSERT_TRUE(unused);
    EXPECT_EQ(entries(dir_ / "tmp"), 1u);
  }
  EXPECT_EQ(entries(dir_ / "tmp"), 0u) << "an unused spare is removed";
}

// A delivery that fails after the file was written (here the link: new/ is
// gone) leaves nothing behind in tmp/ either, and the Error carries the
// failed call's errno for the caller (4.3.1 for a full disk).
TEST_F(MaildirTest, FailedLinkLeavesNothingBehind) {
  Maildir md(dir_);
  ASSERT_TRUE(md.create());
  fs::remove(dir_ / "new");
  auto uid = md.deliver("Subject: a\r\n\r\nbody\r\n");
  ASSERT_FALSE(uid);
  EXPECT_EQ(uid.error().error_number, ENOENT) << uid.error().message;
  EXPECT_NE(uid.error().message.find("link"), std::string::npos) << uid.error().message;
  EXPECT_EQ(entries(dir_ / "tmp"), 0u);
  EXPECT_FALSE(uid.error().out_of_space());
}

}  // namespace
}  // namespace hikyaku::mailbox

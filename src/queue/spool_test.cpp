#include "queue/spool.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "base/file.hpp"

namespace hikyaku::queue {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

mail::Target mailbox(std::string name) { return mail::Target{mail::Target::Kind::mailbox, std::move(name)}; }
mail::Target forward(std::string addr) { return mail::Target{mail::Target::Kind::forward, std::move(addr)}; }

mail::Envelope make_envelope() {
  mail::Envelope env;
  env.sender = mail::Address{"sender name", "example.org"};  // a space must survive escaping
  env.recipients = {mail::Address{"alice", "example.test"}, mail::Address{"Bob", "example.test"}};
  env.helo = "client.example.org";
  env.client_ip = "192.0.2.1";
  env.body_8bit = true;
  return env;
}

std::vector<RecipientPlan> make_plan() {
  return {{"alice@example.test", {mailbox("alice")}},
          {"Bob@example.test", {mailbox("bob"), forward("bob%40x@gmail.example")}}};
}

class SpoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/spool_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    spool_ = std::make_unique<Spool>(dir_, clock_);
    ASSERT_TRUE(spool_->create());
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  base::FakeClock clock_{base::Clock::time_point(std::chrono::seconds(1700000000))};
  std::unique_ptr<Spool> spool_;
};

TEST_F(SpoolTest, EnqueueThenLoadRoundTrips) {
  const std::string msg = "Subject: hi\r\n\r\nbody\r\n";
  auto id = spool_->enqueue(make_envelope(), make_plan(), msg);
  ASSERT_TRUE(id) << id.error().message;
  EXPECT_TRUE(Spool::valid_id(*id)) << *id;
  EXPECT_TRUE(fs::exists(dir_ / "queue" / *id));
  EXPECT_TRUE(fs::is_empty(dir_ / "tmp"));

  auto m = spool_->load(*id);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->arrival, clock_.now());
  ASSERT_TRUE(m->envelope.sender);
  EXPECT_EQ(m->envelope.sender->local, "sender name");
  EXPECT_EQ(m->envelope.sender->domain, "example.org");
  ASSERT_EQ(m->envelope.recipients.size(), 2u);
  EXPECT_EQ(m->envelope.recipients[1].local, "Bob");
  EXPECT_EQ(m->envelope.helo, "client.example.org");
  EXPECT_EQ(m->envelope.client_ip, "192.0.2.1");
  EXPECT_EQ(m->envelope.auth_user, "");
  EXPECT_TRUE(m->envelope.body_8bit);
  EXPECT_FALSE(m->envelope.smtputf8);
  ASSERT_EQ(m->slots.size(), 3u) << "one slot per recipient × target";
  EXPECT_EQ(m->slots[0].recipient, "alice@example.test");
  EXPECT_EQ(m->slots[0].target.str(), "mailbox:alice");
  EXPECT_EQ(m->slots[2].recipient, "Bob@example.test");
  EXPECT_EQ(m->slots[2].target.str(), "forward:bob%40x@gmail.example");
  for (const auto& t : m->slots) {
    EXPECT_EQ(t.status, SlotStatus::pending);
    EXPECT_EQ(t.attempts, 0u);
  }
  EXPECT_FALSE(m->done());
  auto body = spool_->read_message(*m);
  ASSERT_TRUE(body);
  EXPECT_EQ(body->text, msg);
  EXPECT_EQ(m->message_size, msg.size());
}

// Rule 1 in two steps: stage() leaves the file in tmp/ and describes exactly
// what load() reads after commit().
TEST_F(SpoolTest, StageThenCommitMatchesLoad) {
  const mail::Message msg{"Subject: hi\r\n\r\nbody\r\n", std::nullopt};
  auto staged = spool_->stage(make_envelope(), make_plan(), msg);
  ASSERT_TRUE(staged) << staged.error().message;
  const std::string id = staged->message.id;
  EXPECT_TRUE(fs::is_empty(dir_ / "tmp")) << "stage() does no I/O";
  EXPECT_FALSE(fs::exists(dir_ / "queue" / id)) << "not durable, not queued";
  ASSERT_TRUE(spool_->commit(*staged, msg));
  EXPECT_TRUE(fs::is_empty(dir_ / "tmp"));
  auto loaded = spool_->load(id);
  ASSERT_TRUE(loaded) << loaded.error().message;
  const SpooledMessage& s = staged->message;
  EXPECT_EQ(s.path, loaded->path);
  EXPECT_EQ(s.arrival, loaded->arrival);
  EXPECT_EQ(s.message_offset, loaded->message_offset);
  EXPECT_EQ(s.message_size, loaded->message_size);
  EXPECT_EQ(s.envelope.sender_str(), loaded->envelope.sender_str());
  EXPECT_EQ(s.envelope.recipients.size(), loaded->envelope.recipients.size());
  ASSERT_EQ(s.slots.size(), loaded->slots.size());
  for (size_t i = 0; i < s.slots.size(); ++i) {
    EXPECT_EQ(s.slots[i].recipient, loaded->slots[i].recipient);
    EXPECT_EQ(s.slots[i].target.str(), loaded->slots[i].target.str());
    EXPECT_EQ(s.slots[i].planned.str(), loaded->slots[i].planned.str());
    EXPECT_FALSE(s.slots[i].final());
  }
  auto bytes = spool_->read_message(s);
  ASSERT_TRUE(bytes);
  EXPECT_EQ(bytes->text, msg.text);
}

// Rule 7: a commit whose message was finished meanwhile writes no queue
// file: asked before the file is made, or again before its flush (the tmp
// file then goes); never asked, or answered no, the commit queues it.
TEST_F(SpoolTest, ACommitFinishedMeanwhileLeavesNoFile) {
  const mail::Message msg{"Subject: x\r\n\r\n", std::nullopt};
  for (int yes_at : {1, 2, 0}) {
    auto staged = spool_->stage(make_envelope(), make_plan(), msg);
    ASSERT_TRUE(staged);
    const std::string id = staged->message.id;
    int asked = 0;
    auto st = spool_->commit(*staged, msg, [&] {
      ++asked;
      if (asked == 2) {
        EXPECT_TRUE(fs::exists(dir_ / "tmp" / id)) << "asked again once written, before the flush";
      }
      return asked == yes_at;
    });
    ASSERT_TRUE(st) << st.error().message;
    EXPECT_EQ(*st, yes_at == 0 ? Committed::queued : Committed::finished) << yes_at;
    EXPECT_EQ(asked, yes_at == 0 ? 2 : yes_at);
    EXPECT_TRUE(fs::is_empty(dir_ / "tmp")) << yes_at;
    EXPECT_EQ(fs::exists(dir_ / "queue" / id), yes_at == 0) << yes_at;
  }
  EXPECT_FALSE(spool_->commit_in_doubt(1000));
}

// A commit that fails part-way leaves nothing behind (the client gets 451).
TEST_F(SpoolTest, FailedCommitLeavesNothing) {
  const mail::Message msg{"Subject: x\r\n\r\n", std::nullopt};
  std::string id;
  {
    auto staged = spool_->stage(make_envelope(), make_plan(), msg);
    ASSERT_TRUE(staged);
    id = staged->message.id;
    fs::remove_all(dir_ / "queue");  // the rename fails after the file was written
    EXPECT_FALSE(spool_->commit(*staged, msg));
    fs::create_directory(dir_ / "queue");
  }
  EXPECT_TRUE(fs::is_empty(dir_ / "tmp"));
  EXPECT_FALSE(fs::exists(dir_ / "queue" / id));
}

// Rule 6: a failed commit puts the spool in doubt until a commit succeeds;
// a disk with less room than the message is in doubt from the start. The
// Error of the failed commit carries its errno.
TEST_F(SpoolTest, CommitInDoubtAfterAFailedCommitUntilOneSucceeds) {
  const mail::Message msg{"Subject: x\r\n\r\n", std::nullopt};
  EXPECT_FALSE(spool_->commit_in_doubt(1000));
  EXPECT_TRUE(spool_->commit_in_doubt(UINT64_MAX)) << "no file system has that much room";
  {
    auto staged = spool_->stage(make_envelope(), make_plan(), msg);
    ASSERT_TRUE(staged);
    fs::remove_all(dir_ / "queue");
    auto st = spool_->commit(*staged, msg);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().error_number, ENOENT) << st.error().message;
    fs::create_directory(dir_ / "queue");
  }
  EXPECT_TRUE(spool_->commit_in_doubt(1000));
  auto id = spool_->enqueue(make_envelope(), make_plan(), msg.text);
  ASSERT_TRUE(id) << id.error().message;
  EXPECT_FALSE(spool_->commit_in_doubt(1000));
}

// A staged id never names a message already queued: the commit's
// RENAME_NOREPLACE would fail.
TEST_F(SpoolTest, CommitNeverReplacesAQueuedMessage) {
  const mail::Message msg{"Subject: x\r\n\r\n", std::nullopt};
  auto staged = spool_->stage(make_envelope(), make_plan(), msg);
  ASSERT_TRUE(staged);
  {
    std::ofstream squatter(staged->message.path);
    squatter << "not ours";
  }
  EXPECT_FALSE(spool_->commit(*staged, msg));
  std::ifstream in(staged->message.path);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "not ours");
}

TEST_F(SpoolTest, NullSenderRoundTrips) {
  mail::Envelope env = make_envelope();
  env.sender.reset();  // RFC 5321 §4.5.5 null reverse-path
  auto id = spool_->enqueue(env, make_plan(), "x\r\n");
  ASSERT_TRUE(id);
  auto m = spool_->load(*id);
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->envelope.sender);
}

TEST_F(SpoolTest, RejectsRecipientWithoutTarget) {
  std::vector<RecipientPlan> plan = {{"alice@example.test", {}}};
  auto id = spool_->enqueue(make_envelope(), plan, "x\r\n");
  EXPECT_FALSE(id);
  EXPECT_TRUE(fs::is_empty(dir_ / "queue"));
  EXPECT_FALSE(spool_->enqueue(make_envelope(), {}, "x\r\n"));
}

TEST_F(SpoolTest, IdsAreUniqueAndSortable) {
  std::vector<std::string> ids;
  for (int i = 0; i < 50; ++i) {
    auto id = spool_->enqueue(make_envelope(), make_plan(), "x\r\n");
    ASSERT_TRUE(id);
    ids.push_back(*id);
    if (i % 10 == 0) clock_.advance(1ms);
  }
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size());
  for (size_t i = 1; i < ids.size(); ++i) EXPECT_LT(ids[i - 1], ids[i]) << "got " << ids[i - 1] << " then " << ids[i];
  EXPECT_FALSE(Spool::valid_id("../etc/passwd"));
  EXPECT_FALSE(Spool::valid_id(""));
}

TEST_F(SpoolTest, ConcurrentEnqueuesAllLand) {
  base::SystemClock real;
  Spool spool(dir_, real);
  std::vector<std::thread> threads;
  std::mutex mu;
  std::set<std::string> ids;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        auto id = spool.enqueue(make_envelope(), make_plan(), std::string(4096, 'a'));
        ASSERT_TRUE(id) << id.error().message;
        std::lock_guard lock(mu);
        ids.insert(*id);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ids.size(), 100u);
  auto list = spool.list();
  ASSERT_TRUE(list);
  EXPECT_EQ(list->size(), 100u);
}

TEST_F(SpoolTest, RecordsLastWinsAndSurviveReload) {
  auto id = spool_->enqueue(make_envelope(), make_plan(), "x\r\n");
  ASSERT_TRUE(id);
  auto m = spool_->load(*id);
  ASSERT_TRUE(m);
  SlotState s = m->slots[1];
  s.attempts = 1;
  s.first_attempt = clock_.now();
  s.next_attempt = clock_.now() + 60s;
  s.last_reply = "4.2.2 mailbox full, try later";
  ASSERT_TRUE(spool_->record(*m, 1, s));
  s.attempts = 2;
  s.status = SlotStatus::delivered;
  s.last_reply = "2.0.0 ok";
  ASSERT_TRUE(spool_->record(*m, 1, s));
  // Replacing a target by its next fallback link is one record (issue 3).
  SlotState f = m->slots[2];
  f.target = mailbox("postmaster");
  f.link = 1;
  ASSERT_TRUE(spool_->record(*m, 2, f));

  auto r = spool_->load(*id);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->torn_records, 0u);
  EXPECT_EQ(r->slots[0].status, SlotStatus::pending);
  EXPECT_EQ(r->slots[1].status, SlotStatus::delivered);
  EXPECT_EQ(r->slots[1].attempts, 2u);
  EXPECT_EQ(r->slots[1].first_attempt, clock_.now());
  EXPECT_EQ(r->slots[1].next_attempt, clock_.now() + 60s);
  EXPECT_EQ(r->slots[1].last_reply, "2.0.0 ok");
  EXPECT_EQ(r->slots[1].recipient, "Bob@example.test");
  EXPECT_EQ(r->slots[2].target.str(), "mailbox:postmaster");
  EXPECT_EQ(r->slots[2].link, 1u);
  auto body = spool_->read_message(*r);
  ASSERT_TRUE(body);
  EXPECT_EQ(body->text, "x\r\n") << "message bytes are immutable";
}

// Simulated crash: a half-written tmp file, a torn last record, a garbage
// record, and a file that is not ours.
TEST_F(SpoolTest, RecoverCleansTmpAndIgnoresTornRecords) {
  auto id = spool_->enqueue(make_envelope(), make_plan(), "x\r\n");
  ASSERT_TRUE(id);
  auto m = spool_->load(*id);
  ASSERT_TRUE(m);
  SlotState s = m->slots[0];
  s.status = SlotStatus::delivered;
  s.attempts = 1;
  ASSERT_TRUE(spool_->record(*m, 0, s));
  {
    std::ofstream f(m->path, std::ios::app | std::ios::binary);
    f << "\nR 1 0 delivered 1 0 0 mailbox bob %-";  // torn: no checksum, no newline
  }
  std::ofstream(dir_ / "tmp" / "0000000000000") << "half a message";
  std::ofstream(dir_ / "queue" / "not-a-queue-id") << "junk";

  auto ids = spool_->recover();
  ASSERT_TRUE(ids) << ids.error().message;
  ASSERT_EQ(ids->size(), 1u);
  EXPECT_EQ((*ids)[0], *id);
  EXPECT_TRUE(fs::is_empty(dir_ / "tmp"));
  EXPECT_TRUE(fs::exists(dir_ / "corrupt" / "not-a-queue-id"));

  auto r = spool_->load(*id);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->torn_records, 1u);
  EXPECT_EQ(r->slots[0].status, SlotStatus::delivered);
  EXPECT_EQ(r->slots[1].status, SlotStatus::pending) << "a torn record was never acknowledged";

  // A record appended after the torn one is still read (it starts a new line).
  SlotState b = r->slots[1];
  b.status = SlotStatus::failed;
  ASSERT_TRUE(spool_->record(*r, 1, b));
  auto again = spool_->load(*id);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->slots[1].status, SlotStatus::failed);
  EXPECT_EQ(again->torn_records, 1u);
}

TEST_F(SpoolTest, CorruptChecksumIsIgnored) {
  auto id = spool_->enqueue(make_envelope(), make_plan(), "x\r\n");
  ASSERT_TRUE(id);
  auto m = spool_->load(*id);
  ASSERT_TRUE(m);
  SlotState s = m->slots[0];
  s.status = SlotStatus::delivered;
  ASSERT_TRUE(spool_->record(*m, 0, s));
  // Flip one byte of the record ("delivered" → "delivereX").
  auto data = base::read_file(m->path);
  ASSERT_TRUE(data);
  auto pos = data->rfind("delivered");
  ASSERT_NE(pos, std::string::npos);
  (*data)[pos + 8] = 'X';
  fs::remove(m->path);
  std::ofstream(m->path, std::ios::binary) << *data;
  auto r = spool_->load(*id);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->torn_records, 1u);
  EXPECT_EQ(r->slots[0].status, SlotStatus::pending);
}

TEST_F(SpoolTest, TruncatedMessageIsCorrupt) {
  auto id = spool_->enqueue(make_envelope(), make_plan(), std::string(1000, 'z'));
  ASSERT_TRUE(id);
  fs::resize_file(dir_ / "queue" / *id, 200);
  auto m = spool_->load(*id);
  EXPECT_FALSE(m);
  ASSERT_TRUE(spool_->quarantine(*id));
  EXPECT_TRUE(fs::exists(dir_ / "corrupt" / *id));
}

TEST_F(SpoolTest, ListAndRemove) {
  auto a = spool_->enqueue(make_envelope(), make_plan(), "x\r\n");
  clock_.advance(1s);
  auto b = spool_->enqueue(make_envelope(), make_plan(), "yy\r\n");
  ASSERT_TRUE(a && b);
  auto list = spool_->list();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].id, *a);
  EXPECT_EQ((*list)[0].sender, "sender name@example.org");
  EXPECT_EQ((*list)[1].size, 4u);
  EXPECT_EQ((*list)[1].pending, 3u);
  EXPECT_EQ((*list)[1].total, 3u);
  ASSERT_TRUE(spool_->remove(*a));
  ASSERT_TRUE(spool_->remove(*a)) << "removing twice is fine";
  EXPECT_FALSE(spool_->remove("../../x"));
  list = spool_->list();
  ASSERT_TRUE(list);
  EXPECT_EQ(list->size(), 1u);
}

// The planned target, the diversion note and the message origin survive a
// reload.
TEST_F(SpoolTest, RecordKeepsPlannedTargetNoteAndOrigin) {
  mail::Envelope env;
  env.sender = mail::Address{"s", "x.test"};
  env.recipients.push_back(mail::Address{"r", "example.test"});
  auto id = spool_->enqueue(env, {RecipientPlan("r@example.test", {mailbox("gone")})}, "Subject: x\r\n\r\nb\r\n",
                            Origin::notice);
  ASSERT_TRUE(id);
  auto m = spool_->load(*id);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->origin, Origin::notice);
  ASSERT_EQ(m->slots.size(), 1u);
  SlotState s = m->slots[0];
  EXPECT_EQ(s.planned.value, "gone");
  s.target = mailbox("spare");
  s.link = 1;
  s.diverted = "Thu, 01 Jan 1970 00:00:00 +0000; reason=\"550 x y\"";
  ASSERT_TRUE(spool_->record(*m, 0, s));
  auto again = spool_->load(*id);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->torn_records, 0u);
  EXPECT_EQ(again->slots[0].target.value, "spare");
  EXPECT_EQ(again->slots[0].planned.value, "gone");
  EXPECT_EQ(again->slots[0].diverted, s.diverted);
  EXPECT_EQ(again->origin, Origin::notice);
}

// Submitted mail (issue 13) keeps its origin and its login across a reload:
// the delivery agent must not rewrite it as a forward, and its DSN goes to
// the login's mailbox.
TEST_F(SpoolTest, SubmittedOriginAndLoginSurviveAReload) {
  mail::Envelope env;
  env.sender = mail::Address{"alice", "example.test"};
  env.recipients.push_back(mail::Address{"friend", "else.test"});
  env.auth_user = "alice";
  auto id = spool_->enqueue(env, {RecipientPlan("friend@else.test", {{mail::Target::Kind::forward, "friend@else.test"}})},
                            "From: alice@example.test\r\n\r\nb\r\n", Origin::submitted);
  ASSERT_TRUE(id);
  auto m = spool_->load(*id);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->origin, Origin::submitted);
  EXPECT_EQ(m->envelope.auth_user, "alice");
}

}  // namespace
// Issue 12 item 6: a large message's body comes from its receipt file (in
// spool/tmp, without a name) and is copied into the queue file; reading it
// back keeps only the header section in memory.
TEST_F(SpoolTest, LargeMessageBodyIsCopiedFromItsFileAndReadBackInPieces) {
  auto file = spool_->body_file();
  ASSERT_TRUE(file) << file.error().message;
  std::string body;
  for (int i = 0; body.size() < 3 * mail::kSpillThreshold; ++i) body += "line " + std::to_string(i) + "\r\n";
  ASSERT_TRUE(base::write_all(file->get(), body, dir_ / "tmp"));
  EXPECT_TRUE(fs::is_empty(dir_ / "tmp")) << "the receipt file has no name";
  const std::string head = "Received: x\r\nSubject: big\r\n\r\n";
  const mail::Message msg{head, mail::FileRange{std::make_shared<const base::UniqueFd>(std::move(file).value()),
                                                dir_ / "tmp", 0, body.size()}};
  auto staged = spool_->stage(make_envelope(), make_plan(), msg);
  ASSERT_TRUE(staged);
  ASSERT_TRUE(spool_->commit(*staged, msg));
  auto m = spool_->load(staged->message.id);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->message_size, head.size() + body.size());
  auto back = spool_->read_message(*m);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->text, head) << "only the header section is read into memory";
  ASSERT_TRUE(back->body.has_value());
  std::string all;
  ASSERT_TRUE(mail::for_each_piece(*back, [&](std::string_view piece) {
    all += piece;
    return base::Status{};
  }));
  EXPECT_EQ(all, head + body);
}

}  // namespace hikyaku::queue

#include "history/history.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>

#include "history/trace.hpp"

namespace hikyaku::history {
namespace {

using namespace std::chrono_literals;

class HistoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("hikyaku-history-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path file() const { return dir_ / "history.sqlite"; }

  static Received received(const std::string& id, TimePoint t) {
    return Received{t, id, "received", "alice@example.org", "ip 192.0.2.1 helo mx.example.org",
                    {"me@example.test"}, "Alice <alice@example.org>", "Hello", "spf=pass smtp.mailfrom=example.org"};
  }
  static Attempt attempt(const std::string& id, TimePoint t, std::string kind, std::string target,
                         std::string result) {
    Attempt a;
    a.time = t;
    a.queue_id = id;
    a.recipient = "me@example.test";
    a.target_kind = std::move(kind);
    a.target = std::move(target);
    a.result = std::move(result);
    return a;
  }

  std::filesystem::path dir_;
};

TEST_F(HistoryTest, ATraceShowsEveryStepOfADivertedMessage) {
  const TimePoint t0 = std::chrono::system_clock::now() - 1min;
  {
    auto h = History::open(file());
    ASSERT_TRUE(h.ok()) << h.error().message;
    (*h)->record(received("Q1", t0));
    Attempt refused = attempt("Q1", t0 + 1s, "forward", "forward:<hidden>", "diverted");
    refused.reply = "5.7.1 refused as spam";
    refused.seconds = 0.25;
    refused.next = "mailbox:fallback";
    (*h)->record(refused);
    (*h)->record(attempt("Q1", t0 + 2s, "mailbox", "mailbox:fallback", "delivered"));
    (*h)->record(Note{t0 + 3s, "Q1", "report", "notice Q2 queued about <me@example.test>"});
    (*h)->record(Note{t0 + 4s, "Q1", "removed", ""});
    ASSERT_TRUE((*h)->flush(10s));
  }
  struct stat st {};
  ASSERT_EQ(::stat(file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto by_id = trace(file(), "Q1");
  ASSERT_TRUE(by_id.ok()) << by_id.error().message;
  ASSERT_EQ(by_id->size(), 1u);
  const std::string text = format(*by_id);
  for (const char* step : {"received from <alice@example.org>, ip 192.0.2.1 helo mx.example.org, to <me@example.test>",
                           "From: Alice <alice@example.org>", "Subject: Hello", "checks: spf=pass",
                           // NOLINTNEXTLINE(bugprone-suspicious-missing-comma): one line, split
                           "<me@example.test> via forward:<hidden>: diverted in 0.250 s (5.7.1 refused as spam), "
                           "diverted to mailbox:fallback",
                           "<me@example.test> via mailbox:fallback: delivered", "report: notice Q2 queued",
                           "removed"}) {
    EXPECT_NE(text.find(step), std::string::npos) << step << "\n" << text;
  }
  EXPECT_LT(text.find("received from"), text.find("diverted in"));
  EXPECT_LT(text.find("diverted in"), text.find("removed"));

  // By address, either side, any case; an unknown id or address: nothing.
  auto by_sender = trace(file(), "ALICE@example.org");
  ASSERT_TRUE(by_sender.ok());
  EXPECT_EQ(by_sender->size(), 1u);
  auto by_recipient = trace(file(), "<me@EXAMPLE.test>");
  ASSERT_TRUE(by_recipient.ok());
  EXPECT_EQ(by_recipient->size(), 1u);
  EXPECT_TRUE(trace(file(), "Q9")->empty());
  EXPECT_TRUE(trace(file(), "nobody@example.org")->empty());
}

TEST_F(HistoryTest, TheSummaryCountsForwardsPerHourAndListsDiversions) {
  auto h = History::open(file());
  ASSERT_TRUE(h.ok());
  const TimePoint now = std::chrono::system_clock::now();
  for (int i = 0; i < 10; ++i) {
    Attempt a = attempt("Q" + std::to_string(i), now, "forward", "forward:<hidden>", "delivered");
    a.seconds = 0.1 * (i + 1);
    a.tls = i < 7;
    (*h)->record(a);
  }
  Attempt d = attempt("Q1", now - 2h, "forward", "forward:<hidden>", "diverted");
  d.reply = "5.7.1 no";
  d.next = "mailbox:fallback";
  (*h)->record(d);
  // The message's own row after its diversion (the forward overlaps the
  // spool's flush), in a later batch.
  ASSERT_TRUE((*h)->flush(10s));
  (*h)->record(received("Q1", now));
  (*h)->record(attempt("Q2", now - 3h, "relay", "relay:example.net", "deferred"));
  (*h)->record(attempt("Q3", now - 8 * 24h, "forward", "forward:<hidden>", "delivered"));  // older than 7 days
  (*h)->record(attempt("Q4", now, "mailbox", "mailbox:me", "delivered"));                  // not a forward
  ASSERT_TRUE((*h)->flush(10s));

  // As the writer kept it up to date, and as a restart loads it from the file.
  const auto check = [](const Summary& s) {
    const auto& last = s.hours[Summary::kHours - 1];
    EXPECT_EQ(last[0], 10u);
    EXPECT_EQ(s.hours[Summary::kHours - 3][1], 1u);
    EXPECT_EQ(s.hours[Summary::kHours - 4][2], 1u);
    EXPECT_EQ(s.forward_attempts, 12u);
    EXPECT_NEAR(s.p50, 0.5, 1e-9);
    EXPECT_NEAR(s.p90, 0.9, 1e-9);
    EXPECT_NEAR(s.p99, 1.0, 1e-9);
    EXPECT_EQ(s.forwards_delivered, 10u);  // the one of 8 days ago is out of the window
    EXPECT_EQ(s.forwards_delivered_tls, 7u);
    ASSERT_EQ(s.diversions.size(), 1u);
    EXPECT_EQ(s.diversions[0].from, "Alice <alice@example.org>");
    EXPECT_EQ(s.diversions[0].subject, "Hello");
    EXPECT_EQ(s.diversions[0].reason, "5.7.1 no");
    EXPECT_EQ(s.diversions[0].mailbox, "mailbox:fallback");
    EXPECT_EQ(s.dropped, 0u);
  };
  {
    SCOPED_TRACE("kept up to date");
    check((*h)->summary());
  }
  (*h)->stop();
  h->reset();
  auto again = History::open(file());
  ASSERT_TRUE(again.ok());
  SCOPED_TRACE("loaded at open");
  check((*again)->summary());
}

TEST_F(HistoryTest, TotalsSurviveARestartAndOldRowsArePruned) {
  const TimePoint now = std::chrono::system_clock::now();
  {
    auto h = History::open(file());
    ASSERT_TRUE(h.ok());
    (*h)->record(received("Q1", now));
    Received report = received("Q2", now);
    report.origin = "notice";
    (*h)->record(report);
    (*h)->record(received("Q0", now - 40 * 24h));  // past the retention
    (*h)->record(attempt("Q1", now, "forward", "forward:<hidden>", "delivered"));
    (*h)->record(attempt("Q1", now, "forward", "forward:<hidden>", "delivered"));
    (*h)->record(attempt("Q1", now, "mailbox", "mailbox:me", "deferred"));
    (*h)->stop();
  }
  auto h = History::open(file());
  ASSERT_TRUE(h.ok());
  const Totals t = (*h)->totals();
  EXPECT_EQ(t.received, 1u);  // reports are not received mail; Q0 pruned
  ASSERT_EQ(t.attempts.size(), 2u);
  for (const auto& [kind, result, n] : t.attempts) {
    if (kind == "forward") EXPECT_EQ(std::make_pair(result, n), std::make_pair(std::string("delivered"), uint64_t{2}));
    else EXPECT_EQ(std::make_pair(result, n), std::make_pair(std::string("deferred"), uint64_t{1}));
  }
  EXPECT_TRUE(trace(file(), "Q0")->empty());
}

TEST_F(HistoryTest, AnUnusableFileIsAnErrorNamingIt) {
  std::filesystem::create_directories(file());  // a directory where the file should be
  auto h = History::open(file());
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.error().message.find(file().string()), std::string::npos) << h.error().message;
  auto t = trace(dir_ / "missing.sqlite", "Q1");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("no history yet"), std::string::npos);
}

}  // namespace
}  // namespace hikyaku::history

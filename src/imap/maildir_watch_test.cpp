#include "imap/maildir_watch.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <vector>

namespace hikyaku::imap {
namespace {

namespace asio = net::asio;
using namespace std::chrono_literals;

class MaildirWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("hikyaku-watch-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ / "a");
    std::filesystem::create_directories(dir_ / "b");
    watch_ = MaildirWatch::create(io_.get_executor());
    ASSERT_NE(watch_, nullptr);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void touch(const std::filesystem::path& p) { std::ofstream(p) << "x"; }
  // Run the loop until `done` or 5 s.
  template <typename F>
  bool run_until(F done) {
    const auto end = std::chrono::steady_clock::now() + 5s;
    while (!done() && std::chrono::steady_clock::now() < end) {
      io_.restart();
      io_.run_for(10ms);
    }
    return done();
  }

  asio::io_context io_;
  std::filesystem::path dir_;
  std::shared_ptr<MaildirWatch> watch_;
};

TEST_F(MaildirWatchTest, ManySubscribersShareOneWatchPerDirectory) {
  // More sessions than the kernel's default 128 inotify instances per user.
  constexpr int kSessions = 300;
  std::vector<int> calls(kSessions + 1, 0);
  std::vector<MaildirWatch::Subscription> subs;
  for (int i = 0; i < kSessions; ++i) {
    auto s = watch_->subscribe(dir_ / "a", [&calls, i] { ++calls[i]; });
    ASSERT_TRUE(s.has_value());
    subs.push_back(std::move(*s));
  }
  auto other = watch_->subscribe(dir_ / "b", [&calls] { ++calls[kSessions]; });
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(watch_->watched(), 2u);

  touch(dir_ / "a" / "1");
  ASSERT_TRUE(run_until([&] { return calls[0] > 0 && calls[kSessions - 1] > 0; }));
  for (int i = 0; i < kSessions; ++i) EXPECT_GE(calls[i], 1) << i;
  EXPECT_EQ(calls[kSessions], 0);  // b saw nothing

  // The last subscriber of a directory ends its watch.
  subs.clear();
  EXPECT_EQ(watch_->watched(), 1u);
  const int before = calls[0];
  touch(dir_ / "a" / "2");
  touch(dir_ / "b" / "1");
  ASSERT_TRUE(run_until([&] { return calls[kSessions] > 0; }));
  EXPECT_EQ(calls[0], before);
}

TEST_F(MaildirWatchTest, RenamesAndDeletesAreSeenAndARemovedDirectoryCallsBack) {
  int calls = 0;
  auto s = watch_->subscribe(dir_ / "a", [&calls] { ++calls; });
  ASSERT_TRUE(s.has_value());
  touch(dir_ / "b" / "m");
  std::filesystem::rename(dir_ / "b" / "m", dir_ / "a" / "m");  // a Maildir delivery: tmp/ → new/
  ASSERT_TRUE(run_until([&] { return calls >= 1; }));
  const int after_rename = calls;
  std::filesystem::remove(dir_ / "a" / "m");  // an expunge
  ASSERT_TRUE(run_until([&] { return calls > after_rename; }));
  const int after_delete = calls;
  std::filesystem::remove_all(dir_ / "a");  // the folder deleted
  ASSERT_TRUE(run_until([&] { return calls > after_delete; }));
  EXPECT_EQ(watch_->watched(), 0u);
  s.reset();  // the kernel already dropped that watch: nothing to remove
}

TEST_F(MaildirWatchTest, AMissingDirectoryIsNotWatchedAndSubscriptionsMayOutliveTheWatch) {
  EXPECT_FALSE(watch_->subscribe(dir_ / "missing", [] {}).has_value());
  auto s = watch_->subscribe(dir_ / "a", [] {});
  ASSERT_TRUE(s.has_value());
  watch_.reset();
  s.reset();  // no crash, nothing to do
}

TEST_F(MaildirWatchTest, AClaimNotedInQuietMovesWakesNobody) {
  auto quiet = std::make_shared<QuietMoves>();
  auto watch = MaildirWatch::create(io_.get_executor(), quiet);
  ASSERT_NE(watch, nullptr);
  int new_calls = 0;
  int cur_calls = 0;
  auto n = watch->subscribe(dir_ / "a", [&] { ++new_calls; });  // a: new/, b: cur/
  auto c = watch->subscribe(dir_ / "b", [&] { ++cur_calls; });
  ASSERT_TRUE(n && c);
  touch(dir_ / "a" / "m");
  ASSERT_TRUE(run_until([&] { return new_calls == 1; }));

  // A session claims m: new/m → cur/m:2, noted first. Then a delivery and a
  // flag change by another program: the only calls (inotify keeps order).
  quiet->note(dir_ / "a" / "m", dir_ / "b" / "m:2,");
  EXPECT_EQ(quiet->noted(), 2u);
  std::filesystem::rename(dir_ / "a" / "m", dir_ / "b" / "m:2,");
  touch(dir_ / "a" / "m2");
  std::filesystem::rename(dir_ / "b" / "m:2,", dir_ / "b" / "m:2,S");
  ASSERT_TRUE(run_until([&] { return new_calls == 2 && cur_calls == 1; }));
  EXPECT_EQ(quiet->noted(), 0u);  // both halves consumed

  // The same move not noted (another program's) wakes both.
  std::filesystem::rename(dir_ / "a" / "m2", dir_ / "b" / "m2:2,");
  ASSERT_TRUE(run_until([&] { return new_calls == 3 && cur_calls == 2; }));

  // A directory nobody watches gets no notes (they would wait for events
  // that never come).
  n.reset();
  c.reset();
  quiet->note(dir_ / "a" / "x", dir_ / "b" / "x:2,");
  EXPECT_EQ(quiet->noted(), 0u);
}

}  // namespace
}  // namespace hikyaku::imap

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "pop3/mailbox_lock.hpp"

namespace hikyaku::pop3 {
namespace {

class LockTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("hikyaku-pop3-lock-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(LockTableTest, Rfc1939Section8OneSessionPerMaildrop) {
  LockTable table;
  auto first = table.try_lock("alice", dir_ / "alice.lock");
  ASSERT_TRUE(first.ok());
  ASSERT_NE(*first, nullptr);
  auto second = table.try_lock("alice", dir_ / "alice.lock");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, nullptr);  // [IN-USE]
  auto other = table.try_lock("bob", dir_ / "bob.lock");
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*other, nullptr);
  first.value().reset();
  auto third = table.try_lock("alice", dir_ / "alice.lock");
  ASSERT_TRUE(third.ok());
  EXPECT_NE(*third, nullptr);
}

TEST_F(LockTableTest, Rfc1939Section8FlockExcludesSecondTable) {
  // Two tables stand for two server processes: flock must still exclude.
  LockTable a, b;
  auto held = a.try_lock("alice", dir_ / "alice.lock");
  ASSERT_TRUE(held.ok() && *held);
  auto refused = b.try_lock("alice", dir_ / "alice.lock");
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(*refused, nullptr);
  // And in another process.
  pid_t pid = ::fork();
  if (pid == 0) {
    LockTable c;
    auto r = c.try_lock("alice", dir_ / "alice.lock");
    ::_exit(r.ok() && *r == nullptr ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  held.value().reset();
  auto now = b.try_lock("alice", dir_ / "alice.lock");
  ASSERT_TRUE(now.ok());
  EXPECT_NE(*now, nullptr);
}

TEST_F(LockTableTest, MissingDirectoryIsAnErrorAndReleasesTheName) {
  LockTable table;
  auto r = table.try_lock("alice", dir_ / "nope" / "alice.lock");
  EXPECT_FALSE(r.ok());
  auto again = table.try_lock("alice", dir_ / "alice.lock");
  ASSERT_TRUE(again.ok());
  EXPECT_NE(*again, nullptr);
}

}  // namespace
}  // namespace hikyaku::pop3

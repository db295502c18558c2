// PidLock: one holder per file, the holder's pid readable by others, and a
// file left behind without its lock naming no one.
#include "base/pid_lock.hpp"

#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

namespace hikyaku::base {
namespace {

namespace fs = std::filesystem;

class PidLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("hikyaku-pidlock-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(PidLockTest, OneHolderWhosePidOthersRead) {
  const fs::path file = dir_ / "hikyaku.pid";
  auto lock = PidLock::acquire(file);
  ASSERT_TRUE(lock.ok()) << lock.error().message;
  auto holder = pid_lock_holder(file);
  ASSERT_TRUE(holder.ok()) << holder.error().message;
  EXPECT_EQ(*holder, ::getpid());
  // A second server (another open file description: OFD locks conflict
  // within one process too) is refused, with the holder named.
  auto second = PidLock::acquire(file);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("another hikyaku (pid " + std::to_string(::getpid()) + ")"), std::string::npos)
      << second.error().message;
  lock->remove();
  EXPECT_FALSE(fs::exists(file));
  EXPECT_FALSE(pid_lock_holder(file).ok());
}

TEST_F(PidLockTest, AFileLeftByACrashNamesNoOne) {
  const fs::path file = dir_ / "hikyaku.pid";
  std::ofstream(file) << "1234\n";  // a pid that may belong to anything now
  auto holder = pid_lock_holder(file);
  ASSERT_FALSE(holder.ok());
  EXPECT_NE(holder.error().message.find("is not locked"), std::string::npos) << holder.error().message;
  auto lock = PidLock::acquire(file);  // and the next server takes it over
  ASSERT_TRUE(lock.ok()) << lock.error().message;
  EXPECT_EQ(*pid_lock_holder(file), ::getpid());
}

TEST_F(PidLockTest, ReleasedWhenTheHolderGoes) {
  const fs::path file = dir_ / "hikyaku.pid";
  {
    auto lock = PidLock::acquire(file);
    ASSERT_TRUE(lock.ok());
  }  // destroyed without remove(): as a crash would leave it
  EXPECT_TRUE(fs::exists(file));
  EXPECT_FALSE(pid_lock_holder(file).ok());
  EXPECT_TRUE(PidLock::acquire(file).ok());
}

}  // namespace
}  // namespace hikyaku::base

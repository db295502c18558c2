// Tests for base/privileges: the decision table, the account lookup and the
// ownership checks. The drop itself changes the test process for good; it is
// tested on the real binary (tests/integration/test_privileges.py).
#include "base/privileges.hpp"

#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "base/file.hpp"

namespace hikyaku::base {
namespace {

TEST(Privileges, ActionFromEffectiveUid) {
  EXPECT_EQ(privilege_action(0, 998), PrivilegeAction::drop);     // root binds, then drops
  EXPECT_EQ(privilege_action(998, 998), PrivilegeAction::keep);   // already that user
  EXPECT_EQ(privilege_action(1000, 998), PrivilegeAction::refuse);  // someone else
}

TEST(Privileges, FindAccount) {
  auto root = find_account("root");
  ASSERT_TRUE(root.ok()) << root.error().message;
  ASSERT_TRUE(root->has_value());
  EXPECT_EQ((*root)->uid, 0u);
  EXPECT_EQ((*root)->name, "root");
  auto missing = find_account("hikyaku-no-such-user");
  ASSERT_TRUE(missing.ok()) << missing.error().message;
  EXPECT_FALSE(missing->has_value());
  auto empty = find_account("");
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->has_value());
}

TEST(Privileges, DataDirOwnership) {
  const auto dir = std::filesystem::temp_directory_path() / ("hk-priv-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  const Account self{"me", ::geteuid(), ::getegid()};
  // Missing: created (with parents) and given to the account.
  auto made = prepare_data_dir(dir / "data", self);
  ASSERT_TRUE(made.ok()) << made.error().message;
  EXPECT_TRUE(std::filesystem::is_directory(dir / "data"));
  EXPECT_TRUE(prepare_data_dir(dir / "data", self).ok());  // present and ours
  // Someone else's: refused, with the chown that fixes it.
  const Account other{"hikyaku", ::geteuid() + 1, ::getegid()};
  auto refused = prepare_data_dir(dir / "data", other);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("chown -R hikyaku: " + (dir / "data").string()), std::string::npos)
      << refused.error().message;
  EXPECT_FALSE(check_owner(dir / "data", other, dir / "data").ok());
  EXPECT_TRUE(check_owner(dir / "data" / "absent", other, dir / "data").ok());  // nothing to own yet
  // A file where the directory should be.
  ASSERT_TRUE(write_file_durable(dir / "f.tmp", dir / "f", "x", false).ok());
  EXPECT_FALSE(prepare_data_dir(dir / "f", self).ok());
  std::filesystem::remove_all(dir);
}

TEST(Privileges, RefusesToDropToRoot) {
  auto st = drop_privileges(Account{"root", 0, 0});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("uid or gid 0"), std::string::npos);
}

}  // namespace
}  // namespace hikyaku::base

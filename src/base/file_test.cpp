#include "base/file.hpp"

#include <filesystem>

#include <gtest/gtest.h>

namespace hikyaku::base {
namespace {

TEST(File, WriteDurableIsAtomic) {
  auto dir = std::filesystem::temp_directory_path() / ("hk-file-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(ensure_directory(dir / "a" / "b").ok());
  auto status = write_file_durable(dir / "a" / "t", dir / "a" / "b" / "f", "hello");
  ASSERT_TRUE(status.ok()) << status.error().message;
  EXPECT_FALSE(std::filesystem::exists(dir / "a" / "t"));
  auto content = read_file(dir / "a" / "b" / "f");
  ASSERT_TRUE(content.ok());
  EXPECT_EQ(*content, "hello");
  // O_EXCL: an existing temporary name is an error, never an overwrite —
  // the file under that name keeps its bytes and nothing is renamed.
  ASSERT_TRUE(write_file_durable(dir / "x", dir / "busy", "kept").ok());  // "busy" now exists
  auto reused = write_file_durable(dir / "busy", dir / "y", "new");
  EXPECT_FALSE(reused.ok()) << "an existing temporary name was reused";
  auto kept = read_file(dir / "busy");
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(*kept, "kept");
  EXPECT_FALSE(std::filesystem::exists(dir / "y"));
  auto missing = read_file(dir / "nope");
  EXPECT_FALSE(missing.ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hikyaku::base

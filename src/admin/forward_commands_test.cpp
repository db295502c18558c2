// forward_set, forward_show and forward_clear against a temporary data_dir.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "admin/commands.hpp"
#include "base/file.hpp"

namespace hikyaku::admin {
namespace {

namespace fs = std::filesystem;

class ForwardCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hikyaku-forward-commands-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::ofstream(dir_ / "hikyaku.toml") << "hostname = \"mx.example.test\"\ndata_dir = \"data\"\n"
                                            "[[domain]]\nname = \"example.test\"\n"
                                            "[[mailbox]]\nname = \"alice\"\n[[mailbox]]\nname = \"bob\"\n"
                                            "[[address]]\naddress = \"alice@example.test\"\ndeliver = [\"mailbox:alice\"]\n"
                                            "[[address]]\naddress = \"bob@example.test\"\ndeliver = [\"mailbox:bob\"]\n";
    auto loaded = config::load_config(dir_ / "hikyaku.toml",
                                      {.user_forwards = false, .user_forwards_text = std::nullopt});
    ASSERT_TRUE(loaded.config);
    config_ = std::move(*loaded.config);
  }
  void TearDown() override { fs::remove_all(dir_); }

  int set(const std::string& name, std::vector<std::string> to, bool keep = false, std::string fallback = "") {
    config::UserForward entry;
    entry.name = name;
    entry.to = std::move(to);
    entry.keep_copy = keep;
    entry.fallback = std::move(fallback);
    out_.str("");
    err_.str("");
    return forward_set(config_, entry, out_, err_);
  }
  std::string file_text() {
    auto text = base::read_file(config_.forwards_file());
    return text.ok() ? *text : "";
  }

  fs::path dir_;
  config::Config config_;
  std::ostringstream out_, err_;
};

TEST_F(ForwardCommandsTest, SetWritesThePrivateFileAndTheLoaderMergesIt) {
  ASSERT_EQ(set("alice", {"Alice.Private@gmail.example"}), 0) << err_.str();
  EXPECT_EQ(out_.str(),
            "forward for alice: alice.private@gmail.example (hidden; fallback mailbox:alice; no local copy)\n"
            "run \"hikyaku reload --config " + config_.source.string() +
                "\" (or send SIGHUP) to apply it to the running server\n");
  struct stat st {};
  ASSERT_EQ(::stat(config_.forwards_file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto merged = config::load_config(config_.source);
  ASSERT_TRUE(merged.config);
  EXPECT_EQ(merged.config->find_address("alice@example.test")->deliver.at(0).str(),
            "forward:alice.private@gmail.example");

  // Setting again replaces the entry.
  ASSERT_EQ(set("alice", {"new@gmail.example"}, true, "mailbox:bob"), 0) << err_.str();
  EXPECT_EQ(file_text().find("alice.private"), std::string::npos);
  EXPECT_NE(file_text().find("fallback = \"mailbox:bob\""), std::string::npos);
}

TEST_F(ForwardCommandsTest, RefusedInputWritesNothing) {
  EXPECT_EQ(set("carol", {"x@gmail.example"}), 1);
  EXPECT_NE(err_.str().find("no [[mailbox]] named 'carol'"), std::string::npos);
  EXPECT_EQ(set("alice", {"alice@EXAMPLE.test"}), 1);
  EXPECT_NE(err_.str().find("forwarding into it would loop"), std::string::npos) << err_.str();
  EXPECT_EQ(set("alice", {"x@gmail.example"}, false, "bob"), 1);
  EXPECT_EQ(set("alice", {"x@gmail.example"}, false, "mailbox:nobody"), 1);
  EXPECT_FALSE(fs::exists(config_.forwards_file()));

  // Only the whole file shows the conflict: one address, two fallbacks.
  ASSERT_EQ(set("alice", {"fam@gmail.example"}), 0) << err_.str();
  const std::string before = file_text();
  EXPECT_EQ(set("bob", {"fam@gmail.example"}), 1);
  EXPECT_NE(err_.str().find("nothing written"), std::string::npos) << err_.str();
  EXPECT_EQ(file_text(), before);
  EXPECT_EQ(set("bob", {"fam@gmail.example"}, false, "mailbox:alice"), 0) << err_.str();
}

TEST_F(ForwardCommandsTest, ShowAndClear) {
  std::ostringstream out, err;
  EXPECT_EQ(forward_show(config_, "alice", out, err), 0);
  EXPECT_EQ(out.str(), "no forward for alice\n");
  ASSERT_EQ(set("alice", {"a@gmail.example"}), 0);
  ASSERT_EQ(set("bob", {"b@gmail.example"}, true), 0);
  out.str("");
  EXPECT_EQ(forward_show(config_, "", out, err), 0);
  EXPECT_EQ(out.str(),
            "forward for alice: a@gmail.example (hidden; fallback mailbox:alice; no local copy)\n"
            "forward for bob: b@gmail.example (hidden; fallback mailbox:bob; keeps a local copy)\n");
  out.str("");
  EXPECT_EQ(forward_clear(config_, "alice", out, err), 0);
  EXPECT_EQ(out.str().rfind("forward for alice cleared\n", 0), 0u);
  out.str("");
  EXPECT_EQ(forward_clear(config_, "alice", out, err), 0);
  EXPECT_EQ(out.str(), "no forward for alice (nothing to clear)\n");
  EXPECT_EQ(forward_clear(config_, "nobody", out, err), 1);
  EXPECT_EQ(forward_show(config_, "nobody", out, err), 1);
  EXPECT_EQ(forward_clear(config_, "bob", out, err), 0);
  EXPECT_FALSE(fs::exists(config_.forwards_file()));
}

}  // namespace
}  // namespace hikyaku::admin

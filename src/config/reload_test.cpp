#include "config/reload.hpp"

#include <gtest/gtest.h>

#include "config/known_forwards.hpp"

namespace hikyaku::config {
namespace {

Config load(std::string_view text) {
  auto r = load_config_text(text, "t.toml", "/etc/hk");
  EXPECT_TRUE(r.config) << (r.errors.empty() ? "" : r.errors.front().str());
  return r.config ? *r.config : Config{};
}

constexpr std::string_view kRunning = R"(
hostname = "mx.example.test"
data_dir = "/var/lib/hk"
[listen]
smtp = ["127.0.0.1:2525"]
[[domain]]
name = "example.test"
dkim_selector = "s1"
dkim_key = "keys/example.test.pem"
dmarc_inbound = "reject"
[[mailbox]]
name = "me"
[[address]]
address = "me@example.test"
deliver = ["mailbox:me"]
)";

TEST(Reload, AppliesTheAddressRulesAndKeepsTheServerSettings) {
  const Config running = load(kRunning);
  Config next = load(R"(
hostname = "other.example.test"
data_dir = "/elsewhere"
[listen]
smtp = ["127.0.0.1:2626"]
[[domain]]
name = "example.test"
dkim_selector = "s1"
dkim_key = "keys/example.test.pem"
[[domain]]
name = "new.example"
dkim = false
[[mailbox]]
name = "me"
[[mailbox]]
name = "you"
[[address]]
address = "me@example.test"
deliver = ["forward:me@gmail.test"]
[[address]]
address = "you@new.example"
deliver = ["mailbox:you"]
[[forward]]
to = "me@gmail.test"
fallback = ["mailbox:me"]
)");
  auto r = reloadable(running, std::move(next));
  ASSERT_TRUE(r.ok()) << r.error().message;
  // The rules are the new ones ...
  EXPECT_EQ(r->mailboxes.size(), 2u);
  ASSERT_NE(r->find_address("you@new.example"), nullptr);
  ASSERT_NE(r->find_forward("me@gmail.test"), nullptr);
  EXPECT_TRUE(r->is_local_domain("new.example"));
  // ... the machinery is as started.
  EXPECT_EQ(r->hostname, "mx.example.test");
  EXPECT_EQ(r->data_dir, running.data_dir);
  ASSERT_EQ(r->listen.smtp.size(), 1u);
  EXPECT_EQ(r->listen.smtp.front().port, 2525);
  EXPECT_EQ(r->find_domain("example.test")->dmarc_inbound, "reject");  // intake's, as started
  EXPECT_EQ(r->find_domain("new.example")->dmarc_inbound, "tag");
}

TEST(Reload, AHiddenForwardDroppedByTheNewFileStaysKnownForTheQueue) {
  std::string with_forward(kRunning);
  with_forward.replace(with_forward.find("mailbox:me\"]"), 12, "forward:me@gmail.test\"]");
  with_forward += "[[forward]]\nto = \"me@gmail.test\"\nfallback = [\"mailbox:me\"]\n";
  Config running = load(with_forward);
  const auto started = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));
  auto known = remember_forwards(running, {}, started);  // as the server does at start
  auto r = reloadable(running, load(kRunning));
  ASSERT_TRUE(r.ok()) << r.error().message;
  Config next = std::move(r).value();
  EXPECT_EQ(next.find_forward("me@gmail.test"), nullptr);  // the new file alone does not name it
  const auto reloaded = started + std::chrono::hours(1);
  known = remember_forwards(next, known, reloaded);
  const Forward* kept = next.find_forward("me@gmail.test");
  ASSERT_NE(kept, nullptr);
  EXPECT_TRUE(kept->hidden);
  ASSERT_EQ(kept->fallback.size(), 1u);
  EXPECT_EQ(kept->fallback.front().str(), "mailbox:me");
  EXPECT_EQ(next.find_address("me@example.test")->deliver.front().str(), "mailbox:me");  // not planned to it
  ASSERT_EQ(known.size(), 1u);
  EXPECT_EQ(known.front().removed, reloaded);
}

TEST(Reload, RefusesAChangedSigningKey) {
  const Config running = load(kRunning);
  std::string moved(kRunning);
  moved.replace(moved.find("keys/example.test.pem"), 21, "keys/rotated.pem");
  auto r = reloadable(running, load(moved));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("example.test"), std::string::npos);
  EXPECT_NE(r.error().message.find("restart"), std::string::npos);

  std::string added(kRunning);
  added += "[[domain]]\nname = \"signed.example\"\ndkim_selector = \"s1\"\ndkim_key = \"keys/signed.pem\"\n";
  auto a = reloadable(running, load(added));
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.error().message.find("signed.example"), std::string::npos);
}

}  // namespace
}  // namespace hikyaku::config

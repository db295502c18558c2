#include "config/user_forwards.hpp"

#include <gtest/gtest.h>

namespace hikyaku::config {
namespace {

constexpr std::string_view kBase = R"(
hostname = "mx.example.com"
data_dir = "/var/lib/hk"
[srs]
domain = "example.com"
secret_file = "/var/lib/hk/srs.secret"
[[domain]]
name = "example.com"
dkim = false
[[mailbox]]
name = "alice"
[[mailbox]]
name = "bob"
[[mailbox]]
name = "spill"
[[address]]
address = "alice@example.com"
deliver = ["mailbox:alice"]
[[address]]
address = "team@example.com"
deliver = ["mailbox:bob", "mailbox:alice"]
[[address]]
address = "bob@example.com"
deliver = ["mailbox:bob"]
)";

constexpr std::string_view kFile = "/var/lib/hk/forwards";

LoadResult load(std::string_view config_text, std::string forwards_text) {
  return load_config_text(config_text, "t.toml", "/etc/hk", {.user_forwards_text = std::move(forwards_text)});
}

std::string all_errors(const std::vector<ConfigError>& errors) {
  std::string out;
  for (const auto& e : errors) out += e.str() + "\n";
  return out;
}

std::vector<std::string> targets(const Config& c, std::string_view address) {
  std::vector<std::string> out;
  for (const auto& t : c.find_address(address)->deliver) out.push_back(t.str());
  return out;
}

TEST(UserForwards, ParseAndRenderRoundTrip) {
  std::vector<UserForward> in(2);
  in[0].name = "alice";
  in[0].to = {"alice.private@gmail.example", "a2@other.example"};
  in[1].name = "bob";
  in[1].to = {"\"odd\\\\one\"@gmail.example"};
  in[1].keep_copy = true;
  in[1].fallback = "spill";
  const std::string text = render_user_forwards(in);
  auto parsed = parse_user_forwards(text, std::string(kFile));
  ASSERT_TRUE(parsed.errors.empty()) << all_errors(parsed.errors) << text;
  ASSERT_EQ(parsed.forwards.size(), 2u);
  EXPECT_EQ(parsed.forwards[0].name, "alice");
  EXPECT_EQ(parsed.forwards[0].to, in[0].to);
  EXPECT_FALSE(parsed.forwards[0].keep_copy);
  EXPECT_EQ(parsed.forwards[0].fallback, "");
  EXPECT_EQ(parsed.forwards[0].fallback_mailbox(), "alice");
  EXPECT_EQ(parsed.forwards[1].to, in[1].to);
  EXPECT_TRUE(parsed.forwards[1].keep_copy);
  EXPECT_EQ(parsed.forwards[1].fallback_mailbox(), "spill");
  EXPECT_EQ(render_user_forwards(parsed.forwards), text);
  EXPECT_EQ(parsed.forwards[1].where, std::string(kFile) + ":9:1");  // after the two comment lines
}

TEST(UserForwards, ParseErrorsCarryFileLineColumn) {
  auto parsed = parse_user_forwards(R"([[user]]
name = "alice"
to = ["not an address"]
keep_copy = "yes"
fallback = "forward:x@y.example"
colour = 1
[[user]]
name = "alice"
to = ["a@b.example"]
[[user]]
name = "../etc"
)",
                                    "F");
  const std::string errors = all_errors(parsed.errors);
  EXPECT_NE(errors.find("F:3:7: user.to: 'not an address' is not an email address"), std::string::npos) << errors;
  EXPECT_NE(errors.find("F:4:13: user.keep_copy: expected true or false"), std::string::npos) << errors;
  EXPECT_NE(errors.find("F:5:12: user.fallback: expected \"mailbox:NAME\""), std::string::npos) << errors;
  EXPECT_NE(errors.find("F:6:1: unknown key 'user.colour'"), std::string::npos) << errors;
  EXPECT_NE(errors.find("F:11:8: user.name: '../etc' is not a mailbox name"), std::string::npos) << errors;
  EXPECT_NE(errors.find("F:10:1: user.to: missing"), std::string::npos) << errors;
  EXPECT_TRUE(parsed.forwards.empty());

  auto syntax = parse_user_forwards("[[user]\n", "F");
  ASSERT_EQ(syntax.errors.size(), 1u);
  EXPECT_EQ(syntax.errors[0].where.rfind("F:1:", 0), 0u) << syntax.errors[0].str();

  auto dup = parse_user_forwards("[[user]]\nname = \"a\"\nto = [\"x@y.example\"]\n"
                                 "[[user]]\nname = \"a\"\nto = [\"z@y.example\"]\n",
                                 "F");
  ASSERT_EQ(dup.errors.size(), 1u);
  EXPECT_EQ(dup.errors[0].str(), "F:5:8: duplicate [[user]] 'a' (first defined at F:1:1)");
}

TEST(UserForwards, MergeRewritesAddressesAndAddsHiddenForwards) {
  auto r = load(kBase, "[[user]]\nname = \"alice\"\nto = [\"Alice.Private@Gmail.example\", \"a2@other.example\"]\n");
  ASSERT_TRUE(r.config) << all_errors(r.errors);
  const Config& c = *r.config;
  EXPECT_EQ(targets(c, "alice@example.com"),
            (std::vector<std::string>{"forward:alice.private@gmail.example", "forward:a2@other.example"}));
  EXPECT_EQ(targets(c, "team@example.com"), (std::vector<std::string>{"mailbox:bob",
                                                                      "forward:alice.private@gmail.example",
                                                                      "forward:a2@other.example"}));
  EXPECT_EQ(targets(c, "bob@example.com"), std::vector<std::string>{"mailbox:bob"});
  const Forward* f = c.find_forward("alice.private@gmail.example");
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->hidden);
  ASSERT_EQ(f->fallback.size(), 1u);
  EXPECT_EQ(f->fallback[0].str(), "mailbox:alice");
  EXPECT_EQ(f->defer_limit, Forward{}.defer_limit);
  EXPECT_EQ(f->dmarc, "rewrite-from");
  EXPECT_NE(c.find_forward("a2@other.example"), nullptr);
  EXPECT_EQ(c.postmaster, "alice");  // the postmaster default is unchanged
}

TEST(UserForwards, KeepCopyAndFallback) {
  auto r = load(kBase,
                "[[user]]\nname = \"alice\"\nto = [\"x@gmail.example\"]\nkeep_copy = true\n"
                "fallback = \"mailbox:spill\"\n");
  ASSERT_TRUE(r.config) << all_errors(r.errors);
  EXPECT_EQ(targets(*r.config, "alice@example.com"),
            (std::vector<std::string>{"forward:x@gmail.example", "mailbox:alice"}));
  EXPECT_EQ(r.config->find_forward("x@gmail.example")->fallback.at(0).str(), "mailbox:spill");
}

TEST(UserForwards, ConfiguredForwardWins) {
  std::string config(kBase);
  config += R"(
[[address]]
address = "carol@example.com"
deliver = ["forward:x@gmail.example"]
[[forward]]
to = "x@gmail.example"
hidden = false
notify = true
)";
  auto r = load(config, "[[user]]\nname = \"alice\"\nto = [\"x@gmail.example\"]\n");
  ASSERT_TRUE(r.config) << all_errors(r.errors);
  const Forward* f = r.config->find_forward("x@gmail.example");
  ASSERT_NE(f, nullptr);
  EXPECT_FALSE(f->hidden);
  EXPECT_TRUE(f->notify);
  EXPECT_TRUE(f->fallback.empty());
  EXPECT_EQ(targets(*r.config, "alice@example.com"), std::vector<std::string>{"forward:x@gmail.example"});
}

TEST(UserForwards, RefusedEntriesAreErrorsAtTheirLine) {
  auto r = load(kBase, R"([[user]]
name = "nobody"
to = ["x@gmail.example"]
[[user]]
name = "alice"
to = ["y@gmail.example", "loop@EXAMPLE.com"]
fallback = "mailbox:ghost"
)");
  ASSERT_FALSE(r.config);
  const std::string errors = all_errors(r.errors);
  const std::string f(kFile);
  EXPECT_NE(errors.find(f + ":2:8: user.name: no [[mailbox]] named 'nobody' in t.toml"), std::string::npos) << errors;
  EXPECT_NE(errors.find(f + ":6:26: user.to: 'loop@example.com' is in example.com, one of this server's [[domain]]s"),
            std::string::npos)
      << errors;
  EXPECT_NE(errors.find(f + ":7:12: user.fallback: no [[mailbox]] named 'ghost'"), std::string::npos) << errors;
}

TEST(UserForwards, TwoMailboxesOneAddressNeedOneFallback) {
  auto same = load(kBase,
                   "[[user]]\nname = \"alice\"\nto = [\"fam@gmail.example\"]\nfallback = \"mailbox:spill\"\n"
                   "[[user]]\nname = \"bob\"\nto = [\"fam@gmail.example\"]\nfallback = \"mailbox:spill\"\n");
  ASSERT_TRUE(same.config) << all_errors(same.errors);
  auto differ = load(kBase,
                     "[[user]]\nname = \"alice\"\nto = [\"fam@gmail.example\"]\n"
                     "[[user]]\nname = \"bob\"\nto = [\"fam@gmail.example\"]\n");
  ASSERT_FALSE(differ.config);
  EXPECT_NE(all_errors(differ.errors).find("is also the forward of mailbox 'alice'"), std::string::npos);
}

TEST(UserForwards, ChainRulesStillApply) {
  // A configured cycle is still refused with a forwards file present.
  std::string config(kBase);
  config += R"(
[[forward]]
to = "a@far.example"
fallback = ["forward:b@far.example"]
[[forward]]
to = "b@far.example"
fallback = ["forward:a@far.example", "mailbox:bob"]
)";
  auto r = load(config, "[[user]]\nname = \"alice\"\nto = [\"x@gmail.example\"]\n");
  ASSERT_FALSE(r.config);
  EXPECT_NE(all_errors(r.errors).find("fallback chain cycles"), std::string::npos) << all_errors(r.errors);
}

TEST(UserForwards, NoFileOrDisabled) {
  // The demo has no forwards file (data_dir /etc/hk/var does not exist).
  auto demo = load_config_text(demo_config_text(), "demo", "/nonexistent/hk");
  ASSERT_TRUE(demo.config) << all_errors(demo.errors);
  EXPECT_EQ(demo.config->forwards_file(), "/nonexistent/hk/var/forwards");
  auto off = load_config_text(kBase, "t.toml", "/etc/hk",
                              {.user_forwards = false, .user_forwards_text = "garbage ["});
  ASSERT_TRUE(off.config) << all_errors(off.errors);
  EXPECT_TRUE(off.config->forwards.empty());
}

TEST(UserForwards, MailboxWithoutAddressIsAWarning) {
  auto r = load(kBase, "[[user]]\nname = \"spill\"\nto = [\"x@gmail.example\"]\n");
  ASSERT_TRUE(r.config) << all_errors(r.errors);
  ASSERT_EQ(r.config->warnings.size(), 1u);
  EXPECT_EQ(r.config->warnings[0].where, std::string(kFile) + ":1:1");
}

TEST(UserForwards, Describe) {
  auto base = load_config_text(kBase, "t.toml", "/etc/hk", {.user_forwards = false, .user_forwards_text = std::nullopt});
  ASSERT_TRUE(base.config);
  UserForward uf;
  uf.name = "alice";
  uf.to = {"alice.private@gmail.example"};
  EXPECT_EQ(describe_user_forward(*base.config, uf),
            "forward for alice: alice.private@gmail.example (hidden; fallback mailbox:alice; no local copy)");
  uf.keep_copy = true;
  uf.fallback = "spill";
  EXPECT_EQ(describe_user_forward(*base.config, uf),
            "forward for alice: alice.private@gmail.example (hidden; fallback mailbox:spill; keeps a local copy)");
  // A [[forward]] of the configuration for the address wins, and is
  // described as it is: not hidden, its own fallback or none.
  const std::string open = std::string(kBase) + "[[forward]]\nto = \"open@gmail.example\"\nhidden = false\n";
  auto configured = load_config_text(open, "t.toml", "/etc/hk", {.user_forwards = false, .user_forwards_text = std::nullopt});
  ASSERT_TRUE(configured.config) << all_errors(configured.errors);
  uf.to = {"open@gmail.example"};
  EXPECT_EQ(describe_user_forward(*configured.config, uf),
            "forward for alice: open@gmail.example (keeps a local copy; open@gmail.example: its [[forward]] in t.toml "
            "applies: NOT hidden (a refusal is reported to the sender, naming this address), no fallback)");
}

}  // namespace
}  // namespace hikyaku::config

// ForwardTransform tests (issue 4): DMARC-aware From rewriting (RFC 7489
// §6.6, RFC 5322 §3.6.2), an aligned author signature left untouched, the
// ARC set verified by our own validator (RFC 8617 §5.2), divert, and DKIM
// on generated messages. Keys are Ed25519 for speed; zones in FakeResolver.
#include "delivery/forward_transform.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "auth/arc/validator.hpp"
#include "auth/dkim/key_record.hpp"
#include "auth/dkim/signer.hpp"
#include "auth/dkim/verifier.hpp"
#include "auth/inbound/checker.hpp"
#include "base/strings.hpp"
#include "dns/fake_resolver.hpp"
#include "smtp/protocol/server_reply.hpp"

namespace hikyaku::delivery {
namespace {

namespace fs = std::filesystem;
const auto kNow = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
const std::string kReceived = "Received: from c (c [192.0.2.1]) by mx.example.test; x\r\n";

// A DATA payload as the receiving server stores it (RFC 5321 §4.5.2).
std::string unstuffed(std::string_view data) {
  data.remove_suffix(3);  // ".\r\n"
  std::string out;
  for (size_t i = 0; i < data.size(); ++i) {
    if ((i == 0 || data[i - 1] == '\n') && data[i] == '.') ++i;  // the dot DATA doubled
    out += data[i];
  }
  return out;
}

class ForwardTransformTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("hikyaku-ft-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    std::ofstream(dir_ / "example.pem") << our_key_.to_pem();
    dns_.add_txt("author.test", "v=spf1 ip4:192.0.2.1 -all");
    dns_.add_txt("_dmarc.author.test", "v=DMARC1; p=reject");
    dns_.add_txt("sel._domainkey.author.test", auth::dkim::format_key_record(author_key_.public_key()));
    dns_.add_txt("hk._domainkey.example.test", auth::dkim::format_key_record(our_key_.public_key()));
    std::string toml = R"(
hostname = "mx.example.test"
[[domain]]
name = "example.test"
dkim_selector = "hk"
dkim_key = ")" + (dir_ / "example.pem").string() + R"("
[[mailbox]]
name = "fb"
[[address]]
address = "bob@example.test"
deliver = ["forward:bob@gmail.test", "forward:div@gmail.test", "forward:same@gmail.test"]
[[forward]]
to = "bob@gmail.test"
fallback = ["mailbox:fb"]
[[forward]]
to = "div@gmail.test"
fallback = ["mailbox:fb"]
dmarc = "divert"
[[forward]]
to = "same@gmail.test"
fallback = ["mailbox:fb"]
dmarc = "unchanged"
)";
    auto r = config::load_config_text(toml, "t.toml", dir_);
    ASSERT_TRUE(r.config) << (r.errors.empty() ? "" : r.errors[0].str());
    config_ = *r.config;
    auto t = ForwardTransform::create(config_);
    ASSERT_TRUE(t.ok()) << t.error().message;
    transform_ = *t;
    transform_->set_now_for_test(kNow);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A message as it sits in the spool: our Received and Authentication-Results.
  std::string received(bool sign, const std::string& extra_field = "", const std::string& body = "Hello.\r\n") {
    std::string m = "From: Ann Author <ann@author.test>\r\nTo: bob@example.test\r\nSubject: hi\r\n" + extra_field +
                    "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <1@author.test>\r\n\r\n" + body;
    if (sign) {
      auth::dkim::SignOptions o;
      o.domain = "author.test";
      o.selector = "sel";
      m = auth::dkim::sign(m, author_key_, o, kNow).value() + m;
    }
    m = kReceived + m;
    auth::inbound::Options opts;
    opts.authserv_id = "mx.example.test";
    opts.now = kNow;
    auto v = auth::inbound::check(dns_, {m, std::string("ann@author.test"), "c", "192.0.2.1"}, opts);
    return auth::inbound::stamp(m, v.results);
  }
  queue::DeliveryRequest request(std::string forward) {
    queue::DeliveryRequest r;
    r.queue_id = "Q1";
    r.recipient = "bob@example.test";
    r.target = {mail::Target::Kind::forward, std::move(forward)};
    return r;
  }
  static std::string header(std::string_view msg, std::string_view name) {
    auto parsed = auth::common::parse_message(msg);
    auto all = parsed.all(name);
    if (all.empty()) return "<none>";
    std::string v;
    for (char c : all.front()->value)
      if (c != '\r' && c != '\n') v += c;
    return std::string(base::trim(v));
  }

  fs::path dir_;
  dns::FakeResolver dns_;
  crypto::PrivateKey author_key_ = crypto::generate_key(crypto::KeyType::ed25519).value();
  crypto::PrivateKey our_key_ = crypto::generate_key(crypto::KeyType::ed25519).value();
  config::Config config_;
  std::shared_ptr<ForwardTransform> transform_;

  // apply() over a message in memory, or (in_file) with its body in a file
  // as a large message has it; the result joined.
  base::Result<std::string> apply(const queue::DeliveryRequest& req, const std::string& in, bool in_file = false) {
    mail::Message m{in, std::nullopt};
    if (in_file) {
      const size_t split = in.find("\r\n\r\n") + 4;
      auto fd = base::open_temporary(std::filesystem::temp_directory_path());
      if (!fd) return fd.error();
      if (auto st = base::write_all(fd->get(), std::string_view(in).substr(split), "body"); !st) return st.error();
      m = mail::Message{in.substr(0, split), mail::FileRange{std::make_shared<const base::UniqueFd>(std::move(fd).value()),
                                                             "body", 0, in.size() - split}};
    }
    auto out = transform_->apply(config_, req, std::move(m), dns_);
    if (!out) return out.error();
    std::string joined;
    auto st = mail::for_each_piece(*out, [&](std::string_view piece) {
      joined += piece;
      return base::Status{};
    });
    if (!st) return st.error();
    return joined;
  }
};

// Issue 12 item 6: with the body in a file (a large message), the same
// fields are added and the signatures (hashed from the file) verify.
TEST_F(ForwardTransformTest, ABodyInAFileIsSignedAndSealedLikeOneInMemory) {
  const std::string in = received(false);
  auto from_memory = apply(request("bob@gmail.test"), in);
  auto from_file = apply(request("bob@gmail.test"), in, /*in_file=*/true);
  ASSERT_TRUE(from_memory.ok()) << from_memory.error().message;
  ASSERT_TRUE(from_file.ok()) << from_file.error().message;
  EXPECT_EQ(*from_file, *from_memory);
  auth::dkim::VerifyOptions vo;
  vo.now = kNow;
  auto arc = auth::arc::validate(*from_file, dns_, vo);
  EXPECT_EQ(arc.status, auth::arc::ChainStatus::pass) << arc.reason;
}

// What we sign is what arrives. The SMTP client breaks a line over 998
// octets as it sends; our DKIM signature and ARC set are made over the text
// already broken that way, so neither DATA (dot-stuffed: a leading dot
// counts) nor BDAT changes it, and both verify at the far side. Before, they
// were made over the long lines and failed there.
TEST_F(ForwardTransformTest, LongLinesAreBrokenBeforeTheyAreSigned_RFC5321_4_5_3_1_6) {
  const std::string body = std::string(2500, 'a') + "\r\n." + std::string(997, 'b') + "\r\nend\r\n";
  const std::string in = received(false, "X-Long: " + std::string(1500, 'h') + "\r\n", body);
  for (bool in_file : {false, true}) {
    SCOPED_TRACE(in_file ? "body in a file" : "in memory");
    auto out = apply(request("bob@gmail.test"), in, in_file);
    ASSERT_TRUE(out.ok()) << out.error().message;
    // What the far side reads, sent by BDAT or by DATA (un-stuffed): the same.
    const std::string arrives = smtp::protocol::crlf_lines(*out);
    EXPECT_EQ(unstuffed(smtp::protocol::dot_stuff(*out)), arrives);
    if (!in_file) {
      EXPECT_EQ(arrives, *out) << "in memory, the text is in its wire form already";
    }
    EXPECT_NE(arrives.find("\r\n" + std::string(998, 'a') + "\r\n " + std::string(997, 'a') + "\r\n " +
                           std::string(505, 'a') + "\r\n"),
              std::string::npos);
    EXPECT_NE(arrives.find("\r\n." + std::string(996, 'b') + "\r\n b\r\nend\r\n"), std::string::npos);
    auth::dkim::VerifyOptions vo;
    vo.now = kNow;
    bool ours = false;
    for (const auto& r : auth::dkim::verify(arrives, dns_, vo))
      ours |= r.domain == "example.test" && r.status == auth::dkim::Status::pass;
    EXPECT_TRUE(ours) << "our DKIM signature verifies";
    auto arc = auth::arc::validate(arrives, dns_, vo);
    EXPECT_EQ(arc.status, auth::arc::ChainStatus::pass) << arc.reason;
  }
}

TEST_F(ForwardTransformTest, SpfOnlyUnderRejectRewritesFromAndSigns_RFC7489_6_6) {
  auto out = apply(request("bob@gmail.test"), received(false));
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(header(*out, "From"), "\"Ann Author via example.test\" <noreply@example.test>");
  EXPECT_EQ(header(*out, "Reply-To"), "Ann Author <ann@author.test>");
  EXPECT_EQ(header(*out, "X-Original-From"), "Ann Author <ann@author.test>");
  EXPECT_EQ(auth::common::parse_message(*out).all("From").size(), 1u);
  auth::dkim::VerifyOptions vo;
  vo.now = kNow;
  auto results = auth::dkim::verify(*out, dns_, vo);
  bool ours = false;
  for (const auto& r : results) ours |= r.domain == "example.test" && r.status == auth::dkim::Status::pass;
  EXPECT_TRUE(ours) << "our aligned DKIM signature verifies";
  auto arc = auth::arc::validate(*out, dns_, vo);
  EXPECT_EQ(arc.status, auth::arc::ChainStatus::pass) << arc.reason;
  EXPECT_EQ(arc.domain, "example.test");
}

TEST_F(ForwardTransformTest, AlignedAuthorSignatureIsNeverRewritten_RFC7489_3_1) {
  std::string in = received(true);
  auto out = apply(request("bob@gmail.test"), in);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(header(*out, "From"), "Ann Author <ann@author.test>");
  EXPECT_EQ(header(*out, "Reply-To"), "<none>");
  // Only the ARC set was added in front; the body and author signature survive.
  EXPECT_TRUE(out->ends_with(in));
  EXPECT_TRUE(out->starts_with("ARC-Seal: "));
  auth::dkim::VerifyOptions vo;
  vo.now = kNow;
  auto results = auth::dkim::verify(*out, dns_, vo);
  ASSERT_FALSE(results.empty());
  EXPECT_EQ(results[0].status, auth::dkim::Status::pass) << results[0].detail;
  auto arc = auth::arc::validate(*out, dns_, vo);
  EXPECT_EQ(arc.status, auth::arc::ChainStatus::pass) << arc.reason;
  // The AAR carries what we saw at receipt.
  EXPECT_NE(header(*out, "ARC-Authentication-Results").find("dkim=pass header.d=author.test"), std::string::npos);
}

TEST_F(ForwardTransformTest, DivertAndUnchangedOptions) {
  std::string spf_only = received(false);
  auto d = transform_->divert(config_, request("div@gmail.test"), spf_only, dns_);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->kind, policy::AttemptResult::Kind::permanent);
  EXPECT_EQ(d->status, "5.7.26");
  EXPECT_EQ(d->detail.find("gmail"), std::string::npos);
  EXPECT_FALSE(transform_->divert(config_, request("div@gmail.test"), received(true), dns_));
  EXPECT_FALSE(transform_->divert(config_, request("bob@gmail.test"), spf_only, dns_));
  auto same = apply(request("same@gmail.test"), spf_only);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(header(*same, "From"), "Ann Author <ann@author.test>");
}

TEST_F(ForwardTransformTest, GeneratedMessagesAreSignedForTheirFromDomain_RFC6376_5) {
  std::string notice = "From: postmaster@example.test\r\nTo: bob@gmail.test\r\nSubject: n\r\n\r\nx\r\n";
  auto req = request("bob@gmail.test");
  req.origin = policy::Origin::notice;
  auto out = apply(req, notice);
  ASSERT_TRUE(out.ok());
  ASSERT_TRUE(out->starts_with("DKIM-Signature: "));
  auth::dkim::VerifyOptions vo;
  vo.now = kNow;
  EXPECT_EQ(auth::dkim::verify(*out, dns_, vo).at(0).status, auth::dkim::Status::pass);
  // A generated message whose From is not one of our domains stays unsigned.
  auto foreign = apply(req, "From: a@elsewhere.test\r\n\r\nx\r\n");
  ASSERT_TRUE(foreign.ok());
  EXPECT_FALSE(foreign->starts_with("DKIM-Signature"));
}

}  // namespace
}  // namespace hikyaku::delivery

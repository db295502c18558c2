// Intake with an in-memory resolver and a real spool: the DMARC reject
// decision (RFC 7489 §10.3), our Authentication-Results in the stored
// message (RFC 8601 §5), one delivery per target per message, and the RCPT
// answers.
#include "intake/intake.hpp"

#include <unistd.h>

#include <filesystem>
#include <set>

#include <gtest/gtest.h>

#include "auth/dkim/key_record.hpp"
#include "auth/dkim/signer.hpp"
#include "crypto/key.hpp"
#include "dns/fake_resolver.hpp"

namespace hikyaku::intake {
namespace {
namespace fs = std::filesystem;

const auto kNow = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
const std::string kReceived = "Received: from client (client [192.0.2.1]) by mx.example.test; x\r\n";

const char* kConfig = R"(
hostname = "mx.example.test"
[[domain]]
name = "example.test"
dmarc_inbound = "reject"
[[domain]]
name = "tagged.test"
[[mailbox]]
name = "bob"
send_as = ["bob@example.test"]
[[mailbox]]
name = "bob-fallback"
[[address]]
address = "bob@example.test"
deliver = ["mailbox:bob", "forward:bob-private@gmail.test"]
[[address]]
address = "robert@example.test"
deliver = ["mailbox:bob"]
[[address]]
address = "carol@tagged.test"
deliver = ["mailbox:bob"]
[[forward]]
to = "bob-private@gmail.test"
hidden = true
fallback = ["mailbox:bob-fallback"]
[[address]]
address = "fwd-only@example.test"
deliver = ["forward:bob-private@gmail.test"]
[[address]]
address = "keen@example.test"
deliver = ["mailbox:bob", "forward:keen@gmail.test"]
[[forward]]
to = "keen@gmail.test"
hidden = false
spam = "forward"
[[address]]
address = "plain@example.test"
deliver = ["forward:plain@gmail.test"]
[[address]]
address = "both@example.test"
deliver = ["forward:plain@gmail.test", "forward:keen@gmail.test"]
[[forward]]
to = "plain@gmail.test"
hidden = false
)";

// A scanner that answers at once with a fixed report (issue 17).
class FakeScanner final : public scan::Scanner {
 public:
  explicit FakeScanner(scan::Report report) : report_(std::move(report)) {}
  void scan(const mail::Envelope&, const mail::Message&, std::function<void(scan::Report)> done) override {
    done(report_);
  }
  scan::OnFailure on_failure() const override { return scan::OnFailure::tempfail; }

 private:
  scan::Report report_;
};

class IntakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/intake_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto r = config::load_config_text(kConfig, "t.toml", dir_);
    ASSERT_TRUE(r.config) << r.errors.at(0).str();
    config_ = *r.config;
    dns_.add_txt("author.test", "v=spf1 ip4:192.0.2.1 -all");
    dns_.add_txt("_dmarc.author.test", "v=DMARC1; p=reject");
    dns_.add_txt("sel._domainkey.author.test", auth::dkim::format_key_record(key_.public_key()));
    rules_ = std::make_unique<base::Live<policy::Rules>>(policy::Rules::create(config_));
    spool_ = std::make_unique<queue::Spool>(config_.spool_dir(), clock_, /*sync=*/false);
    ASSERT_TRUE(spool_->create());
    scheduler_ = std::make_unique<queue::Scheduler>(*spool_, *rules_, clock_);  // never started
    intake_ = std::make_unique<Intake>(Settings::from(config_), *rules_, dns_, nullptr, *spool_, *scheduler_,
                                       inline_, inline_);
  }
  void TearDown() override {
    intake_.reset();
    scheduler_.reset();
    fs::remove_all(dir_);
  }

  std::string signed_message(std::string body = "Hello.\r\n") {
    std::string m = "From: Ann Author <ann@author.test>\r\nTo: bob@example.test\r\nSubject: hi\r\n"
                    "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <1@author.test>\r\n\r\n" + body;
    auth::dkim::SignOptions o;
    o.domain = "author.test";
    o.selector = "sel";
    return auth::dkim::sign(m, key_, o, kNow).value() + m;
  }
  static mail::Envelope envelope(std::vector<mail::Address> rcpts) {
    mail::Envelope e;
    e.sender = mail::Address{"ann", "author.test"};
    e.recipients = std::move(rcpts);
    e.helo = "elsewhere";
    e.client_ip = "198.51.100.7";
    return e;
  }
  // admit() then commit(): the queue id, or the refusal.
  struct Outcome {
    std::optional<mail::Reply> refusal;
    std::string id;
  };
  Outcome accept(const mail::Envelope& env, std::string message) {
    return accept(env, mail::Message{std::move(message), std::nullopt});
  }
  Outcome accept(const mail::Envelope& env, mail::Message message) {
    std::optional<base::Result<smtp::server::Admission>> got;
    intake_->admit(env, std::move(message), [&](base::Result<smtp::server::Admission> a) { got = std::move(a); });
    EXPECT_TRUE(got.has_value()) << "the fake resolver answers at once";
    if (!got || !got->ok()) return {};
    if ((*got)->refusal) return {(*got)->refusal, {}};
    auto id = (*got)->pending->commit();
    EXPECT_TRUE(id.ok());
    return {std::nullopt, id.ok() ? *id : std::string()};
  }
  std::string stored(const std::string& id) {
    auto m = spool_->load(id);
    EXPECT_TRUE(m.ok());
    auto message = spool_->read_message(*m);
    EXPECT_TRUE(message.ok());
    std::string text;
    if (message.ok()) {
      EXPECT_TRUE(mail::for_each_piece(*message, [&](std::string_view piece) {
        text += piece;
        return base::Status{};
      }));
    }
    return text;
  }

  fs::path dir_;
  config::Config config_;
  dns::FakeResolver dns_;
  crypto::PrivateKey key_ = crypto::generate_key(crypto::KeyType::ed25519).value();
  base::FakeClock clock_{kNow};
  base::InlineExecutor inline_;
  std::unique_ptr<base::Live<policy::Rules>> rules_;
  std::unique_ptr<queue::Spool> spool_;
  std::unique_ptr<queue::Scheduler> scheduler_;
  std::unique_ptr<Intake> intake_;
};

TEST_F(IntakeTest, RejectsDmarcFailureOnlyWhereAsked_RFC7489_10_3) {
  std::string msg = signed_message();
  msg.replace(msg.find("Hello."), 6, "Hallo.");  // the signature breaks; SPF fails too
  msg = kReceived + msg;

  auto refused = accept(envelope({{"bob", "example.test"}}), msg);
  ASSERT_TRUE(refused.refusal);
  EXPECT_EQ(refused.refusal->code, 550);
  EXPECT_EQ(refused.refusal->status, "5.7.1");
  auto listed = spool_->list();
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty()) << "nothing stored";

  // "tag" (the default): recorded and delivered.
  auto tagged = accept(envelope({{"carol", "tagged.test"}}), msg);
  ASSERT_FALSE(tagged.refusal);
  const std::string text = stored(tagged.id);
  EXPECT_EQ(text.find(kReceived), 0u);
  EXPECT_EQ(text.find("Authentication-Results: mx.example.test; spf=fail"), kReceived.size()) << text;
  EXPECT_NE(text.find("dmarc=fail header.from=author.test"), std::string::npos);
}

TEST_F(IntakeTest, DmarcRejectHoldsForEveryRecipientWhateverItsCase) {
  // Domain names compare without case (RFC 5321 §2.4), in the settings
  // as in the lookup; one recipient in a "tag" domain keeps the message.
  EXPECT_TRUE(intake_->rejects_dmarc_failures_for(envelope({{"bob", "EXAMPLE.Test"}})));
  EXPECT_FALSE(intake_->rejects_dmarc_failures_for(envelope({{"bob", "example.test"}, {"carol", "tagged.test"}})));
  EXPECT_FALSE(intake_->rejects_dmarc_failures_for(envelope({})));
  auto settings = Settings::from(config_);
  EXPECT_EQ(settings.authserv_id, "mx.example.test");
  EXPECT_EQ(settings.dmarc_reject_domains, std::set<std::string>{"example.test"});
}

TEST_F(IntakeTest, ForgedResultsWithOurIdAreReplaced_RFC8601_5) {
  std::string msg = kReceived + "Authentication-Results: mx.example.test; dkim=pass header.d=bank.test\r\n" +
                    signed_message();
  auto env = envelope({{"carol", "tagged.test"}});
  env.client_ip = "192.0.2.1";
  auto r = accept(env, msg);
  ASSERT_FALSE(r.refusal);
  const std::string text = stored(r.id);
  EXPECT_EQ(text.find("bank.test"), std::string::npos) << text;
  EXPECT_NE(text.find("dkim=pass header.d=author.test"), std::string::npos) << text;
}

// 100 RCPTs of one address, case variants, a source route, or a second
// alias of the same mailbox: one delivery per target.
TEST_F(IntakeTest, OneDeliveryPerTargetHoweverTheRecipientIsSpelled) {
  std::vector<mail::Address> rcpts;
  for (int i = 0; i < 100; ++i) rcpts.push_back({"bob", "example.test"});
  rcpts.push_back({"BOB", "Example.Test"});
  rcpts.push_back({"robert", "example.test"});  // mailbox:bob again
  auto plans = intake_->plans(envelope(rcpts));
  ASSERT_EQ(plans.size(), 1u);
  ASSERT_EQ(plans[0].targets.size(), 2u);
  EXPECT_EQ(plans[0].targets[0].str(), "mailbox:bob");
  EXPECT_EQ(plans[0].targets[1].str(), "forward:bob-private@gmail.test");

  auto env = envelope(rcpts);
  env.client_ip = "192.0.2.1";
  auto r = accept(env, kReceived + signed_message());
  ASSERT_FALSE(r.refusal);
  auto m = spool_->load(r.id);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->slots.size(), 2u) << "two slots, not 204";
}

// Issue 17: spam is kept local unless its forward says spam = "forward"; a
// recipient whose only target is a forward that keeps spam local gets that
// forward's fallback mailbox.
TEST_F(IntakeTest, SpamPlansKeepLocalUnlessTheForwardSaysForward) {
  auto targets = [&](std::string local, bool spam) {
    std::vector<std::string> out;
    for (const auto& p : intake_->plans(envelope({{std::move(local), "example.test"}}), spam))
      for (const auto& t : p.targets) out.push_back(t.str());
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(targets("bob", false), (V{"mailbox:bob", "forward:bob-private@gmail.test"}));
  EXPECT_EQ(targets("bob", true), (V{"mailbox:bob"}));
  EXPECT_EQ(targets("fwd-only", true), (V{"mailbox:bob-fallback"}));
  EXPECT_EQ(targets("keen", true), (V{"mailbox:bob", "forward:keen@gmail.test"}));
  // Neither a mailbox nor a fallback: forwarded rather than lost...
  EXPECT_EQ(targets("plain", true), (V{"forward:plain@gmail.test"}));
  // ...unless another of the recipient's forwards takes spam anyway.
  EXPECT_EQ(targets("both", true), (V{"forward:keen@gmail.test"}));
}

// Issue 17: the scanners' verdict at the end of DATA: malware refused with
// 554 5.7.0 and nothing stored; spam stored with our X-Spam-* fields first.
TEST_F(IntakeTest, ScannerVerdictRefusesMalwareAndMarksSpam) {
  scan::Report malware;
  malware.clamd_asked = true;
  malware.clamd = {scan::clamd::Reply::Kind::found, "Eicar"};
  FakeScanner virus(malware);
  intake_ = std::make_unique<Intake>(Settings::from(config_), *rules_, dns_, nullptr, *spool_, *scheduler_, inline_,
                                     inline_, &virus);
  auto r = accept(envelope({{"bob", "example.test"}}), kReceived + signed_message());
  ASSERT_TRUE(r.refusal);
  EXPECT_EQ(r.refusal->code, 554);
  EXPECT_EQ(r.refusal->status, "5.7.0");

  scan::Report spam;
  spam.rspamd_asked = true;
  spam.rspamd = scan::rspamd::Reply{scan::rspamd::Action::add_header, 8, 15, {{"S", 8}}};
  FakeScanner spammy(spam);
  intake_ = std::make_unique<Intake>(Settings::from(config_), *rules_, dns_, nullptr, *spool_, *scheduler_, inline_,
                                     inline_, &spammy);
  r = accept(envelope({{"bob", "example.test"}}), kReceived + signed_message());
  ASSERT_FALSE(r.refusal);
  const std::string text = stored(r.id);
  EXPECT_TRUE(text.starts_with("X-Spam-Status: Yes, score=8.00 required=15.00 action=\"add header\"\r\n\ttests=S(8.00)\r\n"
                               "X-Spam-Score: 8.00\r\nX-Spam-Flag: YES\r\nReceived: "))
      << text.substr(0, 300);
  auto m = spool_->load(r.id);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->slots.size(), 1u) << "the forward is left out";
  intake_.reset();
}

// The checks never wait on DNS: admit() returns at once and the decision
// completes as the answers arrive (here, when the test delivers them), with
// the same verdict as when every answer is at hand.
TEST_F(IntakeTest, ChecksCompleteAsAnswersArriveWithoutWaiting) {
  dns_.set_deferred(true);
  auto env = envelope({{"carol", "tagged.test"}});
  env.client_ip = "192.0.2.1";
  std::optional<base::Result<smtp::server::Admission>> got;
  intake_->admit(env, mail::Message{kReceived + signed_message(), std::nullopt},
                 [&](base::Result<smtp::server::Admission> a) { got = std::move(a); });
  EXPECT_FALSE(got.has_value()) << "nothing answered yet: admit() returned without a decision";
  int rounds = 0;
  while (!got && dns_.deliver_pending() > 0) ++rounds;
  ASSERT_TRUE(got.has_value());
  EXPECT_GE(rounds, 1);
  ASSERT_TRUE(got->ok());
  ASSERT_FALSE((*got)->refusal);
  auto id = (*got)->pending->commit();
  ASSERT_TRUE(id.ok());
  const std::string text = stored(*id);
  EXPECT_NE(text.find("spf=pass"), std::string::npos) << text;
  EXPECT_NE(text.find("dkim=pass header.d=author.test"), std::string::npos) << text;
  EXPECT_NE(text.find("dmarc=pass"), std::string::npos) << text;
}

// Issue 12 item 6: a large message's body is in a file; the checks hash
// it from there (the author's DKIM signature verifies), our field goes into
// the header section, and the spool holds every byte.
TEST_F(IntakeTest, ALargeMessagesBodyIsCheckedAndStoredFromItsFile) {
  std::string body;
  for (int i = 0; body.size() < 2 * mail::kSpillThreshold; ++i) body += "line " + std::to_string(i) + " \t\r\n";
  const std::string whole = kReceived + signed_message(body);
  const size_t split = whole.find("\r\n\r\n") + 4;
  auto file = spool_->body_file();
  ASSERT_TRUE(file);
  ASSERT_TRUE(base::write_all(file->get(), std::string_view(whole).substr(split), "body"));
  mail::Message large{whole.substr(0, split),
                      mail::FileRange{std::make_shared<const base::UniqueFd>(std::move(file).value()), "body", 0,
                                      whole.size() - split}};
  auto env = envelope({{"carol", "tagged.test"}});
  env.client_ip = "192.0.2.1";
  auto got = accept(env, std::move(large));
  ASSERT_FALSE(got.refusal);
  ASSERT_FALSE(got.id.empty());
  const std::string text = stored(got.id);
  EXPECT_NE(text.find("dkim=pass header.d=author.test"), std::string::npos) << text.substr(0, 2000);
  EXPECT_NE(text.find("dmarc=pass"), std::string::npos);
  EXPECT_TRUE(text.ends_with("\r\n\r\n" + body)) << "every byte of the body";
}

TEST_F(IntakeTest, RecipientAnswers_RFC5321_3_3_and_7_1) {
  EXPECT_FALSE(intake_->check_recipient({"bob", "example.test"}, false));
  auto unknown = intake_->check_recipient({"nobody", "example.test"}, false);
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->code, 550);
  EXPECT_EQ(unknown->status, "5.1.1");
  auto relay = intake_->check_recipient({"x", "elsewhere.test"}, false);
  ASSERT_TRUE(relay);
  EXPECT_EQ(relay->code, 554);
  EXPECT_EQ(relay->status, "5.7.1");
}

// Submitted mail (issue 13): no inbound checks, no Authentication-Results;
// MAIL FROM and From: only the login's send_as addresses (RFC 6409 §6.1);
// a remote recipient is sent to itself; stored as Origin::submitted.
TEST_F(IntakeTest, SubmittedMailIsItsAuthorsOwn_RFC6409_6_1) {
  EXPECT_FALSE(intake_->check_sender(mail::Address{"bob", "example.test"}, "bob"));
  EXPECT_FALSE(intake_->check_sender(mail::Address{"BOB", "Example.Test"}, "bob"));
  EXPECT_FALSE(intake_->check_sender(std::nullopt, "bob"));
  auto refused = intake_->check_sender(mail::Address{"robert", "example.test"}, "bob");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->code, 553);
  EXPECT_EQ(refused->status, "5.7.1");

  mail::Envelope env;
  env.sender = mail::Address{"bob", "example.test"};
  env.recipients = {mail::Address{"friend", "elsewhere.test"}, mail::Address{"robert", "example.test"}};
  env.auth_user = "bob";
  const std::string body = "To: friend@elsewhere.test\r\nSubject: hi\r\n\r\nHello.\r\n";
  for (const char* from : {"From: Ann <ann@author.test>\r\n", "From: bob@example.test, ann@author.test\r\n", ""}) {
    SCOPED_TRACE(from);
    auto o = accept(env, std::string(from) + body);
    ASSERT_TRUE(o.refusal);
    EXPECT_EQ(o.refusal->code, 553);
    EXPECT_EQ(o.refusal->status, "5.7.1");
  }
  auto o = accept(env, "From: Bob <Bob@Example.Test>\r\n" + body);
  ASSERT_FALSE(o.refusal) << o.refusal->summary();
  auto m = spool_->load(o.id);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->origin, policy::Origin::submitted);
  EXPECT_EQ(m->envelope.auth_user, "bob");
  ASSERT_EQ(m->slots.size(), 2u);
  EXPECT_EQ(m->slots[0].target.str(), "forward:friend@elsewhere.test");
  EXPECT_EQ(m->slots[1].target.str(), "mailbox:bob");
  EXPECT_EQ(stored(o.id).find("Authentication-Results"), std::string::npos);
}

}  // namespace
}  // namespace hikyaku::intake

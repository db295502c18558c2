#include "intake/intake.hpp"

#include <algorithm>
#include <set>

#include "auth/common/author.hpp"
#include "auth/inbound/checker.hpp"
#include "base/log.hpp"
#include "base/strings.hpp"
#include "dns/resolution.hpp"
#include "mail/header.hpp"
#include "mailbox/quota.hpp"
#include "smtp/protocol/replies.hpp"

namespace hikyaku::intake {
namespace {

std::shared_ptr<spdlog::logger> log() { return base::logger("intake"); }

// The second step of the end of DATA: the spool file written and synced,
// then the scheduler may act on what the forwards reported. Dropped
// uncommitted (the session ended first), the message is abandoned: its
// forwards may have gone out, but the client never saw a 250 and will send
// it again.
class Commit final : public smtp::server::PendingMessage {
 public:
  Commit(queue::Spool& spool, queue::Scheduler& scheduler, queue::StagedMessage staged,
         std::shared_ptr<const mail::Message> bytes)
      : spool_(spool), scheduler_(scheduler), staged_(std::move(staged)), bytes_(std::move(bytes)) {}
  Commit(const Commit&) = delete;
  Commit& operator=(const Commit&) = delete;
  ~Commit() override {
    if (!settled_) scheduler_.abandoned(staged_.message.id);
  }

  base::Result<std::string> commit() override {
    HIKYAKU_CHECK(!settled_);
    settled_ = true;
    const std::string& id = staged_.message.id;
    auto st = spool_.commit(staged_, *bytes_, [&] { return scheduler_.finished_before_commit(id); });
    if (!st) {
      scheduler_.abandoned(id);
      return st.error();
    }
    scheduler_.committed(id, *st);
    return id;
  }

 private:
  queue::Spool& spool_;
  queue::Scheduler& scheduler_;
  queue::StagedMessage staged_;
  std::shared_ptr<const mail::Message> bytes_;
  bool settled_ = false;
};

std::string target_key(const mail::Target& t) {
  return std::string(mail::Target::kind_name(t.kind)) + ":" + base::to_lower(t.value);
}

// Issue 17: a spam message's targets without the forwards that keep spam
// local; a recipient left without a mailbox gets the dropped forward's
// fallback mailbox, and keeps the forward when it has none (forwarded
// rather than lost) unless another of its forwards takes spam anyway.
std::vector<mail::Target> keep_spam_local(const config::Config& config, std::vector<mail::Target> targets) {
  auto is_mailbox = [](const mail::Target& t) { return t.kind == mail::Target::Kind::mailbox; };
  auto takes_spam = [&](const mail::Target& t) {
    const config::Forward* f = t.kind == mail::Target::Kind::forward ? config.find_forward(t.value) : nullptr;
    return f != nullptr && f->forward_spam;
  };
  const bool has_mailbox = std::any_of(targets.begin(), targets.end(), is_mailbox);
  const bool forwarded_anyway = std::any_of(targets.begin(), targets.end(), takes_spam);
  std::vector<mail::Target> out;
  for (auto& t : targets) {
    if (t.kind != mail::Target::Kind::forward || takes_spam(t)) {
      out.push_back(std::move(t));
      continue;
    }
    if (has_mailbox) continue;
    const config::Forward* f = config.find_forward(t.value);
    const mail::Target* fallback = nullptr;
    if (f != nullptr)
      for (const auto& link : f->fallback)
        if (is_mailbox(link)) fallback = &link;
    if (fallback != nullptr)
      out.push_back(*fallback);
    else if (!forwarded_anyway)
      out.push_back(std::move(t));
  }
  return out;
}

}  // namespace

Settings Settings::from(const config::Config& config) {
  Settings s;
  s.authserv_id = config.hostname;
  s.psl_discovery = config.dmarc.method == "psl";
  for (const auto& d : config.domains)
    if (d.dmarc_inbound == "reject") s.dmarc_reject_domains.insert(base::to_lower(d.name));
  return s;
}

Intake::Intake(Settings settings, const base::Live<policy::Rules>& rules, dns::AsyncResolver& resolver,
               const auth::dmarc::PublicSuffixList* psl, queue::Spool& spool, queue::Scheduler& scheduler,
               base::Executor& loop, base::Executor& blocking, scan::Scanner* scanner)
    : settings_(std::move(settings)), rules_(rules), resolver_(resolver), psl_(psl), spool_(spool),
      scheduler_(scheduler), loop_(loop), blocking_(blocking), scanner_(scanner) {}

std::optional<mail::Reply> Intake::check_sender(const std::optional<mail::Address>& sender, std::string_view login) {
  // The null sender carries no address to misuse; its From: is still checked.
  if (!sender || rules_.get()->addresses().may_send_as(login, *sender)) return std::nullopt;
  return smtp::protocol::reply::sender_not_owned();
}

std::optional<mail::Reply> Intake::check_author(const mail::Envelope& envelope, std::string_view message) const {
  // RFC 5322 §3.6.2 / RFC 6409 §6.1: exactly one author, one of the login's
  // own addresses (a group, several authors or none are refused as well).
  auto author = auth::common::find_author(auth::common::parse_message(message));
  if (author) {
    auto address = mail::parse_mailbox(author->address, true);
    if (address && rules_.get()->addresses().may_send_as(envelope.auth_user, *address)) return std::nullopt;
  }
  return smtp::protocol::reply::author_not_owned();
}

std::optional<mail::Reply> Intake::check_recipient(const mail::Address& rcpt, bool authenticated) {
  const auto rules = rules_.get();
  switch (rules->addresses().check_recipient(rcpt, authenticated)) {
    case policy::RcptVerdict::accept: return check_quotas(*rules, rcpt, authenticated);
    case policy::RcptVerdict::unknown_user: return smtp::protocol::reply::unknown_user();
    case policy::RcptVerdict::bad_srs:
      // The reply says nothing about which check failed (hash or age): it
      // is the same to a prober either way.
      return mail::Reply(550, "5.1.1", "No such user here (invalid or expired SRS address)");
    case policy::RcptVerdict::relay_denied: return smtp::protocol::reply::relay_denied();
  }
  return smtp::protocol::reply::relay_denied();
}

std::optional<mail::Reply> Intake::check_quotas(const policy::Rules& rules, const mail::Address& rcpt,
                                                bool authenticated) const {
  // Issue 15 item 5: a mailbox at its quota takes no more mail, and the
  // sender is told at RCPT (RFC 3463 4.2.2), so nothing is queued for it.
  // Only the recorded usage is read here (one small file); a stale record
  // counts as "not full" and the delivery agent, which recalculates,
  // decides.
  const auto& config = rules.config();
  // Without any quota configured, no plan is made here (RCPT stays as cheap as before).
  if (std::none_of(config.mailboxes.begin(), config.mailboxes.end(), [](const auto& m) { return m.quota != 0; })) {
    return std::nullopt;
  }
  for (const auto& target : rules.addresses().plan(rcpt, authenticated)) {
    if (target.kind != mail::Target::Kind::mailbox) continue;
    const config::Mailbox* m = config.find_mailbox(target.value);
    if (m == nullptr || m->quota == 0) continue;
    const mailbox::Quota quota(config.mailbox_dir(m->name), m->quota);
    if (auto usage = quota.recorded(); usage && quota.full(*usage)) {
      return mail::Reply(452, "4.2.2", "Mailbox full, try again later");
    }
  }
  return std::nullopt;
}

bool Intake::rejects_dmarc_failures_for(const mail::Envelope& envelope) const {
  if (envelope.recipients.empty()) return false;
  for (const auto& r : envelope.recipients)
    if (!settings_.dmarc_reject_domains.contains(base::to_lower(r.domain))) return false;
  return true;
}

std::vector<policy::RecipientPlan> Intake::plans(const mail::Envelope& envelope, bool spam) const {
  std::vector<policy::RecipientPlan> out;
  std::set<std::string> planned;
  const auto rules = rules_.get();  // one generation for the whole message
  for (const auto& rcpt : envelope.recipients) {
    policy::RecipientPlan plan;
    plan.recipient = rcpt.str();
    auto targets = rules->addresses().plan(rcpt, !envelope.auth_user.empty());
    if (spam) targets = keep_spam_local(rules->config(), std::move(targets));
    for (auto& target : targets) {
      if (planned.insert(target_key(target)).second) plan.targets.push_back(std::move(target));
    }
    if (!plan.targets.empty()) out.push_back(std::move(plan));
  }
  return out;
}

base::Result<std::pair<base::UniqueFd, std::filesystem::path>> Intake::body_file() {
  auto fd = spool_.body_file();
  if (!fd) return fd.error();
  return std::pair{std::move(fd).value(), spool_.dir() / "tmp"};
}

std::string Intake::log_text(std::string_view text) const {
  return mail::redact(std::string(text), rules_.get()->hidden());
}

void Intake::admit(mail::Envelope envelope, mail::Message message, Admitted done) {
  // Authenticated submission is our own users' mail: no inbound checks,
  // but only their own From: addresses.
  if (!envelope.auth_user.empty()) {
    if (auto refused = check_author(envelope, message.text)) {
      log()->info("submitted message refused: login={} From: is not one of its send_as addresses",
                  base::log_printable(envelope.auth_user));
      done(smtp::server::Admission::refused(*refused));
      return;
    }
    done(stage(envelope, std::move(message), policy::Origin::submitted));
    return;
  }
  auto received = std::make_shared<Received>(Received{std::move(envelope), std::move(message), nullptr});
  if (!received->message.body) {
    check(received, std::move(done));
    return;
  }
  // A large message: its body hashes first, in one pass over its file, on
  // the blocking pool; the checks then run on the loop like any other's.
  blocking_.post([this, received, done = std::move(done)]() mutable {
    auto hashes = auth::inbound::body_hashes_of(received->message);
    if (!hashes) {
      done(hashes.error());
      return;
    }
    received->body_hashes = std::make_shared<const auth::common::BodyHashes>(std::move(hashes).value());
    loop_.post([this, received, done = std::move(done)]() mutable { check(received, std::move(done)); });
  });
}

void Intake::check(const std::shared_ptr<Received>& received, Admitted done) {
  // 1. The inbound checks, decided on the loop as the answers arrive. The
  // decision must be deterministic (resolution.hpp): its time is fixed here.
  auth::inbound::Options options;
  options.authserv_id = settings_.authserv_id;
  options.now = std::chrono::system_clock::now();
  if (settings_.psl_discovery && psl_ != nullptr) {
    options.discovery = auth::dmarc::Discovery::public_suffix_list;
    options.psl = psl_;
  }
  auto decide = [received, options](dns::Resolver& view) {
    auth::inbound::Input in;
    in.message = received->message.text;
    in.body_hashes = received->body_hashes.get();
    if (received->envelope.sender) in.mail_from = received->envelope.sender->str();
    in.helo = received->envelope.helo;
    in.client_ip = received->envelope.client_ip;
    return auth::inbound::check(view, in, options);
  };
  auto checked = [this, received, done = std::move(done)](const auth::inbound::Verdict& v) mutable {
    const mail::Envelope& env = received->envelope;
    log()->info("{}", log_text(auth::inbound::summary(v, env.sender_str(), env.client_ip)));
    // RFC 7489 §6.6.4 / §10.3: reject at SMTP time, only when the domain
    // chose it; the default records the result and delivers (the owner
    // decides, nothing is lost).
    if (v.dmarc_reject() && rejects_dmarc_failures_for(env)) {
      done(smtp::server::Admission::refused(
          mail::Reply(550, "5.7.1", "Message rejected: DMARC policy of the author domain")));
      return;
    }
    // The last use of the received bytes (decide() is not called again):
    // moved into stamp(), which inserts the field in place (in the header
    // section, which a large message keeps in memory too).
    mail::Message& m = received->message;
    m.text = auth::inbound::stamp(std::move(m.text), v.results);
    if (v.iprev) received->envelope.client_name = v.iprev->name;  // for the scanners
    scan(received, std::move(done));
  };
  dns::resolve_then<auth::inbound::Verdict>(resolver_, std::move(decide), std::move(checked));
}

// 1b. The scanners: the message as it will be stored (our Received and
// Authentication-Results in it), before any 250.
void Intake::scan(const std::shared_ptr<Received>& received, Admitted done) {
  if (scanner_ == nullptr) {
    done(stage(received->envelope, std::move(received->message), policy::Origin::received));
    return;
  }
  auto scanned = [this, received, done = std::move(done)](const scan::Report& report) {
    const scan::Decision d = scan::decide(report, scanner_->on_failure());
    const mail::Envelope& env = received->envelope;
    if (d.kind == scan::Decision::Kind::refuse) {
      log()->info("message refused ({} {}): from=<{}> ip={} {}", d.refusal->code, d.refusal->status,
                  base::log_printable(log_text(env.sender_str())), env.client_ip, d.summary);
      done(smtp::server::Admission::refused(*d.refusal));
      return;
    }
    log()->info("scanned: from=<{}> ip={} {}{}", base::log_printable(log_text(env.sender_str())), env.client_ip,
                d.summary,
                d.kind == scan::Decision::Kind::spam ? " (spam: kept local unless a forward says spam = \"forward\")"
                                                     : "");
    mail::Message& m = received->message;
    m.text.insert(0, d.fields);  // first, before our Received (verdict.hpp)
    done(stage(env, std::move(m), policy::Origin::received, d.kind == scan::Decision::Kind::spam));
  };
  scanner_->scan(received->envelope, received->message, std::move(scanned));
}

// 2-3. Plans, stage, and the forwards started.
base::Result<smtp::server::Admission> Intake::stage(const mail::Envelope& envelope, mail::Message message,
                                                    policy::Origin origin, bool spam) {
  auto plans = this->plans(envelope, spam);
  // A recipient accepted at RCPT that the current rules no longer plan (a
  // reload removed its address between RCPT and the end of DATA): the
  // whole message is refused for now rather than accepted and lost; the
  // sender's retry meets the new rules at RCPT.
  for (const auto& rcpt : envelope.recipients) {
    const std::string key = rcpt.str();
    const bool planned = std::any_of(plans.begin(), plans.end(), [&](const auto& p) { return p.recipient == key; });
    if (!planned && rules_.get()->addresses().plan(rcpt, !envelope.auth_user.empty()).empty()) {
      log()->warn("message refused for now: <{}> has no plan under the current configuration",
                  base::log_printable(log_text(key)));
      return smtp::server::Admission::refused(smtp::protocol::reply::not_stored());
    }
  }
  auto bytes = std::make_shared<const mail::Message>(std::move(message));
  auto staged = spool_.stage(envelope, plans, *bytes, origin);
  if (!staged.ok()) return staged.error();
  scheduler_.submit_staged(staged->message, bytes);
  return smtp::server::Admission{
      std::nullopt, std::make_unique<Commit>(spool_, scheduler_, std::move(staged).value(), std::move(bytes))};
}

}  // namespace hikyaku::intake

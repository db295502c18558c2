#include "delivery/maildir_agent.hpp"

#include "base/log.hpp"
#include "base/strings.hpp"
#include "mail/target.hpp"
#include "mailbox/maildir.hpp"
#include "mailbox/quota.hpp"

namespace hikyaku::delivery {
namespace {

using Outcome = policy::AttemptResult;

std::shared_ptr<spdlog::logger> log() { return base::logger("maildir"); }

constexpr size_t kSpares = 16;
constexpr auto kSpareAge = std::chrono::hours(1);

Outcome temporary(const base::Error& error) {
  // ENOSPC/EDQUOT: the operator frees space, the retry succeeds.
  return Outcome{Outcome::Kind::temporary, error.out_of_space() ? "4.3.1" : "4.3.0", error.message,
                 Outcome::Cause::local};
}

}  // namespace

MaildirAgent::Settings MaildirAgent::Settings::from(const config::Config& config) {
  Settings s;
  s.mailboxes_dir = config.mailboxes_dir();
  for (const auto& m : config.mailboxes) {
    s.mailboxes.insert(m.name);
    if (m.quota != 0) s.quotas[m.name] = m.quota;
  }
  return s;
}

MaildirAgent::MaildirAgent(Settings settings) : settings_(std::move(settings)) {}

void MaildirAgent::configure(const config::Config& config) {
  Settings fresh = Settings::from(config);  // its directory and sync stay as started
  std::lock_guard lock(mu_);
  settings_.mailboxes = std::move(fresh.mailboxes);
  settings_.quotas = std::move(fresh.quotas);
}

uint64_t MaildirAgent::quota_of(const std::string& mailbox) const {
  std::lock_guard lock(mu_);
  auto it = settings_.quotas.find(mailbox);
  return it == settings_.quotas.end() ? 0 : it->second;
}

mailbox::Maildir::Spare MaildirAgent::take_spare(const std::string& mailbox) {
  std::lock_guard lock(mu_);
  auto node = spares_.extract(mailbox);
  if (node.empty() || std::chrono::steady_clock::now() - node.mapped().made() > kSpareAge) return {};
  return std::move(node.mapped());
}

// After a delivery (its outcome already reported): the next one to this
// mailbox finds its file made. A failure here only means it will make its
// own.
void MaildirAgent::make_spare(const std::string& mailbox, const mailbox::Maildir& maildir) {
  {
    std::lock_guard lock(mu_);
    if (spares_.contains(mailbox) || spares_.size() >= kSpares) return;
  }
  auto spare = maildir.make_spare();
  if (!spare) return;
  std::lock_guard lock(mu_);
  if (!spares_.contains(mailbox) && spares_.size() < kSpares) spares_.emplace(mailbox, std::move(*spare));
}

bool MaildirAgent::configured(const std::string& mailbox) const {
  std::lock_guard lock(mu_);
  return settings_.mailboxes.contains(mailbox);
}

void MaildirAgent::deliver(const queue::DeliveryRequest& request,
                           std::function<void(policy::AttemptResult)> done) {
  // Sanity check: the plan must name a mailbox, by a name that stays inside
  // DATA_DIR/mailboxes.
  if (request.target.kind != mail::Target::Kind::mailbox || !mail::valid_mailbox_name(request.target.value)) {
    done(Outcome{Outcome::Kind::permanent, "5.1.1", "no such mailbox " + base::log_printable(request.target.value)});
    return;
  }

  // RFC 5321 §4.4: Return-Path at final delivery; Delivered-To helps loop
  // detection and readers (as Postfix local(8) and Dovecot LDA add it).
  std::string added = "Return-Path: <" +
                      (request.envelope ? request.envelope->sender_str() : std::string()) + ">\r\n";
  if (!request.recipient.empty()) added += "Delivered-To: " + request.recipient + "\r\n";
  // Issue 3: a diverted copy states when and why, as the first header of
  // the message proper (the policy formats it as one safe line).
  if (!request.diverted.empty()) added += "X-Hikyaku-Diverted: " + request.diverted + "\r\n";
  auto message = queue::read_message(request);
  if (!message.ok()) {
    done(temporary(message.error()));
    return;
  }
  // The added fields, then the spooled bytes in pieces (a large message's
  // body read from its file as it is written): never joined into a copy.
  const mail::Message& spooled = **message;
  const mailbox::Maildir::Pieces pieces = [&](const std::function<void(std::string_view)>& emit) {
    emit(added);
    return mail::for_each_piece(spooled, [&](std::string_view piece) {
      emit(piece);
      return base::Status{};
    });
  };

  mailbox::Maildir maildir(settings_.mailboxes_dir / request.target.value, settings_.sync);
  if (auto st = maildir.create(); !st) {
    done(temporary(st.error()));
    return;
  }
  if (const uint64_t limit = quota_of(request.target.value); limit != 0) {
    const mailbox::Quota quota(maildir.root(), limit);
    auto usage = quota.usage();
    if (!usage) {
      done(temporary(usage.error()));
      return;
    }
    // The size with CRLF line endings: at most a few bytes more than on disk.
    if (quota.exceeded_by(*usage, added.size() + spooled.size())) {
      done(Outcome{Outcome::Kind::temporary, "4.2.2", "mailbox " + request.target.value + " is over its quota",
                   Outcome::Cause::local});
      return;
    }
  }
  auto spare = take_spare(request.target.value);
  auto uid = maildir.deliver(pieces, &spare);
  if (!uid) {
    done(temporary(uid.error()));
    return;
  }
  if (!configured(request.target.value)) {
    // Mail accepted while it was configured (or a removed hidden forward's
    // diverted copy): kept, never failed for an edit of the file.
    log()->warn("{}: mailbox {} is no longer configured: delivered into {} all the same (put its [[mailbox]] "
                "back to read it)",
                request.queue_id, request.target.value, maildir.root().string());
  }
  done(Outcome{Outcome::Kind::delivered, "2.0.0", "delivered to maildir as " + *uid});
  // A mailbox that takes refused forwards' copies keeps a file made ahead
  // for the next one: the copy someone waits for skips the create.
  if (!request.diverted.empty()) make_spare(request.target.value, maildir);
}

}  // namespace hikyaku::delivery

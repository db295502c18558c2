#include "policy/reports.hpp"


#include "base/strings.hpp"
#include "mail/address.hpp"
#include "mail/dsn.hpp"
#include "mail/header.hpp"
#include "policy/address_book.hpp"
#include "policy/forwards.hpp"

namespace hikyaku::policy {
namespace {

std::string field(std::string_view headers, std::string_view name) {
  auto v = mail::header_value(headers, name);
  return v ? mail::one_line(*v, 300) : std::string("(none)");
}

std::string id_part(std::string_view seed) {
  std::string out;
  for (char c : seed) out += (base::ascii_alnum(c) || c == '.' || c == '-') ? c : '.';
  return out;
}

}  // namespace

std::string build_notice(const NoticeInput& in) {
  const auto& f = in.facts;
  const std::string domain = mail::one_line(in.from_domain, 200);
  const std::string recipient = mail::one_line(f.recipient, 300);
  const std::string holder = mail::one_line(f.holder, 200);
  std::string m;
  m += "From: hikyaku <postmaster@" + domain + ">\r\n";
  m += "To: <" + mail::one_line(f.forward_to, 300) + ">\r\n";
  m += "Subject: Diverted: a message for " + recipient + " is in " + holder + "\r\n";
  m += "Date: " + mail::rfc5322_date(f.when) + "\r\n";
  m += "Message-ID: <" + id_part(in.id_seed) + ".notice@" + mail::one_line(in.hostname, 200) + ">\r\n";
  m += "Auto-Submitted: auto-generated\r\n";  // RFC 3834 §5
  m += "MIME-Version: 1.0\r\n";
  m += "Content-Type: text/plain; charset=us-ascii\r\n";
  m += "Content-Transfer-Encoding: 7bit\r\n";
  m += "\r\n";
  m += "A message for " + recipient + " was not accepted by the forward address\r\n";
  m += "and was kept in " + holder + " instead.\r\n";
  m += "Read it there (IMAP or POP3 account for that mailbox).\r\n";
  m += "\r\n";
  // Only these four fields of the original; none of its body or attachments.
  m += "  From:       " + field(in.original_headers, "From") + "\r\n";
  m += "  Subject:    " + field(in.original_headers, "Subject") + "\r\n";
  m += "  Date:       " + field(in.original_headers, "Date") + "\r\n";
  m += "  Message-ID: " + field(in.original_headers, "Message-ID") + "\r\n";
  m += "  Reason:     " + mail::one_line(f.reply, 600) + "\r\n";
  m += "  Diverted:   " + mail::rfc5322_date(f.when) + "\r\n";
  m += "\r\n-- \r\nhikyaku, the mail server of " + domain + "\r\n";
  return m;
}

ReportWriter::ReportWriter(const config::Config& config, const AddressBook* book)
    : config_(config), book_(book), hidden_(hidden_addresses(config)) {}

base::Result<GeneratedMessage> ReportWriter::notice(const OriginalMessage& original, const NoticeFacts& facts) const {
  NoticeInput in;
  in.hostname = config_.hostname;
  in.from_domain = mail::domain_of(facts.recipient);
  if (in.from_domain.empty()) in.from_domain = config_.hostname;
  in.facts = facts;
  in.original_headers = original.headers;
  in.id_seed = original.queue_id + "." + std::to_string(facts.when.time_since_epoch().count());

  auto to = mail::parse_mailbox(facts.forward_to, true);
  if (!to) return base::make_error("bad forward address");
  GeneratedMessage out;
  out.origin = Origin::notice;
  out.message = build_notice(in);
  // Null reverse-path (RFC 5321 §4.5.5): nothing answers a notice.
  out.envelope.recipients.push_back(*to);
  out.envelope.helo = config_.hostname;
  // The slot's recipient is the original (local) recipient, so queue logs
  // never name the owner's hidden address.
  out.plan.emplace_back(facts.recipient,
                        std::vector<mail::Target>{{mail::Target::Kind::forward, base::to_lower(facts.forward_to)}});
  return out;
}

std::vector<mail::Target> ReportWriter::dsn_targets(const std::string& sender, const std::string& auth_user) const {
  std::vector<mail::Target> out;
  if (const config::Mailbox* own = auth_user.empty() ? nullptr : config_.find_mailbox(auth_user)) {
    out.push_back(mail::Target{mail::Target::Kind::mailbox, own->name});
    return out;
  }
  auto parsed = mail::parse_mailbox(sender, true);
  if (!parsed) return out;
  if (book_ != nullptr && book_->is_srs(*parsed)) return book_->plan(*parsed);
  if (const auto* rule = config_.find_address(parsed->key())) {
    for (const auto& t : rule->deliver)
      if (t.kind == mail::Target::Kind::mailbox) out.push_back(t);
    if (out.empty()) out = rule->deliver;
    return out;
  }
  if (config_.is_local_domain(parsed->domain)) return out;
  out.push_back(mail::Target{mail::Target::Kind::forward, sender});
  return out;
}

base::Result<GeneratedMessage> ReportWriter::dsn(const OriginalMessage& original, const DsnFacts& facts) const {
  // RFC 3461 §6.2 (decide() checks this too).
  if (!original.sender) return base::make_error("no DSN to the null sender");
  const std::string sender = original.sender->str();
  auto targets = dsn_targets(sender, original.auth_user);
  if (targets.empty()) return base::make_error("sender <" + sender + "> is in a local domain but unknown");
  mail::DsnInput in;
  in.reporting_mta = config_.hostname;
  in.to = sender;
  in.queue_id = original.queue_id;
  in.arrival = original.arrival;
  in.now = facts.when;
  in.recipients.push_back(mail::DsnRecipient{facts.recipient, facts.status, facts.reply, facts.when, facts.expired});
  in.original_headers = original.headers;
  in.hidden = hidden_;
  in.boundary_seed = original.queue_id + "." + std::to_string(facts.when.time_since_epoch().count());

  GeneratedMessage out;
  out.origin = Origin::dsn;
  out.message = mail::build_dsn(in);
  // RFC 3464 §2 / RFC 5321 §4.5.5: DSNs use the null reverse-path.
  out.envelope.recipients.push_back(*original.sender);
  out.envelope.helo = config_.hostname;
  out.plan.emplace_back(sender, std::move(targets));
  return out;
}

}  // namespace hikyaku::policy

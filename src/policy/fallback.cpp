#include "policy/fallback.hpp"

#include <algorithm>

#include "base/log.hpp"
#include "base/strings.hpp"
#include "mail/dsn.hpp"

namespace hikyaku::policy {
namespace {

void expand(const config::Config& config, const std::vector<mail::Target>& links,
            std::vector<mail::Target>& out, std::vector<std::string>& stack) {
  for (const auto& link : links) {
    out.push_back(link);
    if (link.kind != mail::Target::Kind::forward) continue;
    const config::Forward* f = config.find_forward(link.value);
    if (f == nullptr || f->fallback.empty()) continue;
    // config rejects cycles; this guard only keeps a bad in-memory config
    // (tests) from recursing forever.
    std::string key = base::to_lower(link.value);
    if (std::find(stack.begin(), stack.end(), key) != stack.end()) continue;
    stack.push_back(key);
    expand(config, f->fallback, out, stack);
    stack.pop_back();
  }
}

bool starts_with_code(std::string_view s) {
  return s.size() >= 3 && s[0] >= '2' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9';
}

}  // namespace

const config::Forward* forward_options(const config::Config& config, const mail::Target& target) {
  if (target.kind != mail::Target::Kind::forward) return nullptr;
  return config.find_forward(target.value);
}

bool is_hidden(const config::Config& config, const mail::Target& target) {
  const config::Forward* f = forward_options(config, target);
  return f != nullptr && f->hidden;
}

std::vector<mail::Target> fallback_chain(const config::Config& config, const mail::Target& planned) {
  std::vector<mail::Target> out;
  const config::Forward* f = forward_options(config, planned);
  if (f == nullptr) return out;
  std::vector<std::string> stack{base::to_lower(planned.value)};
  expand(config, f->fallback, out, stack);
  return out;
}

std::vector<std::string> hidden_addresses(const config::Config& config) {
  std::vector<std::string> out;
  for (const auto& f : config.forwards)
    if (f.hidden) out.push_back(base::to_lower(f.to));
  return out;
}

std::string reply_text(const queue::DeliveryOutcome& outcome) {
  if (starts_with_code(outcome.detail)) return outcome.detail;
  if (outcome.status.empty()) return outcome.detail;
  return outcome.status + " " + outcome.detail;
}

std::string diverted_note(std::chrono::system_clock::time_point when, std::string_view reply) {
  return mail::rfc5322_date(when) + "; reason=" + mail::quoted_string(reply, 400);
}

ForwardFallback::ForwardFallback(const config::Config& config, Reports* reports)
    : config_(config), reports_(reports), hidden_(hidden_addresses(config)) {}

bool ForwardFallback::has_next(const queue::TargetState& slot) const {
  return slot.link < fallback_chain(config_, slot.planned).size();
}

std::optional<mail::Target> ForwardFallback::next(const queue::TargetState& slot, const queue::DeliveryOutcome&) {
  auto chain = fallback_chain(config_, slot.planned);
  if (slot.link >= chain.size()) return std::nullopt;
  return chain[slot.link];
}

std::optional<queue::FallbackPolicy::Diversion> ForwardFallback::divert(const queue::SpooledMessage& message,
                                                                        const queue::TargetState& slot,
                                                                        const queue::DeliveryOutcome& outcome,
                                                                        base::Clock::time_point now) {
  // Notices and DSNs are never diverted: a refused notice is dropped, and a
  // DSN is about a message, never one more copy of it.
  if (message.origin != queue::Origin::received) return std::nullopt;
  auto link = next(slot, outcome);
  if (!link) return std::nullopt;
  return Diversion{*link, diverted_note(now, redact(reply_text(outcome)))};
}

std::optional<config::Seconds> ForwardFallback::defer_limit(const queue::SpooledMessage& message,
                                                            const queue::TargetState& slot) const {
  if (slot.target.kind != mail::Target::Kind::forward) return std::nullopt;
  if (message.origin == queue::Origin::dsn) return std::nullopt;  // DSNs: [delivery] expire
  const config::Forward* f = forward_options(config_, slot.target);
  if (message.origin == queue::Origin::notice) {
    // A notice that keeps deferring is dropped at the forward's defer limit:
    // it is only useful while it is news.
    return f ? f->defer_limit : config::Forward{}.defer_limit;
  }
  // A forward with nowhere to divert retries until [delivery] expire, then
  // fails (with a DSN when not hidden).
  if (f == nullptr || !has_next(slot)) return std::nullopt;
  return f->defer_limit;
}

bool ForwardFallback::should_divert(const queue::SpooledMessage& message, const queue::TargetState& slot,
                                    base::Clock::time_point now) {
  auto limit = defer_limit(message, slot);
  if (!limit || slot.first_attempt == base::Clock::time_point{}) return false;
  return now - slot.first_attempt >= *limit;
}

std::optional<base::Clock::time_point> ForwardFallback::deadline(const queue::SpooledMessage& message,
                                                                 const queue::TargetState& slot) {
  auto limit = defer_limit(message, slot);
  if (!limit || slot.first_attempt == base::Clock::time_point{}) return std::nullopt;
  return slot.first_attempt + *limit;
}

bool ForwardFallback::path_hidden(const queue::TargetState& slot) const {
  if (is_hidden(config_, slot.planned)) return true;
  auto chain = fallback_chain(config_, slot.planned);
  for (size_t i = 0; i < slot.link && i < chain.size(); ++i)
    if (is_hidden(config_, chain[i])) return true;
  return false;
}

void ForwardFallback::diverted(const queue::SpooledMessage& message, const queue::TargetState& from,
                               const queue::TargetState& to, const queue::DeliveryOutcome& outcome) {
  if (message.origin != queue::Origin::received || reports_ == nullptr) return;
  const config::Forward* f = forward_options(config_, from.target);
  if (f == nullptr || !f->notify) return;
  // Where the message is now: the first mailbox from the new link on.
  auto chain = fallback_chain(config_, from.planned);
  std::string holder = "the next fallback target";
  for (size_t i = to.link == 0 ? 0 : to.link - 1; i < chain.size(); ++i) {
    if (chain[i].kind == mail::Target::Kind::mailbox) {
      holder = (i + 1 == to.link ? "mailbox " : "mailbox (if the next forward refuses it too) ") + chain[i].value;
      break;
    }
  }
  NoticeFacts facts;
  facts.forward_to = f->to;
  facts.recipient = from.recipient;
  // The owner may see their own address; other hidden ones are removed.
  std::vector<std::string> others;
  for (const auto& h : hidden_)
    if (!base::iequals(h, f->to)) others.push_back(h);
  facts.reply = mail::redact(reply_text(outcome), others);
  facts.holder = holder;
  facts.when = std::chrono::system_clock::now();
  facts.give_up = f->defer_limit;
  reports_->notice(message, facts);
}

void ForwardFallback::failed(const queue::SpooledMessage& message, const queue::TargetState& slot,
                             const queue::DeliveryOutcome& outcome) {
  auto log = base::logger("queue");
  switch (message.origin) {
    case queue::Origin::notice:
      // Issue 3: a refused notice is logged and dropped — never retried into
      // a loop, never bounced, never diverted.
      log->warn("{}: notice to {} not delivered, dropped ({})", message.id, describe(slot.target),
                redact(reply_text(outcome)));
      return;
    case queue::Origin::dsn:
      // RFC 3464 / RFC 5321 §6.1: a DSN is sent with the null sender; its
      // failure is not reported to anyone (no DSN about a DSN).
      log->warn("{}: DSN to <{}> not delivered, dropped ({})", message.id, slot.recipient,
                redact(reply_text(outcome)));
      return;
    case queue::Origin::received:
      break;
  }
  if (slot.planned.kind != mail::Target::Kind::forward) return;  // local mailboxes: operator's log
  if (path_hidden(slot)) {
    // DESIGN.md: a hidden target never produces a DSN.
    log->warn("{}: hidden forward for <{}> failed for good; no DSN", message.id, slot.recipient);
    return;
  }
  if (!message.envelope.sender) return;  // RFC 3461 §6.2: never a DSN to the null sender
  if (reports_ == nullptr) return;
  DsnFacts facts;
  facts.recipient = slot.recipient;
  facts.status = outcome.status;
  facts.reply = redact(reply_text(outcome));
  facts.expired = outcome.kind == queue::DeliveryOutcome::Kind::temporary;
  facts.when = std::chrono::system_clock::now();
  reports_->dsn(message, facts);
}

std::string ForwardFallback::describe(const mail::Target& target) {
  if (is_hidden(config_, target)) return "forward:<hidden>";
  return target.str();
}

std::string ForwardFallback::redact(std::string text) { return mail::redact(std::move(text), hidden_); }

}  // namespace hikyaku::policy

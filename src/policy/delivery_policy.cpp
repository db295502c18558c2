#include "policy/delivery_policy.hpp"

#include <algorithm>

#include "base/strings.hpp"
#include "mail/header.hpp"
#include "policy/forwards.hpp"

namespace hikyaku::policy {

using std::chrono::duration_cast;

std::string_view Disposition::word() const {
  switch (action) {
    case Action::delivered: return "delivered";
    case Action::retry: return "deferred";
    case Action::divert: return "diverted";
    case Action::fail: return "failed";
  }
  return "deferred";
}

DeliveryPolicy::DeliveryPolicy(const config::Config& config, double jitter)
    : config_(config), jitter_(jitter), hidden_(hidden_addresses(config)) {}

std::optional<DeliveryPolicy::Link> DeliveryPolicy::next_link(const SlotState& slot) const {
  auto chain = fallback_chain(config_, slot.planned);
  size_t at = slot.link;
  // The chain may have changed since the slot moved onto its current link
  // (a reload, or a restart with an edited configuration): go on from where
  // that target stands now; one no longer in the chain goes to the chain's
  // first mailbox, the owner's, rather than nowhere.
  if (slot.link > 0 && (slot.link > chain.size() || chain[slot.link - 1] != slot.target)) {
    auto here = std::find(chain.begin(), chain.end(), slot.target);
    if (here == chain.end()) {
      here = std::find_if(chain.begin(), chain.end(),
                          [](const mail::Target& t) { return t.kind == mail::Target::Kind::mailbox; });
      if (here == chain.end()) return std::nullopt;
      return Link{static_cast<size_t>(here - chain.begin()), *here};
    }
    at = static_cast<size_t>(here - chain.begin()) + 1;
  }
  if (at >= chain.size()) return std::nullopt;
  return Link{at, chain[at]};
}

std::optional<config::Seconds> DeliveryPolicy::defer_limit(const MessageFacts& message, const SlotState& slot) const {
  if (slot.target.kind != mail::Target::Kind::forward) return std::nullopt;
  if (message.origin == Origin::dsn) return std::nullopt;  // DSNs: [delivery] expire
  const config::Forward* f = forward_options(config_, slot.target);
  if (message.origin == Origin::notice) {
    // A notice that keeps deferring is dropped at the forward's defer limit:
    // it is only useful while it is news.
    return f ? f->defer_limit : config::Forward{}.defer_limit;
  }
  // A forward with nowhere to divert retries until [delivery] expire, then
  // fails (with a DSN when not hidden).
  if (f == nullptr || !next_link(slot)) return std::nullopt;
  return f->defer_limit;
}

std::optional<TimePoint> DeliveryPolicy::deadline(const MessageFacts& message, const SlotState& slot) const {
  auto limit = defer_limit(message, slot);
  if (!limit || slot.first_attempt == TimePoint{}) return std::nullopt;
  return slot.first_attempt + *limit;
}

TimePoint DeliveryPolicy::retry_time(unsigned attempts, TimePoint now, double jitter_sample) const {
  // [delivery] retry[k-1] after the k-th failed attempt, then the last
  // interval forever; jitter spreads a burst of deferrals (RFC 5321 §4.5.4.1).
  const auto& retry = config_.delivery.retry;
  const config::Seconds fallback_interval(300);
  const size_t k = retry.empty() ? 0 : std::min<size_t>(attempts == 0 ? 0 : attempts - 1, retry.size() - 1);
  auto interval = duration_cast<TimePoint::duration>(retry.empty() ? fallback_interval : retry[k]);
  return now + interval + spread(interval, jitter_sample);
}

TimePoint DeliveryPolicy::after_pause(TimePoint not_before, TimePoint now, double jitter_sample) const {
  // The messages a pause held back come back spread over `jitter` of the
  // pause, not all at its end (the destination then allows one connection).
  if (not_before <= now) return now;
  return not_before + spread(not_before - now, jitter_sample);
}

TimePoint::duration DeliveryPolicy::spread(TimePoint::duration span, double jitter_sample) const {
  return duration_cast<TimePoint::duration>(span * (std::clamp(jitter_sample, 0.0, 1.0) * jitter_));
}

std::optional<std::string> DeliveryPolicy::first_hidden_on_path(const SlotState& slot) const {
  if (is_hidden(config_, slot.planned)) return slot.planned.value;
  auto chain = fallback_chain(config_, slot.planned);
  for (size_t i = 0; i < slot.link && i < chain.size(); ++i)
    if (is_hidden(config_, chain[i])) return chain[i].value;
  // The link it is at, should the chain have been edited since it got there.
  if (is_hidden(config_, slot.target)) return slot.target.value;
  return std::nullopt;
}

bool DeliveryPolicy::path_hidden(const SlotState& slot) const { return first_hidden_on_path(slot).has_value(); }

std::string DeliveryPolicy::srs_identity(const SlotState& slot) const {
  return first_hidden_on_path(slot).value_or("");
}

bool DeliveryPolicy::forgotten_forward(const SlotState& slot) const {
  // Waiting at a mailbox link: delivered there as before. A forward link's
  // planned target is a forward too (only forwards have fallback chains).
  if (slot.target.kind != mail::Target::Kind::forward) return false;
  if (forward_options(config_, slot.target) != nullptr && forward_options(config_, slot.planned) != nullptr)
    return false;
  return !base::istarts_with(slot.recipient, "SRS0=") && !base::istarts_with(slot.recipient, "SRS1=");
}

NoticeFacts DeliveryPolicy::notice_facts(const SlotState& from, const SlotState& to, const AttemptResult& result,
                                         TimePoint now) const {
  const config::Forward* f = forward_options(config_, from.target);
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
  facts.reply = mail::redact(reply_text(result), others);
  facts.holder = holder;
  facts.when = now;
  return facts;
}

Disposition DeliveryPolicy::decide(const MessageFacts& message, const SlotState& slot, const AttemptResult& result,
                                   TimePoint now, double jitter_sample) const {
  Disposition d;
  SlotState& next = d.next;
  next = slot;
  if (result.cause != AttemptResult::Cause::rate_limited) ++next.attempts;  // else no connection was made
  if (next.first_attempt == TimePoint{}) next.first_attempt = now;
  next.last_reply = result.status + " " + result.detail;

  // 2xx: done.
  if (result.kind == AttemptResult::Kind::delivered) {
    next.status = SlotStatus::delivered;
    d.action = Disposition::Action::delivered;
    return d;
  }

  // 4xx before its limits: retry, never later than the defer deadline.
  const bool temporary = result.kind == AttemptResult::Kind::temporary;
  // A hidden path's copy waiting at a mailbox (over its quota, say) has
  // nowhere else to go and no sender who may be told: it outlives
  // [delivery] expire rather than be dropped (DESIGN.md: nothing lost).
  const bool last_refuge = message.origin == Origin::received && slot.target.kind == mail::Target::Kind::mailbox &&
                           slot.link > 0 && path_hidden(slot);
  const bool past_expire = now - message.arrival >= config_.delivery.expire;
  const bool expired = past_expire && !last_refuge;
  if (temporary && past_expire && last_refuge)
    d.remark = "a hidden forward's copy for <" + slot.recipient + "> is past [delivery] expire and still waits for " +
               describe(slot.target) + " (nowhere else to go; no DSN): see `hikyaku queue list`";
  const auto deadline_at = deadline(message, next);
  const bool past_deadline = deadline_at && now >= *deadline_at;
  if (temporary && !expired && !past_deadline) {
    next.status = SlotStatus::pending;
    next.next_attempt = std::max(retry_time(next.attempts, now, jitter_sample),
                                 after_pause(result.not_before, now, jitter_sample));
    if (deadline_at && *deadline_at < next.next_attempt) next.next_attempt = std::max(*deadline_at, now);
    d.action = Disposition::Action::retry;
    return d;
  }

  // Failed for good on this link: the next link of the chain at once, with
  // a fresh attempt count. Generated messages never move on.
  std::optional<Link> link;
  if (message.origin == Origin::received || message.origin == Origin::submitted) link = next_link(next);
  if (link) {
    const SlotState from = slot;
    next.target = link->target;
    next.diverted = diverted_note(now, redact(reply_text(result)));
    next.link = link->index + 1;
    next.status = SlotStatus::pending;
    next.attempts = 0;
    next.first_attempt = {};
    next.next_attempt = {};
    d.action = Disposition::Action::divert;
    const config::Forward* f = forward_options(config_, from.target);
    if (f != nullptr && f->notify && message.origin == Origin::received)
      d.notice = notice_facts(from, next, result, now);
    return d;
  }

  // No next link: failed, and who is told.
  next.status = SlotStatus::failed;
  if (temporary && expired) next.last_reply += " (expired)";
  d.action = Disposition::Action::fail;
  switch (message.origin) {
    case Origin::notice:
      // A refused notice is logged and dropped: never retried into a loop,
      // never bounced, never diverted.
      d.remark = "notice to " + describe(slot.target) + " not delivered, dropped";
      return d;
    case Origin::dsn:
      // RFC 3464 / RFC 5321 §6.1: no DSN about a DSN.
      d.remark = "DSN to <" + redact(slot.recipient) + "> not delivered, dropped";  // maybe a hidden owner
      return d;
    case Origin::received:
    case Origin::submitted:  // the DSN goes to the author's own mailbox (reports.hpp)
      break;
  }
  if (!slot.planned.remote()) return d;  // local mailboxes: the operator's log
  if (path_hidden(next)) {
    // DESIGN.md: a hidden target never produces a DSN.
    d.remark = "hidden forward for <" + slot.recipient + "> failed for good; no DSN";
    return d;
  }
  if (message.null_sender) {
    d.remark = "no DSN to the null sender about <" + slot.recipient + ">";  // RFC 3461 §6.2
    return d;
  }
  DsnFacts facts;
  facts.recipient = next.recipient;
  facts.status = result.status;
  facts.reply = redact(reply_text(result));
  facts.expired = temporary;
  facts.when = now;
  d.dsn = std::move(facts);
  return d;
}

std::string DeliveryPolicy::describe(const mail::Target& target) const {
  if (is_hidden(config_, target)) return "forward:<hidden>";
  // A relayed copy to a hidden address (the owner's submission).
  if (target.kind == mail::Target::Kind::relay) return redact(target.str());
  return target.str();
}

std::string DeliveryPolicy::redact(std::string text) const { return mail::redact(std::move(text), hidden_); }

}  // namespace hikyaku::policy

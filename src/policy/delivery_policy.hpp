// Purpose:   The delivery contract as one decision (DESIGN.md "Delivery
//            semantics"): decide() maps (the message's facts, one slot's
//            state — its plan, current target and attempts —, the result of
//            an attempt, the time) to a Disposition: delivered, retry at T,
//            divert to the next link with the X-Hikyaku-Diverted note, or
//            fail; plus the owner's notice or the sender's DSN that goes
//            with it. The queue records and applies dispositions; it never
//            interprets an outcome itself.
// Rules (docs/forwarding.md has the same table; delivery_policy_test.cpp
//            has one case per row):
//            * 2xx → delivered.
//            * 5xx (a reply, a loop 5.4.6, a DMARC divert 5.7.26) → the
//              next link of the slot's chain at once; none → failed.
//            * 4xx, timeouts, DNS failures, a rate-limited destination →
//              retry on [delivery] retry (the k-th interval after the k-th
//              attempt, then the last one, stretched by up to `jitter`),
//              not before the result's not_before (the end of a destination's
//              pause, stretched by up to `jitter` of the pause); a paused
//              destination's answer (cause rate_limited) is not an attempt;
//              a retry never lands after the slot's defer deadline
//              (first attempt on this link + the forward's defer_limit), and
//              at the deadline the slot moves on as for a 5xx. Without a next
//              link a forward waits for [delivery] expire after arrival,
//              then fails ("expired").
//            * Notices and DSNs are never diverted: a failed notice or DSN
//              is dropped (logged), a deferred notice is dropped at its
//              forward's defer_limit, a DSN is retried until expire.
//            * A diversion away from a forward with notify = true brings a
//              notice to that forward's address (received mail only).
//            * A failure brings a DSN to the sender only when the slot's
//              planned target is a forward, no forward on its path so far
//              was hidden, the sender is not null (RFC 3461 §6.2) and the
//              message was received (not generated).
// Standards: RFC 5321 §4.5.4.1 (retry strategy, giving up), RFC 3464 (when
//            a DSN is due), RFC 3461 §6.2, RFC 3463, RFC 5322 §3.3.
// Trust:     the configuration is trusted; remote reply texts are not: they
//            are reduced to one quoted line and stripped of every hidden
//            address before they reach a header, a log or a report.
// Concurrency: immutable after construction; every method is const and
//            pure (time and randomness are arguments), safe from any thread.
// Errors:    none: decisions are values.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "policy/slot.hpp"

namespace hikyaku::policy {

// What decide() needs to know about the message a slot belongs to.
struct MessageFacts {
  Origin origin = Origin::received;
  bool null_sender = false;
  TimePoint arrival{};
};

// What the owner's notice states (reports.hpp builds the message).
struct NoticeFacts {
  std::string forward_to;  // the forward address (the owner's, maybe hidden)
  std::string recipient;   // the original recipient (local address)
  std::string reply;       // the remote reply that caused the diversion
  std::string holder;      // where the message is now: "mailbox ituki-gm"
  TimePoint when{};
};

// What a DSN states about one failed slot.
struct DsnFacts {
  std::string recipient;  // original recipient (Final-Recipient)
  std::string status;
  std::string reply;      // redacted
  bool expired = false;
  TimePoint when{};
};

struct Disposition {
  enum class Action { delivered, retry, divert, fail };
  Action action = Action::retry;
  SlotState next;                     // the slot's new state, to be recorded
  std::optional<NoticeFacts> notice;  // to the owner, with a divert
  std::optional<DsnFacts> dsn;        // to the sender, with a fail
  std::string remark;                 // a log line's worth of why nothing was sent, or ""

  // "delivered", "deferred", "diverted" or "failed" (queue logs).
  std::string_view word() const;
};

class DeliveryPolicy {
 public:
  // Keeps a reference to `config`, which must outlive the policy.
  explicit DeliveryPolicy(const config::Config& config, double jitter = 0.10);

  // The contract. `jitter_sample` is uniform in [0, 1) (the caller draws it,
  // so this stays pure and testable).
  Disposition decide(const MessageFacts& message, const SlotState& slot, const AttemptResult& result, TimePoint now,
                     double jitter_sample = 0.0) const;

  // When the slot must move on if still undelivered (its defer deadline),
  // so an agent that would only be waiting can give up on time.
  std::optional<TimePoint> deadline(const MessageFacts& message, const SlotState& slot) const;

  // Was any forward on the slot's path so far (planned target, links
  // 1..link, the one it is at) hidden? Then nothing about the slot may
  // reach the sender.
  bool path_hidden(const SlotState& slot) const;
  // The forward whose SRS identity the slot's forwarded copy carries: the
  // first hidden forward on its path (the planned one, or a hidden link
  // passed on the way), so that a late bounce to the copy, from whichever
  // link sent it, finds that forward's fallback mailbox (address_book.hpp)
  // and never the sender. "" when nothing on the path is hidden.
  std::string srs_identity(const SlotState& slot) const;

  // A received message's slot waiting for a forward, planned for (or now
  // at) one the configuration no longer names (a forward that was not
  // hidden, removed while the message waited; a removed hidden one stays
  // known: config/known_forwards.hpp). Its fallback chain is gone with it,
  // so it is handled as an ordinary forward's. The way back of an SRS
  // bounce (a recipient SRS0=/SRS1=) is not one.
  bool forgotten_forward(const SlotState& slot) const;

  // How a target is named in logs: hidden forwards as "forward:<hidden>",
  // a hidden address relayed to (submission) as "relay:<hidden>".
  std::string describe(const mail::Target& target) const;
  // Text as it may be logged or reported: hidden addresses removed.
  std::string redact(std::string text) const;

 private:
  std::optional<config::Seconds> defer_limit(const MessageFacts& message, const SlotState& slot) const;
  // The address of the first hidden forward on the slot's path (as
  // path_hidden() reads it); nullopt when there is none.
  std::optional<std::string> first_hidden_on_path(const SlotState& slot) const;
  struct Link {
    size_t index;  // in the fallback chain
    mail::Target target;
  };
  // The link after the slot's current target, in the chain as configured now.
  std::optional<Link> next_link(const SlotState& slot) const;
  TimePoint retry_time(unsigned attempts, TimePoint now, double jitter_sample) const;
  TimePoint after_pause(TimePoint not_before, TimePoint now, double jitter_sample) const;
  // Up to `jitter` of `span`, by the sample: how far a retry is stretched.
  TimePoint::duration spread(TimePoint::duration span, double jitter_sample) const;
  NoticeFacts notice_facts(const SlotState& from, const SlotState& to, const AttemptResult& result,
                           TimePoint now) const;

  const config::Config& config_;
  double jitter_;
  std::vector<std::string> hidden_;
};

}  // namespace hikyaku::policy

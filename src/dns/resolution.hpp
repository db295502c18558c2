// Purpose:   Runs a sans-I/O decision (SPF, DKIM, DMARC, ARC, MX route
//            selection: code written against the synchronous Resolver) on an
//            event loop without blocking. The decision runs against an
//            AnswerSet, a Resolver that answers only from its own map; every
//            question it lacks is answered temp_error and recorded as
//            missing. resolve_then() then asks all the missing questions at
//            once through an AsyncResolver, adds the answers and runs the
//            decision again, until a run misses nothing. The verifiers stay
//            sans-I/O: they never wait, they are re-run with more answers.
// Contract:  `decide` MUST be deterministic given the same answers: the same
//            questions in the same order, the same result (no clock read,
//            no randomness, no state kept between runs; pass the time in
//            as a value). Each run starts from scratch with the answers of
//            the rounds before it; a run that would ask differently each
//            time could never finish. Answers stay in the set for the whole
//            decision whatever their TTL, so a record with TTL 0 (not
//            cacheable anywhere) is still seen by the later runs.
// Bound:     at most `max_rounds` runs (32). Discovery is one step deeper per
//            round (an include: chain asks its next record only once the
//            previous one is known), so a chain longer than the bound ends
//            with the last run's result, in which the questions still
//            missing were temp_error, and a log line.
// Standards: RFC 7208 §4.6.4 (SPF's own DNS limits keep its rounds few).
// Trust:     answers are untrusted, as from any Resolver.
// Concurrency: single-threaded, on the thread that drives `resolver`.
//            `decide` and `done` run there; `done` may run before
//            resolve_then() returns (everything at hand). The state lives
//            in the pending callbacks: destroying the resolver with
//            questions outstanding drops the decision without calling done.
// Errors:    DNS failures are temp_error answers inside the decision.
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string_view>
#include <utility>

#include "dns/async_resolver.hpp"
#include "dns/resolver.hpp"

namespace hikyaku::dns {

// A Resolver over a fixed set of answers (a view for one decision).
class AnswerSet final : public Resolver {
 public:
  void add(const Question& q, const Answer& answer) { answers_[q] = answer; }
  // The answer held for `q`, or nullptr.
  const Answer* find(const Question& q) const;
  size_t size() const { return answers_.size(); }

  // Questions asked and not held since the last take_missing(), each once.
  const std::set<Question>& missing() const { return missing_; }
  std::set<Question> take_missing() { return std::exchange(missing_, {}); }

  LookupResult<std::string> txt(std::string_view name) override;
  LookupResult<MxRecord> mx(std::string_view name) override;
  LookupResult<IpAddress> a(std::string_view name) override;
  LookupResult<IpAddress> aaaa(std::string_view name) override;
  LookupResult<std::string> ptr(const IpAddress& address) override;

 private:
  // The answer for `q`, or a temp_error one with `q` recorded as missing.
  Answer lookup(const Question& q);

  std::map<Question, Answer> answers_;
  std::set<Question> missing_;
};

namespace detail {

// The "gave up after max_rounds" log line (dns logger).
void log_round_limit(unsigned rounds, const std::set<Question>& missing);

// One decision in progress: its answers and round count. Kept alive by the
// callbacks of the round's outstanding questions.
template <class T>
class Resolution final : public std::enable_shared_from_this<Resolution<T>> {
 public:
  Resolution(AsyncResolver& resolver, std::function<T(Resolver&)> decide, std::function<void(T, AnswerSet)> done,
             unsigned max_rounds)
      : resolver_(resolver), decide_(std::move(decide)), done_(std::move(done)), max_rounds_(std::max(1u, max_rounds)) {}

  // Run the decision; ask what it missed, or finish. A round whose answers
  // all arrive while it is still asking (cache hits) goes on in this loop;
  // otherwise the callback of the last answer calls run() again.
  void run() {
    while (true) {
      ++rounds_;
      T result = decide_(answers_);
      std::set<Question> missing = answers_.take_missing();
      if (missing.empty()) {
        done_(std::move(result), std::move(answers_));
        return;
      }
      if (rounds_ >= max_rounds_) {
        log_round_limit(rounds_, missing);
        done_(std::move(result), std::move(answers_));
        return;
      }
      waiting_ = missing.size() + 1;  // +1: held until every question is asked
      for (const Question& q : missing) {
        resolver_.resolve(q, [self = this->shared_from_this(), q](const Answer& answer) {
          self->answers_.add(q, answer);
          if (--self->waiting_ == 0) self->run();
        });
      }
      if (--waiting_ != 0) return;
    }
  }

 private:
  AsyncResolver& resolver_;
  std::function<T(Resolver&)> decide_;
  std::function<void(T, AnswerSet)> done_;
  unsigned max_rounds_;
  AnswerSet answers_;
  unsigned rounds_ = 0;
  size_t waiting_ = 0;
};

}  // namespace detail

// Decide with `decide`, fetching through `resolver` what it asks for, then
// call `done` with the result (see the header comment for the contract).
template <class T>
void resolve_then(AsyncResolver& resolver, std::function<T(Resolver&)> decide, std::function<void(T)> done,
                  unsigned max_rounds = 32) {
  auto finish = [done = std::move(done)](T result, const AnswerSet& /*answers*/) { done(std::move(result)); };
  std::make_shared<detail::Resolution<T>>(resolver, std::move(decide), std::move(finish), max_rounds)->run();
}

// resolve_then(), and `done` also receives the decision's answers: a later
// step (a signature made on another thread, say) can re-read exactly what
// the decision saw, without asking again.
template <class T>
void resolve_then_with_answers(AsyncResolver& resolver, std::function<T(Resolver&)> decide,
                               std::function<void(T, AnswerSet)> done, unsigned max_rounds = 32) {
  std::make_shared<detail::Resolution<T>>(resolver, std::move(decide), std::move(done), max_rounds)->run();
}

}  // namespace hikyaku::dns

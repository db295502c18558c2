// Purpose:   The non-blocking DNS interface: ask a Question, get its Answer
//            in a callback. Implementations: UnboundResolver (libunbound's
//            asynchronous API, its fd watched by the event loop: dns/asio/),
//            AnswerCache (TTL cache with coalescing, in front of another
//            AsyncResolver) and FakeResolver (tests). The sans-I/O verifiers
//            do not use it directly: resolve_then() (dns/resolution.hpp)
//            runs them against answers fetched through it.
// Standards: see dns/question.hpp (RFC 1035, RFC 2308, RFC 7208 §2.6.7).
// Trust:     answers are untrusted network data, parsed by the implementation.
// Concurrency: single-threaded by contract: resolve() and the delivery of
//            every answer happen on the one thread that drives the resolver
//            (the event loop). Not thread-safe.
// Errors:    outcomes are Answer::status values; never throws.
#pragma once

#include <functional>

#include "dns/question.hpp"

namespace hikyaku::dns {

class AsyncResolver {
 public:
  using Callback = std::function<void(const Answer&)>;

  virtual ~AsyncResolver() = default;

  // Ask `q`. `done` is called exactly once, on the thread that drives the
  // resolver, and MAY be called before resolve() returns (a cache hit, a
  // name that cannot be asked). A resolver destroyed with questions
  // outstanding destroys their callbacks without calling them (as an
  // io_context does with its pending handlers).
  virtual void resolve(const Question& q, Callback done) = 0;
};

}  // namespace hikyaku::dns

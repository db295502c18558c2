// Purpose:   An in-memory Resolver and AsyncResolver for unit tests and the
//            public test suites' zone data (SPF RFC 7208 suite, ARC suites).
//            Names are matched case-insensitively without a trailing dot. As
//            an AsyncResolver it answers at once, or, deferred, keeps each
//            answer until deliver_pending() (out-of-order and late delivery).
// Concurrency: not thread-safe; fill it, then query it.
#pragma once

#include <deque>
#include <map>
#include <string>

#include "dns/async_resolver.hpp"
#include "dns/resolver.hpp"

namespace hikyaku::dns {

class FakeResolver final : public Resolver, public AsyncResolver {
 public:
  void add_txt(std::string_view name, std::string value);
  void add_mx(std::string_view name, uint16_t pref, std::string exchange);
  void add_a(std::string_view name, std::string_view ip);      // v4 or v6 text
  void add_ptr(std::string_view ip, std::string name);
  // Every query for `name` (any type) fails temporarily (SERVFAIL/timeout).
  void set_temp_error(std::string_view name);
  // `name` exists (answers NODATA rather than NXDOMAIN) even without records.
  void add_empty(std::string_view name);
  // `name` is an alias: queries for types it has no records of follow
  // `target` (at most 8 hops; a loop answers temp_error, as SERVFAIL would).
  void add_cname(std::string_view name, std::string_view target);
  // Queries for `name` of a type it holds no records of time out (temp_error);
  // types with records answer (the SPF suite's TIMEOUT zone entries).
  void set_timeout_when_empty(std::string_view name);

  LookupResult<std::string> txt(std::string_view name) override;
  LookupResult<MxRecord> mx(std::string_view name) override;
  LookupResult<IpAddress> a(std::string_view name) override;
  LookupResult<IpAddress> aaaa(std::string_view name) override;
  LookupResult<std::string> ptr(const IpAddress& address) override;

  // AsyncResolver: the same answer as the lookup above, computed now and
  // given to `done` at once, or kept until deliver_pending() if deferred.
  void resolve(const Question& q, Callback done) override;
  void set_deferred(bool deferred) { deferred_ = deferred; }
  // Deliver the answers kept so far, oldest first (newest first if
  // `newest_first`); answers asked for by those callbacks stay kept.
  // Returns how many were delivered.
  size_t deliver_pending(bool newest_first = false);
  size_t pending() const { return pending_.size(); }

  // Answers (not errors) carry this TTL; default 0: "do not cache".
  void set_ttl(uint32_t seconds) { ttl_ = seconds; }

  // Lookups answered, synchronous and asynchronous.
  int queries() const { return queries_; }
  // The questions resolve() was asked, in order.
  const std::vector<Question>& asked() const { return asked_; }

 private:
  struct Node {
    std::vector<std::string> txt;
    std::vector<MxRecord> mx;
    std::vector<IpAddress> a;
    std::vector<IpAddress> aaaa;
    std::vector<std::string> ptr;
    bool temp_error = false;
    std::string cname;
    bool timeout_when_empty = false;
  };
  Node* find(std::string_view name);
  Node& node(std::string_view name);
  template <class T>
  LookupResult<T> answer(std::string_view name, std::vector<T> Node::*field);
  template <class T>
  LookupResult<T> answer_at(std::string_view name, std::vector<T> Node::*field, int hops);

  std::map<std::string, Node> nodes_;
  int queries_ = 0;
  uint32_t ttl_ = 0;
  bool deferred_ = false;
  std::deque<std::pair<Callback, Answer>> pending_;
  std::vector<Question> asked_;
};

}  // namespace hikyaku::dns

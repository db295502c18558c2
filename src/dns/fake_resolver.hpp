// Purpose:   An in-memory Resolver for unit tests and the public test suites'
//            zone data (SPF RFC 7208 suite, ARC suites). Names are matched
//            case-insensitively without a trailing dot.
// Concurrency: not thread-safe; fill it, then query it.
#pragma once

#include <map>
#include <string>

#include "dns/resolver.hpp"

namespace hikyaku::dns {

class FakeResolver final : public Resolver {
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

  // Answers (not errors) carry this TTL; default 0: "do not cache".
  void set_ttl(uint32_t seconds) { ttl_ = seconds; }

  int queries() const { return queries_; }

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
};

}  // namespace hikyaku::dns

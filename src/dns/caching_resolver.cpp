#include "dns/caching_resolver.hpp"

#include <algorithm>

#include "base/strings.hpp"

namespace hikyaku::dns {
namespace {

// Seconds a negative answer without an SOA is kept (AnswerCache's default).
constexpr uint32_t kNegativeTtlWithoutSoa = 30;

std::string key_of(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  return base::to_lower(name);
}

}  // namespace

template <class T, class Lookup>
LookupResult<T> CachingResolver::cached(Table<T>& table, std::string key, Lookup lookup) {
  auto now = Clock::now();
  {
    std::lock_guard lock(mu_);
    auto it = table.find(key);
    if (it != table.end()) {
      if (it->second.expires > now) return it->second.answer;
      table.erase(it);
    }
  }
  LookupResult<T> answer = lookup();
  // Only real answers are cached; a SERVFAIL or timeout must be asked again.
  // A negative answer without an SOA (TTL 0) is kept briefly, as AnswerCache
  // does (answer_cache.hpp explains why RFC 2308 §5 allows it here).
  bool negative = answer.status == Status::nxdomain || (answer.status == Status::ok && answer.records.empty());
  uint32_t ttl = answer.ttl == 0 && negative ? kNegativeTtlWithoutSoa : answer.ttl;
  bool cacheable = (answer.status == Status::ok || answer.status == Status::nxdomain) && ttl > 0;
  if (!cacheable) return answer;
  std::lock_guard lock(mu_);
  if (table.size() >= max_entries_) {
    // Crude but bounded: drop expired entries, then everything if still full.
    std::erase_if(table, [&](const auto& kv) { return kv.second.expires <= now; });
    if (table.size() >= max_entries_) table.clear();
  }
  table[std::move(key)] = Entry<T>{answer, now + std::chrono::seconds(std::min(ttl, max_ttl_))};
  return answer;
}

template <class T>
std::optional<LookupResult<T>> CachingResolver::at_hand(const Table<T>& table, const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = table.find(key);
  if (it == table.end() || it->second.expires <= Clock::now()) return std::nullopt;
  return it->second.answer;
}

LookupResult<std::string> CachingResolver::txt(std::string_view name) {
  return cached(txt_, key_of(name), [&] { return inner_.txt(name); });
}
LookupResult<MxRecord> CachingResolver::mx(std::string_view name) {
  return cached(mx_, key_of(name), [&] { return inner_.mx(name); });
}
LookupResult<IpAddress> CachingResolver::a(std::string_view name) {
  return cached(a_, key_of(name), [&] { return inner_.a(name); });
}
LookupResult<IpAddress> CachingResolver::aaaa(std::string_view name) {
  return cached(aaaa_, key_of(name), [&] { return inner_.aaaa(name); });
}
LookupResult<std::string> CachingResolver::ptr(const IpAddress& address) {
  return cached(ptr_, address.reverse_name(), [&] { return inner_.ptr(address); });
}

std::optional<LookupResult<std::string>> CachingResolver::txt_at_hand(std::string_view name) {
  return at_hand(txt_, key_of(name));
}
std::optional<LookupResult<MxRecord>> CachingResolver::mx_at_hand(std::string_view name) {
  return at_hand(mx_, key_of(name));
}
std::optional<LookupResult<IpAddress>> CachingResolver::a_at_hand(std::string_view name) {
  return at_hand(a_, key_of(name));
}
std::optional<LookupResult<IpAddress>> CachingResolver::aaaa_at_hand(std::string_view name) {
  return at_hand(aaaa_, key_of(name));
}
std::optional<LookupResult<std::string>> CachingResolver::ptr_at_hand(const IpAddress& address) {
  return at_hand(ptr_, address.reverse_name());
}

size_t CachingResolver::size() const {
  std::lock_guard lock(mu_);
  return txt_.size() + mx_.size() + a_.size() + aaaa_.size() + ptr_.size();
}

}  // namespace hikyaku::dns

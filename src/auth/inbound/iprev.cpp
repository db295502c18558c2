#include "auth/inbound/iprev.hpp"

#include <algorithm>

namespace hikyaku::auth::inbound {

std::string_view to_string(IprevResult r) {
  switch (r) {
    case IprevResult::pass: return "pass";
    case IprevResult::fail: return "fail";
    case IprevResult::temperror: return "temperror";
    case IprevResult::permerror: return "permerror";
  }
  return "permerror";
}

Iprev check_iprev(dns::Resolver& resolver, const dns::IpAddress& ip) {
  const auto ptr = resolver.ptr(ip);
  if (ptr.status == dns::Status::temp_error) return {IprevResult::temperror, {}};
  if (ptr.status != dns::Status::ok || ptr.records.empty()) return {IprevResult::permerror, {}};
  bool unanswered = false;
  size_t followed = 0;
  for (const auto& raw : ptr.records) {
    if (followed++ == kMaxIprevNames) break;
    std::string name = raw;
    if (!name.empty() && name.back() == '.') name.pop_back();
    if (name.empty()) continue;
    const auto forward = ip.v6 ? resolver.aaaa(name) : resolver.a(name);
    if (forward.status == dns::Status::temp_error) {
      unanswered = true;
      continue;
    }
    if (forward.status == dns::Status::ok &&
        std::find(forward.records.begin(), forward.records.end(), ip) != forward.records.end())
      return {IprevResult::pass, std::move(name)};
  }
  return {unanswered ? IprevResult::temperror : IprevResult::fail, {}};
}

}  // namespace hikyaku::auth::inbound

#include "auth/inbound/iprev.hpp"

#include "auth/common/reverse_names.hpp"

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
  auto names = common::confirmed_reverse_names(resolver, ip, kMaxIprevNames);
  if (names.ptr_status == dns::Status::temp_error) return {IprevResult::temperror, {}};
  if (!names.has_ptr) return {IprevResult::permerror, {}};
  if (!names.confirmed.empty()) return {IprevResult::pass, std::move(names.confirmed.front())};
  return {names.forward_temp_error ? IprevResult::temperror : IprevResult::fail, {}};
}

}  // namespace hikyaku::auth::inbound

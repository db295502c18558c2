#include "auth/common/reverse_names.hpp"

#include <algorithm>

namespace hikyaku::auth::common {

ReverseNames confirmed_reverse_names(dns::Resolver& resolver, const dns::IpAddress& ip, size_t max_names) {
  ReverseNames out;
  const auto ptr = resolver.ptr(ip);
  out.ptr_status = ptr.status;
  out.has_ptr = ptr.status == dns::Status::ok && !ptr.records.empty();
  if (!out.has_ptr) return out;
  size_t followed = 0;
  for (const auto& raw : ptr.records) {
    if (followed++ == max_names) break;
    std::string name = raw;
    if (!name.empty() && name.back() == '.') name.pop_back();
    if (name.empty()) continue;  // the root has no address records
    const auto forward = ip.v6 ? resolver.aaaa(name) : resolver.a(name);
    if (forward.status == dns::Status::temp_error) out.forward_temp_error = true;
    if (forward.status == dns::Status::ok &&
        std::find(forward.records.begin(), forward.records.end(), ip) != forward.records.end())
      out.confirmed.push_back(std::move(name));
  }
  return out;
}

}  // namespace hikyaku::auth::common

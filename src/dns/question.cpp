#include "dns/question.hpp"

#include <utility>

#include "base/strings.hpp"

namespace hikyaku::dns {
namespace {

template <class T>
LookupResult<T> result_of(const Answer& answer, const std::vector<T>& records) {
  LookupResult<T> out;
  out.status = answer.status;
  out.ttl = answer.ttl;
  out.secure = answer.secure;
  out.records = records;
  return out;
}

// Status, TTL and security of `result`, without its records.
template <class T>
Answer header_of(const LookupResult<T>& result) {
  Answer out;
  out.status = result.status;
  out.ttl = result.ttl;
  out.secure = result.secure;
  out.ttl_from_soa = result.ttl_from_soa;
  return out;
}

}  // namespace

std::string_view to_string(Type type) {
  switch (type) {
    case Type::a: return "A";
    case Type::aaaa: return "AAAA";
    case Type::mx: return "MX";
    case Type::txt: return "TXT";
    case Type::ptr: return "PTR";
  }
  return "?";
}

std::string normalize_name(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  return base::to_lower(name);
}

Question Question::of(Type type, std::string_view name) { return Question{type, normalize_name(name)}; }

Question Question::reverse(const IpAddress& address) { return Question{Type::ptr, address.reverse_name()}; }

LookupResult<std::string> texts_of(const Answer& answer) { return result_of(answer, answer.texts); }
LookupResult<MxRecord> mx_of(const Answer& answer) { return result_of(answer, answer.mx); }
LookupResult<IpAddress> addresses_of(const Answer& answer) { return result_of(answer, answer.addresses); }

Answer to_answer(LookupResult<std::string> result) {
  Answer out = header_of(result);
  out.texts = std::move(result.records);
  return out;
}

Answer to_answer(LookupResult<MxRecord> result) {
  Answer out = header_of(result);
  out.mx = std::move(result.records);
  return out;
}

Answer to_answer(LookupResult<IpAddress> result) {
  Answer out = header_of(result);
  out.addresses = std::move(result.records);
  return out;
}

}  // namespace hikyaku::dns

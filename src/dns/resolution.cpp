#include "dns/resolution.hpp"

#include <string>

#include "base/log.hpp"

namespace hikyaku::dns {

const Answer* AnswerSet::find(const Question& q) const {
  auto it = answers_.find(q);
  return it == answers_.end() ? nullptr : &it->second;
}

Answer AnswerSet::lookup(const Question& q) {
  if (const Answer* held = find(q)) return *held;
  missing_.insert(q);
  Answer none;
  none.status = Status::temp_error;
  return none;
}

LookupResult<std::string> AnswerSet::txt(std::string_view name) { return texts_of(lookup(Question::of(Type::txt, name))); }
LookupResult<MxRecord> AnswerSet::mx(std::string_view name) { return mx_of(lookup(Question::of(Type::mx, name))); }
LookupResult<IpAddress> AnswerSet::a(std::string_view name) { return addresses_of(lookup(Question::of(Type::a, name))); }
LookupResult<IpAddress> AnswerSet::aaaa(std::string_view name) {
  return addresses_of(lookup(Question::of(Type::aaaa, name)));
}
LookupResult<std::string> AnswerSet::ptr(const IpAddress& address) {
  return texts_of(lookup(Question::reverse(address)));
}

namespace detail {

void log_round_limit(unsigned rounds, const std::set<Question>& missing) {
  std::string names;
  for (const auto& q : missing) {
    if (names.size() > 200) {
      names += " ...";
      break;
    }
    names += (names.empty() ? "" : " ") + std::string(to_string(q.type)) + " " + q.name;
  }
  base::logger("dns")->warn("decision stopped after {} DNS rounds; still missing (taken as temp_error): {}", rounds,
                            names);
}

}  // namespace detail
}  // namespace hikyaku::dns

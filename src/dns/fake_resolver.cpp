#include "dns/fake_resolver.hpp"

#include <algorithm>

#include "base/strings.hpp"

namespace hikyaku::dns {
namespace {

std::string key(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  return base::to_lower(name);
}

}  // namespace

FakeResolver::Node* FakeResolver::find(std::string_view name) {
  auto it = nodes_.find(key(name));
  return it == nodes_.end() ? nullptr : &it->second;
}

FakeResolver::Node& FakeResolver::node(std::string_view name) { return nodes_[key(name)]; }

void FakeResolver::add_txt(std::string_view name, std::string value) {
  node(name).txt.push_back(std::move(value));
}
void FakeResolver::add_mx(std::string_view name, uint16_t pref, std::string exchange) {
  node(name).mx.push_back({pref, std::move(exchange)});
}
void FakeResolver::add_a(std::string_view name, std::string_view ip) {
  auto parsed = IpAddress::parse(ip);
  if (!parsed) return;
  (parsed->v6 ? node(name).aaaa : node(name).a).push_back(*parsed);
}
void FakeResolver::add_ptr(std::string_view ip, std::string name) {
  auto parsed = IpAddress::parse(ip);
  if (!parsed) return;
  node(parsed->reverse_name()).ptr.push_back(std::move(name));
}
void FakeResolver::set_temp_error(std::string_view name) { node(name).temp_error = true; }
void FakeResolver::add_empty(std::string_view name) { node(name); }
void FakeResolver::add_cname(std::string_view name, std::string_view target) { node(name).cname = key(target); }
void FakeResolver::set_timeout_when_empty(std::string_view name) { node(name).timeout_when_empty = true; }

template <class T>
LookupResult<T> FakeResolver::answer(std::string_view name, std::vector<T> Node::*field) {
  ++queries_;
  auto r = answer_at(name, field, 0);
  if (r.status != Status::temp_error) r.ttl = ttl_;
  return r;
}

template <class T>
LookupResult<T> FakeResolver::answer_at(std::string_view name, std::vector<T> Node::*field, int hops) {
  LookupResult<T> r;
  Node* n = find(name);
  if (n == nullptr) {
    // A name with records below it exists (empty non-terminal, RFC 8020).
    std::string suffix = "." + key(name);
    for (const auto& [k, v] : nodes_) {
      if (k.size() > suffix.size() && k.compare(k.size() - suffix.size(), suffix.size(), suffix) == 0)
        return r;
    }
    r.status = Status::nxdomain;
    return r;
  }
  if (n->temp_error) {
    r.status = Status::temp_error;
    return r;
  }
  if ((n->*field).empty() && !n->cname.empty()) {
    if (hops >= 8) {
      r.status = Status::temp_error;
      return r;
    }
    return answer_at(std::string(n->cname), field, hops + 1);
  }
  if ((n->*field).empty() && n->timeout_when_empty) {
    r.status = Status::temp_error;
    return r;
  }
  r.records = n->*field;
  return r;
}

LookupResult<std::string> FakeResolver::txt(std::string_view name) { return answer(name, &Node::txt); }
LookupResult<MxRecord> FakeResolver::mx(std::string_view name) { return answer(name, &Node::mx); }
LookupResult<IpAddress> FakeResolver::a(std::string_view name) { return answer(name, &Node::a); }
LookupResult<IpAddress> FakeResolver::aaaa(std::string_view name) { return answer(name, &Node::aaaa); }
LookupResult<std::string> FakeResolver::ptr(const IpAddress& address) {
  return answer(address.reverse_name(), &Node::ptr);
}

void FakeResolver::resolve(const Question& q, Callback done) {
  asked_.push_back(q);
  Answer a;
  switch (q.type) {
    case Type::a: a = to_answer(answer(q.name, &Node::a)); break;
    case Type::aaaa: a = to_answer(answer(q.name, &Node::aaaa)); break;
    case Type::mx: a = to_answer(answer(q.name, &Node::mx)); break;
    case Type::txt: a = to_answer(answer(q.name, &Node::txt)); break;
    case Type::ptr: a = to_answer(answer(q.name, &Node::ptr)); break;  // q.name is the reverse name
  }
  if (!deferred_) {
    done(a);
    return;
  }
  pending_.emplace_back(std::move(done), std::move(a));
}

size_t FakeResolver::deliver_pending(bool newest_first) {
  // Take the batch first: callbacks may ask again, and those answers wait.
  std::deque<std::pair<Callback, Answer>> batch;
  batch.swap(pending_);
  if (newest_first) std::reverse(batch.begin(), batch.end());
  for (auto& [done, a] : batch) done(a);
  return batch.size();
}

}  // namespace hikyaku::dns

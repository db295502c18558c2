#include "auth/arc/chain.hpp"

#include <map>

#include "auth/common/tag_list.hpp"
#include "base/strings.hpp"

namespace hikyaku::auth::arc {
namespace {

std::optional<int> parse_instance(std::string_view v) {
  if (v.empty() || v.size() > 2) return std::nullopt;
  auto n = base::parse_uint(v);
  if (!n || *n < 1 || *n > uint64_t(kMaxInstances)) return std::nullopt;
  return int(*n);
}

std::optional<int> tag_instance(std::string_view value) {
  auto tags = common::parse_tag_list(value);
  if (!tags) return std::nullopt;
  auto i = tags->find("i");
  if (!i) return std::nullopt;
  return parse_instance(*i);
}

}  // namespace

std::string_view chain_status_name(ChainStatus s) {
  switch (s) {
    case ChainStatus::none: return "none";
    case ChainStatus::pass: return "pass";
    case ChainStatus::fail: return "fail";
  }
  return "none";
}

std::optional<int> aar_instance(std::string_view value) {
  // RFC 8617 §4.1.1: "i=" instance ";" then the AR payload.
  size_t semi = value.find(';');
  if (semi == std::string_view::npos) return std::nullopt;
  std::string_view head = value.substr(0, semi);
  std::string compact = common::strip_whitespace(head);
  if (compact.size() < 3 || compact.compare(0, 2, "i=") != 0) return std::nullopt;
  return parse_instance(std::string_view(compact).substr(2));
}

Chain collect_chain(const common::ParsedMessage& message) {
  Chain chain;
  std::map<int, ArcSet> by_instance;
  auto place = [&](const common::HeaderField& f, std::optional<int> inst,
                   const common::HeaderField* ArcSet::*slot, const char* what) {
    if (!inst) {
      chain.error = std::string(what) + " has no valid i=";
      return;
    }
    ArcSet& set = by_instance[*inst];
    set.instance = *inst;
    // RFC 8617 §5.2 step 2: more than one field of a kind per instance fails.
    if (set.*slot != nullptr) {
      chain.error = std::string("duplicate ") + what + " i=" + std::to_string(*inst);
      return;
    }
    set.*slot = &f;
  };
  for (const auto& f : message.headers) {
    std::string_view name = common::field_name(f);
    if (base::iequals(name, "ARC-Seal"))
      place(f, tag_instance(f.value), &ArcSet::seal, "ARC-Seal");
    else if (base::iequals(name, "ARC-Message-Signature"))
      place(f, tag_instance(f.value), &ArcSet::ams, "ARC-Message-Signature");
    else if (base::iequals(name, "ARC-Authentication-Results"))
      place(f, aar_instance(f.value), &ArcSet::aar, "ARC-Authentication-Results");
    if (!chain.error.empty()) return chain;
  }
  int expect = 1;
  for (const auto& [inst, set] : by_instance) {
    // RFC 8617 §5.2 step 3: instances 1..N without gaps, each set complete.
    if (inst != expect) {
      chain.error = "ARC instance " + std::to_string(expect) + " is missing";
      return chain;
    }
    if (set.aar == nullptr || set.ams == nullptr || set.seal == nullptr) {
      chain.error = "ARC set " + std::to_string(inst) + " is incomplete";
      return chain;
    }
    chain.sets.push_back(set);
    ++expect;
  }
  return chain;
}

}  // namespace hikyaku::auth::arc

#include "policy/forwards.hpp"

#include <algorithm>

#include "base/strings.hpp"
#include "mail/header.hpp"

namespace hikyaku::policy {
namespace {

void expand(const config::Config& config, const std::vector<mail::Target>& links, std::vector<mail::Target>& out,
            std::vector<std::string>& stack) {
  for (const auto& link : links) {
    out.push_back(link);
    if (link.kind != mail::Target::Kind::forward) continue;
    const config::Forward* f = config.find_forward(link.value);
    if (f == nullptr || f->fallback.empty()) continue;
    // config rejects cycles; this guard only keeps a bad in-memory config
    // (tests) from recursing forever.
    std::string key = base::to_lower(link.value);
    if (std::find(stack.begin(), stack.end(), key) != stack.end()) continue;
    stack.push_back(key);
    expand(config, f->fallback, out, stack);
    stack.pop_back();
  }
}

bool starts_with_code(std::string_view s) {
  return s.size() >= 3 && s[0] >= '2' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9';
}

}  // namespace

std::string_view to_string(SlotStatus status) {
  switch (status) {
    case SlotStatus::pending: return "pending";
    case SlotStatus::delivered: return "delivered";
    case SlotStatus::failed: return "failed";
  }
  return "pending";
}

std::string_view to_string(Origin origin) {
  switch (origin) {
    case Origin::received: return "received";
    case Origin::submitted: return "submitted";
    case Origin::notice: return "notice";
    case Origin::dsn: return "dsn";
  }
  return "received";
}

const config::Forward* forward_options(const config::Config& config, const mail::Target& target) {
  if (target.kind != mail::Target::Kind::forward) return nullptr;
  return config.find_forward(target.value);
}

bool is_hidden(const config::Config& config, const mail::Target& target) {
  const config::Forward* f = forward_options(config, target);
  return f != nullptr && f->hidden;
}

std::vector<mail::Target> fallback_chain(const config::Config& config, const mail::Target& planned) {
  std::vector<mail::Target> out;
  const config::Forward* f = forward_options(config, planned);
  if (f == nullptr) return out;
  std::vector<std::string> stack{base::to_lower(planned.value)};
  expand(config, f->fallback, out, stack);
  return out;
}

std::vector<std::string> hidden_addresses(const config::Config& config) {
  std::vector<std::string> out;
  for (const auto& f : config.forwards)
    if (f.hidden) out.push_back(base::to_lower(f.to));
  return out;
}

std::string reply_text(const AttemptResult& result) {
  if (starts_with_code(result.detail)) return result.detail;
  if (result.status.empty()) return result.detail;
  return result.status + " " + result.detail;
}

std::string diverted_note(TimePoint when, std::string_view reply) {
  return mail::rfc5322_date(when) + "; reason=" + mail::quoted_string(reply, 400);
}

}  // namespace hikyaku::policy

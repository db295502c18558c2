#include "policy/loop.hpp"

#include "base/strings.hpp"
#include "mail/address.hpp"
#include "mail/header.hpp"

namespace hikyaku::policy {
namespace {

// "<a@b>" or "a@b" (with comments/white space around) → "a@b".
std::string bare_address(std::string_view v) {
  v = base::trim(v);
  if (auto lt = v.find('<'); lt != std::string_view::npos) {
    auto gt = v.find('>', lt);
    v = v.substr(lt + 1, gt == std::string_view::npos ? std::string_view::npos : gt - lt - 1);
  }
  return std::string(base::trim(v));
}

}  // namespace

std::optional<std::string> loop_reason(const config::Config& config, std::string_view header_section, Origin origin,
                                       std::string_view recipient, const mail::Target& target) {
  if (origin != Origin::received) return std::nullopt;
  if (target.kind != mail::Target::Kind::forward) return std::nullopt;
  // RFC 5321 §6.3: a route back to ourselves would loop.
  if (config.is_local_domain(mail::domain_of(target.value)))
    return "forward target is in a local domain of this server (routing loop)";
  if (recipient.empty()) return std::nullopt;
  for (const char* field : {"X-Hikyaku-Forwarded-For", "Delivered-To"}) {
    for (const auto& v : mail::header_values(header_section, field)) {
      if (base::iequals(bare_address(v), recipient))
        return "message already passed through this server for <" + std::string(recipient) + "> (" + field + ")";
    }
  }
  return std::nullopt;
}

std::string add_forward_headers(std::string message, Origin origin, std::string_view recipient,
                                std::string_view diverted) {
  if (origin == Origin::received && !recipient.empty()) {
    // After the first field (our Received) and its continuation lines.
    const size_t at = base::istarts_with(message, "Received:") ? mail::first_field_end(message) : 0;
    message.insert(at, "X-Hikyaku-Forwarded-For: <" + mail::one_line(recipient, 300) + ">\r\n");
  }
  if (!diverted.empty()) message.insert(0, "X-Hikyaku-Diverted: " + std::string(diverted) + "\r\n");
  return message;
}

}  // namespace hikyaku::policy

#include "policy/loop.hpp"

#include "base/strings.hpp"
#include "mail/address.hpp"
#include "mail/header.hpp"

namespace hikyaku::policy {
namespace {

// "<a@b>", "a@b" or "a@b c@d" (Gmail's own X-Forwarded-For: the account,
// then the destination) → the first address, "a@b".
std::string bare_address(std::string_view v) {
  v = base::trim(v);
  if (auto lt = v.find('<'); lt != std::string_view::npos) {
    auto gt = v.find('>', lt);
    v = v.substr(lt + 1, gt == std::string_view::npos ? std::string_view::npos : gt - lt - 1);
  }
  v = base::trim(v);
  if (auto sp = v.find_first_of(" \t\r\n"); sp != std::string_view::npos) v = v.substr(0, sp);
  return std::string(v);
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
  // X-Forwarded-For is what we write (Google's forwarding guidance, issue
  // 17); X-Hikyaku-Forwarded-For is what versions before it wrote, still
  // recognised for copies that come back from them.
  for (const char* field : {"X-Forwarded-For", "X-Hikyaku-Forwarded-For", "Delivered-To"}) {
    for (const auto& v : mail::header_values(header_section, field)) {
      if (base::iequals(bare_address(v), recipient))
        return "message already passed through this server for <" + std::string(recipient) + "> (" + field + ")";
    }
  }
  return std::nullopt;
}

std::string add_forward_headers(std::string message, Origin origin, std::string_view recipient,
                                std::string_view forward_to, std::string_view diverted) {
  if (origin == Origin::received) {
    // After the first field (our Received) and its continuation lines.
    const size_t at = base::istarts_with(message, "Received:") ? mail::first_field_end(message) : 0;
    std::string added;
    if (!forward_to.empty()) added += "X-Forwarded-To: " + mail::one_line(forward_to, 300) + "\r\n";
    if (!recipient.empty()) added += "X-Forwarded-For: " + mail::one_line(recipient, 300) + "\r\n";
    message.insert(at, added);
  }
  if (!diverted.empty()) message.insert(0, "X-Hikyaku-Diverted: " + std::string(diverted) + "\r\n");
  return message;
}

}  // namespace hikyaku::policy

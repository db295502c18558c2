#include "policy/loop.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include "mail/address.hpp"
#include "base/strings.hpp"
#include "mail/dsn.hpp"

namespace hikyaku::policy {
namespace {

constexpr size_t kMaxHeaderRead = 256 * 1024;

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

std::optional<std::string> loop_reason(const config::Config& config, std::string_view headers,
                                       const queue::DeliveryRequest& request) {
  if (request.origin != queue::Origin::received) return std::nullopt;
  if (request.target.kind != mail::Target::Kind::forward) return std::nullopt;
  // RFC 5321 §6.3: a route back to ourselves would loop.
  if (config.is_local_domain(mail::domain_of(request.target.value)))
    return "forward target is in a local domain of this server (routing loop)";
  if (request.recipient.empty()) return std::nullopt;
  for (const char* field : {"X-Hikyaku-Forwarded-For", "Delivered-To"}) {
    for (const auto& v : mail::header_values(headers, field)) {
      if (base::iequals(bare_address(v), request.recipient))
        return "message already passed through this server for <" + request.recipient + "> (" + field + ")";
    }
  }
  return std::nullopt;
}

std::string add_forward_headers(const queue::DeliveryRequest& request, std::string message) {
  if (request.origin == queue::Origin::received && !request.recipient.empty()) {
    // After the first field (our Received) and its continuation lines.
    size_t at = 0;
    if (base::istarts_with(message, "Received:")) {
      size_t pos = 0;
      while (true) {
        size_t nl = message.find('\n', pos);
        if (nl == std::string::npos) break;
        pos = nl + 1;
        if (pos >= message.size() || (message[pos] != ' ' && message[pos] != '\t')) break;
      }
      at = pos;
    }
    message.insert(at, "X-Hikyaku-Forwarded-For: <" + mail::one_line(request.recipient, 300) + ">\r\n");
  }
  if (!request.diverted.empty()) message.insert(0, "X-Hikyaku-Diverted: " + request.diverted + "\r\n");
  return message;
}

void LoopGuard::deliver(const queue::DeliveryRequest& request, std::function<void(queue::DeliveryOutcome)> done) {
  if (request.origin != queue::Origin::received || request.target.kind != mail::Target::Kind::forward) {
    inner_.deliver(request, std::move(done));
    return;
  }
  auto head = queue::read_message(request, kMaxHeaderRead);
  if (!head.ok()) {
    done(queue::DeliveryOutcome{queue::DeliveryOutcome::Kind::temporary, "4.3.0", head.error().message});
    return;
  }
  if (auto why = loop_reason(config_, mail::header_section(*head), request)) {
    // RFC 3463: 5.4.6 routing loop detected — permanent, so the fallback
    // policy diverts at once to the chain's mailbox.
    done(queue::DeliveryOutcome{queue::DeliveryOutcome::Kind::permanent, "5.4.6", *why});
    return;
  }
  inner_.deliver(request, std::move(done));
}

bool LoopGuard::deliver_now(const queue::DeliveryRequest& request, std::function<void(queue::DeliveryOutcome)> done) {
  if (request.origin != queue::Origin::received || request.target.kind != mail::Target::Kind::forward) {
    return inner_.deliver_now(request, std::move(done));
  }
  if (!request.message) return false;  // the header would be read from the spool file
  auto head = queue::read_message(request, kMaxHeaderRead);
  if (!head.ok() || loop_reason(config_, mail::header_section(*head), request)) return false;
  return inner_.deliver_now(request, std::move(done));
}

}  // namespace hikyaku::policy

#include "sasl/plain.hpp"

#include "base/strings.hpp"

namespace hikyaku::sasl {

namespace {
constexpr size_t kMaxField = kMaxPlainField;
}

std::optional<PlainCredentials> parse_plain(std::string_view message) {
  // RFC 4616 §2: exactly two NULs separate the three fields.
  auto first = message.find('\0');
  if (first == std::string_view::npos) return std::nullopt;
  auto second = message.find('\0', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  if (message.find('\0', second + 1) != std::string_view::npos) return std::nullopt;
  PlainCredentials out;
  out.authzid = std::string(message.substr(0, first));
  out.authcid = std::string(message.substr(first + 1, second - first - 1));
  out.password = std::string(message.substr(second + 1));
  // RFC 4616 §2: authcid and passwd are non-empty; every field is bounded.
  if (out.authcid.empty() || out.password.empty()) return std::nullopt;
  if (out.authzid.size() > kMaxField || out.authcid.size() > kMaxField ||
      out.password.size() > kMaxField) {
    return std::nullopt;
  }
  return out;
}

std::optional<std::string> decode_response(std::string_view base64) {
  base64 = base::trim(base64);
  if (base64 == "=") return std::string();  // RFC 5034 §4: empty initial response
  return base::base64_decode(base64);
}

std::optional<PlainCredentials> decode_plain(std::string_view base64) {
  auto raw = decode_response(base64);
  if (!raw) return std::nullopt;
  return parse_plain(*raw);
}

bool is_cancel(std::string_view line) { return base::trim(line) == "*"; }

}  // namespace hikyaku::sasl

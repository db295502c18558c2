// libFuzzer target: the RFC 5322 From parser DMARC takes the author domain
// from (auth/common/author.hpp: parse_author on the input as a field value,
// find_author on the input as a whole message).
// Invariants: no crash on any input; an author found has an address
// "local@domain" with both sides non-empty, and its domain is that address's
// domain lower-cased, non-empty, without trailing dots, whitespace, angle
// brackets or quotes (RFC 7489 §6.6.1 needs exactly one such domain); the
// display name holds no CR or LF (it is written into a new From field);
// find_author agrees with parse_author on the message's only From field.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "auth/common/author.hpp"
#include "auth/common/message.hpp"
#include "base/strings.hpp"

namespace {

using namespace hikyaku::auth::common;

void check(const std::optional<Author>& a) {
  if (!a) return;
  auto at = a->address.rfind('@');
  if (at == std::string::npos || at == 0 || at + 1 >= a->address.size()) __builtin_trap();
  const auto& d = a->domain;
  if (d.empty() || d.back() == '.') __builtin_trap();
  std::string written = hikyaku::base::to_lower(std::string_view(a->address).substr(at + 1));
  while (written.ends_with('.')) written.pop_back();  // the root's dot(s)
  if (written != d) __builtin_trap();
  for (char c : d)
    if ((c >= 'A' && c <= 'Z') || c == ' ' || c == '\t' || c == '<' || c == '>' || c == '"' || c == '\r' ||
        c == '\n')
      __builtin_trap();
  for (char c : a->display_name)
    if (c == '\r' || c == '\n') __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 16 * 1024) return 0;
  std::string_view in(reinterpret_cast<const char*>(data), size);

  auto author = parse_author(in);
  check(author);

  auto message = parse_message(in);
  auto found = find_author(message);
  check(found);
  auto froms = message.all("From");
  if (froms.size() != 1) {
    if (found) __builtin_trap();  // RFC 7489 §6.6.1: zero or several From fields
  } else {
    auto again = parse_author(froms.front()->value);
    if (again.has_value() != found.has_value()) __builtin_trap();
    if (found && (found->address != again->address || found->domain != again->domain)) __builtin_trap();
  }
  return 0;
}

// libFuzzer target: the JSON reader (scan/protocol/json.hpp, RFC 8259) and
// rspamd's /checkv2 reply on top of it (scan/protocol/rspamd.hpp).
// Invariants: parse() never recurses past kMaxDepth nor throws; every
// string it returns came from a quoted string of the input (so it is no
// longer than the input); a reply that parses has a known action whose
// name parses back to it or a custom one with a short printable name, and as many symbols as the input has names; its
// X-Spam-* fields (verdict.hpp) are printable, folded within 78 octets and
// taken off again by strip_spam_fields().
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "scan/protocol/json.hpp"
#include "scan/protocol/rspamd.hpp"
#include "scan/protocol/verdict.hpp"

namespace {

using namespace hikyaku::scan;

size_t depth_of(const json::Value& v) {
  size_t d = 0;
  if (const auto* a = v.array())
    for (const auto& el : *a) d = std::max(d, depth_of(el));
  if (const auto* o = v.object())
    for (const auto& [name, el] : *o) d = std::max(d, depth_of(el));
  return (v.array() != nullptr || v.object() != nullptr) ? d + 1 : d;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto v = json::parse(in);
  if (v.ok()) {
    if (depth_of(*v) > json::kMaxDepth + 1) __builtin_trap();
    if (const auto* s = v->string(); s != nullptr && s->size() > in.size() * 2) __builtin_trap();
  } else if (v.error().message.empty()) {
    __builtin_trap();
  }
  auto r = rspamd::parse_reply(in);
  if (r.ok()) {
    if (r->action == rspamd::Action::custom) {
      // A custom action: a name that is none of the known ones, 1..32
      // printable octets without quote or backslash.
      if (r->custom.empty() || r->custom.size() > 32 || rspamd::parse_action(r->custom)) __builtin_trap();
      for (char c : r->custom)
        if (c < 0x20 || c > 0x7E || c == '"' || c == '\\') __builtin_trap();
    } else if (rspamd::parse_action(rspamd::action_name(r->action)) != r->action) {
      __builtin_trap();
    }
    const std::string fields = spam_fields(*r);
    size_t start = 0;
    for (size_t crlf = fields.find("\r\n"); crlf != std::string::npos; crlf = fields.find("\r\n", start)) {
      // A line may pass 78 only by one symbol name of at most 64 octets.
      if (crlf - start > 78 + 80) __builtin_trap();
      start = crlf + 2;
    }
    for (char c : fields)
      if ((c < 0x20 || c > 0x7E) && c != '\r' && c != '\n' && c != '\t') __builtin_trap();
    if (strip_spam_fields(fields + "Received: x\r\n\r\n") != "Received: x\r\n\r\n") __builtin_trap();
  }
  return 0;
}

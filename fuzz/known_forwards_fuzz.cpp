// libFuzzer target: the known-forwards state file (config/known_forwards.hpp,
// DATA_DIR/state/known-forwards). Any input parses without a crash; every
// issue names a line of the input; every accepted entry is a hidden forward
// whose chain, if any, ends in a mailbox; format() of what was accepted
// parses back to the same entries without issues; remembering them into an
// empty configuration makes each one known (hidden, same chain).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/known_forwards.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hikyaku::config;
  if (size > 64 * 1024) return 0;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = parse_known_forwards(text);
  const size_t lines = static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
  for (const auto& issue : parsed.issues)
    if (issue.line == 0 || issue.line > lines || issue.message.empty()) __builtin_trap();
  for (const auto& e : parsed.entries) {
    if (!e.forward.hidden || e.forward.to.empty()) __builtin_trap();
    if (!e.forward.fallback.empty() && e.forward.fallback.back().kind != hikyaku::mail::Target::Kind::mailbox)
      __builtin_trap();
  }
  auto again = parse_known_forwards(format_known_forwards(parsed.entries));
  if (!again.issues.empty() || again.entries != parsed.entries) __builtin_trap();
  Config config;
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));
  auto known = remember_forwards(config, parsed.entries, now);
  if (known.size() != parsed.entries.size() || config.forwards.size() != parsed.entries.size()) __builtin_trap();
  for (const auto& e : parsed.entries) {
    const Forward* f = config.find_forward(e.forward.to);
    if (f == nullptr || !f->hidden || f->fallback != e.forward.fallback) __builtin_trap();
  }
  return 0;
}

// libFuzzer target: the forward agent's rate-limit state file
// (delivery/state/destination_state.hpp). Any input parses without a crash;
// every issue names a line of the input; format() of what was accepted parses
// back to the same entries without issues.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "delivery/state/destination_state.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hikyaku::delivery::state;
  if (size > 64 * 1024) return 0;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = parse(text);
  const size_t lines = static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
  for (const auto& issue : parsed.issues)
    if (issue.line == 0 || issue.line > lines || issue.message.empty()) __builtin_trap();
  auto again = parse(format(parsed.entries));
  if (!again.issues.empty() || again.entries != parsed.entries) __builtin_trap();
  return 0;
}

// libFuzzer target: the SMTP command-line parser (RFC 5321 §4.1) on arbitrary
// bytes. Invariants: never crashes, a success has a known verb, a failure
// carries a 5xx reply with an enhanced status.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "smtp/protocol/command.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  auto parsed = hikyaku::smtp::protocol::parse_command(line);
  if (parsed.ok()) {
    if (parsed.command->verb == hikyaku::smtp::protocol::Verb::unknown) std::abort();
  } else {
    if (parsed.error.code < 500 || parsed.error.code > 599 || parsed.error.status.empty()) std::abort();
    (void)parsed.error.wire();
  }
  return 0;
}

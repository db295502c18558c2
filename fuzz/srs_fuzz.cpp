// libFuzzer target: SRS reverse() on arbitrary local parts and domains, and
// forward() → reverse() round trips on arbitrary senders.
#include <cstddef>
#include <cstdint>
#include <string>

#include "base/clock.hpp"
#include "srs/srs.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hikyaku;
  if (size > 2048) return 0;
  std::string text(reinterpret_cast<const char*>(data), size);
  base::FakeClock clock(base::Clock::time_point(std::chrono::seconds(1700000000)));
  srs::Rewriter rw({{"fuzz-secret", "old-secret"}}, clock);

  auto at = text.rfind('@');
  mail::Address a{at == std::string::npos ? text : text.substr(0, at),
                  at == std::string::npos ? "fwd.example.org" : text.substr(at + 1)};
  (void)srs::is_srs(a.local);
  (void)rw.decode(a);

  // Round trip: any non-empty local part at another domain comes back.
  if (!a.local.empty() && !a.domain.empty()) {
    mail::Address sender{a.local, "example.com"};
    auto fwd = rw.forward(sender, "fwd.example.org");
    auto back = rw.reverse(fwd);
    if (!srs::is_srs(sender.local)) {
      if (!back.ok() || back->local != sender.local || back->domain != "example.com") __builtin_trap();
    }
  }
  return 0;
}

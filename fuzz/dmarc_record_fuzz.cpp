// libFuzzer target: the DMARC record parser (RFC 7489 §6.3, DMARCbis tags)
// and the Authentication-Results parser (RFC 8601) — both read text that
// arrives from the network (DNS TXT, incoming header fields).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "auth/common/authentication_results.hpp"
#include "auth/dmarc/record.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hikyaku;
  if (size > 8192) return 0;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto record = auth::dmarc::parse_record(text);
  if (record.ok() && record->pct > 100) __builtin_trap();  // parser must enforce 0..100
  (void)auth::common::parse_authentication_results(text);
  (void)auth::common::is_own_authentication_results(text, "mx.example.test");
  return 0;
}

// libFuzzer target: the [access] CIDR parser (base::Cidr::parse) and the
// client-address parser and allow/deny decision (base/access_list.hpp).
// Invariants beyond "no crash": a parse either gives a prefix or an error
// with words; a parsed prefix prints canonically and that text parses back
// to the same prefix; a prefix contains its own network address; a host
// address denied by its own prefix is refused, allowed by it is permitted.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/access_list.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using hikyaku::base::AccessList;
  using hikyaku::base::Cidr;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  auto parsed = Cidr::parse(text);
  if (!parsed) {
    if (parsed.error().message.empty()) __builtin_trap();
  } else {
    const Cidr& c = *parsed;
    if (c.prefix > (c.v6 ? 128u : 32u)) __builtin_trap();
    auto again = Cidr::parse(c.str());
    if (!again || !(*again == c)) __builtin_trap();  // canonical text round-trips
    Cidr network = c;
    network.prefix = c.v6 ? 128 : 32;
    if (!c.contains(network)) __builtin_trap();
  }

  // The same bytes as a client address, against rules made from them.
  if (auto client = hikyaku::base::parse_client_address(text)) {
    AccessList deny;
    deny.deny.push_back(*client);
    if (deny.permits(text)) __builtin_trap();
    AccessList allow;
    allow.allow.push_back(*client);
    if (!allow.permits(text)) __builtin_trap();
  }
  (void)AccessList{}.permits(text);
  return 0;
}

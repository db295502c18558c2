// libFuzzer target: the wire-format rdata parsers of dns/unbound_resolver.hpp
// (RFC 1035 §3.3: TXT, MX, PTR names, A; RFC 3596 §2.2: AAAA) and the
// negative-TTL reader of whole messages (RFC 2308 §5). The first input byte
// picks the parser, the rest is the rdata (or message).
// Invariants: TXT is the character-strings' bytes, one length octet each
// fewer; a name accepted is at most 255 octets on the wire (RFC 1035 §3.1),
// its presentation form is printable ASCII without spaces and turns back
// into exactly the input; MX keeps its preference; A/AAAA accept exactly
// 4/16 octets and their text form parses back to the same address; a
// negative TTL is at most 2^31 - 1 (RFC 2181 §8) and needs a whole header.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "dns/unbound_resolver.hpp"

namespace {

using namespace hikyaku::dns;

// Presentation form (RFC 1035 §5.1: "\." and "\DDD" escapes) back to wire
// form; nullopt when it is not what append_label() writes.
std::optional<std::string> to_wire(std::string_view name) {
  std::string out;
  if (name.empty()) return std::string(1, '\0');  // the root
  std::string label;
  auto end_label = [&]() {
    if (label.empty() || label.size() > 63) return false;
    out += static_cast<char>(label.size());
    out += label;
    label.clear();
    return true;
  };
  for (size_t i = 0; i < name.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(name[i]);
    if (c <= 0x20 || c >= 0x7f) return std::nullopt;
    if (c == '.') {
      if (!end_label()) return std::nullopt;
    } else if (c != '\\') {
      label += static_cast<char>(c);
    } else if (i + 1 < name.size() && (name[i + 1] < '0' || name[i + 1] > '9')) {
      label += name[++i];
    } else if (i + 3 < name.size() && name.substr(i + 1, 3).find_first_not_of("0123456789") == name.npos) {
      int v = (name[i + 1] - '0') * 100 + (name[i + 2] - '0') * 10 + (name[i + 3] - '0');
      if (v > 255) return std::nullopt;
      label += static_cast<char>(v);
      i += 3;
    } else {
      return std::nullopt;
    }
  }
  if (!end_label()) return std::nullopt;
  out += '\0';
  return out;
}

void check_name(const std::optional<std::string>& name, std::string_view wire) {
  if (!name) return;
  if (wire.size() > 255) __builtin_trap();
  if (to_wire(*name) != wire) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > 4096) return 0;
  const uint8_t which = data[0];
  std::string_view rdata(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (which % 6) {
    case 0: {
      auto txt = wire::parse_txt(rdata);
      if (!txt) break;
      // Each character-string costs one length octet.
      size_t strings = 0;
      for (size_t pos = 0; pos < rdata.size(); pos += 1 + static_cast<unsigned char>(rdata[pos])) ++strings;
      if (txt->size() + strings != rdata.size()) __builtin_trap();
      break;
    }
    case 1: {
      auto mx = wire::parse_mx(rdata);
      if (!mx) break;
      if (rdata.size() < 3) __builtin_trap();
      const uint16_t pref = static_cast<uint16_t>(static_cast<unsigned char>(rdata[0]) << 8 |
                                                  static_cast<unsigned char>(rdata[1]));
      if (mx->preference != pref) __builtin_trap();
      check_name(mx->exchange, rdata.substr(2));
      break;
    }
    case 2:
      check_name(wire::parse_name(rdata), rdata);
      break;
    case 3:
    case 4: {
      const bool v6 = which % 6 == 4;
      auto ip = v6 ? wire::parse_aaaa(rdata) : wire::parse_a(rdata);
      if (ip.has_value() != (rdata.size() == (v6 ? 16u : 4u))) __builtin_trap();
      if (!ip) break;
      if (ip->v6 != v6) __builtin_trap();
      auto back = IpAddress::parse(ip->to_string());
      if (!back || !(*back == *ip)) __builtin_trap();
      (void)ip->reverse_name();
      break;
    }
    case 5: {
      auto ttl = wire::negative_ttl(rdata);
      if (ttl && (*ttl > 0x7fffffffu || rdata.size() < 12)) __builtin_trap();
      break;
    }
  }
  return 0;
}

#include "base/access_list.hpp"

#include <arpa/inet.h>

#include <algorithm>

#include "base/strings.hpp"

namespace hikyaku::base {
namespace {

// RFC 4291 §2.5.5.2: ::ffff:0:0/96 holds the IPv4 addresses.
bool ipv4_mapped(const std::array<uint8_t, 16>& b) {
  return std::all_of(b.begin(), b.begin() + 10, [](uint8_t x) { return x == 0; }) && b[10] == 0xff &&
         b[11] == 0xff;
}

// Whether the first `bits` bits of a and b are equal.
bool same_prefix(const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& b, unsigned bits) {
  const unsigned whole = bits / 8;
  if (!std::equal(a.begin(), a.begin() + whole, b.begin())) return false;
  const unsigned rest = bits % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

}  // namespace

Result<Cidr> Cidr::parse(std::string_view text) {
  // Sanity checks. inet_pton reads a C string, so a NUL (or any byte an
  // address cannot hold) must be refused here, not silently cut off.
  if (text.empty()) return make_error("empty address");
  if (text.size() > 64) return make_error("too long for an address");
  for (char c : text) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '.' ||
                    c == ':' || c == '/';
    if (!ok) return make_error("not an IPv4 or IPv6 address");
  }
  const auto slash = text.find('/');
  const std::string address(text.substr(0, slash));
  std::optional<uint64_t> length;
  if (slash != std::string_view::npos) {
    const auto digits = text.substr(slash + 1);
    // RFC 4632 §3.1: a decimal prefix length; three digits at most (128).
    length = digits.size() <= 3 ? parse_uint(digits) : std::nullopt;
    if (!length) return make_error("the prefix length after '/' is not a number");
  }

  // The address.
  Cidr c;
  if (address.find(':') != std::string::npos) {
    c.v6 = true;
    if (inet_pton(AF_INET6, address.c_str(), c.network.data()) != 1) return make_error("not an IPv6 address");
  } else if (inet_pton(AF_INET, address.c_str(), c.network.data()) != 1) {
    return make_error("not an IPv4 address");
  }
  const unsigned max = c.v6 ? 128 : 32;
  if (length && *length > max) return make_error("prefix length above /" + std::to_string(max));
  c.prefix = length ? static_cast<unsigned>(*length) : max;

  // Host bits must be zero: "192.0.2.1/24" is refused, not rounded.
  std::array<uint8_t, 16> masked{};
  const unsigned whole = c.prefix / 8;
  std::copy(c.network.begin(), c.network.begin() + whole, masked.begin());
  if (c.prefix % 8 != 0) masked[whole] = static_cast<uint8_t>(c.network[whole] & (0xff << (8 - c.prefix % 8)));
  if (masked != c.network) {
    Cidr network = c;
    network.network = masked;
    return make_error("host bits set after /" + std::to_string(c.prefix) + " (the network is " + network.str() + ")");
  }

  // RFC 4291 §2.5.5.2: an IPv4-mapped prefix is the IPv4 prefix.
  if (c.v6 && c.prefix >= 96 && ipv4_mapped(c.network)) {
    std::array<uint8_t, 16> v4{};
    std::copy(c.network.begin() + 12, c.network.end(), v4.begin());
    c.network = v4;
    c.prefix -= 96;
    c.v6 = false;
  }
  return c;
}

bool Cidr::contains(const Cidr& address) const {
  return v6 == address.v6 && prefix <= address.prefix && same_prefix(network, address.network, prefix);
}

std::string Cidr::str() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(v6 ? AF_INET6 : AF_INET, network.data(), buf, sizeof buf) == nullptr) return "?";
  return std::string(buf) + "/" + std::to_string(prefix);
}

std::optional<Cidr> parse_client_address(std::string_view text) {
  // A scoped IPv6 address ("fe80::1%eth0") is the address; the zone is
  // only which link it came in on (RFC 4007 §11).
  if (const auto zone = text.find('%'); zone != std::string_view::npos && text.find(':') != std::string_view::npos)
    text = text.substr(0, zone);
  if (text.find('/') != std::string_view::npos) return std::nullopt;
  auto parsed = Cidr::parse(text);
  if (!parsed) return std::nullopt;
  return *parsed;
}

bool AccessList::permits(std::string_view address) const {
  if (empty()) return true;
  const auto client = parse_client_address(address);
  if (!client) return false;  // rules exist and we cannot tell: fail closed
  const auto matches = [&](const Cidr& rule) { return rule.contains(*client); };
  if (std::any_of(deny.begin(), deny.end(), matches)) return false;  // deny wins
  return allow.empty() || std::any_of(allow.begin(), allow.end(), matches);
}

}  // namespace hikyaku::base

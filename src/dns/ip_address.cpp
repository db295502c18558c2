#include <arpa/inet.h>

#include <cstdio>

#include "dns/resolver.hpp"

namespace hikyaku::dns {

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.size() > 64) return std::nullopt;
  std::string s(text);
  IpAddress ip;
  if (s.find(':') != std::string::npos) {
    ip.v6 = true;
    if (inet_pton(AF_INET6, s.c_str(), ip.bytes.data()) != 1) return std::nullopt;
  } else {
    if (inet_pton(AF_INET, s.c_str(), ip.bytes.data()) != 1) return std::nullopt;
  }
  return ip;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
  return buf;
}

std::string IpAddress::reverse_name() const {
  std::string out;
  char buf[8];
  if (!v6) {
    for (int i = 3; i >= 0; --i) {
      (void)std::snprintf(buf, sizeof buf, "%u.", bytes[static_cast<size_t>(i)]);
      out += buf;
    }
    return out + "in-addr.arpa";
  }
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i) {
    uint8_t b = bytes[static_cast<size_t>(i)];
    out += kHex[b & 15];
    out += '.';
    out += kHex[b >> 4];
    out += '.';
  }
  return out + "ip6.arpa";
}

}  // namespace hikyaku::dns

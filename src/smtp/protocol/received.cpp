#include "smtp/protocol/received.hpp"

#include <cstdio>
#include <ctime>
#include <string>

#include "mail/header.hpp"

namespace hikyaku::smtp::protocol {
namespace {

// Keep the peer's HELO inside a comment-free token: printable ASCII only,
// without "()\\;" that would end or escape the clause (RFC 5322 §3.2.2).
std::string sanitize(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 255)) {
    auto u = static_cast<unsigned char>(c);
    bool ok = u > 32 && u < 127 && c != '(' && c != ')' && c != '\\' && c != ';';
    out += ok ? c : '?';
  }
  if (out.empty()) out = "unknown";
  return out;
}

std::string ip_literal(std::string_view ip) {
  // RFC 5321 §4.1.3: IPv6 address literals carry the "IPv6:" tag.
  if (ip.find(':') != std::string_view::npos) return "[IPv6:" + std::string(ip) + "]";
  return "[" + std::string(ip) + "]";
}

}  // namespace

std::string with_protocol(const ReceivedInfo& info) {
  if (!info.esmtp) return "SMTP";
  std::string p = info.smtputf8 ? "UTF8SMTP" : "ESMTP";
  if (info.tls) p += "S";
  if (info.authenticated) p += "A";
  return p;
}

std::string received_header(const ReceivedInfo& info) {
  // RFC 5321 §4.4: From-domain By-domain Opt-info [CFWS] ";" date-time.
  // We do not look up reverse DNS, so TCP-info is the bare address literal.
  std::string h = "Received: ";
  if (!info.hide_client) h += "from " + sanitize(info.helo) + " (" + ip_literal(info.client_ip) + ")\r\n\t";
  h += "by " + info.hostname + " (hikyaku)";
  if (info.tls && !info.tls_version.empty()) {
    // Postfix's wording, on a line of its own (RFC 5322 §2.2.3 folding).
    h += "\r\n\t(using " + sanitize(info.tls_version);
    if (!info.tls_cipher.empty()) h += " with cipher " + sanitize(info.tls_cipher);
    if (info.tls_secret_bits > 0 && info.tls_algorithm_bits > 0)
      h += " (" + std::to_string(info.tls_secret_bits) + "/" + std::to_string(info.tls_algorithm_bits) + " bits)";
    h += ")";
  }
  h += " with " + with_protocol(info) + " id " + info.id + "\r\n";
  if (!info.for_recipient.empty()) h += "\tfor <" + info.for_recipient + ">";
  else h += "\t";
  h += "; " + mail::rfc5322_date(info.when) + "\r\n";
  return h;
}


}  // namespace hikyaku::smtp::protocol

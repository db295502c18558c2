#include "smtp/client/outcome.hpp"

#include <algorithm>
#include <cctype>

namespace hikyaku::smtp::client {

std::string_view to_string(Stage stage) {
  switch (stage) {
    case Stage::connect: return "connect";
    case Stage::greeting: return "greeting";
    case Stage::ehlo: return "EHLO";
    case Stage::helo: return "HELO";
    case Stage::starttls: return "STARTTLS";
    case Stage::auth: return "AUTH";
    case Stage::mail: return "MAIL FROM";
    case Stage::rcpt: return "RCPT TO";
    case Stage::data: return "DATA";
    case Stage::body: return "end of data";
    case Stage::rset: return "RSET";
    case Stage::quit: return "QUIT";
  }
  return "?";
}

Outcome classify(const ServerReply& reply, Stage stage) {
  Outcome out;
  out.detail = reply.text();
  out.rate_limited = is_rate_limit(reply);
  char klass = reply.positive() || reply.intermediate() ? '2' : reply.transient() ? '4' : '5';
  // RFC 3463 §2: the status class must match the reply class; otherwise
  // the reply code wins (Postfix does the same).
  out.status = (!reply.status.empty() && reply.status[0] == klass) ? reply.status
                                                                   : std::string(1, klass) + ".0.0";
  if (klass == '2') {
    out.kind = Outcome::Kind::delivered;
    return out;
  }
  if (klass == '4') {
    // RFC 5321 §4.2.1: transient; §5.1: try the next host now, retry later.
    out.kind = Outcome::Kind::temporary;
    out.try_next_host = true;
    return out;
  }
  // 5xx.
  switch (stage) {
    case Stage::connect:
    case Stage::greeting:
    case Stage::ehlo:
    case Stage::helo:
    case Stage::starttls:
    case Stage::rset:
    case Stage::quit:
      // The host refuses service as a whole (RFC 5321 §3.1: 554 greeting),
      // not this message: another MX may take it. If none does, the
      // attempt is temporary (we never heard a verdict on the message).
      out.kind = Outcome::Kind::temporary;
      out.status = "4" + out.status.substr(1);
      out.try_next_host = true;
      return out;
    case Stage::auth:
      // The relay refuses our login (535 5.7.8), not the message: a wrong
      // password is the operator's to fix, so the message waits for it —
      // retried until [delivery] expire, then one DSN — instead of bouncing
      // at once (Postfix's smtp_sasl_auth_soft_bounce = yes).
      out.kind = Outcome::Kind::temporary;
      out.status = "4" + out.status.substr(1);
      out.try_next_host = true;
      return out;
    case Stage::mail:
    case Stage::rcpt:
    case Stage::data:
    case Stage::body:
      // RFC 5321 §4.2.1: a permanent negative completion for this
      // transaction; the next MX would say the same (Gmail's MXes share one
      // verdict), so it is final.
      out.kind = Outcome::Kind::permanent;
      return out;
  }
  return out;
}

Outcome classify(Failure failure, std::string detail) {
  Outcome out;
  out.detail = std::move(detail);
  auto set = [&](Outcome::Kind kind, const char* status, bool next) {
    out.kind = kind;
    out.status = status;
    out.try_next_host = next;
  };
  using K = Outcome::Kind;
  switch (failure) {
    case Failure::dns_temp: set(K::temporary, "4.4.3", false); break;   // RFC 3463 §3.5
    case Failure::dns_nxdomain: set(K::permanent, "5.1.2", false); break;
    case Failure::null_mx: set(K::permanent, "5.1.10", false); break;   // RFC 7505 §4.2
    case Failure::unroutable: set(K::permanent, "5.4.4", false); break;
    case Failure::loop: set(K::permanent, "5.4.6", false); break;
    case Failure::connect_refused:
    case Failure::connect_timeout: set(K::temporary, "4.4.1", true); break;
    case Failure::timeout:
    case Failure::connection_lost: set(K::temporary, "4.4.2", true); break;
    // RFC 3463 X.7.5 "cryptographic failure", as Postfix reports "Cannot
    // start TLS: handshake failure".
    case Failure::tls: set(K::temporary, "4.7.5", true); break;
    case Failure::security: set(K::temporary, "4.7.4", true); break;  // RFC 3463 X.7.4
    case Failure::protocol: set(K::temporary, "4.5.0", true); break;
    case Failure::local: set(K::temporary, "4.3.0", false); break;
  }
  return out;
}

bool is_rate_limit(const ServerReply& reply) {
  if (reply.status == "4.7.28" && (reply.code == 421 || reply.code == 450 || reply.code == 451)) return true;
  if ((reply.code == 421 || reply.code == 451 || reply.code == 450) && reply.status == "4.7.0") {
    std::string text = reply.text();
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text.find("rate") != std::string::npos;
  }
  return false;
}

}  // namespace hikyaku::smtp::client

// libFuzzer target: the SASL decoders (src/sasl: PLAIN, LOGIN, base64
// responses) and the SMTP AUTH exchange built on them
// (src/smtp/protocol/auth_exchange). The input is split into lines: the
// first is the AUTH argument, the rest are client responses. Invariants:
// a decoded PLAIN message has a non-empty authcid and password, every field
// at most 255 octets and none with NUL; the exchange ends (verify or
// refuse) within the lines its mechanism needs; every reply it gives is a
// 334 challenge or a 5xx refusal, one line, without CR or LF.
// The same lines, read as a relay's 334 challenges, drive the client side
// (src/smtp/protocol/client_auth) for each mechanism: every line it sends
// is one line without CR or LF, it never sends more than the mechanism's
// responses plus one "*", and it never claims success after a cancel.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "sasl/login.hpp"
#include "sasl/plain.hpp"
#include "smtp/protocol/auth_exchange.hpp"
#include "smtp/protocol/client_auth.hpp"

using hikyaku::smtp::protocol::AuthExchange;
using hikyaku::smtp::protocol::ClientAuth;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void check_reply(const hikyaku::mail::Reply& r, AuthExchange::Step::Kind kind) {
  const std::string wire = r.wire(true);
  check(wire.size() >= 5 && wire.ends_with("\r\n"));
  check(wire.find('\n') == wire.size() - 1);
  if (kind == AuthExchange::Step::Kind::challenge) check(r.code == 334);
  else check(r.code >= 500 && r.code < 600);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  // The decoders alone, on the whole input.
  if (auto creds = hikyaku::sasl::decode_plain(input)) {
    check(!creds->authcid.empty() && !creds->password.empty());
    for (const std::string* f : {&creds->authzid, &creds->authcid, &creds->password})
      check(f->size() <= 255 && f->find('\0') == std::string::npos);
  }
  hikyaku::sasl::LoginExchange login;
  auto step = login.start(input);
  if (step.kind == hikyaku::sasl::LoginExchange::Step::Kind::challenge) (void)login.respond(input);

  // The SMTP exchange, line by line (no CR/LF inside a line, as the session
  // hands them over).
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos <= input.size() && lines.size() < 8) {
    size_t nl = input.find('\n', pos);
    if (nl == std::string_view::npos) nl = input.size();
    std::string_view line = input.substr(pos, nl - pos);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.find_first_of("\r\n") != std::string_view::npos) return 0;
    lines.push_back(line);
    pos = nl + 1;
  }
  if (lines.empty()) return 0;

  // The client side: each line is the text of a 334 challenge; a final
  // 235 is believed only when nothing was cancelled.
  for (const char* mechanism : {"PLAIN", "LOGIN", "CRAM-MD5"}) {
    ClientAuth client(mechanism, "user", "password");
    auto c = client.start();
    size_t sent = 1;
    bool cancelled = false;
    for (std::string_view challenge : lines) {
      if (c.kind != ClientAuth::Step::Kind::send) break;
      check(c.line.find_first_of("\r\n") == std::string::npos);
      hikyaku::smtp::protocol::ServerReply r;
      r.code = 334;
      r.lines.push_back("334 " + std::string(challenge));
      c = client.on_reply(r);
      if (c.kind == ClientAuth::Step::Kind::send) {
        ++sent;
        cancelled = cancelled || c.line == "*";
      }
    }
    check(sent <= 4);
    if (c.kind == ClientAuth::Step::Kind::send) {
      hikyaku::smtp::protocol::ServerReply ok;
      ok.code = 235;
      ok.lines.push_back("235 2.7.0 ok");
      check((client.on_reply(ok).kind == ClientAuth::Step::Kind::done) == !cancelled);
    }
  }

  AuthExchange exchange;
  auto s = exchange.start(lines[0]);
  size_t used = 1;
  // PLAIN needs at most one response, LOGIN at most two.
  while (s.kind == AuthExchange::Step::Kind::challenge) {
    check_reply(s.reply, s.kind);
    check(used <= 2);
    if (used >= lines.size()) return 0;
    s = exchange.respond(lines[used++]);
  }
  if (s.kind == AuthExchange::Step::Kind::refuse) {
    check_reply(s.reply, s.kind);
  } else {
    check(exchange.mechanism() == "PLAIN" || exchange.mechanism() == "LOGIN");
    std::string password = exchange.take_password();
    check(s.refused || exchange.mechanism() == "LOGIN" || !password.empty());
  }
  return 0;
}

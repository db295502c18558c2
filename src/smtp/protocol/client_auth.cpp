#include "smtp/protocol/client_auth.hpp"

#include <algorithm>

#include "base/strings.hpp"
#include "crypto/hmac.hpp"

namespace hikyaku::smtp::protocol {

namespace {

std::string hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xf]);
  }
  return out;
}

// Overwrite a secret before its memory is released.
void wipe(std::string& s) {
  volatile char* p = s.data();
  for (size_t i = 0; i < s.size(); ++i) p[i] = 0;
  s.clear();
}

}  // namespace

std::optional<std::string> choose_client_mechanism(const std::vector<std::string>& offered,
                                                   const std::vector<std::string>& allowed) {
  for (const char* mechanism : {"CRAM-MD5", "PLAIN", "LOGIN"}) {
    const auto named = [&](const std::string& m) { return base::iequals(m, mechanism); };
    if (std::any_of(offered.begin(), offered.end(), named) && std::any_of(allowed.begin(), allowed.end(), named))
      return std::string(mechanism);
  }
  return std::nullopt;
}

ClientAuth::ClientAuth(std::string mechanism, std::string user, std::string password)
    : mechanism_(std::move(mechanism)), user_(std::move(user)), password_(std::move(password)) {}

ClientAuth::~ClientAuth() { wipe(password_); }

ClientAuth::Step ClientAuth::start() {
  Step s;
  s.kind = Step::Kind::send;
  if (mechanism_ == "PLAIN") {
    // RFC 4616 §2: [authzid] NUL authcid NUL passwd; no authzid.
    std::string message;
    message.push_back('\0');
    message += user_;
    message.push_back('\0');
    message += password_;
    s.line = "AUTH PLAIN " + base::base64_encode(message);
    wipe(message);
    return s;
  }
  s.line = "AUTH " + mechanism_;
  return s;
}

ClientAuth::Step ClientAuth::on_reply(const ServerReply& reply) {
  Step s;
  if (reply.code == 235) {
    s.kind = cancelled_ ? Step::Kind::failed : Step::Kind::done;
    if (cancelled_) s.why = "AUTH " + mechanism_ + ": the server accepted a cancelled exchange";
    return s;
  }
  if (reply.code == 334 && !cancelled_) {
    const auto texts = reply.texts();
    return respond(texts.empty() ? std::string_view() : base::trim(texts.front()));
  }
  s.why = cancelled_ ? "AUTH " + mechanism_ + ": unexpected challenge from the server, exchange cancelled"
                     : "AUTH " + mechanism_ + " refused";
  return s;
}

ClientAuth::Step ClientAuth::respond(std::string_view challenge) {
  Step s;
  s.kind = Step::Kind::send;
  ++challenges_;
  if (mechanism_ == "CRAM-MD5" && challenges_ == 1) {
    // RFC 2195 §2: user SP hex(HMAC-MD5(password, challenge)).
    if (auto decoded = base::base64_decode(challenge); decoded && !decoded->empty()) {
      s.line = base::base64_encode(user_ + " " + hex(crypto::hmac_md5(password_, *decoded)));
      return s;
    }
  } else if (mechanism_ == "LOGIN" && challenges_ <= 2) {
    // The prompts ("Username:", "Password:") vary between servers; the
    // order does not.
    s.line = base::base64_encode(challenges_ == 1 ? user_ : password_);
    return s;
  }
  // A challenge this mechanism does not have: cancel (RFC 4954 §4).
  cancelled_ = true;
  s.line = "*";
  return s;
}

}  // namespace hikyaku::smtp::protocol

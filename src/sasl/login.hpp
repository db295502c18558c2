// Purpose:   Sans-I/O server side of the (non-standard but ubiquitous) SASL
//            LOGIN mechanism, for SMTP submission and POP3/IMAP clients that
//            only speak it (Outlook, old phones): two base64 challenges
//            "Username:" and "Password:", two base64 responses.
// Standards: draft-murchison-sasl-login-00 §2; RFC 4954 §4 (an initial
//            response carries the user name; "*" cancels).
// Trust:     responses are untrusted; the password is a secret: never log it.
// Concurrency: one LoginExchange per authentication attempt, one thread.
// Errors:    Step::Kind::error for malformed base64 or a cancel; no throw.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace hikyaku::sasl {

class LoginExchange {
 public:
  struct Step {
    enum class Kind { challenge, done, cancelled, error };
    Kind kind = Kind::error;
    std::string challenge;  // base64 text to send after "+ " / "334 "
  };

  // Start the exchange; `initial_response` (base64) is the user name when the
  // client sent one with the AUTH command.
  Step start(std::optional<std::string_view> initial_response = std::nullopt);
  // Feed one client response line (base64, or "*").
  Step respond(std::string_view line);

  const std::string& user() const { return user_; }
  const std::string& password() const { return password_; }  // secret
  std::string take_password() { return std::move(password_); }  // secret, moved out

 private:
  enum class Phase { user, password, finished };
  Phase phase_ = Phase::user;
  std::string user_;
  std::string password_;
};

}  // namespace hikyaku::sasl

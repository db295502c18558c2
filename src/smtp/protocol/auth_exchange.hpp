// Purpose:   One SMTP AUTH exchange on the server side, sans-I/O: the AUTH
//            command's argument in, then each client response line; out, the
//            next reply (a 334 challenge or a refusal) or the credentials to
//            verify. Mechanisms PLAIN and LOGIN only: the passwords are
//            stored as argon2id hashes, and CRAM-MD5/SCRAM would need them
//            reversible (docs/submission.md). The session verifies (login/)
//            and answers 235/535 itself.
// Standards: RFC 4954 §4 (AUTH, initial response, "=" empty, "*" cancels,
//            334 challenges), §6 (501/504/535/538), RFC 4616 (PLAIN),
//            draft-murchison-sasl-login-00 (LOGIN), RFC 5248 (5.7.8).
// Trust:     every line is untrusted; the password is a secret: never logged,
//            wiped by whoever takes it (take_password()).
// Concurrency: one exchange per AUTH command, one thread.
// Errors:    refusals are Step values (501, 504); no exceptions. Fuzzed:
//            fuzz/sasl_fuzz.cpp.
#pragma once

#include <string>
#include <string_view>

#include "mail/reply.hpp"
#include "sasl/login.hpp"

namespace hikyaku::smtp::protocol {

class AuthExchange {
 public:
  struct Step {
    enum class Kind {
      challenge,  // send `reply` (334), then feed the client's next line to respond()
      verify,     // check user()/take_password(); `refused` set: fail it without a check
      refuse,     // send `reply`; the exchange is over
    };
    Kind kind = Kind::refuse;
    mail::Reply reply;
    bool refused = false;  // verify: a proxy login (authzid ≠ authcid) we do not allow
  };

  // `argument`: the text after "AUTH " ("PLAIN", "PLAIN <base64>", "LOGIN").
  Step start(std::string_view argument);
  // One client response line (without CRLF).
  Step respond(std::string_view line);

  std::string_view mechanism() const { return mechanism_; }  // "PLAIN", "LOGIN", for the log
  const std::string& user() const { return user_; }
  // The password, moved out (the caller wipes it after the check).
  std::string take_password() { return std::move(password_); }

 private:
  Step plain(std::string_view response);
  Step login(const sasl::LoginExchange::Step& step);
  Step verify(std::string user, std::string password, bool refused);

  enum class Phase { idle, plain, login, finished };
  Phase phase_ = Phase::idle;
  std::string mechanism_;
  sasl::LoginExchange login_;
  std::string user_;
  std::string password_;
};

}  // namespace hikyaku::smtp::protocol

// Purpose:   The SMTP client's side of AUTH, sans-I/O: which mechanism to
//            use (the strongest the server offers among those a [[route]]
//            allows: CRAM-MD5, then PLAIN, then LOGIN), the AUTH command,
//            and the answer to each 334 challenge; the session sends the
//            lines and reads the replies.
// Standards: RFC 4954 §4 (AUTH, initial response, 334, "*" cancels, 235,
//            535), RFC 4616 (PLAIN), RFC 2195 (CRAM-MD5),
//            draft-murchison-sasl-login-00 (LOGIN).
// Trust:     challenges come from the relay (untrusted): only base64-decoded
//            and, for CRAM-MD5, keyed into the HMAC; never echoed. The
//            password is a secret: it is in the lines this produces and
//            nowhere else (never in an error text).
// Concurrency: one exchange per connection, one thread.
// Errors:    a refusal or an unexpected reply ends the exchange as a Step
//            value (failed), with the reply for the caller to classify.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/protocol/server_reply.hpp"

namespace hikyaku::smtp::protocol {

// The mechanism to use: the first of CRAM-MD5, PLAIN, LOGIN that both the
// server offers (EHLO AUTH, upper case) and `allowed` lists; none: nullopt.
std::optional<std::string> choose_client_mechanism(const std::vector<std::string>& offered,
                                                   const std::vector<std::string>& allowed);

class ClientAuth {
 public:
  struct Step {
    enum class Kind {
      send,    // send `line` (CRLF added by the caller), then feed the reply to on_reply()
      done,    // 235: authenticated
      failed,  // refused or a protocol error; `why` says which (never the password)
    };
    Kind kind = Kind::failed;
    std::string line;
    std::string why;
  };

  // `mechanism` as choose_client_mechanism() returned it.
  ClientAuth(std::string mechanism, std::string user, std::string password);
  ~ClientAuth();
  ClientAuth(const ClientAuth&) = delete;
  ClientAuth& operator=(const ClientAuth&) = delete;

  // The AUTH command (PLAIN with its initial response, RFC 4954 §4).
  Step start();
  // The server's reply to the last line sent.
  Step on_reply(const ServerReply& reply);

  const std::string& mechanism() const { return mechanism_; }

 private:
  Step respond(std::string_view challenge);

  std::string mechanism_;
  std::string user_;
  std::string password_;
  unsigned challenges_ = 0;  // 334s answered so far
  bool cancelled_ = false;   // we sent "*"
};

}  // namespace hikyaku::smtp::protocol

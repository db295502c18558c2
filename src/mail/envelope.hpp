// Purpose:   The SMTP envelope of one message: reverse-path, forward-paths and
//            the ESMTP facts that travel with it into the spool.
// Standards: RFC 5321 §2.3.1 (envelope), RFC 6152 (BODY=8BITMIME),
//            RFC 6531 (SMTPUTF8).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "mail/address.hpp"

namespace hikyaku::mail {

struct Envelope {
  std::optional<Address> sender;  // nullopt: the null reverse-path "<>"
  std::vector<Address> recipients;
  bool body_8bit = false;
  bool smtputf8 = false;
  std::string helo;         // what the client said in EHLO/HELO
  std::string client_ip;    // textual IP of the SMTP client
  std::string client_name;  // its reverse name confirmed forward (iprev pass), else empty
  std::string auth_user;    // SASL login when authenticated, else empty

  std::string sender_str() const { return sender ? sender->str() : std::string(); }
};

}  // namespace hikyaku::mail

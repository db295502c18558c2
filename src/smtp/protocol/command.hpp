// Purpose:   Parse one SMTP command line (without its CRLF) into a verb and
//            checked arguments: EHLO/HELO domain, MAIL FROM:<path> with ESMTP
//            parameters, RCPT TO:<path>, and the argument-less verbs. The
//            parser is context-free: whether a command is allowed now, and
//            whether a UTF-8 address is acceptable in this transaction, is the
//            session's decision.
// Standards: RFC 5321 §4.1.1 (commands), §4.1.2 (syntax), §4.1.3 (address
//            literals, via mail::parse_path), RFC 1870 (SIZE), RFC 6152
//            (BODY=8BITMIME), RFC 6531 §3.4 (SMTPUTF8), RFC 3207 (STARTTLS),
//            RFC 3463 (enhanced status codes in the error replies).
// Trust:     untrusted network input of any bytes; bounded by the caller's
//            line limit; never allocates more than the line.
// Concurrency: pure functions.
// Errors:    a syntax problem yields the reply to send (500/501/555), never an
//            exception.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "mail/address.hpp"
#include "mail/reply.hpp"

namespace hikyaku::smtp::protocol {

enum class Verb { ehlo, helo, mail, rcpt, data, rset, noop, quit, vrfy, expn, help, starttls, auth, bdat, unknown };

std::string_view verb_name(Verb v);

// RFC 6152 / RFC 1652: the declared body type of MAIL FROM.
enum class BodyType { unspecified, seven_bit, eight_bit_mime };

struct MailParameters {
  std::optional<uint64_t> size;  // RFC 1870 SIZE=
  BodyType body = BodyType::unspecified;
  bool smtputf8 = false;         // RFC 6531 §3.4
  bool auth = false;             // RFC 4954 §5 AUTH= given (its value is ignored)
};

struct Command {
  Verb verb = Verb::unknown;
  std::string argument;  // text after the verb and one space, trimmed (HELO name, VRFY arg...)
  // MAIL / RCPT only: the path; nullopt is the null reverse-path "<>".
  std::optional<mail::Address> path;
  MailParameters params;  // MAIL only
};

struct ParsedCommand {
  std::optional<Command> command;  // set on success
  mail::Reply error;               // the reply to send otherwise
  std::string reason;              // for the log, never sent
  bool ok() const { return command.has_value(); }
};

// Parse one line. UTF-8 is accepted in MAIL/RCPT paths; the session checks
// it against SMTPUTF8 (RFC 6531 §3.4) with mail::Address::has_utf8().
ParsedCommand parse_command(std::string_view line);

}  // namespace hikyaku::smtp::protocol

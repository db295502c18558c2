#include "smtp/protocol/replies.hpp"

namespace hikyaku::smtp::protocol::reply {

// RFC 5321 §4.3.1: the greeting starts with our name; no enhanced code (RFC 2034 §3).
Reply greeting(std::string_view hostname) { return Reply(220, "", std::string(hostname) + " ESMTP hikyaku"); }
Reply too_many_connections() { return Reply(421, "4.7.0", "Too many connections, try again later"); }
// RFC 5321 §3.1: 554 in place of the 220 greeting; RFC 3463 §3.8: X.7.1
// "delivery not authorized" ([access] denies the client address).
Reply access_denied() { return Reply(554, "5.7.1", "Access denied"); }

// RFC 5321 §4.1.1.1: first line is our name, then one extension keyword per line.
Reply ehlo(std::string_view hostname, const std::vector<std::string>& extensions) {
  Reply r(250, "", std::string(hostname));
  for (const auto& e : extensions) r.lines.push_back(e);
  return r;
}
Reply helo(std::string_view hostname) { return Reply(250, "", std::string(hostname)); }
Reply ok() { return Reply(250, "2.0.0", "Ok"); }
Reply sender_ok() { return Reply(250, "2.1.0", "Sender ok"); }
Reply recipient_ok() { return Reply(250, "2.1.5", "Recipient ok"); }
Reply reset_ok() { return Reply(250, "2.0.0", "Reset ok"); }
Reply start_data() { return Reply(354, "", "End data with <CR><LF>.<CR><LF>"); }
Reply queued(std::string_view queue_id) { return Reply(250, "2.0.0", "Ok: queued as " + std::string(queue_id)); }
Reply bye() { return Reply(221, "2.0.0", "Bye"); }
Reply bad_sequence(std::string_view what) { return Reply(503, "5.5.1", "Error: " + std::string(what)); }
// RFC 5321 §3.5.3: 252 when we will not verify but will accept.
Reply cannot_vrfy() { return Reply(252, "2.5.2", "Cannot VRFY user, but will accept message and attempt delivery"); }
Reply help() {
  Reply r(214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS");
  r.lines.push_back("See RFC 5321");
  return r;
}
Reply not_implemented() { return Reply(502, "5.5.1", "Command not implemented"); }
Reply timeout() { return Reply(421, "4.4.2", "Error: timeout exceeded"); }
Reply too_many_errors() { return Reply(421, "4.7.0", "Error: too many errors"); }
Reply shutting_down() { return Reply(421, "4.3.2", "Service shutting down"); }
Reply line_too_long() { return Reply(500, "5.5.6", "Line too long"); }
Reply unknown_user() { return Reply(550, "5.1.1", "Recipient address rejected: User unknown"); }
Reply relay_denied() { return Reply(554, "5.7.1", "Relay access denied"); }
Reply too_many_recipients() { return Reply(452, "4.5.3", "Error: too many recipients"); }
Reply no_valid_recipients() { return Reply(554, "5.5.1", "Error: no valid recipients"); }
Reply message_too_big() { return Reply(552, "5.3.4", "Error: message size exceeds fixed limit"); }
Reply header_too_big() { return Reply(552, "5.3.4", "Error: message header section exceeds fixed limit"); }
Reply size_declared_too_big() { return Reply(552, "5.3.4", "Error: message size exceeds fixed limit"); }
Reply too_many_hops() { return Reply(554, "5.4.6", "Error: too many hops (mail loop?)"); }
// Postfix 3.7 smtpd_forbid_bare_newline=reject uses the same code and words.
Reply bare_lf() { return Reply(550, "5.5.2", "Error: bare <LF> received"); }
Reply bare_cr() { return Reply(550, "5.5.2", "Error: bare <CR> received"); }
Reply not_stored() { return Reply(451, "4.3.0", "Error: queue file write error, try again later"); }
// RFC 3463 X.3.1 "mail system full"; RFC 5321 §4.3.2 lists 452 among the
// replies to the end of DATA (Postfix: "452 4.3.1 Insufficient system storage").
Reply no_storage() { return Reply(452, "4.3.1", "Error: insufficient system storage, try again later"); }
Reply tls_ready() { return Reply(220, "2.0.0", "Ready to start TLS"); }
Reply tls_unavailable() { return Reply(454, "4.7.0", "TLS not available"); }
Reply tls_already_active() { return Reply(503, "5.5.1", "Error: TLS already active"); }
Reply smtputf8_required() { return Reply(553, "5.6.7", "Non-ASCII address requires SMTPUTF8"); }
// RFC 6531 §3.3: UTF8-non-ascii (RFC 6532 §3.1) is well-formed UTF-8.
Reply invalid_utf8_address() { return Reply(553, "5.6.7", "Address is not valid UTF-8"); }

// RFC 4954 §4: a challenge is "334 " and base64 text, no status code.
Reply auth_challenge(std::string_view base64) { return Reply(334, "", std::string(base64)); }
Reply auth_ok() { return Reply(235, "2.7.0", "Authentication successful"); }
Reply auth_failed() { return Reply(535, "5.7.8", "Authentication credentials invalid"); }
Reply auth_busy() { return Reply(454, "4.7.0", "Temporary authentication failure, try again later"); }
Reply auth_required() { return Reply(530, "5.7.0", "Authentication required"); }
Reply auth_needs_tls() { return Reply(538, "5.7.11", "Encryption required for requested authentication mechanism"); }
Reply auth_not_offered() { return Reply(503, "5.5.1", "Error: authentication not enabled"); }
Reply auth_already() { return Reply(503, "5.5.1", "Error: already authenticated"); }
Reply auth_cancelled() { return Reply(501, "5.7.0", "Authentication cancelled"); }
Reply auth_bad_response() { return Reply(501, "5.5.2", "Cannot decode response"); }
Reply auth_unknown_mechanism() { return Reply(504, "5.5.4", "Unrecognized authentication type"); }
Reply sender_not_owned() { return Reply(553, "5.7.1", "Sender address not owned by the authenticated user"); }
Reply author_not_owned() { return Reply(553, "5.7.1", "From: header address not owned by the authenticated user"); }

}  // namespace hikyaku::smtp::protocol::reply

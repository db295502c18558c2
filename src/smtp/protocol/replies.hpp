// Purpose:   The SMTP server's replies as values, in one place, so the texts
//            and codes are consistent and the docs table can be checked
//            against them. Texts never carry configuration details or
//            internal identifiers other than the queue id (STYLE R6).
// Standards: RFC 5321 §4.2 (reply codes), §4.3.2 (command/reply sequences),
//            RFC 3463 (enhanced status codes), RFC 2034 (ENHANCEDSTATUSCODES),
//            RFC 3207 (STARTTLS), RFC 6531 §3.7.4 (SMTPUTF8 errors),
//            RFC 4954 §4-6 (AUTH), RFC 5248 (5.7.8, 5.7.11).
// Trust:     hostname and queue id are ours; nothing from the peer is echoed.
// Concurrency: pure functions.
// Errors:    none.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mail/reply.hpp"

namespace hikyaku::smtp::protocol::reply {

using mail::Reply;

Reply greeting(std::string_view hostname);                  // 220
Reply too_many_connections();                               // 421 4.7.0
Reply access_denied();                                      // 554 5.7.1 (as the greeting)
Reply ehlo(std::string_view hostname, const std::vector<std::string>& extensions);  // 250-...
Reply helo(std::string_view hostname);                      // 250
Reply ok();                                                 // 250 2.0.0 Ok
Reply sender_ok();                                          // 250 2.1.0 Ok
Reply recipient_ok();                                       // 250 2.1.5 Ok
Reply reset_ok();                                           // 250 2.0.0 Ok
Reply start_data();                                         // 354
Reply queued(std::string_view queue_id);                    // 250 2.0.0 Ok: queued as ID
Reply bye();                                                // 221 2.0.0 Bye
Reply bad_sequence(std::string_view what);                  // 503 5.5.1
Reply cannot_vrfy();                                        // 252 2.5.2
Reply help();                                               // 214 2.0.0
Reply not_implemented();                                    // 502 5.5.1
Reply timeout();                                            // 421 4.4.2
Reply too_many_errors();                                    // 421 4.7.0
Reply shutting_down();                                      // 421 4.3.2
Reply line_too_long();                                      // 500 5.5.6
Reply unknown_user();                                       // 550 5.1.1
Reply relay_denied();                                       // 554 5.7.1
Reply too_many_recipients();                                // 452 4.5.3
Reply no_valid_recipients();                                // 554 5.5.1
Reply message_too_big();                                    // 552 5.3.4
Reply header_too_big();                                     // 552 5.3.4
Reply size_declared_too_big();                              // 552 5.3.4 at MAIL
Reply too_many_hops();                                      // 554 5.4.6
Reply bare_lf();                                            // 550 5.5.2
Reply bare_cr();                                            // 550 5.5.2
Reply not_stored();                                         // 451 4.3.0
Reply no_storage();                                         // 452 4.3.1 after DATA
Reply tls_ready();                                          // 220 2.0.0
Reply tls_unavailable();                                    // 454 4.7.0
Reply tls_already_active();                                 // 503 5.5.1
Reply smtputf8_required();                                  // 553 5.6.7
Reply invalid_utf8_address();                               // 553 5.6.7
// Submission (RFC 4954 AUTH, RFC 6409 §6.1 sender checks).
Reply auth_challenge(std::string_view base64);              // 334 (no enhanced code)
Reply auth_ok();                                            // 235 2.7.0
Reply auth_failed();                                        // 535 5.7.8
Reply auth_busy();                                          // 454 4.7.0 (RFC 4954 §6)
Reply auth_required();                                      // 530 5.7.0
Reply auth_needs_tls();                                     // 538 5.7.11
Reply auth_not_offered();                                   // 503 5.5.1
Reply auth_already();                                       // 503 5.5.1
Reply auth_cancelled();                                     // 501 5.7.0
Reply auth_bad_response();                                  // 501 5.5.2
Reply auth_unknown_mechanism();                             // 504 5.5.4
Reply sender_not_owned();                                   // 553 5.7.1 at MAIL
Reply author_not_owned();                                   // 553 5.7.1 after DATA

}  // namespace hikyaku::smtp::protocol::reply

// Purpose:   The POP3 server conversation as a sans-I/O state machine: lines
//            in, reply bytes and "actions" out. Everything that needs I/O or
//            time — TLS handshakes, password verification (argon2id, slow),
//            the failed-login delay, the mailbox lock, reading and deleting
//            Maildir files — is asked of the caller through an Action and
//            answered by calling the matching *_result() method. This keeps
//            the protocol fully unit-testable and fuzzable without Asio.
// Standards: RFC 1939 (§3 states and multi-line responses, §4–6
//            AUTHORIZATION/TRANSACTION/UPDATE, §7 TOP, UIDL, USER/PASS;
//            §8 lock), RFC 2449 (CAPA, RESP-CODES: [IN-USE], [SYS/TEMP],
//            [SYS/PERM]), RFC 3206 ([AUTH], [SYS/*]), RFC 2595 §4 (STLS),
//            RFC 5034 (AUTH, AUTH-RESP-CODE, "*" cancels, "=" empty IR),
//            RFC 4616 (PLAIN).
// Trust:     every line is untrusted. Passwords travel only inside an
//            Action::authenticate and are never part of any reply or log text
//            produced here.
// Concurrency: one StateMachine per connection, used from one coroutine.
// Errors:    protocol errors are "-ERR" replies (values); a caller that
//            answers an action it was not asked for is a bug (HIKYAKU_CHECK).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pop3/protocol/command.hpp"
#include "sasl/login.hpp"

namespace hikyaku::pop3::protocol {

struct Options {
  bool tls_available = false;    // a TLS context exists (STLS can be offered)
  bool tls_active = false;       // implicit TLS (995) or after STLS
  bool allow_plaintext = false;  // config.auth.allow_plaintext
  unsigned max_errors = 10;      // bad commands before the server hangs up
  unsigned max_auth_failures = 3;
  std::string implementation = "hikyaku";
};

// One message of the maildrop as the session saw it at login (RFC 1939 §5:
// numbering is fixed for the whole session).
struct MessageEntry {
  std::string uid;    // the message's name; its UIDL is unique_id(uid)
  uint64_t size = 0;  // wire_size() of the content
};

// RFC 1939 §7: the UIDL of a message named `name` (its Maildir unique
// name). A name that is a valid unique-id (1–70 characters in 0x21–0x7E)
// is its own; another (another program's: longer, or not ASCII) is given
// "x" and 32 hex digits derived from it: the same in every session.
std::string unique_id(std::string_view name);

enum class State { authorization, transaction, update, closed };

enum class LoginOutcome {
  ok,               // credentials good, mailbox locked and listed
  bad_credentials,  // RFC 3206 [AUTH]; the caller has already waited the delay
  in_use,           // RFC 2449 [IN-USE]: another session holds the maildrop
  unavailable,      // RFC 2449 [SYS/TEMP]: the maildrop cannot be read now
};

struct Action {
  enum class Kind {
    none,          // write `reply`, read the next line
    start_tls,     // write `reply` ("+OK"), handshake, then tls_started()
    authenticate,  // verify user/password, lock, list; then login_result()
    retrieve,      // read message `message` (0-based); then message_loaded()
    update,        // RFC 1939 §6: remove `deletions`; then update_done()
    close,         // write `reply`, then close the connection
  };
  Kind kind = Kind::none;
  std::string reply;                   // bytes to write first (may be empty)
  std::string user;                    // authenticate
  std::string password;                // authenticate: secret, never log
  std::string mechanism;               // authenticate: "USER", "PLAIN", "LOGIN"
  bool refused = false;                // authenticate: already failed (foreign
                                       // authzid): skip the check, still delay
  size_t message = 0;                  // retrieve
  std::optional<uint64_t> top_lines;   // retrieve: TOP (empty for RETR)
  std::vector<size_t> deletions;       // update: 0-based indexes
};

class StateMachine {
 public:
  explicit StateMachine(Options options);

  // The server greeting (RFC 1939 §4).
  std::string greeting() const;
  // One client line without CRLF.
  Action on_line(std::string_view line);
  // The client sent a line longer than the session's limit.
  Action line_too_long();

  // Answers to actions.
  void tls_started();
  Action login_result(LoginOutcome outcome, std::vector<MessageEntry> messages = {});
  Action message_loaded(const std::optional<std::string>& content);
  // After Action::retrieve: the message was removed meanwhile (by another
  // program: an IMAP client, mutt). Not a temporary failure: a retry
  // cannot find it.
  Action message_gone();
  Action update_done(bool all_removed);

  State state() const { return state_; }
  const Options& options() const { return options_; }
  // The login name once authenticated (for logs), else empty.
  const std::string& user() const { return user_; }
  // True when a plain-text login is acceptable on this connection now.
  bool plaintext_login_allowed() const;
  // The capability list (RFC 2449 §5) for the current state.
  std::string capabilities() const;

 private:
  enum class Pending { none, tls, login, retrieve, update };
  enum class SaslStep { none, plain, login };

  Action dispatch(const Command& cmd);
  Action in_authorization(const Command& cmd);
  Action in_transaction(const Command& cmd);
  Action on_sasl_line(std::string_view line);
  Action error(std::string text);
  Action start_auth(const Command& cmd);
  Action plain_response(std::string_view response);
  Action login_step(const sasl::LoginExchange::Step& step);
  Action login_result_failure_now();
  Action authenticate(std::string user, std::string password, std::string mechanism);
  // A message number argument that names an existing, undeleted message.
  std::optional<size_t> lookup(std::string_view arg, std::string& err) const;

  Options options_;
  State state_ = State::authorization;
  Pending pending_ = Pending::none;
  SaslStep sasl_ = SaslStep::none;
  sasl::LoginExchange login_exchange_;
  std::optional<std::string> user_arg_;  // USER given, waiting for PASS
  std::string pending_user_;             // login being verified
  std::string user_;
  std::vector<MessageEntry> messages_;
  std::vector<bool> deleted_;
  std::optional<uint64_t> pending_top_;
  size_t pending_message_ = 0;
  unsigned errors_ = 0;
  unsigned auth_failures_ = 0;
};

}  // namespace hikyaku::pop3::protocol

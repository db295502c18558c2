#include "pop3/protocol/state_machine.hpp"

#include <algorithm>
#include <utility>

#include "base/result.hpp"
#include "base/strings.hpp"
#include "pop3/protocol/message.hpp"
#include "sasl/plain.hpp"

namespace hikyaku::pop3::protocol {
namespace {

constexpr std::string_view kCrlf = "\r\n";

Action reply(std::string text, Action::Kind kind = Action::Kind::none) {
  Action a;
  a.kind = kind;
  a.reply = std::move(text);
  a.reply += kCrlf;
  return a;
}

}  // namespace

std::string unique_id(std::string_view name) {
  const bool valid = !name.empty() && name.size() <= 70 && std::all_of(name.begin(), name.end(), [](char c) {
    return static_cast<unsigned char>(c) >= 0x21 && static_cast<unsigned char>(c) <= 0x7e;
  });
  if (valid) return std::string(name);
  // Two 64-bit FNV-1a hashes (forwards and backwards): stable across
  // versions and builds, unlike std::hash; a clash only within one maildrop
  // of such names would matter.
  auto fnv = [](auto first, auto last) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; first != last; ++first) h = (h ^ static_cast<unsigned char>(*first)) * 0x100000001b3ULL;
    return h;
  };
  std::string out = "x";
  for (const uint64_t h : {fnv(name.begin(), name.end()), fnv(name.rbegin(), name.rend())}) {
    for (int shift = 60; shift >= 0; shift -= 4) out += "0123456789abcdef"[(h >> shift) & 0xf];
  }
  return out;
}

StateMachine::StateMachine(Options options) : options_(std::move(options)) {}

std::string StateMachine::greeting() const {
  // RFC 1939 §4: a positive greeting opens the AUTHORIZATION state. No APOP
  // timestamp: APOP needs the clear-text password on the server (we keep
  // argon2id hashes only).
  return "+OK hikyaku POP3 ready\r\n";
}

bool StateMachine::plaintext_login_allowed() const {
  // RFC 2595 §2.3 / RFC 8314 §3: clear-text passwords only under TLS unless
  // the operator explicitly allows them.
  return options_.tls_active || options_.allow_plaintext;
}

std::string StateMachine::capabilities() const {
  // RFC 2449 §5: one capability per line; the list may depend on the state.
  std::string caps = "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n";
  if (state_ == State::authorization) {
    // RFC 2449 §6.8: USER is listed only when USER/PASS would be accepted.
    if (plaintext_login_allowed()) caps += "USER\r\nSASL PLAIN LOGIN\r\n";
    // RFC 2595 §4: STLS only before TLS and before login.
    if (options_.tls_available && !options_.tls_active) caps += "STLS\r\n";
  }
  caps += "IMPLEMENTATION " + options_.implementation + "\r\n";
  return caps;
}

Action StateMachine::error(std::string text) {
  ++errors_;
  if (errors_ >= options_.max_errors) {
    state_ = State::closed;
    return reply("-ERR too many errors, closing connection", Action::Kind::close);
  }
  return reply(std::move(text));
}

Action StateMachine::line_too_long() {
  HIKYAKU_CHECK(pending_ == Pending::none);
  sasl_ = SaslStep::none;
  return error("-ERR line too long");
}

Action StateMachine::on_line(std::string_view line) {
  HIKYAKU_CHECK(pending_ == Pending::none);
  if (state_ == State::closed || state_ == State::update) {
    Action closed;
    closed.kind = Action::Kind::close;
    return closed;
  }
  if (sasl_ != SaslStep::none) return on_sasl_line(line);
  return dispatch(parse_command(line));
}

Action StateMachine::dispatch(const Command& cmd) {
  switch (cmd.verb) {
    case Verb::unknown:
      return error("-ERR unknown command");
    case Verb::capa:  // RFC 2449 §5: valid in every state
      return reply("+OK capability list follows\r\n" + capabilities() + ".");
    case Verb::quit:
      if (state_ == State::transaction) {
        // RFC 1939 §6: QUIT from TRANSACTION enters UPDATE; only now are
        // messages marked with DELE removed.
        std::vector<size_t> deletions;
        for (size_t i = 0; i < deleted_.size(); ++i) {
          if (deleted_[i]) deletions.push_back(i);
        }
        state_ = State::update;
        if (deletions.empty()) return update_done(true);
        pending_ = Pending::update;
        Action a;
        a.kind = Action::Kind::update;
        a.deletions = std::move(deletions);
        return a;
      }
      // RFC 1939 §4: QUIT in AUTHORIZATION closes without an UPDATE state.
      state_ = State::closed;
      return reply("+OK hikyaku POP3 server signing off", Action::Kind::close);
    default:
      break;
  }
  if (state_ == State::authorization) return in_authorization(cmd);
  return in_transaction(cmd);
}

Action StateMachine::in_authorization(const Command& cmd) {
  switch (cmd.verb) {
    case Verb::user:
      // RFC 1939 §7 USER; RFC 2595 §2.3: refuse before the password is sent.
      if (!plaintext_login_allowed()) {
        user_arg_.reset();
        return error("-ERR [AUTH] Plaintext authentication disallowed on a non-TLS connection" +
                     std::string(options_.tls_available ? ", use STLS" : ""));
      }
      if (cmd.args.size() != 1) return error("-ERR syntax: USER name");
      user_arg_ = cmd.args[0];
      return reply("+OK send PASS");
    case Verb::pass: {
      // RFC 1939 §7 PASS: only right after a successful USER. The password is
      // the whole rest of the line: "a POP3 server may treat spaces in the
      // argument as part of the password".
      if (!user_arg_) return error("-ERR send USER first");
      std::string user = std::move(*user_arg_);
      user_arg_.reset();
      if (!plaintext_login_allowed()) return error("-ERR [AUTH] Plaintext authentication disallowed");
      if (cmd.rest.empty()) return error("-ERR syntax: PASS password");
      return authenticate(std::move(user), cmd.rest, "USER");
    }
    case Verb::apop:
      user_arg_.reset();
      return error("-ERR APOP is not supported");
    case Verb::auth:
      user_arg_.reset();
      return start_auth(cmd);
    case Verb::stls:
      // RFC 2595 §4: STLS only in AUTHORIZATION, once, when TLS is set up.
      if (options_.tls_active) return error("-ERR TLS is already active");
      if (!options_.tls_available) return error("-ERR STLS is not available");
      if (!cmd.args.empty()) return error("-ERR syntax: STLS");
      pending_ = Pending::tls;
      return reply("+OK begin TLS negotiation", Action::Kind::start_tls);
    default:
      // RFC 1939 §4: TRANSACTION commands need a successful login first.
      return error("-ERR not logged in");
  }
}

Action StateMachine::start_auth(const Command& cmd) {
  if (cmd.args.empty()) {
    // Not in RFC 5034, but Outlook and others send a bare AUTH to list the
    // mechanisms (the "draft" AUTH of RFC 1734 §2 usage).
    if (!plaintext_login_allowed()) return reply("+OK\r\n.");
    return reply("+OK\r\nPLAIN\r\nLOGIN\r\n.");
  }
  if (cmd.args.size() > 2) return error("-ERR syntax: AUTH mechanism [initial-response]");
  std::string mechanism = base::to_upper(cmd.args[0]);
  if (mechanism != "PLAIN" && mechanism != "LOGIN") {
    return error("-ERR unsupported authentication mechanism");
  }
  if (!plaintext_login_allowed()) {
    return error("-ERR [AUTH] Plaintext authentication disallowed on a non-TLS connection" +
                 std::string(options_.tls_available ? ", use STLS" : ""));
  }
  if (mechanism == "PLAIN") {
    // RFC 5034 §4: an initial response saves a round trip; without one the
    // server sends an empty challenge "+ ".
    if (cmd.args.size() == 2) return plain_response(cmd.args[1]);
    sasl_ = SaslStep::plain;
    Action a;
    a.reply = "+ \r\n";
    return a;
  }
  if (cmd.args.size() == 2) return login_step(login_exchange_.start(cmd.args[1]));
  return login_step(login_exchange_.start());
}

Action StateMachine::on_sasl_line(std::string_view line) {
  auto step = sasl_;
  sasl_ = SaslStep::none;
  if (step == SaslStep::plain) return plain_response(line);
  return login_step(login_exchange_.respond(line));
}

Action StateMachine::plain_response(std::string_view response) {
  // RFC 5034 §4: "*" cancels; the server MUST answer -ERR.
  if (sasl::is_cancel(response)) return error("-ERR authentication cancelled");
  auto creds = sasl::decode_plain(response);
  if (!creds) return error("-ERR [AUTH] malformed PLAIN response");
  // RFC 4616 §2: we do not support acting as someone else (proxy logins).
  // The failure still goes through the session (refused = true) so that it
  // gets the same failure delay as a wrong password.
  if (!creds->authzid.empty() && creds->authzid != creds->authcid) {
    auto a = authenticate(std::move(creds->authcid), {}, "PLAIN");
    a.refused = true;
    return a;
  }
  return authenticate(std::move(creds->authcid), std::move(creds->password), "PLAIN");
}

Action StateMachine::login_step(const sasl::LoginExchange::Step& step) {
  using Kind = sasl::LoginExchange::Step::Kind;
  switch (step.kind) {
    case Kind::challenge:
      sasl_ = SaslStep::login;
      return reply("+ " + step.challenge);
    case Kind::done:
      return authenticate(login_exchange_.user(), login_exchange_.password(), "LOGIN");
    case Kind::cancelled:
      return error("-ERR authentication cancelled");
    case Kind::error:
      break;
  }
  return error("-ERR [AUTH] malformed LOGIN response");
}

Action StateMachine::authenticate(std::string user, std::string password, std::string mechanism) {
  pending_ = Pending::login;
  pending_user_ = user;
  Action a;
  a.kind = Action::Kind::authenticate;
  a.user = std::move(user);
  a.password = std::move(password);
  a.mechanism = std::move(mechanism);
  return a;
}

Action StateMachine::login_result(LoginOutcome outcome, std::vector<MessageEntry> messages) {
  HIKYAKU_CHECK(pending_ == Pending::login);
  pending_ = Pending::none;
  switch (outcome) {
    case LoginOutcome::ok: {
      // RFC 1939 §4: maildrop locked, enter TRANSACTION.
      state_ = State::transaction;
      user_ = std::move(pending_user_);
      messages_ = std::move(messages);
      for (auto& m : messages_) m.uid = unique_id(m.uid);
      deleted_.assign(messages_.size(), false);
      uint64_t total = 0;
      for (const auto& m : messages_) total += m.size;
      return reply("+OK maildrop has " + std::to_string(messages_.size()) + " messages (" +
                   std::to_string(total) + " octets)");
    }
    case LoginOutcome::bad_credentials:
      return login_result_failure_now();
    case LoginOutcome::in_use:
      // RFC 2449 §8.1.1 [IN-USE]; RFC 1939 §8: one session per maildrop.
      return reply("-ERR [IN-USE] maildrop is locked by another session");
    case LoginOutcome::unavailable:
      return reply("-ERR [SYS/TEMP] maildrop is unavailable, try again later");
  }
  return reply("-ERR [SYS/TEMP] internal error");
}

Action StateMachine::login_result_failure_now() {
  // RFC 3206 §4 [AUTH]: the credentials were wrong; no hint which part.
  ++auth_failures_;
  if (auth_failures_ >= options_.max_auth_failures) {
    state_ = State::closed;
    return reply("-ERR [AUTH] authentication failed, closing connection", Action::Kind::close);
  }
  return reply("-ERR [AUTH] authentication failed");
}

std::optional<size_t> StateMachine::lookup(std::string_view arg, std::string& err) const {
  auto n = parse_message_number(arg);
  if (!n) {
    err = "-ERR invalid message number";
    return std::nullopt;
  }
  if (*n > messages_.size()) {
    err = "-ERR no such message";
    return std::nullopt;
  }
  size_t index = static_cast<size_t>(*n - 1);
  // RFC 1939 §5: a deleted message may not be referenced.
  if (deleted_[index]) {
    err = "-ERR message " + std::to_string(*n) + " already deleted";
    return std::nullopt;
  }
  return index;
}

Action StateMachine::in_transaction(const Command& cmd) {
  std::string err;
  switch (cmd.verb) {
    case Verb::stat: {  // RFC 1939 §5 STAT: deleted messages are not counted
      if (!cmd.args.empty()) return error("-ERR syntax: STAT");
      uint64_t count = 0, total = 0;
      for (size_t i = 0; i < messages_.size(); ++i) {
        if (deleted_[i]) continue;
        ++count;
        total += messages_[i].size;
      }
      return reply("+OK " + std::to_string(count) + " " + std::to_string(total));
    }
    case Verb::list:
    case Verb::uidl: {  // RFC 1939 §5 LIST, §7 UIDL
      bool uidl = cmd.verb == Verb::uidl;
      auto field = [&](size_t i) {
        return uidl ? messages_[i].uid : std::to_string(messages_[i].size);
      };
      if (cmd.args.size() > 1) return error(uidl ? "-ERR syntax: UIDL [msg]" : "-ERR syntax: LIST [msg]");
      if (cmd.args.size() == 1) {
        auto index = lookup(cmd.args[0], err);
        if (!index) return error(err);
        return reply("+OK " + std::to_string(*index + 1) + " " + field(*index));
      }
      std::string out = uidl ? "+OK unique-id listing follows\r\n" : "+OK scan listing follows\r\n";
      for (size_t i = 0; i < messages_.size(); ++i) {
        if (deleted_[i]) continue;
        out += std::to_string(i + 1) + " " + field(i) + "\r\n";
      }
      out += ".";
      return reply(std::move(out));
    }
    case Verb::retr:
    case Verb::top: {  // RFC 1939 §5 RETR, §7 TOP
      bool top = cmd.verb == Verb::top;
      if (cmd.args.size() != (top ? 2u : 1u)) {
        return error(top ? "-ERR syntax: TOP msg n" : "-ERR syntax: RETR msg");
      }
      auto index = lookup(cmd.args[0], err);
      if (!index) return error(err);
      std::optional<uint64_t> lines;
      if (top) {
        lines = parse_line_count(cmd.args[1]);
        if (!lines) return error("-ERR invalid line count");
      }
      pending_ = Pending::retrieve;
      pending_message_ = *index;
      pending_top_ = lines;
      Action a;
      a.kind = Action::Kind::retrieve;
      a.message = *index;
      a.top_lines = lines;
      return a;
    }
    case Verb::dele: {  // RFC 1939 §5 DELE: only marked; removed in UPDATE
      if (cmd.args.size() != 1) return error("-ERR syntax: DELE msg");
      auto index = lookup(cmd.args[0], err);
      if (!index) return error(err);
      deleted_[*index] = true;
      return reply("+OK message " + std::to_string(*index + 1) + " deleted");
    }
    case Verb::noop:  // RFC 1939 §5 NOOP
      return reply("+OK");
    case Verb::rset: {  // RFC 1939 §5 RSET: unmark every deleted message
      deleted_.assign(messages_.size(), false);
      uint64_t total = 0;
      for (const auto& m : messages_) total += m.size;
      return reply("+OK maildrop has " + std::to_string(messages_.size()) + " messages (" +
                   std::to_string(total) + " octets)");
    }
    default:
      // USER, PASS, AUTH, STLS, APOP: AUTHORIZATION only (RFC 1939 §4,
      // RFC 2595 §4).
      return error("-ERR command not valid in this state");
  }
}

Action StateMachine::message_loaded(const std::optional<std::string>& content) {
  HIKYAKU_CHECK(pending_ == Pending::retrieve);
  pending_ = Pending::none;
  if (!content) return reply("-ERR [SYS/TEMP] message could not be read");
  Action a;
  if (pending_top_) {
    a.reply = "+OK top of message follows\r\n";
  } else {
    // RFC 1939 §5 RETR: the octet count is that of the message as sent.
    a.reply = "+OK " + std::to_string(wire_size(*content)) + " octets\r\n";
  }
  a.reply += render_message(*content, pending_top_);
  return a;
}

Action StateMachine::message_gone() {
  HIKYAKU_CHECK(pending_ == Pending::retrieve);
  pending_ = Pending::none;
  return reply("-ERR message was removed by another program since login");
}

Action StateMachine::update_done(bool all_removed) {
  HIKYAKU_CHECK(state_ == State::update);
  pending_ = Pending::none;
  state_ = State::closed;
  uint64_t left = 0;
  for (size_t i = 0; i < deleted_.size(); ++i) {
    if (!deleted_[i]) ++left;
  }
  // RFC 1939 §6: -ERR when some deleted message could not be removed.
  if (!all_removed) {
    return reply("-ERR [SYS/TEMP] some deleted messages not removed", Action::Kind::close);
  }
  return reply("+OK hikyaku POP3 server signing off (" + std::to_string(left) + " messages left)",
               Action::Kind::close);
}

void StateMachine::tls_started() {
  HIKYAKU_CHECK(pending_ == Pending::tls);
  pending_ = Pending::none;
  // RFC 2595 §4: the session restarts its AUTHORIZATION negotiation.
  options_.tls_active = true;
  user_arg_.reset();
  sasl_ = SaslStep::none;
}

}  // namespace hikyaku::pop3::protocol

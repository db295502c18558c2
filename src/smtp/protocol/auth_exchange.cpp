#include "smtp/protocol/auth_exchange.hpp"

#include "base/strings.hpp"
#include "sasl/plain.hpp"
#include "smtp/protocol/replies.hpp"

namespace hikyaku::smtp::protocol {

namespace {
using Kind = AuthExchange::Step::Kind;

AuthExchange::Step refuse(mail::Reply reply) { return {Kind::refuse, std::move(reply), false}; }
}  // namespace

AuthExchange::Step AuthExchange::start(std::string_view argument) {
  argument = base::trim(argument);
  const size_t space = argument.find(' ');
  const std::string_view name = argument.substr(0, space);
  std::string_view initial;
  bool has_initial = false;
  if (space != std::string_view::npos) {
    initial = base::trim(argument.substr(space + 1));
    has_initial = true;
    // RFC 4954 §4: one mechanism and at most one initial response.
    if (initial.empty() || initial.find(' ') != std::string_view::npos) {
      phase_ = Phase::finished;
      return refuse(mail::Reply(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]"));
    }
  }
  if (name.empty()) {
    phase_ = Phase::finished;
    return refuse(mail::Reply(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]"));
  }
  if (base::iequals(name, "PLAIN")) {
    mechanism_ = "PLAIN";
    // RFC 4954 §4: without an initial response the server sends an empty
    // challenge ("334 ") and the client answers with the whole message.
    if (!has_initial) {
      phase_ = Phase::plain;
      return {Kind::challenge, reply::auth_challenge(""), false};
    }
    return plain(initial);
  }
  if (base::iequals(name, "LOGIN")) {
    mechanism_ = "LOGIN";
    phase_ = Phase::login;
    return login(has_initial ? login_.start(initial) : login_.start());
  }
  phase_ = Phase::finished;
  return refuse(reply::auth_unknown_mechanism());
}

AuthExchange::Step AuthExchange::respond(std::string_view line) {
  switch (phase_) {
    case Phase::plain: return plain(line);
    case Phase::login: return login(login_.respond(line));
    case Phase::idle:
    case Phase::finished: break;
  }
  phase_ = Phase::finished;
  return refuse(mail::Reply(503, "5.5.1", "Error: no AUTH exchange in progress"));
}

AuthExchange::Step AuthExchange::plain(std::string_view response) {
  phase_ = Phase::finished;
  // RFC 4954 §4: "*" cancels: 501.
  if (sasl::is_cancel(response)) return refuse(reply::auth_cancelled());
  auto creds = sasl::decode_plain(response);
  if (!creds) return refuse(reply::auth_bad_response());
  // RFC 4616 §2: acting as someone else (authzid ≠ authcid) is not offered;
  // it fails like a wrong password (same delay, same 535).
  const bool proxy = !creds->authzid.empty() && creds->authzid != creds->authcid;
  std::string password = proxy ? std::string() : std::move(creds->password);
  base::wipe(creds->password);
  return verify(std::move(creds->authcid), std::move(password), proxy);
}

AuthExchange::Step AuthExchange::login(const sasl::LoginExchange::Step& step) {
  using LoginKind = sasl::LoginExchange::Step::Kind;
  switch (step.kind) {
    case LoginKind::challenge:
      return {Kind::challenge, reply::auth_challenge(step.challenge), false};
    case LoginKind::done: {
      phase_ = Phase::finished;
      return verify(login_.user(), login_.take_password(), false);
    }
    case LoginKind::cancelled:
      phase_ = Phase::finished;
      return refuse(reply::auth_cancelled());
    case LoginKind::error:
      break;
  }
  phase_ = Phase::finished;
  return refuse(reply::auth_bad_response());
}

AuthExchange::Step AuthExchange::verify(std::string user, std::string password, bool refused) {
  user_ = std::move(user);
  password_ = std::move(password);
  return {Kind::verify, {}, refused};
}

}  // namespace hikyaku::smtp::protocol

#include "smtp/protocol/command.hpp"

#include <array>
#include <utility>

#include "base/strings.hpp"

namespace hikyaku::smtp::protocol {
namespace {

struct VerbEntry {
  std::string_view name;
  Verb verb;
};

constexpr std::array<VerbEntry, 14> kVerbs{{
    {"EHLO", Verb::ehlo}, {"HELO", Verb::helo}, {"MAIL", Verb::mail}, {"RCPT", Verb::rcpt},
    {"DATA", Verb::data}, {"RSET", Verb::rset}, {"NOOP", Verb::noop}, {"QUIT", Verb::quit},
    {"VRFY", Verb::vrfy}, {"EXPN", Verb::expn}, {"HELP", Verb::help}, {"STARTTLS", Verb::starttls},
    {"AUTH", Verb::auth}, {"BDAT", Verb::bdat},
}};

ParsedCommand fail(int code, std::string status, std::string text, std::string reason) {
  ParsedCommand r;
  r.error = mail::Reply(code, std::move(status), std::move(text));
  r.reason = std::move(reason);
  return r;
}

ParsedCommand syntax(std::string_view usage) {
  return fail(501, "5.5.4", "Syntax: " + std::string(usage), "bad arguments");
}

// Octets a command line may carry: printable ASCII, space, HTAB, and UTF-8
// (RFC 6531 §3.3 allows it in paths; elsewhere it is harmless text).
bool clean_text(std::string_view s) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && u != '\t') || u == 0x7f) return false;
  }
  return true;
}

std::string_view trim_right(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string_view trim_left(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

// RFC 5321 §4.1.2 Mail-parameters / Rcpt-parameters: esmtp-keyword ["=" esmtp-value].
// Returns false with `out` set to the error when a parameter is malformed or
// unsupported (RFC 5321 §4.1.1.11: 555 for unrecognised parameters).
bool parse_mail_parameters(std::string_view rest, MailParameters& params, ParsedCommand& out) {
  bool seen_size = false, seen_body = false, seen_utf8 = false;
  for (auto word : base::split_words(rest)) {
    auto eq = word.find('=');
    auto key = word.substr(0, eq);
    std::optional<std::string_view> value;
    if (eq != std::string_view::npos) value = word.substr(eq + 1);
    if (base::iequals(key, "SIZE")) {
      // RFC 1870 §6: SIZE=<decimal octets>.
      std::optional<uint64_t> n;
      if (value) n = base::parse_uint(*value);
      if (!n || seen_size) {
        out = fail(501, "5.5.4", "Bad SIZE parameter", "bad SIZE");
        return false;
      }
      seen_size = true;
      params.size = *n;
    } else if (base::iequals(key, "BODY")) {
      // RFC 6152 §2: BODY=7BIT | BODY=8BITMIME. BINARYMIME (RFC 3030) is not offered.
      if (!value || seen_body) {
        out = fail(501, "5.5.4", "Bad BODY parameter", "bad BODY");
        return false;
      }
      if (base::iequals(*value, "7BIT")) {
        params.body = BodyType::seven_bit;
      } else if (base::iequals(*value, "8BITMIME")) {
        params.body = BodyType::eight_bit_mime;
      } else {
        out = fail(555, "5.5.4", "Unsupported BODY type", "BODY=" + std::string(*value));
        return false;
      }
      seen_body = true;
    } else if (base::iequals(key, "SMTPUTF8")) {
      // RFC 6531 §3.4: the parameter takes no value.
      if (value || seen_utf8) {
        out = fail(501, "5.5.4", "Bad SMTPUTF8 parameter", "bad SMTPUTF8");
        return false;
      }
      seen_utf8 = true;
      params.smtputf8 = true;
    } else if (base::iequals(key, "AUTH")) {
      // RFC 4954 §5: AUTH=<mailbox as xtext> or AUTH=<>, the identity that
      // submitted the message originally. Accepted and not trusted: we
      // never pass it on (§5 allows that), so its value is not decoded.
      if (!value || value->empty() || params.auth) {
        out = fail(501, "5.5.4", "Bad AUTH parameter", "bad AUTH");
        return false;
      }
      params.auth = true;
    } else {
      out = fail(555, "5.5.4", "Unsupported parameter", "parameter " + std::string(key));
      return false;
    }
  }
  return true;
}

}  // namespace

std::string_view verb_name(Verb v) {
  for (const auto& e : kVerbs)
    if (e.verb == v) return e.name;
  return "UNKNOWN";
}

ParsedCommand parse_command(std::string_view line) {
  ParsedCommand result;
  line = trim_right(line);

  // Split the verb: RFC 5321 §4.1.1 verbs are case-insensitive, followed by SP.
  auto space = line.find(' ');
  auto verb_text = line.substr(0, space);
  std::string_view arg = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
  Verb verb = Verb::unknown;
  for (const auto& e : kVerbs)
    if (base::iequals(verb_text, e.name)) verb = e.verb;
  if (verb == Verb::unknown) {
    // RFC 5321 §4.2.4: 500 for an unrecognised command.
    return fail(500, "5.5.2", "Command not recognized", "unknown command");
  }
  if (!clean_text(arg)) {
    return fail(501, "5.5.2", "Invalid character in command", "control character in arguments");
  }
  Command cmd;
  cmd.verb = verb;
  arg = trim_left(arg);

  switch (verb) {
    case Verb::ehlo:
    case Verb::helo: {
      // RFC 5321 §4.1.1.1: "EHLO" SP ( Domain / address-literal ). We take the
      // first word and do not insist on a resolvable name (§4.1.4: MUST NOT
      // refuse because of a mismatching name).
      auto words = base::split_words(arg);
      if (words.empty() || words.front().size() > 255)
        return syntax(verb == Verb::ehlo ? "EHLO hostname" : "HELO hostname");
      cmd.argument = std::string(words.front());
      break;
    }
    case Verb::mail: {
      // RFC 5321 §4.1.1.2: "MAIL FROM:" Reverse-path [SP Mail-parameters].
      // A space after the colon is tolerated, as every MTA does.
      if (!base::istarts_with(arg, "FROM:")) return syntax("MAIL FROM:<address>");
      auto rest = trim_left(arg.substr(5));
      auto path = mail::parse_path(rest, /*allow_null=*/true, /*utf8=*/true);
      if (!path.ok) return fail(501, "5.1.7", "Bad sender address syntax", "bad reverse-path");
      if (!path.rest.empty() && path.rest.front() != ' ') return syntax("MAIL FROM:<address>");
      cmd.path = path.address;
      if (!parse_mail_parameters(path.rest, cmd.params, result)) return result;
      break;
    }
    case Verb::rcpt: {
      // RFC 5321 §4.1.1.3: "RCPT TO:" ( "<Postmaster@" Domain ">" /
      // "<Postmaster>" / Forward-path ) [SP Rcpt-parameters].
      if (!base::istarts_with(arg, "TO:")) return syntax("RCPT TO:<address>");
      auto rest = trim_left(arg.substr(3));
      std::string_view tail;
      if (base::istarts_with(rest, "<postmaster>")) {
        cmd.path = mail::Address{"postmaster", ""};  // the session supplies our domain
        tail = rest.substr(12);
      } else {
        auto path = mail::parse_path(rest, /*allow_null=*/false, /*utf8=*/true);
        if (!path.ok) return fail(501, "5.1.3", "Bad recipient address syntax", "bad forward-path");
        cmd.path = path.address;
        tail = path.rest;
      }
      if (!tail.empty() && tail.front() != ' ') return syntax("RCPT TO:<address>");
      // We offer no RCPT parameters (no DSN, RFC 3461): §4.1.1.11 → 555.
      if (!trim_left(tail).empty())
        return fail(555, "5.5.4", "Unsupported parameter", "RCPT parameter");
      break;
    }
    case Verb::data:
    case Verb::rset:
    case Verb::quit:
    case Verb::starttls:
      // RFC 5321 §4.1.1.4/.5/.10, RFC 3207 §4: no arguments.
      if (!arg.empty()) return syntax(verb_name(verb));
      break;
    case Verb::vrfy:
    case Verb::expn:
      if (arg.empty()) return syntax(std::string(verb_name(verb)) + " address");
      cmd.argument = std::string(arg);
      break;
    case Verb::noop:   // RFC 5321 §4.1.1.9: an argument is allowed and ignored
    case Verb::help:   // §4.1.1.8
    case Verb::auth:   // recognised so the session can say "not available"
    case Verb::bdat:
    case Verb::unknown:
      cmd.argument = std::string(arg);
      break;
  }
  result.command = std::move(cmd);
  return result;
}

}  // namespace hikyaku::smtp::protocol

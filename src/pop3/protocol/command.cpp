#include "pop3/protocol/command.hpp"

#include <array>
#include <limits>
#include <utility>

#include "base/strings.hpp"

namespace hikyaku::pop3::protocol {
namespace {

constexpr std::array<std::pair<std::string_view, Verb>, 15> kVerbs{{
    {"USER", Verb::user}, {"PASS", Verb::pass}, {"APOP", Verb::apop}, {"AUTH", Verb::auth},
    {"STLS", Verb::stls}, {"CAPA", Verb::capa}, {"QUIT", Verb::quit}, {"STAT", Verb::stat},
    {"LIST", Verb::list}, {"RETR", Verb::retr}, {"DELE", Verb::dele}, {"NOOP", Verb::noop},
    {"RSET", Verb::rset}, {"TOP", Verb::top},   {"UIDL", Verb::uidl},
}};

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

Command parse_command(std::string_view line) {
  Command cmd;
  // RFC 1939 §3: keyword, then arguments after single spaces. Clients
  // sometimes send trailing blanks; tolerate them (robustness principle).
  auto space = line.find(' ');
  std::string_view keyword = line.substr(0, space);
  if (space != std::string_view::npos) cmd.rest = std::string(line.substr(space + 1));
  for (auto w : base::split_words(cmd.rest)) cmd.args.emplace_back(w);
  // RFC 1939 §3: keywords are three or four characters long.
  if (keyword.size() < 3 || keyword.size() > 4) {
    cmd.keyword = base::to_upper(keyword.substr(0, 16));
    return cmd;
  }
  cmd.keyword = base::to_upper(keyword);
  for (const auto& [name, verb] : kVerbs) {
    if (cmd.keyword == name) {
      cmd.verb = verb;
      break;
    }
  }
  return cmd;
}

std::optional<uint64_t> parse_message_number(std::string_view text) {
  if (!all_digits(text)) return std::nullopt;
  auto n = base::parse_uint(text);
  if (!n || *n == 0) return std::nullopt;
  return n;
}

std::optional<uint64_t> parse_line_count(std::string_view text) {
  if (!all_digits(text)) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10) {
      return std::numeric_limits<uint64_t>::max();  // saturate: "all lines"
    }
    value = value * 10 + digit;
  }
  return value;
}

}  // namespace hikyaku::pop3::protocol

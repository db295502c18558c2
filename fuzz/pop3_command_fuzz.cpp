// libFuzzer target: POP3 command lines through the sans-I/O state machine
// (src/pop3/protocol). The first byte picks the connection options; the rest
// is split into lines fed to the machine; every action is answered by a tiny
// fake maildrop built from the same input. Invariants checked: every reply
// ends in CRLF, a rendered message ends in exactly one ".\r\n" terminator and
// contains no earlier terminator line, and sizes match wire_size().
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "pop3/protocol/command.hpp"
#include "pop3/protocol/message.hpp"
#include "pop3/protocol/state_machine.hpp"

using namespace hikyaku::pop3::protocol;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void check_rendered(std::string_view content, std::optional<uint64_t> top) {
  std::string out = render_message(content, top);
  check(out.size() >= 3 && out.substr(out.size() - 3) == ".\r\n");
  // The terminator line may only appear at the very end (byte-stuffing).
  auto pos = out.find("\r\n.\r\n");
  check(pos == std::string::npos || pos + 5 == out.size());
  check(out.rfind(".\r\n", 0) != 0 || out.size() == 3);
  if (!top) {
    // Unstuffed payload size equals wire_size().
    uint64_t dots = 0;
    bool line_start = true;
    for (size_t i = 0; i + 3 < out.size(); ++i) {
      if (line_start && out[i] == '.') ++dots;
      line_start = out[i] == '\n';
    }
    check(out.size() - 3 - dots == wire_size(content));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  uint8_t flags = static_cast<uint8_t>(input[0]);
  input.remove_prefix(1);

  Options options;
  options.tls_available = flags & 1;
  options.tls_active = flags & 2;
  options.allow_plaintext = flags & 4;
  options.max_errors = 1 + (flags >> 4);

  // The maildrop: the input itself, cut into three messages.
  std::vector<std::string> contents{std::string(input.substr(0, input.size() / 3)),
                                    std::string(input.substr(input.size() / 3)), ""};
  for (const auto& c : contents) check_rendered(c, std::nullopt);
  check_rendered(contents[0], 0);
  check_rendered(contents[1], 2);

  StateMachine sm(options);
  size_t pos = 0;
  while (pos < input.size() && sm.state() != State::closed) {
    auto lf = input.find('\n', pos);
    std::string_view line = input.substr(pos, lf == std::string_view::npos ? std::string_view::npos : lf - pos);
    pos = lf == std::string_view::npos ? input.size() : lf + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

    Action a = line.size() > 512 ? sm.line_too_long() : sm.on_line(line);
    for (int guard = 0; guard < 8; ++guard) {
      check(a.reply.empty() || a.reply.substr(a.reply.size() - 2) == "\r\n");
      if (a.kind == Action::Kind::authenticate) {
        bool good = !a.refused && a.user == "alice" && a.password == "pw";
        if (!good) {
          a = sm.login_result(LoginOutcome::bad_credentials);
        } else {
          std::vector<MessageEntry> entries;
          for (size_t i = 0; i < contents.size(); ++i) {
            entries.push_back({"uid" + std::to_string(i), wire_size(contents[i])});
          }
          a = sm.login_result((flags & 8) ? LoginOutcome::in_use : LoginOutcome::ok, entries);
        }
        continue;
      }
      if (a.kind == Action::Kind::retrieve) {
        check(a.message < contents.size());
        a = sm.message_loaded(contents[a.message]);
        continue;
      }
      if (a.kind == Action::Kind::update) {
        for (size_t d : a.deletions) check(d < contents.size());
        a = sm.update_done(true);
        continue;
      }
      if (a.kind == Action::Kind::start_tls) sm.tls_started();
      break;
    }
  }
  return 0;
}

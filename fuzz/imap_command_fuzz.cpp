// libFuzzer target: IMAP client input through the sans-I/O framer, parser
// and engine (src/imap/protocol) over an in-memory mailbox. The first byte
// picks the connection options (bits 0-2: TLS offered, TLS active,
// plaintext allowed; bit 3: the mailbox is unavailable at login; bits 4-6:
// the error limit; bit 7: start in the selected state — "a LOGIN alice pw"
// and "b SELECT INBOX" run first, so the input goes to the commands of the
// authenticated and selected states instead of LOGIN's arguments). The rest
// is fed to the framer in two chunks; every framed command goes to the
// engine and every action is answered at once (login: alice/pw). The
// message bodies are cut from the input too, so FETCH
// BODY[...]/BINARY[...]/BODYSTRUCTURE/ENVELOPE, SEARCH, SORT and THREAD
// parse hostile MIME and headers; APPEND (one message or several, literal8
// and CATENATE too) stores it.
// Invariants: every reply is empty or ends in CRLF, the message
// functions never read outside their input (ASan), and base64 encoding
// then decoding gives the input back.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "imap/protocol/command.hpp"
#include "imap/protocol/engine.hpp"
#include "imap/protocol/framer.hpp"
#include "imap/protocol/message.hpp"
#include "imap/protocol/response.hpp"
#include "imap/protocol/thread.hpp"
#include "mail/transfer_encoding.hpp"

using namespace hikyaku::imap::protocol;
using hikyaku::mail::decode_base64_body;
using hikyaku::mail::decode_quoted_printable_body;
using hikyaku::mail::encode_base64_body;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void check_reply(const std::string& r) { check(r.empty() || r.ends_with("\r\n")); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  uint8_t flags = static_cast<uint8_t>(input[0]);
  input.remove_prefix(1);

  // The message functions directly, on the whole input.
  (void)envelope(input);
  (void)body_structure(input, true);
  Section s;
  s.part = {1, 2};
  (void)section_text(input, s);
  s.text = Section::Text::mime;
  (void)section_text(input, s);
  // SORT's values (RFC 5256, RFC 5957) and RFC 2047 decoding, on the whole
  // input as a header value.
  (void)decode_encoded_words(input);
  (void)base_subject(input);
  (void)first_mailbox(input);
  (void)first_display_name(input);
  (void)parse_rfc5322_date_time(input);
  // THREAD (RFC 5256): the msg-ids of the input as a header value.
  (void)message_ids(input);
  // RFC 3516 BINARY: the transfer decoders, the decoded parts and the
  // base64 re-encoding of binary parts (APPEND of a literal8), whose result
  // must hold no NUL in a part it re-encoded and still parse.
  (void)decode_base64_body(input);
  (void)decode_quoted_printable_body(input);
  check(decode_base64_body(encode_base64_body(input)) == input);
  (void)binary_section(input, {});
  (void)binary_section(input, {1});
  (void)binary_section(input, {2, 1});
  (void)parse_imap_url(input);  // RFC 4469 CATENATE URLs
  const std::string stored = encode_binary_parts(input);
  (void)binary_section(stored, {1});
  (void)body_structure(stored, true);

  Options options;
  options.tls_available = flags & 1;
  options.tls_active = flags & 2;
  options.allow_plaintext = flags & 4;
  options.max_errors = 1 + ((flags >> 4) & 7);
  const bool start_selected = flags & 0x80;
  if (start_selected) options.allow_plaintext = true;
  Engine engine(options);
  auto account = std::make_unique<MemoryAccount>();
  account->quota_limit = 8192;  // GETQUOTA has a root, and a large APPEND or COPY goes over it
  MemoryStore* store = &account->inbox();
  (void)account->create("Sent", "\\Sent");
  (void)account->create("a/b", "");
  store->add(std::string(input.substr(0, input.size() / 2)));
  store->add(std::string(input.substr(input.size() / 2)), kSeen);
  store->add("Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n");
  if (start_selected) {
    Action a = engine.on_input("a LOGIN alice pw");
    check(a.kind == Action::Kind::authenticate);
    check_reply(engine.login_result(LoginOutcome::ok, std::move(account)).reply);
    check(engine.state() == State::authenticated);
    check_reply(engine.on_input("b SELECT INBOX").reply);
    check(engine.state() == State::selected);
  }

  Framer framer(512, 4096);
  size_t half = input.size() / 2;
  for (std::string_view chunk : {input.substr(0, half), input.substr(half)}) {
    framer.append(chunk);
    for (int guard = 0; guard < 10000 && engine.state() != State::logout; ++guard) {
      std::string text;
      auto st = framer.next(text);
      if (st == Framer::Status::need_more) break;
      if (st == Framer::Status::continuation) continue;
      Action a = (st == Framer::Status::command) ? engine.on_input(text) : engine.on_framing_error(st, text);
      std::string reply = a.reply;
      while (a.kind == Action::Kind::more) {  // a long FETCH, in parts
        a = engine.resume();
        reply += a.reply;
      }
      check_reply(reply);
      if (a.kind == Action::Kind::authenticate) {
        bool good = !a.refused && a.user == "alice" && a.password == "pw";
        if (good && account) {
          a = engine.login_result((flags & 8) ? LoginOutcome::unavailable : LoginOutcome::ok,
                                  (flags & 8) ? nullptr : std::move(account));
        } else {
          a = engine.login_result(LoginOutcome::bad_credentials);
        }
        check_reply(a.reply);
      }
      if (a.kind == Action::Kind::start_tls) engine.tls_started();
      if (a.kind == Action::Kind::idle) check_reply(engine.idle_poll());
      if (a.kind == Action::Kind::close) break;
    }
  }
  return 0;
}

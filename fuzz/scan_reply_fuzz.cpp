// libFuzzer target: what the scanners send back, below JSON — an HTTP/1.1
// response read to the end (scan/protocol/rspamd.hpp: status line, fields,
// Content-Length, chunked coding) and clamd's INSTREAM reply line
// (scan/protocol/clamd.hpp) — and strip_spam_fields() on any text.
// Invariants: a parsed response has a status 100..999 and a body no longer
// than the input; a clamd reply is clean with no detail, or found/error with
// a printable detail of at most 200 octets; stripping only ever removes a
// prefix of the text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "scan/protocol/clamd.hpp"
#include "scan/protocol/rspamd.hpp"
#include "scan/protocol/verdict.hpp"

using namespace hikyaku::scan;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto response = rspamd::parse_response(in);
  if (response.ok()) {
    if (response->status < 100 || response->status > 999) __builtin_trap();
    if (response->body.size() > in.size()) __builtin_trap();
  }
  const clamd::Reply reply = clamd::parse_reply(in);
  if (reply.kind == clamd::Reply::Kind::clean && !reply.detail.empty()) __builtin_trap();
  if (reply.kind != clamd::Reply::Kind::clean && (reply.detail.empty() || reply.detail.size() > 200 * 4))
    __builtin_trap();
  const std::string stripped = strip_spam_fields(std::string(in));
  if (!in.ends_with(stripped)) __builtin_trap();
  return 0;
}

// libFuzzer target: HTTP/1.1 request heads through the sans-I/O parser and
// router of the status listener (src/http/protocol). The input is the bytes
// a peer sends; they are also fed in two pieces (split at the first byte's
// value) as a session reading in chunks would. Invariants checked: the
// result does not depend on where the bytes were split once the whole input
// is there (a prefix is incomplete, or already the same verdict); an error
// is 400, 431 or 505; a complete head has an origin-form target that starts
// with its path, at most Limits::fields fields, consumed ≤ the limit and
// ending in LF; the response to it is one of the known statuses (421 for a
// Host that is not this listener's address or localhost), renders
// with a Content-Length equal to its body, and never echoes the target.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/protocol/request.hpp"

using namespace hikyaku::http::protocol;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const Limits limits;
  const ParseResult whole = parse_request(input, limits);

  if (!input.empty()) {
    const size_t cut = static_cast<uint8_t>(input[0]) % (input.size() + 1);
    const ParseResult prefix = parse_request(input.substr(0, cut), limits);
    if (prefix.kind != ParseResult::Kind::incomplete) {
      check(prefix.kind == whole.kind);
      check(prefix.status == whole.status);
      check(prefix.consumed == whole.consumed);
    }
  }

  switch (whole.kind) {
    case ParseResult::Kind::incomplete:
      check(input.size() < limits.head);
      break;
    case ParseResult::Kind::error:
      check(whole.status == 400 || whole.status == 431 || whole.status == 505);
      break;
    case ParseResult::Kind::complete: {
      const Request& r = whole.request;
      check(whole.consumed <= limits.head && whole.consumed <= input.size());
      check(input[whole.consumed - 1] == '\n');
      check(!r.target.empty() && r.target[0] == '/' && r.target.starts_with(r.path));
      check(r.fields.size() <= limits.fields);
      const Site site{[] { return std::string("m\n"); }, [] { return std::string("<p>"); }, [] { return true; }};
      const Response resp = respond(r, site);
      check(resp.status == 200 || resp.status == 404 || resp.status == 405 || resp.status == 421);
      // 421 only for a request that names another host (DNS rebinding).
      if (resp.status == 421) check(r.field("host") != nullptr || r.minor >= 1);
      const std::string bytes = render(resp);
      check(bytes.find("\r\nContent-Length: " + std::to_string(resp.body.size()) + "\r\n") != std::string::npos);
      check(bytes.ends_with("\r\n\r\n" + resp.body));
      if (r.target.size() > 12) check(bytes.find(r.target) == std::string::npos);
      break;
    }
  }
  return 0;
}

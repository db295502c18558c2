// Purpose:   Parse the head of one HTTP/1.1 request (request line and
//            header fields) from the bytes received so far, for the status
//            listener ([listen] http); route it to the three pages the
//            server has (/, /metrics, /healthz) and render the response.
//            Sans-I/O: no Asio, no state; the session feeds bytes and
//            writes what render() returns, then closes (Connection: close,
//            one request per connection: request bodies are never read).
// Standards: RFC 9112 §2.2 (message parsing: CRLF, a bare LF accepted, a
//            bare CR refused), §3 (request line; origin-form targets only),
//            §3.2 (Host exactly once in HTTP/1.1), §5.1 (no whitespace
//            before the colon), §5.2 (obs-fold refused); RFC 9110 §5.6.2
//            (tokens), §15.5.6 (405 with Allow), RFC 6585 §5 (431).
// Trust:     input is untrusted network data; every byte value is handled;
//            the head is bounded by Limits (431 past them). Nothing from the
//            request is echoed back into a response.
// Concurrency: pure functions.
// Errors:    a malformed request is a ParseResult with its 4xx/5xx status;
//            no exceptions.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hikyaku::http::protocol {

struct Limits {
  size_t head = 8192;  // request line + header fields + the empty line
  size_t fields = 64;  // header fields
};

struct Request {
  std::string method;  // case-sensitive token (RFC 9110 §9.1): "GET"
  std::string target;  // origin-form, as sent: "/metrics?x=1"
  std::string path;    // target without the query: "/metrics"
  int minor = 1;       // HTTP/1.<minor>
  std::vector<std::pair<std::string, std::string>> fields;  // names lower-cased, values trimmed
  // The first value of field `name` (lower case), or nullptr.
  const std::string* field(std::string_view name) const;
};

struct ParseResult {
  enum class Kind {
    incomplete,  // no empty line yet and the limit not reached: read more
    complete,    // `request` is set; `consumed` bytes of head
    error,       // answer `status` and close
  };
  Kind kind = Kind::incomplete;
  Request request;
  int status = 0;       // for error: 400, 431 or 505
  size_t consumed = 0;  // complete: the length of the head, empty line included
};

// Parse the head at the start of `bytes` (everything received so far).
ParseResult parse_request(std::string_view bytes, const Limits& limits = {});

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> fields;  // extra header fields
};

// The reason phrase of the statuses used here ("OK", "Not Found", ...).
std::string_view reason(int status);
// A short plain-text response for an error status ("404 Not Found\n").
Response error_response(int status);
// The bytes to send: status line, Content-Type, Content-Length,
// Cache-Control: no-store, X-Content-Type-Options: nosniff, Connection:
// close, the extra fields, and the body unless `head_only` (RFC 9110 §9.3.2:
// HEAD gets the same fields, no content).
std::string render(const Response& response, bool head_only = false);

// What the three paths serve; each is called only for its own path.
struct Site {
  std::function<std::string()> metrics;      // Prometheus text exposition
  std::function<std::string()> status_page;  // HTML
  std::function<bool()> healthy;             // /healthz: 200 "ok" or 503
};

// The response to a parsed request: GET and HEAD only (405 with Allow
// otherwise), "/", "/metrics" and "/healthz" (the query is ignored), 404
// for any other path.
Response respond(const Request& request, const Site& site);

}  // namespace hikyaku::http::protocol

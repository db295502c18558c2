#include "http/protocol/request.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <iterator>

#include "base/strings.hpp"

namespace hikyaku::http::protocol {

const std::string* Request::field(std::string_view name) const {
  for (const auto& [n, v] : fields)
    if (n == name) return &v;
  return nullptr;
}

namespace {

// RFC 9110 §5.6.2: tchar.
bool is_tchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s)
    if (!is_tchar(c)) return false;
  return true;
}

// RFC 9110 §5.5: field-value octets are VCHAR, SP, HTAB and obs-text.
bool is_field_value(std::string_view s) {
  for (unsigned char c : s)
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  return true;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

ParseResult fail(int status) {
  ParseResult r;
  r.kind = ParseResult::Kind::error;
  r.status = status;
  return r;
}

// RFC 9112 §3: method SP request-target SP HTTP-version.
bool parse_request_line(std::string_view line, Request& req, int& status) {
  status = 400;
  const auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return false;
  const auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) return false;
  const auto method = line.substr(0, sp1);
  const auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const auto version = line.substr(sp2 + 1);
  if (!is_token(method)) return false;
  // Origin-form only (§3.2.1): the absolute, authority and asterisk forms
  // are for proxies and OPTIONS, which this server is not and does not do.
  if (target.empty() || target.front() != '/') return false;
  for (unsigned char c : target)
    if (c <= 0x20 || c >= 0x7f) return false;
  // HTTP-version = "HTTP" "/" DIGIT "." DIGIT (§2.3).
  if (version.size() != 8 || !version.starts_with("HTTP/") || version[6] != '.' || !is_digit(version[5]) ||
      !is_digit(version[7]))
    return false;
  if (version[5] != '1') {
    status = 505;
    return false;
  }
  req.method = std::string(method);
  req.target = std::string(target);
  req.path = req.target.substr(0, req.target.find('?'));
  req.minor = version[7] - '0';
  return true;
}

}  // namespace

ParseResult parse_request(std::string_view bytes, const Limits& limits) {
  // Frame: the head ends at the first empty line (CRLF CRLF, or bare LFs).
  size_t end = std::string_view::npos;
  size_t consumed = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] != '\n') continue;
    const size_t next = i + 1;
    if (next < bytes.size() && bytes[next] == '\n') {
      end = i;
      consumed = next + 1;
      break;
    }
    if (next + 1 < bytes.size() && bytes[next] == '\r' && bytes[next + 1] == '\n') {
      end = i;
      consumed = next + 2;
      break;
    }
  }
  if (end == std::string_view::npos) {
    // RFC 9112 §2.2: a server SHOULD ignore empty lines before the request
    // line; none are expected from a scraper, so they count as malformed.
    if (bytes.starts_with("\r\n") || bytes.starts_with("\n")) return fail(400);
    if (bytes.size() >= limits.head) return fail(431);
    return ParseResult{};
  }
  if (consumed > limits.head) return fail(431);
  if (bytes.starts_with("\r\n") || bytes.starts_with("\n")) return fail(400);

  ParseResult out;
  Request& req = out.request;
  std::string_view head = bytes.substr(0, end + 1);  // every line with its LF
  bool first = true;
  while (!head.empty()) {
    const size_t lf = head.find('\n');
    std::string_view line = head.substr(0, lf);
    head.remove_prefix(lf + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    // A CR anywhere else is a bare CR (§2.2): refused, not guessed at.
    if (line.find('\r') != std::string_view::npos) return fail(400);
    if (first) {
      int status = 400;
      if (!parse_request_line(line, req, status)) return fail(status);
      first = false;
      continue;
    }
    // §5.2: obs-fold (a line starting with whitespace) is refused.
    if (line.empty() || line.front() == ' ' || line.front() == '\t') return fail(400);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return fail(400);
    const auto name = line.substr(0, colon);  // §5.1: no whitespace before the colon
    const auto value = trim_ows(line.substr(colon + 1));
    if (!is_token(name) || !is_field_value(value)) return fail(400);
    if (req.fields.size() >= limits.fields) return fail(431);
    req.fields.emplace_back(base::to_lower(name), std::string(value));
  }
  // §3.2: an HTTP/1.1 request has exactly one Host field.
  if (req.minor >= 1) {
    size_t hosts = 0;
    for (const auto& f : req.fields) hosts += f.first == "host";
    if (hosts != 1) return fail(400);
  }
  out.kind = ParseResult::Kind::complete;
  out.consumed = consumed;
  return out;
}

std::string_view reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 421: return "Misdirected Request";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}

Response error_response(int status) {
  Response r;
  r.status = status;
  r.body = fmt::format("{} {}\n", status, reason(status));
  return r;
}

std::string render(const Response& response, bool head_only) {
  std::string out = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n"
      "X-Content-Type-Options: nosniff\r\nConnection: close\r\n",
      response.status, reason(response.status), response.content_type, response.body.size());
  for (const auto& [name, value] : response.fields) fmt::format_to(std::back_inserter(out), "{}: {}\r\n", name, value);
  out += "\r\n";
  if (!head_only) out += response.body;
  return out;
}

namespace {

// DNS rebinding: a web page the operator visits may point its own name at
// 127.0.0.1 and have the browser read this listener, which has no login.
// A browser names the page's host in Host; this listener answers only a
// request that names it by an address or as localhost (RFC 9110 §7.4:
// 421 for a request it will not answer for that host).
bool names_this_listener(const Request& request) {
  const std::string* host = request.field("host");
  if (host == nullptr) return request.minor == 0;  // HTTP/1.0 without Host: no browser
  std::string_view h = *host;
  if (h.starts_with('[')) {
    const size_t close = h.find(']');
    if (close == std::string_view::npos) return false;
    const std::string v6(h.substr(1, close - 1));
    in6_addr a6{};
    return ::inet_pton(AF_INET6, v6.c_str(), &a6) == 1;
  }
  const std::string name(h.substr(0, h.find(':')));
  in_addr a4{};
  return ::inet_pton(AF_INET, name.c_str(), &a4) == 1 || base::iequals(name, "localhost");
}

}  // namespace

Response respond(const Request& request, const Site& site) {
  if (!names_this_listener(request)) return error_response(421);
  if (request.method != "GET" && request.method != "HEAD") {
    Response r = error_response(405);  // RFC 9110 §15.5.6: with Allow
    r.fields.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  Response r;
  if (request.path == "/metrics") {
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = site.metrics();
  } else if (request.path == "/healthz") {
    if (!site.healthy()) return error_response(503);
    r.body = "ok\n";
  } else if (request.path == "/") {
    r.content_type = "text/html; charset=utf-8";
    r.body = site.status_page();
  } else {
    return error_response(404);
  }
  return r;
}

}  // namespace hikyaku::http::protocol

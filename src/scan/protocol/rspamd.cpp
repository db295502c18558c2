#include "scan/protocol/rspamd.hpp"

#include <algorithm>

#include "base/strings.hpp"
#include "scan/protocol/json.hpp"

namespace hikyaku::scan::rspamd {
namespace {

// A field value without control characters (no CR/LF to add a line).
std::string clean(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v)
    if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7F) out += c;
  return out;
}

void field(std::string& out, std::string_view name, std::string_view value) {
  if (value.empty()) return;
  out.append(name).append(": ").append(clean(value)).append("\r\n");
}

constexpr std::pair<Action, std::string_view> kActions[] = {
    {Action::no_action, "no action"},     {Action::greylist, "greylist"},
    {Action::add_header, "add header"},   {Action::rewrite_subject, "rewrite subject"},
    {Action::soft_reject, "soft reject"}, {Action::reject, "reject"},
    {Action::discard, "discard"},         {Action::quarantine, "quarantine"},
};

// RFC 9112 §7.1: chunk-size [ext] CRLF data CRLF ... 0 CRLF trailers CRLF.
base::Result<std::string> dechunk(std::string_view in) {
  std::string out;
  while (true) {
    const auto eol = in.find("\r\n");
    if (eol == std::string_view::npos) return base::make_error("HTTP: truncated chunk size");
    std::string_view size_text = in.substr(0, eol);
    if (auto semi = size_text.find(';'); semi != std::string_view::npos) size_text = size_text.substr(0, semi);
    while (!size_text.empty() && size_text.back() == ' ') size_text.remove_suffix(1);
    if (size_text.empty() || size_text.size() > 8) return base::make_error("HTTP: bad chunk size");
    size_t size = 0;
    for (char c : size_text) {
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0) return base::make_error("HTTP: bad chunk size");
      size = size * 16 + static_cast<size_t>(d);
    }
    in.remove_prefix(eol + 2);
    if (size == 0) return out;
    if (in.size() < size + 2 || in.substr(size, 2) != "\r\n") return base::make_error("HTTP: truncated chunk");
    out.append(in.substr(0, size));
    in.remove_prefix(size + 2);
  }
}

}  // namespace

std::string request_head(const Request& r) {
  std::string out = "POST " + clean(r.path) + " HTTP/1.1\r\n";
  field(out, "Host", r.host);
  out += "Content-Length: " + std::to_string(r.content_length) + "\r\n";
  out += "Connection: close\r\n";
  field(out, "From", r.from);
  for (const auto& rcpt : r.rcpt) field(out, "Rcpt", rcpt);
  field(out, "IP", r.ip);
  field(out, "Helo", r.helo);
  field(out, "Hostname", r.hostname);
  field(out, "User", r.user);
  field(out, "Queue-Id", r.queue_id);
  out += "\r\n";
  return out;
}

std::string_view action_name(Action a) {
  for (const auto& [action, name] : kActions)
    if (action == a) return name;
  return "no action";
}

std::string_view action_label(const Reply& reply) {
  return reply.action == Action::custom ? std::string_view(reply.custom) : action_name(reply.action);
}

std::optional<Action> parse_action(std::string_view name) {
  for (const auto& [action, n] : kActions)
    if (n == name) return action;
  return std::nullopt;
}

base::Result<HttpResponse> parse_response(std::string_view raw) {
  const auto end = raw.find("\r\n\r\n");
  if (end == std::string_view::npos) return base::make_error("HTTP: no complete header section");
  std::string_view head = raw.substr(0, end + 2);
  std::string_view body = raw.substr(end + 4);
  // Status line: HTTP/1.x SP 3DIGIT SP reason.
  const auto eol = head.find("\r\n");
  const std::string_view status_line = head.substr(0, eol);
  if (!status_line.starts_with("HTTP/1.") || status_line.size() < 12 || status_line[8] != ' ')
    return base::make_error("HTTP: bad status line '" + base::log_printable(std::string(status_line.substr(0, 80))) + "'");
  HttpResponse out;
  for (size_t i = 9; i < 12; ++i) {
    const char c = status_line[i];
    if (c < '0' || c > '9') return base::make_error("HTTP: bad status code");
    out.status = out.status * 10 + static_cast<unsigned>(c - '0');
  }
  if (out.status < 100) return base::make_error("HTTP: bad status code");  // RFC 9110 §15: 100..599
  head.remove_prefix(eol + 2);
  std::optional<uint64_t> length;
  bool chunked = false;
  while (!head.empty()) {
    const auto e = head.find("\r\n");
    const std::string_view line = head.substr(0, e);
    head.remove_prefix(e + 2);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) return base::make_error("HTTP: bad header field");
    const std::string name = base::to_lower(line.substr(0, colon));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (name == "content-length") {
      auto n = base::parse_uint(std::string(value));
      if (!n) return base::make_error("HTTP: bad Content-Length");
      length = *n;
    } else if (name == "transfer-encoding") {
      chunked = base::to_lower(value).find("chunked") != std::string::npos;
    }
  }
  if (chunked) {
    auto decoded = dechunk(body);
    if (!decoded.ok()) return decoded.error();
    out.body = std::move(decoded).value();
  } else if (length) {
    if (body.size() < *length) return base::make_error("HTTP: body shorter than its Content-Length");
    out.body = std::string(body.substr(0, *length));
  } else {
    out.body = std::string(body);
  }
  return out;
}

base::Result<Reply> parse_reply(std::string_view text) {
  auto doc = json::parse(text);
  if (!doc.ok()) return doc.error();
  if (doc->object() == nullptr) return base::make_error("rspamd: the reply is not a JSON object");
  Reply r;
  const json::Value* action = doc->get("action");
  if (action == nullptr || action->string() == nullptr) {
    // An error reply: {"error": "..."}.
    const json::Value* err = doc->get("error");
    if (err != nullptr && err->string() != nullptr)
      return base::make_error("rspamd: " + base::log_printable(err->string()->substr(0, 200)));
    return base::make_error("rspamd: the reply has no action");
  }
  // The name goes into logs and the X-Spam-Status field: printable ASCII
  // only, without the quote and backslash that would end the quoted string
  // there. A name none of the known ones is a custom action.
  std::string name;
  for (char c : action->string()->substr(0, 32))
    if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') name += c;
  if (name.empty()) return base::make_error("rspamd: the reply's action has no name");
  if (auto known = parse_action(name)) {
    r.action = *known;
  } else {
    r.action = Action::custom;
    r.custom = std::move(name);
  }
  if (const json::Value* v = doc->get("score"); v != nullptr && v->number() != nullptr) r.score = *v->number();
  if (const json::Value* v = doc->get("required_score"); v != nullptr && v->number() != nullptr)
    r.required_score = *v->number();
  if (const json::Value* symbols = doc->get("symbols"); symbols != nullptr && symbols->object() != nullptr) {
    for (const auto& [name, sym] : *symbols->object()) {
      const json::Value* score = sym.get("score");
      r.symbols.emplace_back(name, score != nullptr && score->number() != nullptr ? *score->number() : 0.0);
    }
  }
  return r;
}

}  // namespace hikyaku::scan::rspamd

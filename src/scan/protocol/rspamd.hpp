// Purpose:   rspamd's /checkv2 protocol, sans-I/O: the HTTP/1.1 request
//            that carries a message and its envelope, and the reading of the
//            HTTP response and its JSON body (action, score,
//            required_score, symbols).
// Standards: rspamd "Protocol" (https://rspamd.com/doc/developers/protocol.html):
//            POST /checkv2 with the message as body and the envelope as
//            request headers (From, Rcpt, IP, Helo, Hostname, User,
//            Queue-Id); RFC 9112 (HTTP/1.1 message syntax: status line,
//            fields, Content-Length, chunked); RFC 8259 via scan/protocol/json.hpp.
// Trust:     the request carries envelope strings from an SMTP client:
//            every value is stripped of control characters so that it cannot
//            add a header line. The response comes from the network: bounded
//            by the caller (kMaxResponse), every field checked.
// Concurrency: pure functions.
// Errors:    parse_response()/parse_reply() return base::Error; the caller
//            treats it as a scanner failure ([scan] on_failure).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.hpp"

namespace hikyaku::scan::rspamd {

constexpr size_t kMaxResponse = 1024 * 1024;

// What rspamd is told about the message besides its bytes.
struct Request {
  std::string host;      // the Host field: "127.0.0.1:11333"
  std::string path = "/checkv2";
  std::string from;      // envelope sender ("" for the null sender)
  std::vector<std::string> rcpt;
  std::string ip;        // SMTP client address
  std::string helo;
  std::string hostname;  // the client's verified host name, if known
  std::string user;      // SASL login, if any
  std::string queue_id;
  uint64_t content_length = 0;
};

// The request line and fields, up to and with the empty line; the message
// bytes follow as the body.
std::string request_head(const Request& request);

// rspamd's action names (its "actions" settings; "discard" and
// "quarantine" since rspamd 1.9). `custom`: any other name, an action the
// operator defined (rspamd's force_actions may return one); Reply::custom
// keeps its name.
enum class Action { no_action, greylist, add_header, rewrite_subject, soft_reject, reject, discard, quarantine, custom };
std::string_view action_name(Action a);
std::optional<Action> parse_action(std::string_view name);

struct Reply {
  Action action = Action::no_action;
  double score = 0;
  double required_score = 0;
  std::vector<std::pair<std::string, double>> symbols;  // by name
  std::string custom;  // the name of a custom action (printable ASCII, at most 32 bytes)
};

struct HttpResponse {
  unsigned status = 0;
  std::string body;
};

// A whole HTTP/1.1 response (the connection was closed after it): status
// line, fields, body by Content-Length, chunked coding, or to the end.
base::Result<HttpResponse> parse_response(std::string_view raw);

// The action as rspamd named it: action_name(), or a custom action's name.
std::string_view action_label(const Reply& reply);

// The JSON body of a 200 reply. An action name hikyaku does not know is a
// custom action, not an error: the verdict is valid, only its name is new.
base::Result<Reply> parse_reply(std::string_view json);

}  // namespace hikyaku::scan::rspamd

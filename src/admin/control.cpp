#include "admin/control.hpp"

#include <vector>

#include "base/strings.hpp"
#include "queue/spool.hpp"

namespace hikyaku::admin {

namespace {

std::string_view without_line_end(std::string_view line) {
  if (line.ends_with("\r\n")) line.remove_suffix(2);
  else if (line.ends_with('\n')) line.remove_suffix(1);
  return line;
}

bool valid_domain(std::string_view d) {
  if (d.empty() || d.size() > 255 || d.front() == '.' || d.front() == '-') return false;
  for (char c : d) {
    const bool ok = base::ascii_alnum(c) || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    const auto space = s.find(' ');
    out.push_back(s.substr(0, space));
    if (space == std::string_view::npos) break;
    s.remove_prefix(space + 1);
  }
  return out;
}

}  // namespace

base::Result<ControlRequest> parse_control_request(std::string_view line) {
  if (line.size() > kMaxControlLine) return base::make_error("request line too long");
  line = without_line_end(line);
  if (line.find_first_of("\r\n") != std::string_view::npos) return base::make_error("more than one line");
  const auto w = words(line);
  if (w.empty() || w[0] != "flush") return base::make_error("unknown request (expected: flush)");
  ControlRequest request;
  for (size_t i = 1; i < w.size(); i += 2) {
    if (i + 1 >= w.size()) return base::make_error("'" + std::string(w[i]) + "' needs a value");
    const std::string_view value = w[i + 1];
    if (w[i] == "id" && request.queue_id.empty()) {
      if (!queue::Spool::valid_id(value)) return base::make_error("not a queue id: " + std::string(value));
      request.queue_id = value;
    } else if (w[i] == "destination" && request.destination.empty()) {
      if (!valid_domain(value)) return base::make_error("not a domain: " + std::string(value));
      request.destination = base::to_lower(value);
    } else {
      return base::make_error("unexpected '" + std::string(w[i]) + "' (expected: id, destination, once each)");
    }
  }
  return request;
}

std::string format_control_request(const ControlRequest& request) {
  std::string out = "flush";
  if (!request.queue_id.empty()) out += " id " + request.queue_id;
  if (!request.destination.empty()) out += " destination " + request.destination;
  return out + "\r\n";
}

std::string format_control_reply(const ControlReply& reply) {
  std::string text = reply.text;
  for (char& c : text)
    if (c == '\r' || c == '\n') c = ' ';  // one line, whatever the text
  return (reply.ok ? "ok " : "error ") + text + "\r\n";
}

ControlReply parse_control_reply(std::string_view line) {
  line = without_line_end(line);
  if (line.starts_with("ok ")) return {true, std::string(line.substr(3))};
  if (line.starts_with("error ")) return {false, std::string(line.substr(6))};
  return {false, "unexpected reply from the server: " + std::string(line)};
}

}  // namespace hikyaku::admin

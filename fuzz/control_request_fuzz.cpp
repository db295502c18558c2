// libFuzzer target: control-channel request and reply lines (src/admin/
// control.hpp). Invariants checked: a parsed request formats to a line that
// parses back to the same request, and a formatted reply is one line.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "admin/control.hpp"

using namespace hikyaku::admin;

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (auto request = parse_control_request(input); request.ok()) {
    const std::string line = format_control_request(*request);
    auto again = parse_control_request(line);
    check(again.ok() && again->queue_id == request->queue_id && again->destination == request->destination);
  }
  const ControlReply reply = parse_control_reply(input);
  const std::string line = format_control_reply(reply);
  check(line.ends_with("\r\n") && line.find_first_of("\r\n") == line.size() - 2);
  return 0;
}

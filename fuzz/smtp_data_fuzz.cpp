// libFuzzer target: the DATA reader (RFC 5321 §4.1.1.4, §4.5.2; SMTP
// smuggling). The first byte chooses a chunk size, so sequences are also split
// across reads. Invariants: feeding in chunks gives the same result as one
// buffer; an accepted message has only CRLF line endings and fits the limit;
// the end is always a real <CRLF>.<CRLF>; the server's own Received prefix
// and a declared size change nothing but the message's first line; a
// reader that hands out its body as it goes (spilling, as the session does
// for a large message) keeps the header section and hands out exactly the
// rest.
#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cstdlib>
#include <string>
#include <string_view>

#include "smtp/protocol/data_reader.hpp"

using hikyaku::smtp::protocol::DataReader;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  size_t chunk = 1 + data[0] % 17;
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  const DataReader::Limits limits{.max_size = 4096, .max_received = 3};

  DataReader whole(limits);
  size_t used_whole = whole.feed(input);

  // The split reader also starts with our Received field (it must count
  // toward neither the size nor the hop limit) and a declared size.
  const std::string prefix = "Received: from c by mx; Thu, 1 Jan 2026 00:00:00 +0000\r\n";
  DataReader::Limits hinted = limits;
  hinted.size_hint = static_cast<uint64_t>(data[0]) * 64;
  DataReader split(hinted, prefix);
  size_t used = 0;
  while (!split.done() && used < input.size()) {
    size_t n = std::min(chunk, input.size() - used);
    size_t took = split.feed(input.substr(used, n));
    if (took > n) std::abort();
    used += took;
  }
  // Spilling after a few octets of body, in the same chunks.
  DataReader::Limits spilling_limits = limits;
  spilling_limits.spill_at = 1 + data[0] % 64;
  DataReader spilling(spilling_limits);
  std::string spilled;
  for (size_t at = 0; !spilling.done() && at < input.size(); at += chunk) {
    spilling.feed(input.substr(at, std::min(chunk, input.size() - at)));
    if (spilling.spill_due()) {
      if (spilling.body_held().size() <= spilling_limits.spill_at) std::abort();
      spilled += spilling.body_held();
      spilling.forget_body_held();
    }
  }
  if (whole.done() != split.done() || whole.done() != spilling.done()) std::abort();
  if (!whole.done()) return 0;
  if (used != used_whole) std::abort();
  if (whole.outcome() != split.outcome()) std::abort();
  // RFC 5321 §4.1.1.4: the data ended right after "\r\n.\r\n" (or ".\r\n" first).
  std::string_view consumed = input.substr(0, used_whole);
  if (!(consumed == ".\r\n" || (consumed.size() >= 5 && consumed.substr(consumed.size() - 5) == "\r\n.\r\n")))
    std::abort();
  if (whole.size() != split.size()) std::abort();
  if (whole.outcome() != spilling.outcome()) std::abort();
  spilled += spilling.body_held();
  spilling.forget_body_held();
  std::string a = whole.take_message(), b = split.take_message(), c = spilling.take_message();
  if (whole.outcome() == DataReader::Outcome::ok) {
    if (b != prefix + a) std::abort();
    if (c + spilled != a) std::abort();
    if (a.size() > limits.max_size) std::abort();
    for (size_t i = 0; i < a.size(); ++i) {
      if (a[i] == '\r' && (i + 1 >= a.size() || a[i + 1] != '\n')) std::abort();
      if (a[i] == '\n' && (i == 0 || a[i - 1] != '\r')) std::abort();
    }
  }
  return 0;
}

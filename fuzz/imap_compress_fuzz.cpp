// libFuzzer target: IMAP COMPRESS=DEFLATE (RFC 4978,
// src/imap/protocol/compression.hpp). The input is fed as the client's
// compressed stream, in two chunks, and decompressed in steps of at most 1 KiB;
// then it is compressed as a response and decompressed by a second codec.
// Invariants: no step returns more than asked; the round trip gives the
// input back byte for byte.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "imap/protocol/compression.hpp"

using hikyaku::imap::protocol::Deflate;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  {
    Deflate server;
    const size_t half = size / 2;
    for (std::string_view part : {input.substr(0, half), input.substr(half)}) {
      server.feed(part);
      for (int steps = 0; steps < 100000; ++steps) {
        auto got = server.decompress(1024);
        if (!got) break;  // corrupt: the session ends the connection
        check(got->size() <= 1024);
        if (got->empty() && !server.pending()) break;
      }
    }
  }
  Deflate ours;
  Deflate theirs;
  auto packed = ours.compress(input);
  check(packed.ok());
  theirs.feed(*packed);
  std::string back;
  for (;;) {
    auto got = theirs.decompress(4096);
    check(got.ok());
    if (got->empty()) break;
    back += *got;
  }
  check(back == input);
  return 0;
}

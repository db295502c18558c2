// libFuzzer target: a Maildir++ quota file (DATA_DIR/mailboxes/NAME/
// maildirsize, which other programs may write too) through
// mailbox::parse_maildirsize. The first 8 bytes are the configured limit.
// Invariants: no crash, no overflow (UBSan); an answer means the text's
// first line defined that storage limit, and a text that does not end in a
// newline is never believed.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "mailbox/quota.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  uint64_t limit = 0;
  std::memcpy(&limit, data, 8);
  std::string_view text(reinterpret_cast<const char*>(data) + 8, size - 8);
  auto u = hikyaku::mailbox::parse_maildirsize(text, limit);
  if (u && (text.empty() || text.back() != '\n')) std::abort();
  return 0;
}

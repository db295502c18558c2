// libFuzzer target: IMAP modified UTF-7 mailbox names (RFC 3501 §5.1.3,
// src/imap/protocol/mutf7.hpp). The input is read both as a wire name and as
// a UTF-8 name.
// Invariants: a wire name that decodes is canonical: its UTF-8 is valid and
// encodes back to the input byte for byte; valid_mutf7 agrees with the
// decoder. A valid UTF-8 name encodes to printable ASCII that decodes back
// to it; an invalid one does not encode.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "base/strings.hpp"
#include "imap/protocol/mutf7.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hikyaku::imap::protocol;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  // As a wire name.
  const auto utf8 = mutf7_to_utf8(input);
  check(valid_mutf7(input) == utf8.has_value());
  if (utf8) {
    check(hikyaku::base::valid_utf8(*utf8));
    const auto again = utf8_to_mutf7(*utf8);
    check(again.has_value() && *again == input);
  }

  // As a UTF-8 name.
  const auto wire = utf8_to_mutf7(input);
  check(wire.has_value() == hikyaku::base::valid_utf8(input));
  if (wire) {
    for (const char c : *wire) check(c >= 0x20 && c <= 0x7e);
    const auto back = mutf7_to_utf8(*wire);
    check(back.has_value() && *back == input);
  }
  return 0;
}

#include "imap/protocol/mutf7.hpp"

#include <cstddef>
#include <cstdint>

#include "base/strings.hpp"

namespace hikyaku::imap::protocol {
namespace {

// RFC 3501 §5.1.3: RFC 2045 BASE64 with "," instead of "/".
constexpr std::string_view kBase64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

// RFC 3501 §5.1.3: "0x20-0x25 and 0x27-0x7e represent themselves" ("&" is
// printable too, but written "&-").
bool printable(char32_t c) { return c >= 0x20 && c <= 0x7e; }

// The value of a modified BASE64 character, or -1.
int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == ',') return 63;
  return -1;
}

void append_utf16be(std::string& octets, char32_t unit) {
  octets += static_cast<char>(unit >> 8);
  octets += static_cast<char>(unit & 0xff);
}

// "&" + the modified BASE64 of `octets` (UTF-16BE) + "-". RFC 3501 §5.1.3:
// no "=" padding; the last character's unused bits are zero (RFC 2152).
void append_run(std::string& out, std::string_view octets) {
  out += '&';
  uint32_t bits = 0;
  int count = 0;  // bits held
  for (const char octet : octets) {
    bits = (bits << 8) | static_cast<unsigned char>(octet);
    count += 8;
    while (count >= 6) {
      count -= 6;
      out += kBase64[(bits >> count) & 0x3f];
    }
    bits &= (1U << count) - 1;
  }
  if (count > 0) out += kBase64[(bits << (6 - count)) & 0x3f];
  out += '-';
}

// Decode the inside of one non-empty "&...-" run, appending its UTF-8 to
// `out`; false when it is not the canonical encoding of non-printable
// characters.
bool decode_run(std::string_view run, std::string& out) {
  // Modified BASE64 to octets.
  std::string octets;
  uint32_t bits = 0;
  int count = 0;  // bits held
  for (const char c : run) {
    const int value = base64_value(c);
    if (value < 0) return false;  // RFC 3501 §5.1.3: "/" is ","; no "="
    bits = (bits << 6) | static_cast<uint32_t>(value);
    count += 6;
    if (count >= 8) {
      count -= 8;
      octets += static_cast<char>((bits >> count) & 0xff);
    }
    bits &= (1U << count) - 1;
  }
  // RFC 2152: the bits left over are zero padding, fewer than one character.
  if (count >= 6 || bits != 0) return false;
  // UTF-16BE (RFC 2781) to code points.
  if (octets.size() % 2 != 0) return false;
  for (size_t k = 0; k < octets.size(); k += 2) {
    char32_t unit = (static_cast<char32_t>(static_cast<unsigned char>(octets[k])) << 8) |
                    static_cast<unsigned char>(octets[k + 1]);
    if (unit >= 0xdc00 && unit <= 0xdfff) return false;  // a low surrogate first
    if (unit >= 0xd800 && unit <= 0xdbff) {
      // RFC 2781 §2.2: a high surrogate, then a low one in the same run.
      k += 2;
      if (k >= octets.size()) return false;
      const char32_t low = (static_cast<char32_t>(static_cast<unsigned char>(octets[k])) << 8) |
                           static_cast<unsigned char>(octets[k + 1]);
      if (low < 0xdc00 || low > 0xdfff) return false;
      unit = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
    } else if (printable(unit)) {
      // RFC 3501 §5.1.3: printable ASCII represents itself ("&" is "&-"):
      // "&AGE-" for "a" is another spelling of a name, refused.
      return false;
    }
    base::append_utf8(out, unit);
  }
  return true;
}

}  // namespace

std::optional<std::string> mutf7_to_utf8(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  bool after_run = false;  // the previous characters were an "&...-" run
  size_t i = 0;
  while (i < name.size()) {
    const char c = name[i];
    // RFC 3501 §5.1.3: only printable US-ASCII on the wire.
    if (!printable(static_cast<unsigned char>(c))) return std::nullopt;
    if (c != '&') {
      out += c;
      after_run = false;
      ++i;
      continue;
    }
    // RFC 3501 §5.1.3: "&" shifts to modified BASE64, "-" shifts back.
    const size_t end = name.find('-', i + 1);
    if (end == std::string_view::npos) return std::nullopt;
    const std::string_view run = name.substr(i + 1, end - i - 1);
    if (run.empty()) {
      out += '&';  // "&-" is "&"
      after_run = false;
    } else {
      // Two runs back to back are one run spelt twice: not canonical.
      if (after_run || !decode_run(run, out)) return std::nullopt;
      after_run = true;
    }
    i = end + 1;
  }
  return out;
}

std::optional<std::string> utf8_to_mutf7(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  std::string octets;  // UTF-16BE of the run being gathered
  size_t i = 0;
  while (i < name.size()) {
    const auto code = base::next_utf8(name, i);
    if (!code) return std::nullopt;
    if (printable(*code)) {
      if (!octets.empty()) {
        append_run(out, octets);
        octets.clear();
      }
      out += static_cast<char>(*code);
      if (*code == '&') out += '-';  // RFC 3501 §5.1.3: "&" is "&-"
    } else if (*code < 0x10000) {
      append_utf16be(octets, *code);
    } else {
      // RFC 2781 §2.1: a surrogate pair.
      const char32_t offset = *code - 0x10000;
      append_utf16be(octets, 0xd800 + (offset >> 10));
      append_utf16be(octets, 0xdc00 + (offset & 0x3ff));
    }
  }
  if (!octets.empty()) append_run(out, octets);
  return out;
}

bool valid_mutf7(std::string_view name) { return mutf7_to_utf8(name).has_value(); }


}  // namespace hikyaku::imap::protocol

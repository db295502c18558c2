#include "mail/transfer_encoding.hpp"

#include <cstdint>

namespace hikyaku::mail {
namespace {

constexpr std::string_view kBase64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr size_t kBase64LineLength = 76;  // RFC 2045 §6.8: "no more than 76 characters"

// The 6-bit value of a base64 character, or -1.
int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  // RFC 2045 §6.7 (1) asks for upper case; lower case is read too (§6.7
  // note: "a robust implementation might recognize lowercase").
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool is_blank(char c) { return c == ' ' || c == '\t'; }

// Decode the "=XX" escapes of one line (no line break in it).
void decode_qp_line(std::string_view line, std::string& out) {
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '=' && i + 2 < line.size() && hex_value(line[i + 1]) >= 0 && hex_value(line[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(line[i + 1]) * 16 + hex_value(line[i + 2]));
      i += 2;
      continue;
    }
    out += line[i];  // also a "=" without two hex digits: kept (§6.7 note 2)
  }
}

}  // namespace

std::string decode_base64_body(std::string_view text) {
  std::string out;
  out.reserve(text.size() / 4 * 3 + 3);
  uint32_t bits = 0;
  int have = 0;  // bits collected in `bits`
  for (char c : text) {
    if (c == '=') break;  // RFC 2045 §6.8: padding ends the encoded data
    const int v = base64_value(c);
    if (v < 0) continue;  // line breaks, whitespace, junk: ignored (§6.8)
    bits = (bits << 6) | static_cast<uint32_t>(v);
    have += 6;
    if (have >= 8) {
      have -= 8;
      out += static_cast<char>((bits >> have) & 0xff);
    }
  }
  return out;
}

std::string decode_quoted_printable_body(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t lf = text.find('\n', pos);
    const bool has_break = lf != std::string_view::npos;
    std::string_view line = text.substr(pos, (has_break ? lf : text.size()) - pos);
    pos = has_break ? lf + 1 : text.size();
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    // RFC 2045 §6.7 (3): whitespace at the end of an encoded line is
    // transport padding, not data.
    while (!line.empty() && is_blank(line.back())) line.remove_suffix(1);
    // §6.7 (5): a final "=" is a soft line break; the whitespace before it
    // is data.
    if (!line.empty() && line.back() == '=') {
      line.remove_suffix(1);
      decode_qp_line(line, out);
      continue;
    }
    decode_qp_line(line, out);
    if (has_break) out += "\r\n";
  }
  return out;
}

std::string encode_base64_body(std::string_view octets) {
  std::string out;
  out.reserve((octets.size() + 2) / 3 * 4 * (kBase64LineLength + 2) / kBase64LineLength + 2);
  size_t column = 0;
  auto put = [&](char c) {
    out += c;
    if (++column == kBase64LineLength) {
      out += "\r\n";
      column = 0;
    }
  };
  size_t i = 0;
  for (; i + 3 <= octets.size(); i += 3) {
    const uint32_t n = (static_cast<uint32_t>(static_cast<unsigned char>(octets[i])) << 16) |
                       (static_cast<uint32_t>(static_cast<unsigned char>(octets[i + 1])) << 8) |
                       static_cast<uint32_t>(static_cast<unsigned char>(octets[i + 2]));
    put(kBase64Alphabet[(n >> 18) & 63]);
    put(kBase64Alphabet[(n >> 12) & 63]);
    put(kBase64Alphabet[(n >> 6) & 63]);
    put(kBase64Alphabet[n & 63]);
  }
  if (const size_t rest = octets.size() - i; rest > 0) {
    uint32_t n = static_cast<uint32_t>(static_cast<unsigned char>(octets[i])) << 16;
    if (rest == 2) n |= static_cast<uint32_t>(static_cast<unsigned char>(octets[i + 1])) << 8;
    put(kBase64Alphabet[(n >> 18) & 63]);
    put(kBase64Alphabet[(n >> 12) & 63]);
    put(rest == 2 ? kBase64Alphabet[(n >> 6) & 63] : '=');
    put('=');
  }
  if (column != 0) out += "\r\n";
  return out;
}

}  // namespace hikyaku::mail

// Purpose:   Small ASCII string helpers shared by every protocol parser:
//            case-insensitive compare, trimming, splitting. Locale-free on
//            purpose: protocol keywords are ASCII (RFC 5321 §2.4).
// Trust:     safe on arbitrary bytes.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hikyaku::base {

constexpr char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }
constexpr char ascii_upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c; }
constexpr bool ascii_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool ascii_digit(char c) { return c >= '0' && c <= '9'; }
constexpr bool ascii_alnum(char c) { return ascii_alpha(c) || ascii_digit(c); }

bool iequals(std::string_view a, std::string_view b);
bool istarts_with(std::string_view s, std::string_view prefix);
std::string to_lower(std::string_view s);
std::string to_upper(std::string_view s);
// Well-formed UTF-8 (RFC 3629 §4): no overlong forms, no surrogates, nothing
// above U+10FFFF, no truncated sequence. ASCII is well-formed.
bool valid_utf8(std::string_view s);
// The code point that starts at s[i], moving i past it; nullopt when what
// starts there is not well-formed UTF-8 (as valid_utf8). i < s.size().
std::optional<char32_t> next_utf8(std::string_view s, size_t& i);
// A code point (≤ U+10FFFF, no surrogate) appended as UTF-8.
void append_utf8(std::string& out, char32_t code);
std::string_view trim(std::string_view s);  // spaces and tabs
std::string_view trim_lines(std::string_view s);  // spaces, tabs, CR and LF (folded header values)
std::vector<std::string_view> split(std::string_view s, char sep);
// Split on runs of spaces (protocol arguments).
std::vector<std::string_view> split_words(std::string_view s);
// Split on runs of spaces and tabs (the fields of our state files' lines).
std::vector<std::string_view> split_fields(std::string_view s);
// One field of our files (the spool's records, the state files): a single
// token, reversible — bytes up to space, from DEL up and '%' as %XX, the
// empty string as "%-".
std::string escape_field(std::string_view s);
// The value of an escape_field() token; false on a bad %XX.
bool unescape_field(std::string_view in, std::string& out);
// A decimal number without sign; nullopt on anything else or overflow.
std::optional<uint64_t> parse_uint(std::string_view s);
// A line of our state files that holds nothing: blank, or '#' after
// spaces and tabs.
bool blank_or_comment(std::string_view line);
// A time in our state files: whole Unix seconds, 1970 to 2100-01-01 (a
// later one is damage, and would overflow system_clock long before the
// digits run out). nullopt outside that range, or on a malformed number.
std::optional<uint64_t> unix_seconds(std::chrono::system_clock::time_point t);
std::optional<std::chrono::system_clock::time_point> parse_unix_seconds(std::string_view s);

// "90s", "15m", "2h", "5d" → seconds; nullopt if malformed.
std::optional<uint64_t> parse_duration_seconds(std::string_view s);
// "4096", "512K", "50M", "1G" → bytes; nullopt if malformed.
std::optional<uint64_t> parse_size_bytes(std::string_view s);

// For log lines: at most the first 64 bytes of a network string (a login
// name), control and non-ASCII bytes as '?', "..." when cut, so the line
// stays one short line.
std::string log_printable(std::string_view s);
// Overwrite a secret (a password) in the whole buffer, also what a move
// left behind, and empty it.
void wipe(std::string& secret);

// Base64 (RFC 4648 §4) for SASL and TLS helpers; decode rejects bad input.
std::string base64_encode(std::string_view data);
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace hikyaku::base

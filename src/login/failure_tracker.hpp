// Purpose:   Failed logins counted per source address across POP3, IMAP and
//            submission (issue 13 item 4): past `limit` failures within
//            `window`, the source is locked out for `lockout` — its logins are
//            refused without a password check — while every other source
//            logs in normally. An IPv6 source is its /64 (one customer's
//            prefix: an attacker has the whole of it), an IPv4-mapped one its
//            IPv4 address. Sans-I/O: the time is an argument.
// Standards: RFC 4291 §2.5.4 (/64 interface identifiers), RFC 4954 §4 /
//            RFC 3501 §6.2.3 (a refusal says nothing about why).
// Trust:     addresses come from accepted sockets (not from the peer's words).
// Concurrency: thread-safe (one mutex); every call is short.
// Errors:    none: verdicts are values. Memory is bounded: at most
//            `max_sources` sources are remembered; past that, expired ones
//            are dropped first, then the least recently seen (locked ones
//            last).
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hikyaku::login {

class FailureTracker {
 public:
  using Clock = std::chrono::steady_clock;
  struct Settings {
    unsigned limit = 10;  // 0: never lock out
    std::chrono::seconds window{600};
    std::chrono::seconds lockout{600};
    size_t max_sources = 65536;
  };

  explicit FailureTracker(Settings settings) : settings_(settings) {}

  // Until when `ip`'s source is locked out, or nullopt.
  std::optional<Clock::time_point> locked_until(std::string_view ip, Clock::time_point now);
  // Count one failed login from `ip`; true when this failure locks it out.
  bool failed(std::string_view ip, Clock::time_point now);

  // The source an address counts for: IPv4 as is, IPv6 by its /64
  // ("2001:db8:1:2::/64"), "::ffff:a.b.c.d" as IPv4.
  static std::string source_of(std::string_view ip);
  size_t sources() const;

 private:
  struct Entry {
    std::vector<Clock::time_point> failures;  // within the window, oldest first
    Clock::time_point locked_until{};
    Clock::time_point last_seen{};
  };
  void make_room(Clock::time_point now);

  const Settings settings_;
  mutable std::mutex mu_;
  std::map<std::string, Entry, std::less<>> by_source_;
};

}  // namespace hikyaku::login

// Purpose:   Incremental reader of the DATA section: fed the raw bytes that
//            follow the 354 reply, it finds the end of data, undoes dot
//            stuffing, and decides whether the message is acceptable, while
//            keeping any bytes after the end for the next commands
//            (pipelining). It is the SMTP smuggling defence: the end of data
//            is recognised ONLY as <CRLF>.<CRLF>, and a bare CR or bare LF
//            anywhere makes the whole message refused (550 5.5.2, as Postfix
//            smtpd_forbid_bare_newline=reject) — but reading continues to the
//            real end so the session stays in sync and nothing inside the
//            message is ever taken as a command.
// Standards: RFC 5321 §4.1.1.4 (end of mail data), §4.5.2 (transparency),
//            §2.3.8 (CRLF only), §4.5.3.1.7 / RFC 1870 (size), §6.3 (Received
//            loop detection); SMTP smuggling (SEC Consult, Dec 2023).
//            With Limits::spill_at set, a large message's body is handed out
//            in pieces as it arrives (the session writes them to a file), so
//            that only the header section and at most spill_at octets of body
//            are ever held; its header section is then limited to
//            mail::kMaxHeaderSection (552 5.3.4 beyond).
// Trust:     untrusted input; memory is bounded by max_size (bytes beyond the
//            limit are counted, not kept), and by spill_at plus the header
//            section limit when spilling.
// Concurrency: a plain object owned by one session.
// Errors:    the verdict is a value (outcome() / reply()).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "mail/reply.hpp"

namespace hikyaku::smtp::protocol {

class DataReader {
 public:
  struct Limits {
    uint64_t max_size = 50ull * 1024 * 1024;  // octets after unstuffing, CRLFs counted
    unsigned max_received = 50;               // Received: fields allowed in the header
    // The client's declared SIZE (RFC 1870), 0 if none: storage for that
    // much (never more than max_size) is reserved up front, so a large
    // message is not copied as its buffer grows. Reserved pages cost no
    // memory until written, so a false declaration costs nothing.
    uint64_t size_hint = 0;
    // Body octets held before spill_due() says to hand them out; 0: the
    // whole message is kept in memory.
    uint64_t spill_at = 0;
  };
  // Room reserved beyond the message for fields prepended later in place
  // (Authentication-Results: auth/inbound's stamp()).
  static constexpr size_t kHeadroom = 4096;
  enum class Outcome {
    ok,
    bare_lf,      // 550 5.5.2
    bare_cr,      // 550 5.5.2
    too_big,      // 552 5.3.4
    header_too_big, // 552 5.3.4 (spilling only)
    too_many_hops // 554 5.4.6
  };

  // `prefix` starts the message (the server's own Received field, RFC 5321
  // §4.4): it is not the client's, so no limit or check applies to it.
  explicit DataReader(Limits limits, std::string prefix = {});

  // Consume bytes; returns how many were used. Fewer than data.size() means
  // the end of data was reached and the rest belongs to the next commands.
  size_t feed(std::string_view data);
  bool done() const { return done_; }

  // Valid once done(): the verdict, and the reply to send if it is not ok.
  Outcome outcome() const;
  mail::Reply reply() const;
  static std::string_view outcome_name(Outcome o);

  // The prefix and the unstuffed message, CRLF line endings (meaningful
  // only when the outcome is ok).
  // After spilling, the header section only (hand out body_held() first).
  std::string take_message() { return std::move(message_); }

  // Spilling (Limits::spill_at > 0). The header section has ended and more
  // than spill_at octets of body are held: the caller hands body_held() to
  // its file and calls forget_body_held(). At the end of data, the rest is
  // handed out the same way before take_message().
  bool spill_due() const;
  std::string_view body_held() const;
  void forget_body_held();
  bool spilled() const { return spilled_; }
  uint64_t size() const { return size_; }           // the client's octets seen after unstuffing
  unsigned received_count() const { return received_; }

 private:
  void put(char c);
  void end_line();
  bool storing() const { return !overflow_ && !header_overflow_; }
  void stop_storing();

  Limits limits_;
  std::string message_;
  uint64_t size_ = 0;
  size_t line_start_ = 0;        // offset of the current line in message_
  uint64_t line_len_ = 0;        // bytes of the current line seen (dot included)
  bool pending_cr_ = false;      // last byte was CR; waiting to see if LF follows
  bool line_dot_ = false;        // the current line began with a (removed) dot
  bool bare_lf_ = false;
  bool bare_cr_ = false;
  bool overflow_ = false;
  bool header_overflow_ = false;
  size_t prefix_size_ = 0;                   // our Received field, not counted as the client's header
  size_t head_end_ = std::string::npos;      // where the body starts in message_, once known
  bool spilled_ = false;
  bool in_header_ = true;
  unsigned received_ = 0;
  bool done_ = false;
};

}  // namespace hikyaku::smtp::protocol

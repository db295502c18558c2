// Purpose:   IMAP THREAD (RFC 5256 §3 and §4): the ORDEREDSUBJECT and
//            REFERENCES algorithms over what the engine read from each
//            message's header, and the thread-list reply they give
//            ("(3 6 (4 23)(44 7 96))"). The Message-IDs of a header value
//            (msg-id of RFC 5322 §3.6.4) are read here too.
// Standards: RFC 5256 §2.1 (base subject; a reply or forward), §2.2 (sent
//            date), §3 (ORDEREDSUBJECT; REFERENCES steps 1-6), §4 (the
//            THREAD response's syntax); RFC 5322 §3.6.4 (Message-ID,
//            In-Reply-To, References).
// Trust:     every field comes from untrusted message headers. Loops in
//            References are refused as RFC 5256 says, duplicate and missing
//            Message-IDs are made unique, and a References field counts for
//            its last kMaxReferences ids only, so that a hostile message
//            cannot make THREAD quadratic in its header's size.
// Concurrency: pure functions.
// Errors:    none: every input threads (the worst is one thread per message).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hikyaku::imap::protocol {

// What threading needs of one message, in mailbox (sequence) order.
struct ThreadMessage {
  uint32_t number = 0;             // as the reply lists it: sequence number or UID
  int64_t sent = 0;                // RFC 5256 §2.2: the Date: field, else the INTERNALDATE
  std::string message_id;          // "" when missing or not a msg-id
  std::vector<std::string> references;  // References (else In-Reply-To's first msg-id), oldest first
  std::string base_subject;        // RFC 5256 §2.1, upper-cased (compared case-insensitively)
  bool reply_or_forward = false;   // the extraction removed a "Re:", "Fwd:", "(fwd)" or "[fwd: ]"
};

// A References field counts for this many of its last ids.
inline constexpr size_t kMaxReferences = 1000;

// The msg-ids of a header value ("<a@b> <c@d>"), without their angle
// brackets, in order; comments and folding whitespace between them are
// skipped, and a token without "@" is not a msg-id.
std::vector<std::string> message_ids(std::string_view value);

// The thread-lists of RFC 5256 §4 for the messages (each "(...)"), empty
// when there are none.
std::string thread_ordered_subject(const std::vector<ThreadMessage>& messages);
std::string thread_references(const std::vector<ThreadMessage>& messages);

}  // namespace hikyaku::imap::protocol

// Purpose:   The IMAP numbering of one Maildir folder, kept in
//            MAILDIR/hikyaku-uidlist (in the spirit of Dovecot's
//            dovecot-uidlist): a header line
//              "hikyaku-uidlist 2 VALIDITY NEXT FIRST-RECENT HIGHESTMODSEQ"
//            then one line per message, ascending by UID:
//              "UID UNIQUE-NAME MODSEQ 2,LETTERS".
//            Version 1 (no modseqs: "hikyaku-uidlist 1 VALIDITY NEXT
//            [FIRST-RECENT]" then "UID UNIQUE-NAME" lines) is read too;
//            format() always writes version 2. Who writes the file, when,
//            and under which lock: imap/maildir_store.hpp.
// Standards: RFC 3501 §2.3.1.1 (UIDs strictly ascending, below UIDNEXT,
//            UIDVALIDITY non-zero); RFC 7162 §3.1 and §7 (modseqs non-zero,
//            at most HIGHESTMODSEQ, which is at most 2^63-1).
// Trust:     the file is ours but other programs may damage it: the parser
//            takes any bytes and answers nullopt for anything it did not
//            write (the caller then starts a new UIDVALIDITY: clients
//            refetch, no mail is lost). Tokens are separated by white space,
//            as the writer separates them; numbers are plain decimal.
// Errors:    none: parse() answers nullopt, format() cannot fail.
// Cost:      parse and format are one pass each, one string per message
//            (its name) and nothing else allocated per line: a folder of
//            10,000 messages is read and written at every full scan.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hikyaku::mailbox {

struct UidList {
  // RFC 7162 §7: mod-sequence-value is at most 2^63-1.
  static constexpr uint64_t kMaxModseq = 9223372036854775807ULL;

  uint32_t validity = 0;
  uint32_t next = 1;
  // Messages with uid >= first_recent have not been claimed by any session
  // yet: they are \Recent (RFC 3501 §2.3.2) for the next session that
  // selects the mailbox read-write (as Dovecot's uidlist keeps it).
  uint32_t first_recent = 1;
  // RFC 7162 §3.1 HIGHESTMODSEQ: the last modseq given. Modseqs come only
  // from ++highest_modseq under the lock, and the file is written before
  // the lock is released: they ascend and never go back, also when the
  // message with the highest one is expunged. A new list starts at 1.
  uint64_t highest_modseq = 1;
  struct Entry {
    uint32_t uid = 0;
    std::string name;     // the Maildir unique name
    uint64_t modseq = 1;  // RFC 7162 MODSEQ
    // The info letters when the modseq was given (a rename since is a
    // change); nullopt when read from a version 1 list.
    std::optional<std::string> letters;
  };
  std::vector<Entry> entries;  // ascending uid

  // The file's text (version 1 or 2); nullopt when it is not a valid list.
  static std::optional<UidList> parse(std::string_view text);
  // Version 2 text.
  std::string format() const;
};

}  // namespace hikyaku::mailbox

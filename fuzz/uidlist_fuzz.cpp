// libFuzzer target: an IMAP folder's numbering file (MAILDIR/hikyaku-uidlist,
// ours, but other programs may damage it) through mailbox::UidList::parse.
// Invariants: no crash, no overflow (UBSan); a list it accepts keeps the
// rules every reader counts on (UIDs ascending and below NEXT, modseqs
// non-zero and at most HIGHESTMODSEQ, FIRST-RECENT at most NEXT), and what
// format() writes of it is read back as the same list.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "mailbox/uidlist.hpp"

using hikyaku::mailbox::UidList;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto list = UidList::parse(text);
  if (!list) return 0;
  if (list->validity == 0 || list->next == 0 || list->first_recent > list->next || list->highest_modseq == 0 ||
      list->highest_modseq > UidList::kMaxModseq)
    std::abort();
  uint32_t last = 0;
  for (const auto& e : list->entries) {
    if (e.uid <= last || e.uid >= list->next || e.modseq == 0 || e.modseq > list->highest_modseq || e.name.empty())
      std::abort();
    last = e.uid;
  }
  // Written back (always version 2, every entry with letters), it reads the same.
  for (auto& e : list->entries) e.letters = e.letters.value_or("");
  const std::string written = list->format();
  auto again = UidList::parse(written);
  if (!again || again->format() != written || again->entries.size() != list->entries.size()) std::abort();
  return 0;
}

#include "imap/protocol/store.hpp"

#include <algorithm>
#include <cerrno>

namespace hikyaku::imap::protocol {

uint32_t MemoryStore::add(std::string content, uint8_t flags) {
  Entry e;
  e.meta.uid = uidnext++;
  e.meta.key = "k" + std::to_string(e.meta.uid);
  e.meta.flags = flags;
  e.meta.size = content.size();
  e.meta.internal_date = now;
  e.content = std::move(content);
  entries.push_back(std::move(e));
  return entries.back().meta.uid;
}

base::Result<Snapshot> MemoryStore::scan(bool claim_recent) {
  Snapshot s;
  s.uidvalidity = uidvalidity;
  s.uidnext = uidnext;
  for (auto& e : entries) {
    StoredMessage m = e.meta;
    m.recent = !e.claimed;
    if (claim_recent) e.claimed = true;
    s.messages.push_back(m);
  }
  return s;
}

base::Result<std::optional<std::string>> MemoryStore::read(const StoredMessage& message) {
  for (const auto& e : entries) {
    if (e.meta.uid == message.uid) return std::optional<std::string>(e.content);
  }
  return std::optional<std::string>();  // expunged by another session
}

base::Result<std::optional<MailStore::FlagState>> MemoryStore::update_flags(const StoredMessage& message,
                                                                           const FlagChange& change) {
  for (auto& e : entries) {
    if (e.meta.uid == message.uid) {
      FlagState st{e.meta.flags, e.meta.keywords};
      change(st);
      if (st.keywords.size() > max_keywords) return base::make_error("too many keywords");
      e.meta.flags = st.flags;
      e.meta.keywords = st.keywords;
      return std::optional<FlagState>(st);
    }
  }
  return std::optional<FlagState>();  // expunged by another session
}

base::Status MemoryStore::expunge(const StoredMessage& message) {
  std::erase_if(entries, [&](const Entry& e) { return e.meta.uid == message.uid; });
  return {};
}

base::Result<std::optional<MailStore::QuotaState>> MemoryStore::quota() {
  if (quota_limit == 0) return std::optional<QuotaState>();
  QuotaState q{0, quota_limit};
  for (const auto& e : entries) q.used += e.content.size();
  return std::optional<QuotaState>(q);
}

base::Result<Appended> MemoryStore::append(std::string_view message, uint8_t flags, const Keywords& keywords,
                                           std::optional<int64_t> internal_date) {
  if (keywords.size() > max_keywords) return base::make_error("too many keywords");
  if (quota_limit != 0) {
    auto q = quota();
    if (!q) return q.error();
    if ((*q)->used + message.size() > quota_limit) return over_quota();
  }
  uint32_t uid = add(std::string(message), flags);
  entries.back().meta.keywords = keywords;
  if (internal_date) entries.back().meta.internal_date = *internal_date;
  return Appended{uidvalidity, uid, entries.back().meta.key};
}

}  // namespace hikyaku::imap::protocol

#include "imap/protocol/store.hpp"

#include <algorithm>
#include <cerrno>

#include "imap/protocol/response.hpp"

namespace hikyaku::imap::protocol {

uint32_t MemoryStore::add(std::string content, uint8_t flags) {
  Entry e;
  e.meta.uid = uidnext++;
  e.meta.key = "k" + std::to_string(e.meta.uid);
  e.meta.flags = flags;
  e.meta.size = content.size();
  e.meta.internal_date = now;
  e.meta.modseq = ++highest_modseq;
  e.content = std::move(content);
  entries.push_back(std::move(e));
  return entries.back().meta.uid;
}

base::Result<Snapshot> MemoryStore::scan(bool claim_recent) {
  Snapshot s;
  s.uidvalidity = uidvalidity;
  s.uidnext = uidnext;
  s.highest_modseq = highest_modseq;
  for (auto& e : entries) {
    StoredMessage m = e.meta;
    m.recent = !e.claimed;
    if (claim_recent) e.claimed = true;
    s.messages.push_back(m);
  }
  return s;
}

base::Result<std::optional<std::string>> MemoryStore::read(const StoredMessage& message) {
  ++reads;
  for (const auto& e : entries) {
    if (e.meta.uid == message.uid) return std::optional<std::string>(e.content);
  }
  return std::optional<std::string>();  // expunged by another session
}

MailStore::FlagResult MemoryStore::update_flags(const StoredMessage& message, const FlagChange& change) {
  for (auto& e : entries) {
    if (e.meta.uid == message.uid) {
      FlagState st{e.meta.flags, e.meta.keywords, e.meta.modseq};
      change(st);
      if (st.skip) return std::optional<FlagState>(st);
      if (st.keywords.size() > max_keywords) return base::make_error("too many keywords");
      // RFC 7162 §3.1: a new MODSEQ only when something changed.
      if (st.flags != e.meta.flags || st.keywords != e.meta.keywords) e.meta.modseq = ++highest_modseq;
      e.meta.flags = st.flags;
      e.meta.keywords = st.keywords;
      st.modseq = e.meta.modseq;
      return std::optional<FlagState>(st);
    }
  }
  return std::optional<FlagState>();  // expunged by another session
}

base::Status MemoryStore::expunge(const StoredMessage& message) {
  if (std::erase_if(entries, [&](const Entry& e) { return e.meta.uid == message.uid; }) != 0) ++highest_modseq;
  return {};
}

base::Result<bool> MemoryStore::expunge_if_deleted(const StoredMessage& message) {
  for (const auto& e : entries) {
    if (e.meta.uid != message.uid) continue;
    if (!(e.meta.flags & kDeleted)) return false;
    if (auto st = expunge(message); !st) return st.error();
    return true;
  }
  return true;  // expunged by another session
}

base::Result<Appended> MemoryStore::append(std::string_view message, uint8_t flags, const Keywords& keywords,
                                           std::optional<int64_t> internal_date) {
  if (keywords.size() > max_keywords) return base::make_error("too many keywords");
  if (account && account->quota_limit != 0 && account->used() + message.size() > account->quota_limit) {
    return over_quota();
  }
  uint32_t uid = add(std::string(message), flags);
  entries.back().meta.keywords = keywords;
  if (internal_date) entries.back().meta.internal_date = *internal_date;
  return Appended{uidvalidity, uid, entries.back().meta.key};
}

base::Result<std::vector<Appended>> MailStore::append_all(const std::vector<NewMessage>& messages) {
  std::vector<Appended> out;
  out.reserve(messages.size());
  for (const auto& m : messages) {
    auto appended = append(m.content, m.flags, m.keywords, m.internal_date);
    if (!appended) {
      // All or none: take back what this call added.
      for (const auto& a : out) {
        StoredMessage added;
        added.uid = a.uid;
        added.key = a.key;
        (void)expunge(added);  // best effort: a failure here leaves that message behind
      }
      return appended.error();
    }
    out.push_back(std::move(*appended));
  }
  return out;
}

namespace {

bool inside(const std::string& name, const std::string& parent) {
  return name.size() > parent.size() && name.starts_with(parent) && name[parent.size()] == '/';
}

}  // namespace

MemoryAccount::MemoryAccount() {
  auto inbox = std::make_shared<MemoryStore>();
  inbox->account = this;
  stores["INBOX"] = inbox;
}

uint64_t MemoryAccount::used() const {
  uint64_t bytes = 0;
  for (const auto& [name, store] : stores) {
    for (const auto& e : store->entries) bytes += e.content.size();
  }
  return bytes;
}

base::Result<std::vector<Folder>> MemoryAccount::folders() {
  std::vector<Folder> out{{"INBOX", ""}};
  for (const auto& [name, store] : stores) {
    auto use = special_uses.find(name);
    if (name != "INBOX") out.push_back({name, use == special_uses.end() ? "" : use->second});
  }
  return out;
}

base::Result<std::vector<std::string>> MemoryAccount::subscriptions() {
  std::vector<std::string> out{"INBOX"};
  for (const auto& name : subscribed) {
    if (name != "INBOX") out.push_back(name);
  }
  return out;
}

base::Status MemoryAccount::subscribe(const std::string& name, bool on) {
  if (on) {
    subscribed.insert(name);
  } else {
    subscribed.erase(name);
  }
  return {};
}

base::Result<std::shared_ptr<MailStore>> MemoryAccount::open(const std::string& name) {
  auto it = stores.find(name);
  if (it == stores.end()) return account_error(ENOENT, "no such folder");
  return std::shared_ptr<MailStore>(it->second);
}

base::Status MemoryAccount::create(const std::string& name, const std::string& special_use) {
  if (stores.count(name)) return account_error(EEXIST, "the folder exists");
  if (!special_use.empty()) special_uses[name] = special_use;
  auto store = std::make_shared<MemoryStore>();
  store->account = this;
  store->uidvalidity = next_uidvalidity++;
  stores[name] = std::move(store);
  return {};
}

base::Status MemoryAccount::remove(const std::string& name) {
  if (name == "INBOX") return account_error(EINVAL, "INBOX cannot be deleted");
  auto found = stores.find(name);
  if (found == stores.end()) return account_error(ENOENT, "no such folder");
  found->second->removed = true;  // a session that has it selected sees it go
  stores.erase(found);
  special_uses.erase(name);
  return {};
}

base::Status MemoryAccount::rename(const std::string& from, const std::string& to) {
  if (stores.count(to)) return account_error(EEXIST, "the folder exists already");
  if (from == "INBOX") {
    if (auto st = create(to, ""); !st) return st;
    auto& source = *stores.at("INBOX");
    auto& target = *stores.at(to);
    for (auto& e : source.entries) {
      uint32_t uid = target.add(e.content, e.meta.flags);
      target.entries.back().meta.keywords = e.meta.keywords;
      (void)uid;
    }
    source.entries.clear();
    return {};
  }
  if (inside(to, from)) return account_error(EINVAL, "a folder cannot move inside itself");
  std::vector<std::string> moving;
  for (const auto& [name, store] : stores) {
    if (name == from || inside(name, from)) moving.push_back(name);
  }
  // A parent that is no folder itself is renamed with its children.
  if (moving.empty()) return account_error(ENOENT, "no such folder");
  for (const auto& name : moving) {
    if (stores.count(to + name.substr(from.size()))) return account_error(EEXIST, "the folder exists already");
  }
  for (const auto& name : moving) {
    std::string renamed = to + name.substr(from.size());
    stores[renamed] = std::move(stores[name]);
    stores.erase(name);
    if (auto use = special_uses.find(name); use != special_uses.end()) {
      special_uses[renamed] = use->second;
      special_uses.erase(name);
    }
  }
  return {};
}

base::Result<std::optional<QuotaState>> MemoryAccount::quota() {
  if (quota_limit == 0) return std::optional<QuotaState>();
  return std::optional<QuotaState>(QuotaState{used(), quota_limit});
}

}  // namespace hikyaku::imap::protocol

#include "imap/maildir_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <sstream>
#include <unordered_map>

#include "base/file.hpp"
#include "base/strings.hpp"
#include "imap/protocol/response.hpp"
#include "mailbox/quota.hpp"

namespace hikyaku::imap {
namespace {

namespace fs = std::filesystem;
using protocol::Snapshot;
using protocol::StoredMessage;

struct UidList {
  uint32_t validity = 0;
  uint32_t next = 1;
  // Messages with uid >= first_recent have not been claimed by any session
  // yet: they are \Recent (RFC 3501 §2.3.2) for the next session that
  // selects the mailbox read-write (as Dovecot's uidlist keeps it).
  uint32_t first_recent = 1;
  std::vector<std::pair<uint32_t, std::string>> entries;  // ascending uid
};

// Parse the uidlist; nullopt when it is missing or not ours/not valid.
std::optional<UidList> parse_uidlist(const std::string& text) {
  size_t eol = text.find('\n');
  if (eol == std::string::npos) return std::nullopt;
  std::istringstream head(text.substr(0, eol));
  std::istringstream in(text.substr(eol + 1));
  std::string magic;
  int version = 0;
  UidList out;
  if (!(head >> magic >> version >> out.validity >> out.next) || magic != "hikyaku-uidlist" || version != 1 ||
      out.validity == 0 || out.next == 0)
    return std::nullopt;
  if (!(head >> out.first_recent) || out.first_recent > out.next) out.first_recent = out.next;
  uint32_t uid = 0;
  std::string name;
  uint32_t last = 0;
  while (in >> uid >> name) {
    if (uid <= last || uid >= out.next) return std::nullopt;  // must ascend and stay below next
    out.entries.emplace_back(uid, name);
    last = uid;
  }
  if (!in.eof()) return std::nullopt;
  return out;
}

std::string format_uidlist(const UidList& list) {
  std::string out = "hikyaku-uidlist 1 " + std::to_string(list.validity) + " " + std::to_string(list.next) + " " +
                    std::to_string(list.first_recent) + "\n";
  for (const auto& [uid, name] : list.entries) out += std::to_string(uid) + " " + name + "\n";
  return out;
}

constexpr const char* kKeywordsFile = "dovecot-keywords";
constexpr size_t kMaxKeywords = 26;

bool is_keyword_letter(char c) { return c >= 'a' && c <= 'z'; }

// Parse dovecot-keywords: "INDEX NAME" per line.
std::vector<std::string> parse_keywords(const std::string& text) {
  std::vector<std::string> names;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    size_t sp = line.find(' ');
    if (sp == std::string::npos) continue;
    auto index = base::parse_uint(std::string_view(line).substr(0, sp));
    std::string name = line.substr(sp + 1);
    if (!index || *index >= kMaxKeywords || name.empty()) continue;
    if (names.size() <= *index) names.resize(*index + 1);
    names[*index] = name;
  }
  return names;
}

}  // namespace

std::shared_ptr<std::mutex> MailboxLocks::mutex_for(const std::string& mailbox) {
  std::lock_guard guard(mutex_);
  auto& m = table_[mailbox];
  if (!m) m = std::make_shared<std::mutex>();
  return m;
}

struct MaildirStore::Held {
  std::unique_lock<std::mutex> guard;
  int fd = -1;
  ~Held() {
    if (fd >= 0) ::close(fd);  // drops the flock
  }
};

MaildirStore::MaildirStore(mailbox::Maildir maildir, std::shared_ptr<std::mutex> mutex, bool sync, uint64_t quota)
    : maildir_(std::move(maildir)), renames_(maildir_.root(), false), mutex_(std::move(mutex)), sync_(sync),
      quota_(quota) {}

base::Result<std::unique_ptr<MaildirStore::Held>> MaildirStore::lock() {
  auto held = std::make_unique<Held>();
  held->guard = std::unique_lock(*mutex_);
  fs::path path = maildir_.root() / "hikyaku-uidlist.lock";
  held->fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (held->fd < 0) return base::errno_error("open", path, errno);
  int rc;
  do {
    rc = ::flock(held->fd, LOCK_EX);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return base::errno_error("flock", path, errno);
  return held;
}

base::Result<Snapshot> MaildirStore::scan(bool claim_recent) {
  auto held = lock();
  if (!held) return held.error();
  return scan_locked(claim_recent);
}

protocol::Keywords MaildirStore::keywords_of(const std::string& letters) const {
  protocol::Keywords out;
  for (char c : letters) {
    size_t i = static_cast<size_t>(c - 'a');
    if (is_keyword_letter(c) && i < keyword_names_.size() && !keyword_names_[i].empty())
      protocol::add_keyword(out, keyword_names_[i]);
  }
  return out;
}

void MaildirStore::load_keywords() {
  auto text = base::read_file(maildir_.root() / kKeywordsFile);
  keyword_names_ = text ? parse_keywords(*text) : std::vector<std::string>();
}

base::Result<std::string> MaildirStore::letters_for(const std::string& current, uint8_t flags,
                                                    const protocol::Keywords& keywords) {
  // Keep letters we do not manage (e.g. another reader's), replace ours.
  std::string out;
  for (char c : current) {
    if (std::string_view("DFRST").find(c) == std::string_view::npos && !is_keyword_letter(c)) out += c;
  }
  out += protocol::maildir_letters(flags);
  for (const auto& k : keywords) {
    size_t index = kMaxKeywords;
    for (size_t i = 0; i < keyword_names_.size(); ++i) {
      if (base::iequals(keyword_names_[i], k)) index = i;
    }
    if (index == kMaxKeywords) {
      // A new keyword (the caller holds the lock and has just re-read the
      // file): take the first free index.
      {
        for (size_t i = 0; i < kMaxKeywords && index == kMaxKeywords; ++i) {
          if (i >= keyword_names_.size() || keyword_names_[i].empty()) index = i;
        }
        if (index == kMaxKeywords) return base::make_error("too many keywords (Maildir allows 26)");
        if (keyword_names_.size() <= index) keyword_names_.resize(index + 1);
        keyword_names_[index] = k;
        std::string text;
        for (size_t i = 0; i < keyword_names_.size(); ++i) {
          if (!keyword_names_[i].empty()) text += std::to_string(i) + " " + keyword_names_[i] + "\n";
        }
        fs::path tmp = maildir_.root() / "dovecot-keywords.hikyaku.tmp";
        ::unlink(tmp.c_str());
        if (auto st = base::write_file_durable(tmp, maildir_.root() / kKeywordsFile, text, sync_); !st)
          return st.error();
      }
    }
    out += static_cast<char>('a' + index);
  }
  return out;
}

base::Result<Snapshot> MaildirStore::scan_locked(bool claim_recent) {
  const fs::path list_path = maildir_.root() / kUidListName;
  load_keywords();
  auto listed = maildir_.list();
  if (!listed) return listed.error();

  // Load the uidlist; a missing or unreadable one starts a new UIDVALIDITY
  // (RFC 3501 §2.3.1.1: clients then forget their cached UIDs).
  UidList uids;
  bool dirty = false;
  auto text = base::read_file(list_path);
  std::optional<UidList> parsed = text ? parse_uidlist(*text) : std::nullopt;
  if (parsed) {
    uids = std::move(*parsed);
  } else {
    uids.validity = static_cast<uint32_t>(std::time(nullptr));
    if (uids.validity == 0) uids.validity = 1;
    dirty = true;
  }
  std::unordered_map<std::string, uint32_t> by_name;
  for (const auto& [uid, name] : uids.entries) by_name.emplace(name, uid);

  // Assign UIDs to messages seen for the first time, in delivery order.
  Snapshot snap;
  std::unordered_map<std::string, bool> present;
  known_.clear();
  for (auto& info : *listed) {
    uint32_t uid = 0;
    if (auto it = by_name.find(info.uid); it != by_name.end()) {
      uid = it->second;
    } else {
      uid = uids.next++;
      uids.entries.emplace_back(uid, info.uid);
      by_name.emplace(info.uid, uid);
      dirty = true;
    }
    present[info.uid] = true;
    StoredMessage m;
    m.uid = uid;
    m.key = info.uid;
    m.flags = protocol::from_maildir_letters(info.flags);
    m.keywords = keywords_of(info.flags);
    m.size = info.size;
    m.recent = uid >= uids.first_recent;
    struct stat st {};
    m.internal_date = ::stat(info.path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_mtime) : 0;
    if (claim_recent && info.in_new) {
      // The Maildir rule: a message seen by a reader leaves new/.
      if (auto moved = renames_.set_flags(info, info.flags); !moved) {
        std::error_code ec;
        if (!fs::exists(info.path, ec)) continue;  // removed meanwhile
      }
    }
    known_[info.uid] = info;
    snap.messages.push_back(std::move(m));
  }
  if (claim_recent && uids.first_recent != uids.next) {
    uids.first_recent = uids.next;
    dirty = true;
  }
  // Forget messages that have gone (expunged here, by POP3 or by mutt).
  size_t before = uids.entries.size();
  std::erase_if(uids.entries, [&](const auto& e) { return !present.count(e.second); });
  dirty |= uids.entries.size() != before;
  if (dirty) {
    fs::path tmp = maildir_.root() / "hikyaku-uidlist.tmp";
    ::unlink(tmp.c_str());  // a leftover from a crash; we hold the lock
    if (auto st = base::write_file_durable(tmp, list_path, format_uidlist(uids), sync_); !st) return st.error();
  }
  std::sort(snap.messages.begin(), snap.messages.end(),
            [](const StoredMessage& a, const StoredMessage& b) { return a.uid < b.uid; });
  snap.uidvalidity = uids.validity;
  snap.uidnext = uids.next;
  return snap;
}

mailbox::MessageInfo* MaildirStore::lookup(const std::string& key) {
  auto it = known_.find(key);
  return it == known_.end() ? nullptr : &it->second;
}

base::Result<std::optional<std::string>> MaildirStore::read(const StoredMessage& message) {
  mailbox::MessageInfo* info = lookup(message.key);
  mailbox::MessageInfo found;
  if (!info) {
    auto f = maildir_.find(message.key);
    if (!f && f.error().error_number == ENOENT) return std::optional<std::string>();  // expunged elsewhere
    if (!f) return f.error();
    found = std::move(*f);
    info = &found;
  }
  auto data = maildir_.read(*info);
  if (!data && data.error().error_number == ENOENT) return std::optional<std::string>();  // expunged elsewhere
  if (!data) return data.error();
  // Stored with LF (mailbox/maildir.hpp); IMAP serves CRLF (RFC 3501 §2.1).
  return std::optional<std::string>(mailbox::Maildir::to_network(*data));
}

base::Result<std::optional<MaildirStore::FlagState>> MaildirStore::update_flags(const StoredMessage& message,
                                                                               const FlagChange& change) {
  // Read-modify-write under the lock, from the name on disk now.
  auto held = lock();
  if (!held) return held.error();
  auto found = maildir_.find(message.key);
  if (!found) return std::optional<FlagState>();  // expunged by someone else
  load_keywords();
  FlagState st{protocol::from_maildir_letters(found->flags), keywords_of(found->flags)};
  change(st);
  auto letters = letters_for(found->flags, st.flags, st.keywords);
  if (!letters) return letters.error();
  if (auto moved = renames_.set_flags(*found, *letters); !moved) {
    auto again = maildir_.find(message.key);
    if (!again) return std::optional<FlagState>();  // gone meanwhile
    return moved.error();
  }
  known_[message.key] = *found;
  return std::optional<FlagState>(st);
}

base::Status MaildirStore::expunge(const StoredMessage& message) {
  mailbox::MessageInfo* info = lookup(message.key);
  if (!info) {
    auto f = maildir_.find(message.key);
    if (!f) return {};  // already gone
    return maildir_.remove(*f);
  }
  return maildir_.remove(*info);
}

base::Result<std::optional<protocol::MailStore::QuotaState>> MaildirStore::quota() {
  if (quota_ == 0) return std::optional<QuotaState>();
  auto usage = mailbox::Quota(maildir_.root(), quota_).usage();
  if (!usage) return usage.error();
  return std::optional<QuotaState>(QuotaState{usage->bytes, quota_});
}

base::Result<protocol::Appended> MaildirStore::append(std::string_view message, uint8_t flags,
                                            const protocol::Keywords& keywords,
                                            std::optional<int64_t> internal_date) {
  // Under the lock, so no other session numbers the new file before us.
  auto held = lock();
  if (!held) return held.error();
  load_keywords();
  auto letters = letters_for("", flags, keywords);
  if (!letters) return letters.error();
  if (quota_ != 0) {
    const mailbox::Quota quota(maildir_.root(), quota_);
    auto usage = quota.usage();
    if (!usage) return usage.error();
    if (quota.exceeded_by(*usage, mailbox::Maildir::stored_size(message))) return protocol::over_quota();
  }
  auto name = maildir_.deliver(message);
  if (!name) return name.error();
  auto info = maildir_.find(*name);
  if (!info) return info.error();
  // An appended message is no longer new: straight to cur/ with its flags.
  if (auto st = maildir_.set_flags(*info, *letters); !st) return st.error();
  if (internal_date) {
    struct timespec times[2] = {{static_cast<time_t>(*internal_date), 0}, {static_cast<time_t>(*internal_date), 0}};
    ::utimensat(AT_FDCWD, info->path.c_str(), times, 0);
  }
  auto snap = scan_locked(false);
  if (!snap) return snap.error();
  for (const auto& m : snap->messages) {
    if (m.key == *name) return protocol::Appended{snap->uidvalidity, m.uid, m.key};
  }
  return base::make_error("appended message " + *name + " vanished");
}

}  // namespace hikyaku::imap

#include "imap/maildir_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <iterator>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "base/file.hpp"
#include "base/strings.hpp"
#include "imap/protocol/mutf7.hpp"
#include "imap/protocol/response.hpp"
#include "mailbox/quota.hpp"
#include "mailbox/uidlist.hpp"

namespace hikyaku::imap {
namespace {

namespace fs = std::filesystem;
using protocol::Snapshot;
using protocol::StoredMessage;

using mailbox::UidList;

std::optional<UidList> read_uidlist(const fs::path& path) {
  auto text = base::read_file(path);
  return text ? UidList::parse(*text) : std::nullopt;
}

// Replace DIR/hikyaku-uidlist atomically (the caller holds the lock).
base::Status write_uidlist(const fs::path& dir, const UidList& list, bool sync) {
  const fs::path tmp = dir / "hikyaku-uidlist.tmp";
  ::unlink(tmp.c_str());  // a leftover from a crash; we hold the lock
  return base::write_file_durable(tmp, dir / MaildirStore::kUidListName, list.format(), sync);
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

// A new UIDVALIDITY for a folder of the Maildir at `root`: the time, or
// one more than the last given when that is not below it (a folder
// recreated within the same second), kept in ROOT/hikyaku-uidvalidity.
base::Result<uint32_t> next_uidvalidity(const fs::path& root) {
  fs::path path = root / "hikyaku-uidvalidity";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return base::errno_error("open", path, errno);
  int rc;
  do {
    rc = ::flock(fd, LOCK_EX);
  } while (rc != 0 && errno == EINTR);
  char buf[32] = {};
  ssize_t n = rc == 0 ? ::pread(fd, buf, sizeof buf - 1, 0) : -1;
  std::string_view stored(buf, n > 0 ? static_cast<size_t>(n) : 0);
  while (!stored.empty() && (stored.back() == '\n' || stored.back() == ' ')) stored.remove_suffix(1);
  auto last = base::parse_uint(stored);
  auto now = static_cast<uint64_t>(std::time(nullptr));
  uint64_t value = last && *last < 0xffffffffULL && *last >= now ? *last + 1 : now;
  if (value == 0 || value > 0xffffffffULL) value = 1;
  std::string text = std::to_string(value) + "\n";
  if (rc != 0 || ::ftruncate(fd, 0) != 0 || ::pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    int e = errno;
    ::close(fd);
    return base::errno_error("write", path, e);
  }
  ::close(fd);
  return static_cast<uint32_t>(value);
}

struct SpecialFolder {
  const char* name;
  const char* use;
};
constexpr SpecialFolder kSpecialFolders[] = {
    {"Sent", "\\Sent"}, {"Drafts", "\\Drafts"}, {"Trash", "\\Trash"}, {"Junk", "\\Junk"}, {"Archive", "\\Archive"},
};

constexpr const char* kSubscriptionsFile = "subscriptions";
constexpr const char* kSpecialUseFile = "hikyaku-special-use";

// A folder's RFC 6154 special use: from its hikyaku-special-use file (one
// of protocol::kStorableSpecialUses; anything else there is ignored), else
// by name for the five folders created at login.
std::string special_use_of(const fs::path& dir, const std::string& name) {
  if (auto stored = base::read_file(dir / kSpecialUseFile)) {
    std::string_view use = *stored;
    while (use.ends_with('\n') || use.ends_with('\r')) use.remove_suffix(1);
    for (const char* known : protocol::kStorableSpecialUses) {
      if (use == known) return known;
    }
  }
  for (const auto& f : kSpecialFolders) {
    if (name == f.name) return f.use;
  }
  return "";
}

// A new, empty directory of its own under ROOT/tmp/ (where a folder is built
// before it appears, or goes before it is removed): two sessions creating or
// deleting the same folder at once never share one.
base::Result<fs::path> scratch_directory(const fs::path& root) {
  std::string path = (root / "tmp" / ".hikyaku-folder-XXXXXX").string();
  if (::mkdtemp(path.data()) == nullptr) return base::errno_error("mkdtemp", path, errno);
  return fs::path(path);
}

}  // namespace

std::shared_ptr<SharedFolder> MailboxLocks::folder(const std::string& directory) {
  std::lock_guard guard(mutex_);
  auto& entry = table_[directory];
  auto folder = entry.lock();
  if (!folder) {
    // Not make_shared: its one block would stay allocated, folder state and
    // all, for as long as the table's weak_ptr lingers after the last store.
    folder = std::shared_ptr<SharedFolder>(new SharedFolder());  // NOLINT(modernize-make-shared)
    entry = folder;
  }
  if (table_.size() >= sweep_at_) {  // amortised: the table stays within twice the open folders
    std::erase_if(table_, [](const auto& e) { return e.second.expired(); });
    sweep_at_ = std::max<size_t>(64, 2 * table_.size());
  }
  return folder;
}

std::shared_ptr<std::mutex> MailboxLocks::mutex_for(const std::string& key) {
  auto shared = folder(key);
  return {shared, &shared->mutex};
}

struct MaildirStore::Held {
  std::unique_lock<std::mutex> guard;
  base::UniqueFd flock;  // Maildir::lock_names(); released first (declared last)
};

MaildirStore::MaildirStore(mailbox::Maildir maildir, std::shared_ptr<SharedFolder> folder, bool sync, uint64_t quota,
                           std::shared_ptr<QuietMoves> quiet)
    : maildir_(std::move(maildir)), folder_(std::move(folder)), sync_(sync),
      quota_(quota), quiet_(std::move(quiet)) {}

base::Result<std::unique_ptr<MaildirStore::Held>> MaildirStore::lock() {
  auto held = std::make_unique<Held>();
  held->guard = std::unique_lock(folder_->mutex);
  auto names = maildir_.lock_names();
  if (!names) return names.error();
  held->flock = std::move(names).value();
  return held;
}

bool MaildirStore::gone() const {
  // DELETE and RENAME move the whole directory (MaildirAccount), so its
  // cur/ is no longer where this store looks.
  std::error_code ec;
  return !fs::is_directory(maildir_.root() / "cur", ec);
}

base::Result<Snapshot> MaildirStore::scan(bool claim_recent) {
  auto held = lock();
  if (!held) return held.error();
  if (auto reused = reuse(claim_recent)) return std::move(*reused);
  return scan_locked(claim_recent);
}

bool MaildirStore::Stamp::operator==(const Stamp& o) const {
  return error == o.error && dev == o.dev && ino == o.ino && size == o.size && mtime.tv_sec == o.mtime.tv_sec &&
         mtime.tv_nsec == o.mtime.tv_nsec && ctime.tv_sec == o.ctime.tv_sec && ctime.tv_nsec == o.ctime.tv_nsec;
}

MaildirStore::Stamps MaildirStore::stamp() const {
  const fs::path& root = maildir_.root();
  const fs::path paths[] = {root / "cur", root / "new", root / kUidListName, root / kKeywordsFile};
  static_assert(std::size(paths) == std::tuple_size_v<Stamps>);
  Stamps out;
  for (size_t i = 0; i < out.size(); ++i) {
    struct stat st {};
    if (::stat(paths[i].c_str(), &st) != 0) {
      out[i].error = errno;
      continue;
    }
    out[i].dev = st.st_dev;
    out[i].ino = st.st_ino;
    out[i].size = st.st_size;
    out[i].mtime = st.st_mtim;
    out[i].ctime = st.st_ctim;
  }
  return out;
}

std::optional<Snapshot> MaildirStore::reuse(bool claim_recent) const {
  // Whether the stamps were settled (older than the scan by the margin)
  // was decided when the result was kept; here only that nothing has
  // changed since. A claim that would move or number something lists.
  const auto& last = folder_->last;
  if (!last || (claim_recent && last->claimable)) return std::nullopt;
  if (stamp() != last->stamps) return std::nullopt;
  return last->snapshot;
}

protocol::Keywords MaildirStore::keywords_of(const std::string& letters) const {
  protocol::Keywords out;
  for (char c : letters) {
    size_t i = static_cast<size_t>(c - 'a');
    if (is_keyword_letter(c) && i < folder_->keyword_names.size() && !folder_->keyword_names[i].empty())
      protocol::add_keyword(out, folder_->keyword_names[i]);
  }
  return out;
}

void MaildirStore::load_keywords() {
  auto text = base::read_file(maildir_.root() / kKeywordsFile);
  folder_->keyword_names = text ? parse_keywords(*text) : std::vector<std::string>();
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
    for (size_t i = 0; i < folder_->keyword_names.size(); ++i) {
      if (base::iequals(folder_->keyword_names[i], k)) index = i;
    }
    if (index == kMaxKeywords) {
      // A new keyword (the caller holds the lock and has just re-read the
      // file): take the first free index.
      {
        for (size_t i = 0; i < kMaxKeywords && index == kMaxKeywords; ++i) {
          if (i >= folder_->keyword_names.size() || folder_->keyword_names[i].empty()) index = i;
        }
        if (index == kMaxKeywords) return base::make_error("too many keywords (Maildir allows 26)");
        if (folder_->keyword_names.size() <= index) folder_->keyword_names.resize(index + 1);
        folder_->keyword_names[index] = k;
        std::string text;
        for (size_t i = 0; i < folder_->keyword_names.size(); ++i) {
          if (!folder_->keyword_names[i].empty()) text += std::to_string(i) + " " + folder_->keyword_names[i] + "\n";
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

// readdir(3) may skip an entry another program renames while the directory
// is read (mutt or Dovecot changing a message's flags in cur/; on ext4 a
// renamed entry moves within the directory's hash order): such a message
// would be forgotten, reported expunged, and come back under a new UID at
// the next scan. A message of the uidlist that a listing misses, and that
// no session of ours expunged, is forgotten only if three more listings
// miss it too: a removal by another program (POP3, mutt) costs three
// listings of the folder once.
base::Status MaildirStore::relist_missing(std::vector<mailbox::MessageInfo>& listed, const UidList& uids) {
  std::unordered_set<std::string_view> missing;
  {
    std::unordered_set<std::string_view> seen;
    seen.reserve(listed.size());
    for (const auto& info : listed) seen.insert(info.uid);
    for (const auto& entry : uids.entries)
      if (!seen.contains(entry.name) && !folder_->expunged.contains(entry.name)) missing.insert(entry.name);
  }
  folder_->expunged.clear();
  for (int tries = 0; tries < 3 && !missing.empty(); ++tries) {
    auto again = maildir_.list(&folder_->known);
    if (!again) return again.error();
    for (auto& info : *again) {
      auto it = missing.find(info.uid);
      if (it == missing.end()) continue;
      missing.erase(it);
      listed.push_back(std::move(info));
    }
  }
  return {};
}

base::Result<Snapshot> MaildirStore::scan_locked(bool claim_recent) {
  // The Rescan rule (maildir_store.hpp): the time, then the stamps, then
  // the reading. T comes from the coarse clock, which file timestamps are
  // taken from: any change after it is stamped at T or later (truncated to
  // the file system's granularity, at most 1 s).
  folder_->last.reset();
  ++full_scans_;
  timespec started{};
  ::clock_gettime(CLOCK_REALTIME_COARSE, &started);
  started.tv_sec += clock_ahead_;
  const Stamps stamps = stamp();

  load_keywords();
  auto listed = maildir_.list(&folder_->known);  // sizes of messages seen before are not read again
  if (!listed) return listed.error();

  // Load the uidlist; a missing or unreadable one starts a new UIDVALIDITY
  // (RFC 3501 §2.3.1.1: clients then forget their cached UIDs).
  UidList uids;
  bool dirty = false;
  std::optional<UidList> parsed = read_uidlist(maildir_.root() / kUidListName);
  if (parsed) {
    uids = std::move(*parsed);
  } else {
    auto validity = next_uidvalidity(maildir_.quota_root());
    if (!validity) return validity.error();
    uids.validity = *validity;
    dirty = true;
  }
  // Unique name → index into uids.entries. The keys view the entries'
  // names: reserved first, the entries do not move while it is used.
  uids.entries.reserve(uids.entries.size() + listed->size());
  std::unordered_map<std::string_view, size_t> by_name;
  by_name.reserve(uids.entries.capacity());
  for (size_t i = 0; i < uids.entries.size(); ++i) by_name.emplace(uids.entries[i].name, i);
  if (auto st = relist_missing(*listed, uids); !st) return st.error();

  // Assign UIDs to messages seen for the first time, in delivery order.
  Snapshot snap;
  snap.messages.reserve(listed->size());
  std::vector<char> present(uids.entries.capacity(), 0);  // by index into uids.entries
  mailbox::Maildir::Known known;
  known.reserve(listed->size());
  std::optional<mailbox::Maildir> quick;  // renames(), made for the first claim
  for (auto& info : *listed) {
    size_t index = 0;
    if (auto it = by_name.find(info.uid); it != by_name.end()) {
      index = it->second;
    } else {
      index = uids.entries.size();
      uids.entries.push_back({uids.next++, info.uid, ++uids.highest_modseq, info.flags});
      by_name.emplace(uids.entries.back().name, index);
      dirty = true;
    }
    const uint32_t uid = uids.entries[index].uid;
    present[index] = 1;
    StoredMessage m;
    m.uid = uid;
    m.key = info.uid;
    m.flags = protocol::from_maildir_letters(info.flags);
    m.keywords = keywords_of(info.flags);
    m.size = info.size;
    m.recent = uid >= uids.first_recent;
    // The internal date: the file's time when first seen (RFC 3501 §2.3.3:
    // it does not change), not a stat of every message at every scan.
    // Kept in folder_->known (mailbox::MessageInfo::first_seen), carried over by list().
    if (info.first_seen == 0) {
      struct stat st {};
      info.first_seen = ::stat(info.path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_mtime) : 0;
    }
    m.internal_date = info.first_seen;
    if (claim_recent && info.in_new) {
      // The Maildir rule: a message seen by a reader leaves new/. Nothing a
      // session sees changes: the watch need not wake those in IDLE.
      const fs::path from = info.path;
      if (!quick) quick.emplace(renames());
      const fs::path to = quick->path_with_flags(info, info.flags);
      if (quiet_) quiet_->note(from, to);
      if (auto moved = quick->set_flags(info, info.flags); !moved) {
        if (quiet_) quiet_->cancel(from, to);
        std::error_code ec;
        if (!fs::exists(info.path, ec)) continue;  // removed meanwhile
      }
    }
    // RFC 7162 §3.1: letters other than those last numbered are a change
    // (a rename by POP3, mutt, Dovecot or a session that could not write
    // the list): the next modseq. A foreign letter counts too; the client
    // then gets a FETCH with the same FLAGS, which is harmless.
    auto& entry = uids.entries[index];
    if (!entry.letters) {  // from a version 1 list: numbered as it is, modseq 1
      entry.letters = info.flags;
      dirty = true;
    } else if (*entry.letters != info.flags) {
      entry.modseq = ++uids.highest_modseq;
      entry.letters = info.flags;
      dirty = true;
    }
    m.modseq = entry.modseq;
    snap.messages.push_back(std::move(m));
    std::string name = info.uid;
    known.insert_or_assign(std::move(name), std::move(info));  // a name listed twice: the last, as before
  }
  folder_->known = std::move(known);
  if (claim_recent && uids.first_recent != uids.next) {
    uids.first_recent = uids.next;
    dirty = true;
  }
  // Forget messages that have gone (expunged here, by POP3 or by mutt).
  // An expunge is a change of the folder: HIGHESTMODSEQ grows (RFC 7162
  // §3.1.2.1 asks only that it never go back).
  size_t before = uids.entries.size();
  by_name.clear();  // its keys view the entries, which move now
  size_t kept = 0;
  for (size_t i = 0; i < uids.entries.size(); ++i) {
    if (present[i] == 0) continue;
    if (kept != i) uids.entries[kept] = std::move(uids.entries[i]);
    ++kept;
  }
  uids.entries.resize(kept);
  if (uids.entries.size() != before) {
    ++uids.highest_modseq;
    dirty = true;
  }
  if (dirty) {
    if (auto st = write_uidlist(maildir_.root(), uids, sync_); !st) return st.error();
  }
  std::sort(snap.messages.begin(), snap.messages.end(),
            [](const StoredMessage& a, const StoredMessage& b) { return a.uid < b.uid; });
  snap.uidvalidity = uids.validity;
  snap.uidnext = uids.next;
  snap.highest_modseq = uids.highest_modseq;
  remember(stamps, started, snap, uids.first_recent, uids.next);
  return snap;
}

void MaildirStore::remember(const Stamps& stamps, const timespec& started, const Snapshot& snap,
                            uint32_t first_recent, uint32_t next) {
  // Kept only when every object was there or absent (no other stat error)
  // and every timestamp older than T - 1 s: a change made in the same
  // clock tick as an mtime seen here could leave it as it is; one made a
  // second later cannot.
  constexpr time_t kMargin = 1;
  auto settled = [&](const timespec& t) {
    return t.tv_sec < started.tv_sec - kMargin ||
           (t.tv_sec == started.tv_sec - kMargin && t.tv_nsec < started.tv_nsec);
  };
  for (const auto& s : stamps) {
    if (s.error != 0 && s.error != ENOENT) return;
    if (s.error == 0 && (!settled(s.mtime) || !settled(s.ctime))) return;
  }
  LastScan last{stamps, snap, first_recent != next};
  // \Recent as a scan that claims nothing would give it now: after a claim,
  // none (first_recent is uidnext).
  for (auto& m : last.snapshot.messages) m.recent = m.uid >= first_recent;
  for (const auto& [name, info] : folder_->known) last.claimable = last.claimable || info.in_new;
  folder_->last = std::move(last);
}

const mailbox::MessageInfo* MaildirStore::lookup(const std::string& key) const {
  auto it = folder_->known.find(key);
  return it == folder_->known.end() ? nullptr : &it->second;
}

std::optional<mailbox::MessageInfo> MaildirStore::seen(const std::string& key) const {
  std::lock_guard guard(folder_->mutex);
  const mailbox::MessageInfo* info = lookup(key);
  return info ? std::optional<mailbox::MessageInfo>(*info) : std::nullopt;
}

base::Result<std::optional<std::string>> MaildirStore::read(const StoredMessage& message) {
  std::optional<mailbox::MessageInfo> info = seen(message.key.str());
  if (!info) {
    auto f = maildir_.find(message.key.str());
    if (!f && f.error().error_number == ENOENT) return std::optional<std::string>();  // expunged elsewhere
    if (!f) return f.error();
    info = std::move(*f);
  }
  auto data = maildir_.read(*info);
  if (!data && data.error().error_number == ENOENT) return std::optional<std::string>();  // expunged elsewhere
  if (!data) return data.error();
  // Stored with LF (mailbox/maildir.hpp); IMAP serves CRLF (RFC 3501 §2.1).
  return std::optional<std::string>(mailbox::Maildir::to_network(*data));
}

MaildirStore::FlagResult MaildirStore::update_flags(const StoredMessage& message, const FlagChange& change) {
  return std::move(update_flags_all({message}, change)[0]);
}

std::vector<MaildirStore::FlagResult> MaildirStore::update_flags_all(const std::vector<StoredMessage>& messages,
                                                                     const FlagChange& change) {
  std::vector<FlagResult> out;
  if (messages.empty()) return out;
  out.reserve(messages.size());
  auto fail_all = [&](const base::Error& error) {
    out.clear();
    for (size_t i = 0; i < messages.size(); ++i) out.emplace_back(error);
    return std::move(out);
  };
  // Read-modify-write under the lock, from the names on disk now.
  auto held = lock();
  if (!held) return fail_all(held.error());
  folder_->last.reset();  // a change through this process: the next scan lists the folder
  load_keywords();
  const fs::path list_path = maildir_.root() / kUidListName;
  auto uids = read_uidlist(list_path);
  if (!uids || std::any_of(uids->entries.begin(), uids->entries.end(), [](const auto& e) { return !e.letters; })) {
    // Not a list this version has numbered (missing, unreadable, or an
    // older hikyaku's): a scan numbers every message first.
    if (auto snap = scan_locked(false); !snap) return fail_all(snap.error());
    folder_->last.reset();
    uids = read_uidlist(list_path);
  }
  std::unordered_map<std::string, size_t> by_name;
  if (uids) {
    for (size_t i = 0; i < uids->entries.size(); ++i) by_name.emplace(uids->entries[i].name, i);
  }
  bool dirty = false;
  // RFC 7162 §3.1: the next modseq for `entry`, whose letters are now `letters`.
  auto renumber = [&](UidList::Entry& entry, const std::string& letters) {
    entry.modseq = ++uids->highest_modseq;
    entry.letters = letters;
    dirty = true;
  };
  std::vector<size_t> changed;  // indexes into `out` of messages renamed here
  const mailbox::Maildir quick = renames();
  for (const auto& message : messages) {
    // Where the message is now: where the last scan saw it, if it is still
    // there (a STORE of one message lists no directory).
    auto found = maildir_.where_now(lookup(message.key.str()), message.key.str());
    if (!found) {  // expunged by someone else
      out.emplace_back(std::optional<FlagState>());
      continue;
    }
    UidList::Entry* entry = nullptr;
    if (auto it = by_name.find(message.key.str()); it != by_name.end()) entry = &uids->entries[it->second];
    // Renamed by another program since the last scan: numbered now, as the scan would.
    if (entry && entry->letters != found->flags) renumber(*entry, found->flags);
    FlagState st{protocol::from_maildir_letters(found->flags), keywords_of(found->flags), entry ? entry->modseq : 0};
    change(st);
    if (st.skip) {
      out.emplace_back(std::optional<FlagState>(std::move(st)));
      continue;
    }
    auto letters = letters_for(found->flags, st.flags, st.keywords);
    if (!letters) {
      out.emplace_back(letters.error());
      continue;
    }
    if (auto moved = quick.set_flags(*found, *letters); !moved) {
      auto again = maildir_.find(message.key.str());
      if (!again) {
        out.emplace_back(std::optional<FlagState>());  // gone meanwhile
      } else {
        out.emplace_back(moved.error());
      }
      continue;
    }
    folder_->known[message.key.str()] = *found;
    // A STORE that changes nothing keeps the modseq.
    if (entry && entry->letters != found->flags) {
      renumber(*entry, found->flags);
      changed.push_back(out.size());
    }
    st.modseq = entry ? entry->modseq : 0;  // 0: the list was made anew meanwhile (a new UIDVALIDITY)
    out.emplace_back(std::optional<FlagState>(std::move(st)));
  }
  // One write (and fsync) for the whole STORE. Should it fail, the flags
  // are changed but their modseqs not kept: the next scan finds the
  // letters differ from the list's and numbers those messages again.
  if (dirty) {
    if (auto written = write_uidlist(maildir_.root(), *uids, sync_); !written) {
      for (size_t i : changed) out[i] = written.error();
    }
  }
  return out;
}

base::Status MaildirStore::expunge(const StoredMessage& message) {
  std::optional<mailbox::MessageInfo> info;
  {
    std::lock_guard guard(folder_->mutex);
    folder_->last.reset();  // a change through this process: the next scan lists the folder
    if (const mailbox::MessageInfo* at = lookup(message.key.str())) info = *at;
  }
  auto removed = [&](base::Status st) {
    if (st) {
      std::lock_guard guard(folder_->mutex);
      folder_->expunged.insert(message.key.str());
    }
    return st;
  };
  if (!info) {
    auto f = maildir_.find(message.key.str());
    if (!f) return {};  // already gone
    return removed(maildir_.remove(*f));
  }
  return removed(maildir_.remove(*info));
}

base::Result<bool> MaildirStore::expunge_if_deleted(const StoredMessage& message) {
  // Under the lock every flag change takes (STORE, POP3's RETR): the name
  // read here is the one removed.
  auto held = lock();
  if (!held) return held.error();
  folder_->last.reset();  // a change through this process: the next scan lists the folder
  auto found = maildir_.where_now(lookup(message.key.str()), message.key.str());
  if (!found) {
    if (found.error().error_number == ENOENT) return true;  // expunged by someone else
    return found.error();
  }
  if (!(protocol::from_maildir_letters(found->flags) & protocol::kDeleted)) return false;
  if (auto st = maildir_.remove(*found); !st) return st.error();
  folder_->expunged.insert(message.key.str());  // under the lock's mutex
  return true;
}

base::Result<protocol::Appended> MaildirStore::append(std::string_view message, uint8_t flags,
                                            const protocol::Keywords& keywords,
                                            std::optional<int64_t> internal_date) {
  auto appended = append_all({protocol::NewMessage{message, flags, keywords, internal_date}});
  if (!appended) return appended.error();
  return std::move(appended->front());
}

base::Result<std::vector<protocol::Appended>> MaildirStore::append_all(
    const std::vector<protocol::NewMessage>& messages) {
  // Under the lock for the whole batch: no other session numbers the new
  // files before us, and none scans while only some of them are there
  // (RFC 3502 §6.3.11: all or none).
  auto held = lock();
  if (!held) return held.error();
  folder_->last.reset();  // a change through this process: the next scan lists the folder
  load_keywords();
  std::vector<std::string> letters;
  letters.reserve(messages.size());
  for (const auto& m : messages) {
    auto l = letters_for("", m.flags, m.keywords);
    if (!l) return l.error();
    letters.push_back(std::move(*l));
  }
  if (quota_ != 0) {
    const mailbox::Quota quota(maildir_.quota_root(), quota_);
    auto usage = quota.usage();
    if (!usage) return usage.error();
    uint64_t size = 0;
    for (const auto& m : messages) size += mailbox::Maildir::stored_size(m.content);
    if (quota.exceeded_by(*usage, size)) return protocol::over_quota();
  }
  // Two steps (mailbox/maildir.hpp): every message written and flushed in
  // tmp/, where no reader sees it, then all linked into cur/ with their
  // flags (an appended message is no longer new) and cur/ flushed once.
  // Until the last link nothing is visible; a failure takes back the ones
  // linked. Readers outside this process see all or none too.
  std::vector<mailbox::Maildir::Staged> staged;
  staged.reserve(messages.size());
  for (const auto& m : messages) {
    auto one = maildir_.stage(m.content);
    if (!one) {
      maildir_.discard(staged);
      return one.error();
    }
    if (const auto& date = m.internal_date) {  // the internal date is the file's mtime
      struct timespec times[2] = {{static_cast<time_t>(*date), 0}, {static_cast<time_t>(*date), 0}};
      ::utimensat(AT_FDCWD, one->tmp_path.c_str(), times, 0);
    }
    staged.push_back(std::move(*one));
  }
  auto delivered = maildir_.publish(staged, letters);
  if (!delivered) return delivered.error();
  auto undo = [&] {
    for (const auto& info : *delivered) (void)maildir_.remove(info);
  };
  auto snap = scan_locked(false);
  folder_->last.reset();
  if (!snap) {
    undo();
    return snap.error();
  }
  std::vector<protocol::Appended> out;
  out.reserve(delivered->size());
  for (const auto& info : *delivered) {
    auto found = std::find_if(snap->messages.begin(), snap->messages.end(),
                              [&](const StoredMessage& m) { return m.key.str() == info.uid; });
    if (found == snap->messages.end()) return base::make_error("appended message " + info.uid + " vanished");
    out.push_back(protocol::Appended{snap->uidvalidity, found->uid, found->key});
  }
  return out;
}

MaildirAccount::MaildirAccount(mailbox::Maildir root, std::shared_ptr<MailboxLocks> locks, uint64_t quota,
                               std::shared_ptr<QuietMoves> quiet)
    : root_(std::move(root)), locks_(std::move(locks)), quota_(quota), quiet_(std::move(quiet)) {}

base::Result<std::string> MaildirAccount::dir_name(const std::string& name) {
  if (name.find('.') != std::string::npos) {
    return protocol::account_error(EINVAL, "a folder name cannot contain \".\" (it separates levels on disk)");
  }
  std::string out = directory_of("", name).string();
  if (out.size() > 255) return protocol::account_error(EINVAL, "the folder name is too long");
  return out;
}

fs::path MaildirAccount::directory_of(const fs::path& root, const std::string& name) {
  if (name == "INBOX") return root;
  std::string dir = "." + name;
  std::replace(dir.begin(), dir.end(), '/', '.');
  return root / dir;
}

base::Status MaildirAccount::make_folder(const std::string& name, const std::string& special_use) const {
  auto dir = dir_name(name);
  if (!dir) return dir.error();
  fs::path path = root_.root() / *dir;
  // Built under ROOT/tmp/ and renamed into place: a folder appears whole.
  auto scratch = scratch_directory(root_.root());
  if (!scratch) return scratch.error();
  const fs::path building = *scratch / "folder";
  std::error_code ec;
  const mailbox::Maildir folder(building);
  if (auto st = folder.create(); !st) return st;
  if (auto st = base::write_file_durable(building / "maildirfolder.tmp", building / "maildirfolder", "", false); !st)
    return st;
  if (!special_use.empty()) {
    if (auto st = base::write_file_durable(building / (std::string(kSpecialUseFile) + ".tmp"),
                                           building / kSpecialUseFile, special_use + "\n", false);
        !st)
      return st;
  }
  if (::rename(building.c_str(), path.c_str()) != 0) {
    int e = errno;
    fs::remove_all(*scratch, ec);
    if (e == EEXIST || e == ENOTEMPTY) return protocol::account_error(EEXIST, "the folder exists already");
    return base::errno_error("rename", path, e);
  }
  fs::remove(*scratch, ec);
  return {};
}

base::Status MaildirAccount::create_special_folders() {
  for (const auto& f : kSpecialFolders) {
    std::error_code ec;
    if (fs::is_directory(directory_of(root_.root(), f.name), ec)) continue;
    if (auto st = make_folder(f.name, ""); !st && st.error().error_number != EEXIST) return st;
  }
  return {};
}

base::Result<std::vector<protocol::Folder>> MaildirAccount::folders() {
  std::vector<protocol::Folder> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root_.root(), ec)) {
    std::string dir = entry.path().filename().string();
    // ".a.b", not ".", "..", ".a..b" or a name ending in "."
    if (dir.size() < 2 || dir[0] != '.' || dir.find("..") != std::string::npos || dir.back() == '.') continue;
    std::error_code ec2;
    if (!entry.is_directory(ec2) || !fs::is_directory(entry.path() / "cur", ec2)) continue;
    std::string name = dir.substr(1);
    std::replace(name.begin(), name.end(), '.', '/');
    if (!protocol::valid_mutf7(name)) continue;  // another program's directory
    out.push_back({name, special_use_of(entry.path(), name)});
  }
  if (ec) return base::errno_error("list", root_.root(), ec.value());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  out.insert(out.begin(), protocol::Folder{"INBOX", ""});
  return out;
}

base::Result<std::vector<std::string>> MaildirAccount::subscriptions() {
  std::vector<std::string> out{"INBOX"};
  auto text = base::read_file(root_.root() / kSubscriptionsFile);
  if (!text) return out;  // none yet
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    // Dovecot's Maildir++ form: the levels joined by "." as on disk.
    std::replace(line.begin(), line.end(), '.', '/');
    if (!line.empty() && line != "INBOX" && protocol::valid_mutf7(line) &&
        std::find(out.begin(), out.end(), line) == out.end())
      out.push_back(line);
  }
  return out;
}

base::Status MaildirAccount::subscribe(const std::string& name, bool subscribed) {
  if (name == "INBOX") return {};  // always subscribed
  auto mutex = locks_->mutex_for((root_.root() / kSubscriptionsFile).string());
  std::lock_guard guard(*mutex);
  auto names = subscriptions();
  if (!names) return names.error();
  auto it = std::find(names->begin(), names->end(), name);
  if (subscribed == (it != names->end())) return {};
  if (subscribed) {
    names->push_back(name);
  } else {
    names->erase(it);
  }
  std::string text;
  for (auto n : *names) {
    std::replace(n.begin(), n.end(), '/', '.');
    text += n + "\n";
  }
  fs::path tmp = root_.root() / "subscriptions.hikyaku.tmp";
  ::unlink(tmp.c_str());  // a leftover from a crash (written O_EXCL); we hold the lock
  return base::write_file_durable(tmp, root_.root() / kSubscriptionsFile, text, false);
}

base::Result<std::shared_ptr<protocol::MailStore>> MaildirAccount::open(const std::string& name) {
  fs::path dir = root_.root();
  if (name != "INBOX") {
    auto d = dir_name(name);
    if (!d) return protocol::account_error(ENOENT, "no such folder");
    dir /= *d;
  }
  std::error_code ec;
  if (!fs::is_directory(dir / "cur", ec)) return protocol::account_error(ENOENT, "no such folder");
  mailbox::Maildir maildir = name == "INBOX" ? root_ : root_.folder(dir.filename().string());
  // A folder another program made may lack new/ or tmp/ (the listing and
  // APPEND need them): made now, as a delivery would.
  if (auto st = maildir.create(); !st) return st.error();
  return std::shared_ptr<protocol::MailStore>(
      std::make_shared<MaildirStore>(std::move(maildir), locks_->folder(dir.string()), true, quota_, quiet_));
}

base::Status MaildirAccount::create(const std::string& name, const std::string& special_use) {
  if (name == "INBOX") return protocol::account_error(EEXIST, "INBOX always exists");
  return make_folder(name, special_use);
}

base::Status MaildirAccount::remove(const std::string& name) {
  if (name == "INBOX") return protocol::account_error(EINVAL, "INBOX cannot be deleted");
  auto dir = dir_name(name);
  if (!dir) return protocol::account_error(ENOENT, "no such folder");
  fs::path path = root_.root() / *dir;
  std::error_code ec;
  if (!fs::is_directory(path / "cur", ec)) return protocol::account_error(ENOENT, "no such folder");
  // Out of every listing at once, then removed; its children stay.
  auto scratch = scratch_directory(root_.root());
  if (!scratch) return scratch.error();
  if (::rename(path.c_str(), (*scratch / "folder").c_str()) != 0) {
    int e = errno;
    fs::remove_all(*scratch, ec);
    if (e == ENOENT) return protocol::account_error(ENOENT, "no such folder");
    return base::errno_error("rename", path, e);
  }
  fs::remove_all(*scratch, ec);
  // Its messages no longer count: the quota is counted again when next read.
  ::unlink((root_.root() / "maildirsize").c_str());
  return {};
}

base::Status MaildirAccount::rename(const std::string& from, const std::string& to) {
  auto to_dir = dir_name(to);
  if (!to_dir) return to_dir.error();
  const fs::path root = root_.root();
  std::error_code ec;
  if (from == "INBOX") {
    // RFC 3501 §6.3.5: INBOX's messages move to the new folder; INBOX
    // stays, empty (its own folders are not moved).
    if (auto st = make_folder(to, ""); !st) return st;
    const fs::path target = root / *to_dir;
    // The keyword letters mean the same in the new folder.
    if (auto keywords = base::read_file(root / "dovecot-keywords")) {
      if (auto st = base::write_file_durable(target / "dovecot-keywords.tmp", target / "dovecot-keywords", *keywords,
                                             false);
          !st)
        return st;
    }
    auto held_mutex = locks_->mutex_for(root.string());
    std::lock_guard guard(*held_mutex);
    for (const char* sub : {"new", "cur"}) {
      for (const auto& entry : fs::directory_iterator(root / sub, ec)) {
        fs::path dest = target / sub / entry.path().filename();
        if (::rename(entry.path().c_str(), dest.c_str()) != 0 && errno != ENOENT) {
          return base::errno_error("rename", entry.path(), errno);
        }
      }
    }
    return {};
  }
  auto from_dir = dir_name(from);
  if (!from_dir) return protocol::account_error(ENOENT, "no such folder");
  if (to.starts_with(from + "/")) return protocol::account_error(EINVAL, "a folder cannot move inside itself");
  // The folder and its children ".from.*" become ".to" and ".to.*" (a
  // parent that is no folder itself moves with its children).
  std::vector<std::string> moving;
  if (fs::is_directory(root / *from_dir / "cur", ec)) moving.push_back(*from_dir);
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    std::string dir = entry.path().filename().string();
    if (dir.starts_with(*from_dir + ".")) moving.push_back(dir);
  }
  if (moving.empty()) return protocol::account_error(ENOENT, "no such folder");
  for (const auto& dir : moving) {
    if (fs::exists(root / (*to_dir + dir.substr(from_dir->size())), ec)) {
      return protocol::account_error(EEXIST, "the target folder exists already");
    }
  }
  for (const auto& dir : moving) {
    fs::path dest = root / (*to_dir + dir.substr(from_dir->size()));
    if (::rename((root / dir).c_str(), dest.c_str()) != 0) return base::errno_error("rename", root / dir, errno);
  }
  return {};
}

base::Result<std::optional<protocol::QuotaState>> MaildirAccount::quota() {
  if (quota_ == 0) return std::optional<protocol::QuotaState>();
  auto usage = mailbox::Quota(root_.root(), quota_).usage();
  if (!usage) return usage.error();
  return std::optional<protocol::QuotaState>(protocol::QuotaState{usage->bytes, quota_});
}

}  // namespace hikyaku::imap

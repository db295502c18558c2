#include "mailbox/maildir.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>  // renameat2
#include <cstring>
#include <span>
#include <utility>
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/file.hpp"
#include "mailbox/quota.hpp"

namespace hikyaku::mailbox {
namespace fs = std::filesystem;

namespace {

using base::errno_error;
using base::write_all;

constexpr size_t kMaxHostLength = 24;
// A unique name, with its S= and W= fields, doubles as the POP3 UIDL:
// 1 to 70 characters (RFC 1939 §7). The host part is shortened to fit.
constexpr size_t kMaxUniqueName = 70;

// Deliveries made by this process, the Maildir "Q" field. XXX(queue): the one
// piece of process-wide mutable state in this component, on purpose: the
// convention asks for a per-process counter, and Maildir objects are cheap
// per-delivery values, so the counter cannot live in them.
std::atomic<uint64_t>& delivery_counter() {
  static std::atomic<uint64_t> counter{0};
  return counter;
}

// The host name with '/' and ':' encoded as the Maildir convention asks, and
// anything outside 0x21–0x7E dropped (the uid doubles as a POP3 UIDL).
std::string sanitized_host() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') std::strcpy(buf, "localhost");
  std::string out;
  for (const char* p = buf; *p; ++p) {
    unsigned char c = static_cast<unsigned char>(*p);
    if (c == '/') out += "\\057";
    else if (c == ':') out += "\\072";
    else if (c == ',') out += "\\054";  // ',' starts Dovecot's S=/W= fields
    else if (c > 0x20 && c < 0x7f) out += static_cast<char>(c);
  }
  if (out.size() > kMaxHostLength) out.resize(kMaxHostLength);
  if (out.empty()) out = "localhost";
  return out;
}

// rename(2) that fails with EEXIST instead of replacing `to`: another
// program's file may have the same unique name (a restored backup beside
// its original), and a flag change must never destroy it. RENAME_NOREPLACE
// where the file system has it, else link + unlink (NFS).
int rename_noreplace(const char* from, const char* to) {
  if (::renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS) return -1;
  if (::link(from, to) != 0) return -1;
  ::unlink(from);
  return 0;
}

// The convention's unique left part of a name, "<secs>.M<usecs>P<pid>Q<n>.<host>",
// then `tail` (",S=…,W=…"): unique on this host by the process-wide
// counter; the host part shortened (to one character at least) so that
// the whole stays within kMaxUniqueName.
std::string unique_name(std::string_view tail = {}) {
  static const std::string host = sanitized_host();  // constant after first use
  struct timeval tv {};
  ::gettimeofday(&tv, nullptr);
  const uint64_t q = delivery_counter().fetch_add(1, std::memory_order_relaxed);
  std::string name = std::to_string(tv.tv_sec) + ".M" + std::to_string(tv.tv_usec) + "P" +
                     std::to_string(::getpid()) + "Q" + std::to_string(q) + ".";
  const size_t used = name.size() + tail.size();
  const size_t room = used < kMaxUniqueName ? kMaxUniqueName - used : 0;
  name += std::string_view(host).substr(0, std::max<size_t>(room, 1));
  name += tail;
  return name;
}

// Creates a file in `dir` exclusively, under `name()`, asked afresh at
// each of up to 10 tries: O_EXCL guards against a name clash with another
// process (the convention's "stat, then create"). Its descriptor; `path`
// is where it was made (or last tried).
base::Result<int> create_unique(const fs::path& dir, const std::function<std::string()>& name, fs::path& path) {
  for (int tries = 0; tries < 10; ++tries) {
    path = dir / name();
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) return fd;
    if (errno != EEXIST) return errno_error("create", path, errno);
  }
  return base::make_error("create " + path.string() + ": name clash");
}

// Parse the leading "<secs>.M<usecs>" of a name for ordering; files from other
// delivery agents may lack the M field (then 0) or be entirely different (then
// the caller falls back to the mtime).
bool parse_time(std::string_view name, uint64_t& secs, uint64_t& usecs) {
  auto [p, ec] = std::from_chars(name.data(), name.data() + name.size(), secs);
  if (ec != std::errc() || p == name.data()) return false;
  usecs = 0;
  std::string_view rest(p, static_cast<size_t>(name.data() + name.size() - p));
  if (rest.size() > 2 && rest[0] == '.' && rest[1] == 'M') {
    uint64_t u = 0;
    auto [q, ec2] = std::from_chars(rest.data() + 2, rest.data() + rest.size(), u);
    if (ec2 == std::errc() && q != rest.data() + 2) usecs = u;
  }
  return true;
}

// Find ",<key>=<digits>" in the uid part of a name (Dovecot's S= and W=).
bool parse_size_field(std::string_view uid, char key, uint64_t& out) {
  const char pattern[3] = {',', key, '='};
  size_t pos = uid.find(std::string_view(pattern, 3));
  if (pos == std::string_view::npos) return false;
  const char* b = uid.data() + pos + 3;
  auto [p, ec] = std::from_chars(b, uid.data() + uid.size(), out);
  return ec == std::errc() && p != b;
}

// Split "uid:2,FLAGS" into uid and flags (an experimental ":1," info part
// yields empty flags).
void split_name(std::string_view name, std::string& uid, std::string& flags) {
  size_t colon = name.find(':');
  if (colon == std::string_view::npos) {
    uid = std::string(name);
    flags.clear();
    return;
  }
  uid = std::string(name.substr(0, colon));
  std::string_view info = name.substr(colon + 1);
  flags = info.starts_with("2,") ? std::string(info.substr(2)) : std::string();
}

struct Entry {
  MessageInfo info;
  uint64_t secs = 0;
  uint64_t usecs = 0;
};

// Dovecot-compatible ",S=<stored>,W=<wire>" fields of a name.
std::string size_fields(uint64_t stored, uint64_t wire) {
  return ",S=" + std::to_string(stored) + ",W=" + std::to_string(wire);
}

// Both sizes of the file at info.path, by reading it.
base::Status measure(MessageInfo& info) {
  auto data = base::read_file(info.path);
  if (!data) return data.error();
  info.disk_size = data->size();
  info.size = Maildir::network_size(*data);
  return {};
}

// Fill sizes from the name, or (for files dropped in by other programs) by
// reading the file once.
base::Status fill_sizes(MessageInfo& info) {
  uint64_t s = 0, w = 0;
  if (parse_size_field(info.uid, 'S', s) && parse_size_field(info.uid, 'W', w)) {
    info.disk_size = s;
    info.size = w;
    return {};
  }
  return measure(info);
}

// The stored form of a text handed over in pieces (CRLF → LF, a lone CR
// kept), given to `emit` in runs of bytes, without building it: a large
// message is converted as it is written, in bounded memory.
class StoredForm {
 public:
  template <class Emit>
  void add(std::string_view p, Emit&& emit) {
    if (p.empty()) return;
    if (pending_cr_) {
      pending_cr_ = false;
      if (p.front() != '\n') emit(std::string_view("\r"));
    }
    size_t run = 0, from = 0;
    for (;;) {
      const size_t cr = p.find('\r', from);
      if (cr == std::string_view::npos) {
        emit(p.substr(run));
        break;
      }
      if (cr + 1 == p.size()) {
        emit(p.substr(run, cr - run));
        pending_cr_ = true;  // a piece ended in CR: is the next byte LF?
        break;
      }
      if (p[cr + 1] == '\n') {
        emit(p.substr(run, cr - run));
        run = cr + 1;
      }
      from = cr + 1;
    }
  }
  template <class Emit>
  void finish(Emit&& emit) {
    if (pending_cr_) emit(std::string_view("\r"));
    pending_cr_ = false;
  }

 private:
  bool pending_cr_ = false;
};

// Every stored run of the pieces, in order; the pieces' own error stops it.
template <class Emit>
base::Status for_each_stored_run(const Maildir::Pieces& pieces, Emit&& emit) {
  StoredForm form;
  auto st = pieces([&](std::string_view p) { form.add(p, emit); });
  if (!st) return st;
  form.finish(emit);
  return {};
}

Maildir::Pieces pieces_of(std::span<const std::string_view> parts) {
  return [parts](const std::function<void(std::string_view)>& emit) {
    for (std::string_view p : parts) emit(p);
    return base::Status{};
  };
}

// The LFs of `text` not preceded by a CR (`before`: the byte before `text`,
// '\0' at the start): each gains a CR on the network (to_network()).
uint64_t bare_lfs(std::string_view text, char before) {
  uint64_t n = 0;
  for (size_t lf = text.find('\n'); lf != std::string_view::npos; lf = text.find('\n', lf + 1))
    if ((lf == 0 ? before : text[lf - 1]) != '\r') ++n;
  return n;
}

// The two sizes in a Maildir name: the stored bytes (S=) and their CRLF form
// (W=, network_size()).
struct StoredSizes {
  uint64_t stored = 0;
  uint64_t wire = 0;
};

base::Result<StoredSizes> stored_sizes(const Maildir::Pieces& pieces) {
  StoredSizes n;
  char last = '\0';
  auto st = for_each_stored_run(pieces, [&](std::string_view run) {
    if (run.empty()) return;
    n.stored += run.size();
    n.wire += run.size() + bare_lfs(run, last);
    last = run.back();
  });
  if (!st) return st.error();
  return n;
}

// Info flags as set_flags() stores them: printable, no '/', sorted, once each.
std::string sorted_flags(std::string_view flags) {
  std::string sorted;
  for (char c : flags) {
    if (c >= 0x21 && c <= 0x7e && c != '/' && sorted.find(c) == std::string::npos) sorted += c;
  }
  std::sort(sorted.begin(), sorted.end());
  return sorted;
}

}  // namespace

Maildir::Maildir(const fs::path& root, bool sync) : root_(root.native()), sync_(sync) {}

fs::path Maildir::sub(std::string_view name) const { return fs::path(root_) / name; }

Maildir Maildir::folder(std::string_view dir_name) const {
  Maildir out(fs::path(root_) / dir_name, sync_);
  out.quota_root_ = quota_root_.empty() ? root_ : quota_root_;
  return out;
}

base::Status Maildir::create() const {
  for (const char* sub : {"tmp", "new", "cur"}) {
    if (auto st = base::ensure_directory(fs::path(root_) / sub, 0700); !st) return st;
  }
  return {};
}

base::Result<size_t> Maildir::remove_stale_tmp(std::chrono::system_clock::time_point now,
                                               std::chrono::seconds age) const {
  const auto cutoff = now - age;
  size_t removed = 0;
  auto sweep = [&](const fs::path& tmp) -> base::Status {
    std::error_code ec;
    for (fs::directory_iterator it(tmp, ec), end; !ec && it != end; it.increment(ec)) {
      struct stat st {};
      if (::lstat(it->path().c_str(), &st) != 0) continue;  // gone meanwhile
      if (std::chrono::system_clock::from_time_t(st.st_mtime) > cutoff) continue;
      std::error_code rm;
      if (fs::remove_all(it->path(), rm) > 0) ++removed;
    }
    if (ec && ec != std::errc::no_such_file_or_directory) return base::errno_error("read", tmp, ec.value());
    return {};
  };
  if (auto st = sweep(sub("tmp")); !st) return st.error();
  auto folders = for_each_folder(root_, [&](const fs::path& folder) { return sweep(folder / "tmp"); });
  if (!folders && folders.error().error_number != ENOENT) return folders.error();  // ENOENT: not made yet
  return removed;
}

base::Status Maildir::for_each_folder(const fs::path& root, const std::function<base::Status(const fs::path&)>& f) {
  std::error_code ec;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code is_dir;
    if (name.size() < 2 || name[0] != '.' || !it->is_directory(is_dir)) continue;
    if (auto st = f(it->path()); !st) return st;
  }
  if (ec) return base::Error{"list " + root.string() + ": " + ec.message(), ec.value()};
  return {};
}

std::string Maildir::to_stored(std::string_view network) {
  std::string out;
  out.reserve(network.size());
  StoredForm form;
  form.add(network, [&](std::string_view run) { out += run; });
  form.finish([&](std::string_view run) { out += run; });
  return out;
}

std::string Maildir::to_network(std::string_view stored) {
  std::string out;
  out.reserve(stored.size() + stored.size() / 40 + 2);
  for (size_t i = 0; i < stored.size(); ++i) {
    if (stored[i] == '\n' && (i == 0 || stored[i - 1] != '\r')) out += '\r';
    out += stored[i];
  }
  return out;
}

uint64_t Maildir::network_size(std::string_view stored) { return stored.size() + bare_lfs(stored, '\0'); }

uint64_t Maildir::stored_size(std::string_view network) {
  // The one rule deliver() stores by (StoredForm), counted without a copy;
  // pieces in memory cannot fail to be read.
  auto sizes = stored_sizes(pieces_of(std::span(&network, 1)));
  HIKYAKU_CHECK(sizes.ok());
  return sizes->stored;
}

std::optional<uint64_t> Maildir::disk_size_in_name(std::string_view file_name) {
  uint64_t size = 0;
  if (!parse_size_field(file_name.substr(0, file_name.find(':')), 'S', size)) return std::nullopt;
  return size;
}

base::Result<std::string> Maildir::deliver(std::string_view message) const {
  return deliver(std::span(&message, 1));
}

base::Result<std::string> Maildir::deliver(std::span<const std::string_view> parts) const {
  return deliver(pieces_of(parts));
}

base::Result<std::string> Maildir::deliver(const Pieces& pieces, Spare* spare) const {
  auto staged = stage(pieces, spare);
  if (!staged) return staged.error();
  auto published = publish(std::span(&*staged, 1));
  if (!published) return published.error();
  return std::move(staged->uid);
}

base::Result<Maildir::Staged> Maildir::stage(std::string_view message) const {
  return stage(pieces_of(std::span(&message, 1)));
}

Maildir::Spare& Maildir::Spare::operator=(Spare&& other) noexcept {
  if (this != &other) {
    remove();
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    made_ = other.made_;
  }
  return *this;
}

Maildir::Spare::~Spare() { remove(); }

void Maildir::Spare::remove() {
  if (fd_ < 0) return;
  ::close(std::exchange(fd_, -1));
  ::unlink(path_.c_str());
}

base::Result<Maildir::Spare> Maildir::make_spare() const {
  fs::path path;
  auto made = create_unique(sub("tmp"), [] { return unique_name(",spare"); }, path);
  if (!made) return made.error();
  Spare spare;
  spare.fd_ = *made;
  spare.path_ = path.native();
  spare.made_ = std::chrono::steady_clock::now();
  return spare;
}

base::Result<Maildir::Staged> Maildir::stage(const Pieces& pieces, Spare* spare) const {
  // Both sizes go into the name (Dovecot-compatible S= and W=), which is
  // chosen before the file is written: one pass counts, the write converts
  // again — never a converted copy of the whole message in memory.
  auto counted = stored_sizes(pieces);
  if (!counted) return counted.error();
  const StoredSizes sizes = *counted;
  // Create the tmp file under a fresh unique name (or take the spare).
  Staged staged;
  staged.stored_size = sizes.stored;
  staged.wire_size = sizes.wire;
  fs::path tmp_path;
  int fd = -1;
  auto message_name = [&] {
    staged.uid = unique_name(size_fields(sizes.stored, sizes.wire));
    return staged.uid;
  };
  if (spare != nullptr && spare->ready()) {
    // The spare's own name stays in tmp/; the message gets its name (with
    // its sizes, which the spare could not know) at the link.
    message_name();
    fd = std::exchange(spare->fd_, -1);
    tmp_path = std::move(spare->path_);
  } else {
    auto made = create_unique(sub("tmp"), message_name, tmp_path);
    if (!made) return made.error();
    fd = *made;
  }

  // The Maildir convention's order: write the file in tmp/ and flush it
  // (fdatasync) here; publish() links it into new/ or cur/ only then. A
  // message is visible to readers only once its bytes are on the disk, so
  // no crash or power loss can show a reader an empty or partial file. Any
  // failure removes the file: nothing half-written stays in tmp/.
  const auto give_up = [&](base::Error error) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp_path.c_str());
    return error;
  };
  base::Status written;
  {
    constexpr size_t kChunk = 256 * 1024;
    std::string chunk;
    // No more than the message needs: a 256 KiB buffer is an mmap and
    // munmap (with its TLB shootdown) for every small delivery.
    chunk.reserve(static_cast<size_t>(std::min<uint64_t>(kChunk, sizes.stored)));
    auto read = for_each_stored_run(pieces, [&](std::string_view run) {
      if (!written) return;
      chunk += run;
      if (chunk.size() >= kChunk) {
        written = write_all(fd, chunk, tmp_path);
        chunk.clear();
      }
    });
    if (!read) written = read;
    if (written && !chunk.empty()) written = write_all(fd, chunk, tmp_path);
  }
  if (!written) return give_up(written.error());
  if (sync_ && ::fdatasync(fd) != 0) return give_up(errno_error("fsync", tmp_path, errno));
  if (::close(std::exchange(fd, -1)) != 0) return give_up(errno_error("close", tmp_path, errno));
  staged.tmp_path = tmp_path.native();
  return staged;
}

base::Result<std::vector<MessageInfo>> Maildir::publish(std::span<const Staged> staged,
                                                        std::span<const std::string> cur_flags) const {
  HIKYAKU_CHECK(cur_flags.empty() || cur_flags.size() == staged.size());
  const bool into_cur = !cur_flags.empty();
  const fs::path dir = sub(into_cur ? "cur" : "new");
  std::vector<MessageInfo> out;
  out.reserve(staged.size());
  std::optional<base::Error> failure;
  size_t i = 0;
  for (; i < staged.size(); ++i) {
    MessageInfo info;
    info.uid = staged[i].uid;
    info.in_new = !into_cur;
    info.size = staged[i].wire_size;
    info.disk_size = staged[i].stored_size;
    if (into_cur) info.flags = sorted_flags(cur_flags[i]);
    info.path = (into_cur ? path_with_flags(info, info.flags) : dir / info.uid).native();
    // link() rather than rename(): it fails instead of overwriting when the
    // name exists (the convention's recommendation).
    if (::link(staged[i].tmp_path.c_str(), info.path.c_str()) != 0) {
      failure = errno_error("link", info.path, errno);
      break;
    }
    ::unlink(staged[i].tmp_path.c_str());  // out of tmp/ as soon as it is in place
    out.push_back(std::move(info));
  }
  discard(staged.subspan(i));  // those not linked, after a failure
  // The entries are durable before this returns, so the caller's record
  // (the queue's "delivered", IMAP's uidlist) never precedes the disk.
  if (!failure && sync_) {
    if (auto st = base::fsync_directory(dir); !st) failure = st.error();
  }
  if (failure) {
    // Withdrawn, all of them: a reader that fetched one meanwhile may see
    // the caller's retry as a second copy, never a part of a batch that
    // stays.
    for (const auto& info : out) ::unlink(info.path.c_str());
    return *failure;
  }
  int64_t bytes = 0;
  for (const auto& s : staged) bytes += static_cast<int64_t>(s.stored_size);
  Quota::record_change(quota_root(), bytes, static_cast<int64_t>(staged.size()));
  return out;
}

void Maildir::discard(std::span<const Staged> staged) const {
  for (const auto& s : staged) ::unlink(s.tmp_path.c_str());
}

// Names other programs gave that this server cannot keep as they are get a
// fresh unique name in their directory, with their flags, so each file is
// a message of its own under a name every reader can keep:
// - two files under one unique name (a backup restored beside its
//   original, a copy made by hand) would be one message to IMAP and POP3,
//   and a flag change of one would meet the other: the one a scan had not
//   seen there before (else the later one listed) is renamed;
// - an empty unique name (a file named ":2,S") or one with white space or
//   control characters cannot be written into the uidlist (its lines are
//   space-separated) nor given as a POP3 UIDL: every scan would start a
//   new UIDVALIDITY; one too long to take its flags (":2,FS…" past
//   NAME_MAX) would stay in new/ for ever.
// A file that cannot be renamed is left out of this listing (and kept).
namespace {

bool keepable_name(std::string_view uid) {
  // Room for ":2," and every flag and keyword letter within NAME_MAX (255).
  constexpr size_t kMaxKeptName = 200;
  return !uid.empty() && uid.size() <= kMaxKeptName && std::none_of(uid.begin(), uid.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f;
  });
}

bool rename_to_fresh_name(MessageInfo& info) {
  // Its sizes measured afresh: those listed may be another file's (a reader
  // knew the name) or its size on disk (unreadable). A file that cannot be
  // read gets a name without them.
  std::string name = unique_name(measure(info) ? size_fields(info.disk_size, info.size) : std::string());
  std::string uid = name;
  if (!info.in_new) name += ":2," + info.flags;
  const fs::path to = fs::path(info.path).parent_path() / name;
  if (rename_noreplace(info.path.c_str(), to.c_str()) != 0) return false;
  info.path = to.native();
  info.uid = std::move(uid);
  return true;
}

void give_new_names(std::vector<Entry>& entries, const Maildir::Known* known) {
  std::vector<size_t> dropped;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!keepable_name(entries[i].info.uid) && !rename_to_fresh_name(entries[i].info)) dropped.push_back(i);
  }
  std::unordered_map<std::string, size_t> first;
  first.reserve(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    auto [it, added] = first.emplace(entries[i].info.uid, i);
    if (added) continue;
    // A rename by another reader while the directory was read can show one
    // file under its old and its new name: only two files that both exist
    // are two messages. A name gone meanwhile is dropped from this listing.
    struct stat a {}, b {};
    const bool a_there = ::stat(entries[it->second].info.path.c_str(), &a) == 0;
    const bool b_there = ::stat(entries[i].info.path.c_str(), &b) == 0;
    const bool one_file = a_there && b_there && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
    if (!a_there) {
      dropped.push_back(it->second);
      it->second = i;
    }
    if (!b_there || one_file) dropped.push_back(i);
    if (!a_there || !b_there || one_file) continue;
    size_t renamed = i;
    if (known != nullptr) {
      auto k = known->find(entries[i].info.uid);
      if (k != known->end() && k->second.path == entries[i].info.path) renamed = it->second;
    }
    if (!rename_to_fresh_name(entries[renamed].info)) dropped.push_back(renamed);
    if (renamed != i) it->second = i;  // the name is entry i's now
  }
  std::sort(dropped.begin(), dropped.end(), std::greater<>());
  dropped.erase(std::unique(dropped.begin(), dropped.end()), dropped.end());
  for (size_t i : dropped) entries.erase(entries.begin() + static_cast<std::ptrdiff_t>(i));
}

}  // namespace

base::Result<std::vector<MessageInfo>> Maildir::list(const Known* known) const {
  std::vector<Entry> entries;
  for (const char* sub : {"new", "cur"}) {
    const std::string dir = (fs::path(root_) / sub).native();  // as sub() joins them
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return errno_error("list", dir, errno);
    const bool in_new = std::strcmp(sub, "new") == 0;
    for (;;) {
      errno = 0;
      const dirent* de = ::readdir(d);
      if (de == nullptr) {
        if (errno != 0) {
          const int err = errno;
          ::closedir(d);
          return errno_error("list", dir, err);
        }
        break;
      }
      const std::string_view name(de->d_name);
      if (name.empty() || name[0] == '.') continue;
      Entry e;
      e.info.path.reserve(dir.size() + 1 + name.size());
      e.info.path = dir;
      e.info.path += '/';
      e.info.path += name;
      // Regular files only (a link to one counts): the type from the
      // directory entry, a stat where the file system does not give it.
      if (de->d_type != DT_REG) {
        struct stat st {};
        if (de->d_type != DT_LNK && de->d_type != DT_UNKNOWN) continue;
        if (::stat(e.info.path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      }
      e.info.in_new = in_new;
      split_name(name, e.info.uid, e.info.flags);
      if (!parse_time(name, e.secs, e.usecs)) {
        struct stat st {};
        if (::stat(e.info.path.c_str(), &st) == 0) e.secs = static_cast<uint64_t>(st.st_mtime);
      }
      const MessageInfo* seen = nullptr;
      if (known != nullptr) {
        if (auto k = known->find(e.info.uid); k != known->end()) seen = &k->second;
      }
      if (seen != nullptr) {
        e.info.size = seen->size;
        e.info.disk_size = seen->disk_size;
        e.info.first_seen = seen->first_seen;
      } else if (auto st = fill_sizes(e.info); !st) {
        // Removed by another reader meanwhile: not listed. Not ours to read
        // (another program's file, mode 000): listed with its size on disk,
        // so that only reading it fails, not the whole mailbox. Any other
        // failure (EMFILE, EIO) fails the listing, to be tried again.
        const int error = st.error().error_number;
        struct stat on_disk {};
        if (::stat(e.info.path.c_str(), &on_disk) != 0) continue;
        if (error != EACCES && error != EPERM) {
          ::closedir(d);
          return st.error();
        }
        e.info.disk_size = e.info.size = static_cast<uint64_t>(on_disk.st_size);
      }
      entries.push_back(std::move(e));
    }
    ::closedir(d);
  }
  give_new_names(entries, known);
  // Oldest first; sorted by index, so the messages themselves move once.
  std::vector<uint32_t> order(entries.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](uint32_t x, uint32_t y) {
    const Entry& a = entries[x];
    const Entry& b = entries[y];
    if (a.secs != b.secs) return a.secs < b.secs;
    if (a.usecs != b.usecs) return a.usecs < b.usecs;
    return a.info.uid < b.info.uid;
  });
  std::vector<MessageInfo> out;
  out.reserve(entries.size());
  for (uint32_t i : order) out.push_back(std::move(entries[i].info));
  return out;
}

base::Result<MessageInfo> Maildir::find(std::string_view uid) const {
  for (const char* sub : {"new", "cur"}) {
    std::error_code ec;
    fs::directory_iterator it(fs::path(root_) / sub, ec);
    if (ec) continue;
    for (; it != fs::directory_iterator(); it.increment(ec)) {
      if (ec) break;
      std::string name = it->path().filename().string();
      MessageInfo info;
      split_name(name, info.uid, info.flags);
      if (info.uid != uid) continue;
      info.path = it->path();
      info.in_new = std::strcmp(sub, "new") == 0;
      if (auto st = fill_sizes(info); !st) return st.error();
      return info;
    }
  }
  base::Error gone = base::make_error("message " + std::string(uid) + " not found in " + root_);
  gone.error_number = ENOENT;  // callers tell "gone" from a failure by it
  return gone;
}

base::Result<std::string> Maildir::read(const MessageInfo& message) const {
  auto data = base::read_file(message.path);
  // Another reader may have moved it (new/ → cur/, or changed its flags)
  // since it was listed, even more than once: look it up again. ENOENT
  // after that: it has gone.
  for (int attempt = 0; attempt < 3 && !data && data.error().error_number == ENOENT; ++attempt) {
    auto found = find(message.uid);
    if (!found) return found.error();
    data = base::read_file(found->path);
  }
  return data;
}

base::Status Maildir::remove(const MessageInfo& message) const {
  fs::path path = message.path;
  uint64_t disk_size = message.disk_size;
  if (::unlink(path.c_str()) != 0) {
    if (errno != ENOENT) return errno_error("unlink", path, errno);
    auto found = find(message.uid);
    if (!found) return {};  // already gone: removal is idempotent
    path = found->path;
    disk_size = found->disk_size;
    if (::unlink(path.c_str()) != 0) {
      if (errno != ENOENT) return errno_error("unlink", path, errno);
      return {};  // removed by another reader meanwhile: it recorded the change
    }
  }
  Quota::record_change(quota_root(), -static_cast<int64_t>(disk_size), -1);
  if (sync_) return base::fsync_directory(path.parent_path());
  return {};
}

fs::path Maildir::path_with_flags(const MessageInfo& message, std::string_view flags) const {
  return sub("cur") / (message.uid + ":2," + sorted_flags(flags));
}

base::Status Maildir::set_flags(MessageInfo& message, std::string_view flags) const {
  const std::string sorted = sorted_flags(flags);
  fs::path target = path_with_flags(message, sorted);
  fs::path from = message.path;
  if (from == target) {
    message.flags = sorted;
    return {};
  }
  const auto refused = [&](int error) {
    if (error != EEXIST) return errno_error("rename", from, error);
    return base::Error{"rename " + from.string() + ": another file has its name with these flags (" +
                           target.filename().string() + "): kept both, flags unchanged",
                       error};
  };
  if (rename_noreplace(from.c_str(), target.c_str()) != 0) {
    if (errno != ENOENT) return refused(errno);
    auto found = find(message.uid);
    if (!found) return found.error();
    from = found->path;
    if (from != target && rename_noreplace(from.c_str(), target.c_str()) != 0) return refused(errno);
  }
  message.path = target;
  message.in_new = false;
  message.flags = sorted;
  if (sync_) {
    if (auto st = base::fsync_directory(sub("cur")); !st) return st;
    if (from.parent_path() != target.parent_path()) return base::fsync_directory(from.parent_path());
  }
  return {};
}

base::Result<base::UniqueFd> Maildir::lock_names() const {
  const fs::path path = fs::path(root_) / "hikyaku-uidlist.lock";
  base::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return errno_error("open", path, errno);
  int rc;
  do {
    rc = ::flock(fd.get(), LOCK_EX);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return errno_error("flock", path, errno);
  return fd;
}

base::Result<MessageInfo> Maildir::where_now(const MessageInfo* seen, std::string_view uid) const {
  // A name holds the flags: a file still at the path it was seen at still
  // has the flags it was seen with (another reader's rename leaves nothing
  // there).
  if (seen != nullptr && ::access(seen->path.c_str(), F_OK) == 0) return *seen;
  auto found = find(uid);
  if (found && seen != nullptr) found->first_seen = seen->first_seen;
  return found;
}

base::Status Maildir::add_flag(MessageInfo& message, char flag) const {
  auto now = where_now(&message, message.uid);
  if (!now) return now.error();
  if (now->flags.find(flag) == std::string::npos) {
    if (auto st = set_flags(*now, now->flags + flag); !st) return st;
  }
  message = std::move(now).value();
  return {};
}

}  // namespace hikyaku::mailbox

#include "queue/spool.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <utility>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base/file.hpp"
#include "base/strings.hpp"

namespace hikyaku::queue {
namespace fs = std::filesystem;
using std::chrono::duration_cast;
using std::chrono::microseconds;

namespace {

using base::errno_error;
using base::write_all;

constexpr std::string_view kMagic = "hikyaku-queue 1";
constexpr size_t kIdLength = 13;           // 11 chars of µs since epoch + 2 of counter
constexpr size_t kMaxHeader = 4u << 20;    // a header beyond this is corrupt
constexpr std::string_view kIdAlphabet = "0123456789abcdefghijklmnopqrstuv";  // ASCII order = value order

// Fixed-width base32 so that ids sort by arrival time.
void append_base32(std::string& out, uint64_t value, size_t width) {
  std::string digits(width, '0');
  for (size_t i = width; i-- > 0;) {
    digits[i] = kIdAlphabet[value & 31];
    value >>= 5;
  }
  out += digits;
}

int64_t to_micros(base::Clock::time_point t) {
  return duration_cast<microseconds>(t.time_since_epoch()).count();
}

base::Clock::time_point from_micros(int64_t us) {
  return base::Clock::time_point(duration_cast<base::Clock::time_point::duration>(microseconds(us)));
}

// Fields of the header and records: base::escape_field (one token each,
// reversible; empty is "%-").
using base::escape_field;
using base::unescape_field;

std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos <= line.size()) {
    size_t sp = line.find(' ', pos);
    if (sp == std::string_view::npos) sp = line.size();
    out.push_back(line.substr(pos, sp - pos));
    pos = sp + 1;
  }
  return out;
}

template <class T>
bool parse_number(std::string_view s, T& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

uint32_t fnv1a(std::string_view s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

std::string_view kind_name(mail::Target::Kind kind) { return mail::Target::kind_name(kind); }

bool parse_kind(std::string_view s, mail::Target::Kind& kind) {
  if (s == "mailbox") kind = mail::Target::Kind::mailbox;
  else if (s == "forward") kind = mail::Target::Kind::forward;
  else if (s == "relay") kind = mail::Target::Kind::relay;
  else return false;
  return true;
}

bool parse_status(std::string_view s, SlotStatus& status) {
  if (s == "pending") status = SlotStatus::pending;
  else if (s == "delivered") status = SlotStatus::delivered;
  else if (s == "failed") status = SlotStatus::failed;
  else return false;
  return true;
}

std::string encode_address(const mail::Address& a) {
  return escape_field(a.local) + " " + escape_field(a.domain);
}

bool decode_address(std::string_view local, std::string_view domain, mail::Address& a) {
  return unescape_field(local, a.local) && unescape_field(domain, a.domain);
}

// The header written at enqueue. The id is the file name, not in the header,
// so a colliding rename can pick a new id without rewriting the file.
std::string encode_header(base::Clock::time_point arrival, const mail::Envelope& env,
                          const std::vector<RecipientPlan>& plan, size_t message_size, Origin origin) {
  std::string h;
  h.reserve(256 + plan.size() * 64);
  h += kMagic;
  h += "\narrival " + std::to_string(to_micros(arrival)) + "\n";
  if (env.sender) h += "sender " + encode_address(*env.sender) + "\n";
  for (const auto& r : env.recipients) h += "rcpt " + encode_address(r) + "\n";
  h += "helo " + escape_field(env.helo) + "\n";
  h += "client " + escape_field(env.client_ip) + "\n";
  h += "auth " + escape_field(env.auth_user) + "\n";
  h += std::string("body8bit ") + (env.body_8bit ? "1" : "0") + "\n";
  h += std::string("smtputf8 ") + (env.smtputf8 ? "1" : "0") + "\n";
  // Submitted and generated messages only (older readers ignore the
  // unknown key: received is the default).
  if (origin != Origin::received) h += "origin " + std::string(to_string(origin)) + "\n";
  for (const auto& rp : plan) {
    for (const auto& t : rp.targets) {
      h += "slot " + escape_field(rp.recipient) + " " + std::string(kind_name(t.kind)) + " " +
           escape_field(t.value) + "\n";
    }
  }
  h += "size " + std::to_string(message_size) + "\n\n";
  return h;
}

// Parse the header text (without the final blank line).
bool decode_header(std::string_view text, SpooledMessage& m) {
  bool magic = false, have_size = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (!magic) {
      if (line != kMagic) return false;
      magic = true;
      continue;
    }
    auto f = split_fields(line);
    const std::string_view key = f[0];
    int64_t n = 0;
    if (key == "arrival" && f.size() == 2) {
      if (!parse_number(f[1], n)) return false;
      m.arrival = from_micros(n);
    } else if (key == "sender" && f.size() == 3) {
      mail::Address a;
      if (!decode_address(f[1], f[2], a)) return false;
      m.envelope.sender = a;
    } else if (key == "rcpt" && f.size() == 3) {
      mail::Address a;
      if (!decode_address(f[1], f[2], a)) return false;
      m.envelope.recipients.push_back(a);
    } else if (key == "helo" && f.size() == 2) {
      if (!unescape_field(f[1], m.envelope.helo)) return false;
    } else if (key == "client" && f.size() == 2) {
      if (!unescape_field(f[1], m.envelope.client_ip)) return false;
    } else if (key == "auth" && f.size() == 2) {
      if (!unescape_field(f[1], m.envelope.auth_user)) return false;
    } else if (key == "body8bit" && f.size() == 2) {
      m.envelope.body_8bit = f[1] == "1";
    } else if (key == "smtputf8" && f.size() == 2) {
      m.envelope.smtputf8 = f[1] == "1";
    } else if (key == "slot" && f.size() == 4) {
      SlotState s;
      if (!unescape_field(f[1], s.recipient) || !parse_kind(f[2], s.target.kind) ||
          !unescape_field(f[3], s.target.value)) {
        return false;
      }
      s.planned = s.target;
      m.slots.push_back(std::move(s));
    } else if (key == "origin" && f.size() == 2) {
      if (f[1] == "submitted") m.origin = Origin::submitted;
      else if (f[1] == "notice") m.origin = Origin::notice;
      else if (f[1] == "dsn") m.origin = Origin::dsn;
    } else if (key == "size" && f.size() == 2) {
      if (!parse_number(f[1], m.message_size)) return false;
      have_size = true;
    }
    // Unknown keys are ignored: a newer minor version may add facts.
  }
  return magic && have_size && !m.slots.empty();
}

// One record line (without the leading and trailing newline):
// R <slot> <link> <status> <attempts> <first_us> <next_us> <kind> <value> <reply> [<diverted>] <fnv32>
// (the diverted field only when set, so undiverted records keep the first format)
std::string encode_record(size_t index, const SlotState& s) {
  std::string line = "R " + std::to_string(index) + " " + std::to_string(s.link) + " " +
                     std::string(to_string(s.status)) + " " + std::to_string(s.attempts) + " " +
                     std::to_string(to_micros(s.first_attempt)) + " " +
                     std::to_string(to_micros(s.next_attempt)) + " " +
                     std::string(kind_name(s.target.kind)) + " " + escape_field(s.target.value) + " " +
                     escape_field(s.last_reply);
  if (!s.diverted.empty()) line += " " + escape_field(s.diverted);
  char sum[16];
  (void)std::snprintf(sum, sizeof sum, " %08x", fnv1a(line));
  return line + sum;
}

bool decode_record(std::string_view line, SpooledMessage& m) {
  size_t sp = line.rfind(' ');
  if (sp == std::string_view::npos || line.size() - sp != 9) return false;
  uint32_t sum = 0;
  auto [p, ec] = std::from_chars(line.data() + sp + 1, line.data() + line.size(), sum, 16);
  if (ec != std::errc() || p != line.data() + line.size()) return false;
  std::string_view body = line.substr(0, sp);
  if (fnv1a(body) != sum) return false;
  auto f = split_fields(body);
  if ((f.size() != 10 && f.size() != 11) || f[0] != "R") return false;
  size_t index = 0;
  int64_t first = 0, next = 0;
  SlotState s;
  if (!parse_number(f[1], index) || index >= m.slots.size() || !parse_number(f[2], s.link) ||
      !parse_status(f[3], s.status) || !parse_number(f[4], s.attempts) ||
      !parse_number(f[5], first) || !parse_number(f[6], next) ||
      !parse_kind(f[7], s.target.kind) || !unescape_field(f[8], s.target.value) ||
      !unescape_field(f[9], s.last_reply) || (f.size() == 11 && !unescape_field(f[10], s.diverted))) {
    return false;
  }
  s.recipient = m.slots[index].recipient;
  s.planned = m.slots[index].planned;
  s.first_attempt = from_micros(first);
  s.next_attempt = from_micros(next);
  m.slots[index] = std::move(s);
  return true;
}

// Read [offset, end of file) with pread.
base::Status pread_all(int fd, uint64_t offset, uint64_t length, std::string& out,
                       const fs::path& path) {
  out.resize(length);
  uint64_t done = 0;
  while (done < length) {
    ssize_t n = ::pread(fd, out.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("read", path, errno);
    }
    if (n == 0) break;
    done += static_cast<uint64_t>(n);
  }
  out.resize(done);
  return {};
}

}  // namespace

bool SpooledMessage::done() const {
  return std::all_of(slots.begin(), slots.end(), [](const SlotState& t) { return t.final(); });
}


Spool::Spool(fs::path dir, base::Clock& clock, bool sync)
    : dir_(std::move(dir)), clock_(clock), sync_(sync) {}

base::Status Spool::create() const {
  for (const char* sub : {"tmp", "queue", "corrupt"}) {
    if (auto st = base::ensure_directory(dir_ / sub, 0700); !st) return st;
  }
  return {};
}

bool Spool::valid_id(std::string_view id) {
  return id.size() == kIdLength &&
         std::all_of(id.begin(), id.end(), [](char c) { return kIdAlphabet.find(c) != std::string_view::npos; });
}

std::string Spool::next_id() {
  std::string id;
  id.reserve(kIdLength);
  append_base32(id, static_cast<uint64_t>(to_micros(clock_.now())), 11);
  append_base32(id, counter_.fetch_add(1, std::memory_order_relaxed) & 1023, 2);
  return id;
}

// Group commit (rule 1): one directory fsync covers every rename that
// completed before it started, so parallel enqueues share it.
base::Status Spool::sync_queue_directory() {
  const uint64_t mine = renames_.fetch_add(1, std::memory_order_acq_rel) + 1;
  std::lock_guard lock(dir_sync_mu_);
  if (synced_ >= mine) return {};
  const uint64_t covered = renames_.load(std::memory_order_acquire);
  if (auto st = base::fsync_directory(dir_ / "queue"); !st) return st;
  synced_ = covered;
  return {};
}

StagedMessage& StagedMessage::operator=(StagedMessage&& other) noexcept {
  if (this != &other) {
    discard();
    message = std::move(other.message);
    fd_ = std::exchange(other.fd_, -1);
    tmp_ = std::move(other.tmp_);
    header_ = std::move(other.header_);
    committed_ = std::exchange(other.committed_, true);
    other.tmp_.clear();
  }
  return *this;
}

StagedMessage::~StagedMessage() { discard(); }

// Never committed: the client got no 250, the file must go (rule 4 would
// delete it at the next start anyway).
void StagedMessage::discard() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!committed_ && !tmp_.empty()) ::unlink(tmp_.c_str());
  tmp_.clear();
}

base::Result<std::string> Spool::enqueue(const mail::Envelope& envelope, const std::vector<RecipientPlan>& plan,
                                         std::string_view message, Origin origin) {
  const mail::Message whole{std::string(message), std::nullopt};  // a notice or a test's message: small
  auto staged = stage(envelope, plan, whole, origin);
  if (!staged) return staged.error();
  if (auto st = commit(*staged, whole); !st) return st.error();
  return staged->message.id;
}

base::Result<base::UniqueFd> Spool::body_file() const { return base::open_temporary(dir_ / "tmp"); }

base::Result<StagedMessage> Spool::stage(const mail::Envelope& envelope, const std::vector<RecipientPlan>& plan,
                                         const mail::Message& message, Origin origin) {
  // Sanity checks: a recipient without a target would be lost silently.
  if (plan.empty()) return base::make_error("enqueue: empty delivery plan");
  for (const auto& rp : plan) {
    if (rp.targets.empty()) return base::make_error("enqueue: recipient " + rp.recipient + " has no target");
  }
  StagedMessage staged;
  staged.header_ = encode_header(clock_.now(), envelope, plan, message.size(), origin);

  // The state load() will find after the commit, from the same header.
  SpooledMessage& m = staged.message;
  m.id = next_id();
  m.path = dir_ / "queue" / m.id;
  if (!decode_header(std::string_view(staged.header_).substr(0, staged.header_.size() - 2), m)) {
    return base::make_error("enqueue: cannot encode the queue file header");  // a bug in encode_header
  }
  m.message_offset = staged.header_.size();
  return staged;
}

// Rule 6: every commit says whether it failed, for commit_in_doubt().
base::Result<Committed> Spool::commit(StagedMessage& staged, const mail::Message& message,
                                      const std::function<bool()>& finished) {
  auto st = write_and_rename(staged, message, finished);
  // A commit that found its message finished wrote nothing durable: it
  // says nothing of the disk either way.
  if (!st.ok() || *st == Committed::queued) last_commit_failed_.store(!st.ok(), std::memory_order_relaxed);
  return st;
}

bool Spool::commit_in_doubt(uint64_t bytes) const {
  if (last_commit_failed_.load(std::memory_order_relaxed)) return true;
  struct statvfs room {};
  if (::statvfs((dir_ / "tmp").c_str(), &room) != 0) return true;
  return static_cast<uint64_t>(room.f_bavail) * room.f_frsize < bytes;
}

base::Result<Committed> Spool::write_and_rename(StagedMessage& staged, const mail::Message& whole,
                                                const std::function<bool()>& finished) {
  HIKYAKU_CHECK(staged.fd_ < 0 && staged.tmp_.empty() && !staged.committed_);
  HIKYAKU_CHECK(whole.size() == staged.message.message_size);
  const std::string_view message = whole.text;
  const std::string& header = staged.header_;
  const fs::path tmp = dir_ / "tmp" / staged.message.id;
  const fs::path& final_path = staged.message.path;

  // Create spool/tmp/<id> exclusively; the id must be free in queue/ too
  // (ids grow with the clock; a clock stepped back could repeat one).
  if (::access(final_path.c_str(), F_OK) == 0) return base::make_error("create " + final_path.string() + ": queue id in use");
  if (finished && finished()) return Committed::finished;  // rule 7
  staged.fd_ = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (staged.fd_ < 0) return errno_error("create", tmp, errno);
  staged.tmp_ = tmp;

  // Header and message in one writev, then the data sync.
  {
    iovec iov[2] = {{const_cast<char*>(header.data()), header.size()},
                    {const_cast<char*>(message.data()), message.size()}};
    ssize_t n;
    do {
      n = ::writev(staged.fd_, iov, 2);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return errno_error("write", tmp, errno);
    size_t written = static_cast<size_t>(n);
    if (written < header.size()) {
      if (auto st = write_all(staged.fd_, std::string_view(header).substr(written), tmp); !st) return st.error();
      written = header.size();
    }
    size_t body_done = written - header.size();
    if (body_done < message.size()) {
      if (auto st = write_all(staged.fd_, message.substr(body_done), tmp); !st) return st.error();
    }
  }
  // A large message's body, from its file, copied inside the kernel.
  if (whole.body) {
    const mail::FileRange& body = *whole.body;
    if (auto st = base::copy_range(body.file->get(), body.offset, body.size, staged.fd_, tmp); !st) return st.error();
  }
  if (finished && finished()) {  // rule 7: the tmp file goes unflushed
    staged.discard();
    return Committed::finished;
  }
  if (sync_ && ::fdatasync(staged.fd_) != 0) return errno_error("fsync", tmp, errno);
  const int fd = std::exchange(staged.fd_, -1);
  if (::close(fd) != 0) return errno_error("close", tmp, errno);

  // Rename into the queue without ever replacing a queued message.
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, final_path.c_str(), RENAME_NOREPLACE) != 0) {
    return errno_error("rename", tmp, errno);
  }
  staged.committed_ = true;

  // The directory fsync makes the rename durable; then the caller may say 250.
  if (sync_) {
    if (auto st = sync_queue_directory(); !st) {
      // The file is in queue/ but maybe not durable: we refuse the message
      // (451/452) and take the file back out, so that nothing the client
      // was refused stays queued (it retries, and the retry is the copy
      // that counts). The unlink needs no fsync: if a crash loses it,
      // recovery delivers this file as well, a duplicate, never a loss.
      ::unlink(final_path.c_str());
      return st.error();
    }
  }
  return Committed::queued;
}

base::Result<std::vector<std::string>> Spool::recover() {
  if (auto st = create(); !st) return st.error();

  // Half-written files were never acknowledged: delete them.
  std::error_code ec;
  for (fs::directory_iterator it(dir_ / "tmp", ec), end; !ec && it != end; it.increment(ec)) {
    ::unlink(it->path().c_str());
  }
  if (ec) return base::make_error("scan " + (dir_ / "tmp").string() + ": " + ec.message());

  std::vector<std::string> ids;
  for (fs::directory_iterator it(dir_ / "queue", ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (valid_id(name)) {
      ids.push_back(std::move(name));
    } else {
      // Not ours: keep it for the operator, out of the way.
      std::error_code rec;
      fs::rename(it->path(), dir_ / "corrupt" / name, rec);
    }
  }
  if (ec) return base::make_error("scan " + (dir_ / "queue").string() + ": " + ec.message());
  std::sort(ids.begin(), ids.end());
  return ids;
}

base::Result<SpooledMessage> Spool::load(std::string_view id) const {
  if (!valid_id(id)) return base::make_error("invalid queue id " + std::string(id));
  SpooledMessage m;
  m.id = std::string(id);
  m.path = dir_ / "queue" / m.id;
  int fd = ::open(m.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_error("open", m.path, errno);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};

  // Read until the blank line that ends the header.
  std::string head;
  size_t header_end = std::string::npos;
  for (uint64_t off = 0; header_end == std::string::npos;) {
    std::string chunk;
    if (auto st = pread_all(fd, off, 16384, chunk, m.path); !st) return st.error();
    if (chunk.empty()) break;
    off += chunk.size();
    size_t from = head.size() >= 1 ? head.size() - 1 : 0;
    head += chunk;
    header_end = head.find("\n\n", from);
    if (head.size() > kMaxHeader) break;
  }
  if (header_end == std::string::npos) return base::make_error("corrupt queue file " + m.path.string() + ": no header end");
  if (!decode_header(std::string_view(head).substr(0, header_end), m)) {
    return base::make_error("corrupt queue file " + m.path.string() + ": bad header");
  }
  m.message_offset = header_end + 2;

  // Records follow the immutable message bytes.
  struct stat st {};
  if (::fstat(fd, &st) != 0) return errno_error("stat", m.path, errno);
  const uint64_t end = static_cast<uint64_t>(st.st_size);
  const uint64_t records_at = m.message_offset + m.message_size;
  if (end < records_at) return base::make_error("corrupt queue file " + m.path.string() + ": truncated message");
  std::string tail;
  if (auto rs = pread_all(fd, records_at, end - records_at, tail, m.path); !rs) return rs.error();
  size_t pos = 0;
  while (pos < tail.size()) {
    size_t nl = tail.find('\n', pos);
    if (nl == std::string::npos) {
      // Torn last record: its append was never acknowledged (rule 4).
      ++m.torn_records;
      break;
    }
    std::string_view line(tail.data() + pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) continue;
    if (!decode_record(line, m)) ++m.torn_records;
  }
  return m;
}

base::Result<mail::Message> Spool::read_message(const SpooledMessage& message) const {
  return mail::read_message(message.path, message.message_offset, message.message_size);
}

base::Status Spool::record(const SpooledMessage& message, size_t index, const SlotState& state) {
  HIKYAKU_CHECK(index < message.slots.size());
  // The leading newline terminates a torn record left by a crash, so this
  // record always starts a line of its own.
  const std::string line = "\n" + encode_record(index, state) + "\n";
  int fd = ::open(message.path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) return errno_error("open", message.path, errno);
  auto st = write_all(fd, line, message.path);
  if (st && sync_ && ::fdatasync(fd) != 0) st = errno_error("fsync", message.path, errno);
  ::close(fd);
  return st;
}

base::Status Spool::remove(std::string_view id) {
  if (!valid_id(id)) return base::make_error("invalid queue id " + std::string(id));
  fs::path path = dir_ / "queue" / std::string(id);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return errno_error("unlink", path, errno);
  return {};
}

base::Status Spool::quarantine(std::string_view id) {
  if (!valid_id(id)) return base::make_error("invalid queue id " + std::string(id));
  fs::path from = dir_ / "queue" / std::string(id);
  if (::rename(from.c_str(), (dir_ / "corrupt" / std::string(id)).c_str()) != 0 && errno != ENOENT) {
    return errno_error("rename", from, errno);
  }
  return {};
}

base::Result<std::vector<QueueEntry>> Spool::list() const {
  std::vector<QueueEntry> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir_ / "queue", ec), end; !ec && it != end; it.increment(ec)) {
    auto m = load(it->path().filename().string());
    if (!m) continue;  // removed meanwhile, or corrupt (recover() deals with it)
    QueueEntry e;
    e.id = m->id;
    e.arrival = m->arrival;
    e.sender = m->envelope.sender_str();
    e.size = m->message_size;
    e.total = static_cast<unsigned>(m->slots.size());
    for (const auto& t : m->slots) e.pending += t.final() ? 0 : 1;
    out.push_back(std::move(e));
  }
  if (ec) return base::make_error("scan " + (dir_ / "queue").string() + ": " + ec.message());
  std::sort(out.begin(), out.end(), [](const QueueEntry& a, const QueueEntry& b) { return a.id < b.id; });
  return out;
}

}  // namespace hikyaku::queue

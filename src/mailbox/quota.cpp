#include "mailbox/quota.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <ctime>
#include <string>
#include <string_view>
#include <system_error>

#include "base/file.hpp"
#include "mailbox/maildir.hpp"

namespace hikyaku::mailbox {
namespace fs = std::filesystem;

namespace {

constexpr char kFileName[] = "maildirsize";
constexpr off_t kRecalculateAt = 5120;            // Maildir++: a file this large is rewritten
constexpr time_t kOverLimitTrustedFor = 15 * 60;  // Maildir++: "over" older than this is checked again

// "123S,45C" → the S value; nullopt without one or when malformed.
std::optional<uint64_t> storage_limit_of(std::string_view definition) {
  std::optional<uint64_t> out;
  while (!definition.empty()) {
    size_t comma = definition.find(',');
    std::string_view item = definition.substr(0, comma);
    definition = comma == std::string_view::npos ? std::string_view() : definition.substr(comma + 1);
    if (item.size() < 2) return std::nullopt;
    uint64_t n = 0;
    auto [p, ec] = std::from_chars(item.data(), item.data() + item.size() - 1, n);
    if (ec != std::errc() || p != item.data() + item.size() - 1) return std::nullopt;
    if (item.back() == 'S') out = n;
    else if (item.back() != 'C') return std::nullopt;
  }
  return out;
}

// "-123 -1" → the two signed numbers.
bool parse_change(std::string_view line, int64_t& bytes, int64_t& messages) {
  while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
  size_t sp = line.find(' ');
  if (sp == std::string_view::npos) return false;
  std::string_view a = line.substr(0, sp);
  std::string_view b = line.substr(sp + 1);
  while (!b.empty() && b.front() == ' ') b.remove_prefix(1);
  while (!b.empty() && b.back() == ' ') b.remove_suffix(1);
  if (!a.empty() && a.front() == '+') a.remove_prefix(1);
  if (!b.empty() && b.front() == '+') b.remove_prefix(1);
  auto [p1, e1] = std::from_chars(a.data(), a.data() + a.size(), bytes);
  auto [p2, e2] = std::from_chars(b.data(), b.data() + b.size(), messages);
  return e1 == std::errc() && e2 == std::errc() && p1 == a.data() + a.size() && p2 == b.data() + b.size() &&
         !a.empty() && !b.empty();
}

// Add one folder's new/ and cur/ to `u`. A folder that vanishes meanwhile
// counts as empty; other listing failures are errors.
base::Status count_folder(const fs::path& folder, QuotaUsage& u) {
  for (const char* sub : {"new", "cur"}) {
    std::error_code ec;
    fs::directory_iterator it(folder / sub, ec);
    if (ec == std::errc::no_such_file_or_directory) continue;
    if (ec) return base::make_error("list " + (folder / sub).string() + ": " + ec.message());
    for (; it != fs::directory_iterator(); it.increment(ec)) {
      if (ec) return base::make_error("list " + (folder / sub).string() + ": " + ec.message());
      std::string name = it->path().filename().string();
      if (name.empty() || name[0] == '.') continue;
      std::optional<uint64_t> size = Maildir::disk_size_in_name(name);
      if (!size) {
        struct stat st {};
        if (::stat(it->path().c_str(), &st) != 0) continue;  // removed meanwhile
        if (!S_ISREG(st.st_mode)) continue;
        size = static_cast<uint64_t>(st.st_size);
      }
      u.bytes += *size;
      ++u.messages;
    }
  }
  return {};
}

}  // namespace

std::optional<QuotaUsage> parse_maildirsize(std::string_view text, uint64_t limit) {
  std::string_view rest = text;
  size_t nl = rest.find('\n');
  if (nl == std::string_view::npos) return std::nullopt;
  auto defined = storage_limit_of(rest.substr(0, nl));
  if (!defined || *defined != limit) return std::nullopt;
  rest.remove_prefix(nl + 1);
  int64_t bytes = 0;
  int64_t messages = 0;
  while (!rest.empty()) {
    nl = rest.find('\n');
    // A last line without its newline is a change still being written (or
    // a torn one): not trusted.
    if (nl == std::string_view::npos) return std::nullopt;
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl + 1);
    if (line.empty()) continue;
    int64_t b = 0;
    int64_t m = 0;
    if (!parse_change(line, b, m)) return std::nullopt;
    if (__builtin_add_overflow(bytes, b, &bytes) || __builtin_add_overflow(messages, m, &messages)) {
      return std::nullopt;
    }
  }
  if (bytes < 0 || messages < 0) return std::nullopt;
  return QuotaUsage{static_cast<uint64_t>(bytes), static_cast<uint64_t>(messages)};
}

Quota::Quota(fs::path root, uint64_t limit) : root_(std::move(root)), limit_(limit) {}

std::optional<QuotaUsage> Quota::recorded() const {
  const fs::path path = root_ / kFileName;
  base::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || st.st_size >= kRecalculateAt) return std::nullopt;
  std::string text(static_cast<size_t>(st.st_size), '\0');
  ssize_t n = ::pread(fd.get(), text.data(), text.size(), 0);
  if (n < 0) return std::nullopt;
  text.resize(static_cast<size_t>(n));

  auto u = parse_maildirsize(text, limit_);
  if (!u) return std::nullopt;
  if (full(*u) && std::time(nullptr) - st.st_mtime > kOverLimitTrustedFor) return std::nullopt;
  return u;
}

base::Result<QuotaUsage> Quota::usage() const {
  if (auto u = recorded()) return *u;
  return recalculate();
}

base::Result<QuotaUsage> Quota::recalculate() const {
  QuotaUsage u;
  if (auto st = count_folder(root_, u); !st) return st.error();
  // Maildir++ folders: ".Sent", ".Archive.2026", ... (each a Maildir).
  if (auto st = Maildir::for_each_folder(root_, [&](const fs::path& folder) { return count_folder(folder, u); }); !st)
    return st.error();

  // Written whole under a fresh name in tmp/, then renamed over the old
  // file: a reader sees the old or the new one, never a part. Not fsynced:
  // a file lost in a crash is only recalculated again.
  std::string text = std::to_string(limit_) + "S\n" + std::to_string(u.bytes) + " " +
                     std::to_string(u.messages) + "\n";
  std::string tmpl = (root_ / "tmp" / "maildirsize.XXXXXX").string();
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0) return base::errno_error("create", tmpl, errno);
  base::UniqueFd owned(fd);
  if (auto st = base::write_all(fd, text, tmpl); !st) {
    ::unlink(tmpl.c_str());
    return st.error();
  }
  if (::rename(tmpl.c_str(), (root_ / kFileName).c_str()) != 0) {
    int err = errno;
    ::unlink(tmpl.c_str());
    return base::errno_error("rename", root_ / kFileName, err);
  }
  return u;
}

void Quota::record_change(const fs::path& root, int64_t bytes, int64_t messages) {
  const fs::path path = root / kFileName;
  base::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
  if (!fd) return;  // no quota kept for this Maildir
  std::string line = std::to_string(bytes) + " " + std::to_string(messages) + "\n";
  // One write(2) with O_APPEND: concurrent writers' lines never interleave.
  ssize_t n = ::write(fd.get(), line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) {
    // A torn or failed line: make the file malformed for certain (readers
    // then recalculate) rather than leave a wrong sum.
    ::unlink(path.c_str());
  }
}

}  // namespace hikyaku::mailbox

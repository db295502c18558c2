// Purpose:   A message's bytes as they travel from the SMTP session through
//            intake and the queue to the delivery agents: in memory (an
//            ordinary message), or — a message larger than kSpillThreshold —
//            its header section in memory and its body in a file, so that
//            the server's memory does not grow with message size (issue 12
//            item 6; Postfix's smtpd streams into its queue file the same
//            way). The header section is what every step edits (our
//            Received and Authentication-Results, the forward's added
//            fields, signatures); the body is only ever read, in pieces.
// Standards: RFC 5322 §2.1 (the header section ends at the first empty
//            line).
// Trust:     the bytes are the client's; the file is ours (an unlinked
//            temporary file, or the immutable spool file).
// Concurrency: a Message is a value; shared as const, it may be read from
//            any thread (MessageCursor uses pread, never the file offset).
// Errors:    a file that is shorter than its range, or unreadable, is an
//            Error from the cursor, never a silently truncated message.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/file.hpp"
#include "base/result.hpp"

namespace hikyaku::mail {

// Messages larger than this keep their body in a file.
inline constexpr uint64_t kSpillThreshold = 1024 * 1024;
// The largest header section such a message may have (a longer one is
// refused at receipt: 552 5.3.4).
inline constexpr uint64_t kMaxHeaderSection = 1024 * 1024;
// Room for the fields hikyaku puts in front of a received header section
// before it is stored (Received, Authentication-Results, X-Spam-*: a few
// KiB): a stored header section may pass kMaxHeaderSection by that much.
inline constexpr uint64_t kAddedFieldsRoom = 64 * 1024;

// A byte range of a file.
struct FileRange {
  std::shared_ptr<const base::UniqueFd> file;
  std::filesystem::path path;  // for error messages only
  uint64_t offset = 0;
  uint64_t size = 0;
};

struct Message {
  // The whole message (CRLF lines); or, when `body` is set, its header
  // section with the empty line that ends it.
  std::string text;
  std::optional<FileRange> body;

  uint64_t size() const { return text.size() + (body ? body->size : 0); }
};

// Reads a message piece by piece, in order: `text`, then the body file.
class MessageCursor {
 public:
  // The message must outlive the cursor.
  explicit MessageCursor(const Message& message) : message_(message) {}

  // The next piece, at most `max` bytes (> 0), into `piece`: a view into
  // the message's text or into the cursor's buffer, valid until the next
  // call. False at the end.
  base::Result<bool> next(std::string_view& piece, size_t max = kPiece);

  static constexpr size_t kPiece = 256 * 1024;

 private:
  const Message& message_;
  uint64_t pos_ = 0;  // over text, then body
  std::string buffer_;
};

// Calls `f(piece)` for every piece of the message; stops at the first read
// error or the first error `f` returns.
template <typename F>
base::Status for_each_piece(const Message& message, F&& f, size_t max = MessageCursor::kPiece) {
  MessageCursor cursor(message);
  std::string_view piece;
  for (;;) {
    auto more = cursor.next(piece, max);
    if (!more) return more.error();
    if (!*more) return {};
    if (auto st = f(piece); !st) return st;
  }
}

// The split of a stored message read from `range`: its first bytes (the
// header section with its empty line, looked for within the first
// kMaxHeaderSection + kAddedFieldsRoom + 2 bytes) read into `text`, the
// rest left in the file.
// Messages up to kSpillThreshold are read whole. A message without an
// empty line in that window is split after the window's last line.
base::Result<Message> read_message(const FileRange& range);
// The same for the bytes [offset, offset + size) of the file at `path`
// (opened here; the Message keeps it open while its body is read).
base::Result<Message> read_message(const std::filesystem::path& path, uint64_t offset, uint64_t size);

}  // namespace hikyaku::mail

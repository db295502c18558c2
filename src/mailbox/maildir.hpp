// Purpose:   One Maildir (DATA_DIR/mailboxes/NAME/{tmp,new,cur}), shared by
//            local delivery, POP3 and IMAP. Delivery writes tmp/ → fsync →
//            rename into new/ (the Maildir convention, readable by mutt and
//            Dovecot unchanged). Readers list new/ and cur/; a message's
//            unique id is its file name up to ':' — stable across sessions
//            and restarts, so it serves as the POP3 UIDL (RFC 1939 §7).
// Standards: Maildir (cr.yp.to/proto/maildir.html), RFC 1939 §7 (UIDL
//            1–70 chars 0x21–0x7E).
// Trust:     names are generated here; message bytes are untrusted.
// Concurrency: deliver() is safe from several threads and processes.
// Errors:    Result/Status with errno text.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"

namespace hikyaku::mailbox {

struct MessageInfo {
  std::string uid;              // base file name before ":2,"
  std::filesystem::path path;   // current full path (new/ or cur/)
  uint64_t size = 0;            // bytes on disk (CRLF line endings as delivered)
  bool in_new = false;
  std::string flags;            // Maildir info flags after ":2," ("S", "RS", ...)
};

class Maildir {
 public:
  explicit Maildir(std::filesystem::path root, bool sync = true);
  const std::filesystem::path& root() const { return root_; }

  // mkdir -p root/{tmp,new,cur}.
  base::Status create() const;
  // Store a message durably in new/; returns its unique id.
  base::Result<std::string> deliver(std::string_view message) const;
  // All messages in new/ and cur/, oldest first (by delivery time in name).
  base::Result<std::vector<MessageInfo>> list() const;
  base::Result<std::string> read(const MessageInfo& message) const;
  base::Status remove(const MessageInfo& message) const;

 private:
  std::filesystem::path root_;
  bool sync_;
};

}  // namespace hikyaku::mailbox

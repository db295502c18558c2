// Purpose:   Sans-I/O reading of a message's MIME structure, the one MIME
//            walker in the tree: the part tree (IMAP BODYSTRUCTURE, BODY[n],
//            BINARY[n] in imap/protocol/message.cpp) and the attachments a
//            virus scanner is sent under [scan] clamd_scope = "attachments"
//            (scan/client.cpp), chosen as rspamd's antivirus module chooses
//            them by default (find_attachments() below states the rule).
// Standards: RFC 2045 §5.1 (Content-Type, parameters; default text/plain),
//            §6.1 (Content-Transfer-Encoding; 7bit/8bit/binary are the
//            identity, decoders in mail/transfer_encoding.hpp); RFC 2046
//            §5.1.1 (multipart boundaries: delimiter lines, preamble and
//            epilogue ignored), §5.1.5 (multipart/digest: parts default to
//            message/rfc822), §5.2.1 (message/rfc822 holds a message);
//            RFC 2183 §2 (Content-Disposition: attachment, filename);
//            RFC 2231 §3 (filename*= continued parameters count as a name).
// Trust:     the message is untrusted network input: parsing is bounded
//            (kMaxDepth nesting levels, kMaxParts parts), reads only within
//            its input and never fails — malformed MIME degrades to a text
//            part. A Tree says when it is not the whole structure
//            (`complete` false), so that a scanner is then sent the whole
//            message: a hostile structure never means less scanning.
// Concurrency: pure functions; a Tree holds views into the text it was
//            parsed from, which must outlive it.
// Errors:    none (see Trust).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hikyaku::mail::mime {

// Nesting levels (multiparts and message/rfc822 inside each other) and
// parts read; beyond either the Tree is not `complete`.
inline constexpr int kMaxDepth = 16;
inline constexpr size_t kMaxParts = 500;

struct Param {
  std::string name;  // upper-cased
  std::string value;
};

// RFC 2045 §5.1; type and subtype upper-cased ("TEXT", "PLAIN").
struct ContentType {
  std::string type = "TEXT";
  std::string subtype = "PLAIN";
  std::vector<Param> params;
};

// type "/" subtype *(";" parameter), tolerant of comments and junk; a value
// without a usable type/subtype gives `fallback`'s type without parameters.
ContentType parse_content_type(std::string_view value, const ContentType& fallback);
// The value of parameter `name` (upper-cased), nullopt when absent.
std::optional<std::string> param(const ContentType& type, std::string_view name);

struct HeaderBody {
  std::string_view header;  // including the empty line that ends it
  std::string_view body;
};
// An entity's header and body: the header ends at the first empty line (a
// text without one is all header).
HeaderBody split_entity(std::string_view entity);

// One MIME entity: a whole message (the root, or the content of a
// message/rfc822 part) or a body part of a multipart.
struct Part {
  std::string_view header;  // its MIME header (for a message: its header)
  std::string_view body;
  ContentType type;
  std::vector<Part> children;  // multipart: body parts; message/rfc822: {the message}
  bool multipart() const { return type.type == "MULTIPART"; }
  bool message() const { return type.type == "MESSAGE" && type.subtype == "RFC822"; }
};

struct Tree {
  Part root;
  // False when the tree is not the message's whole structure: a bound was
  // reached (parts or nesting left unread), or a multipart had no usable
  // boundary or no delimiter line (its body read as one text part).
  bool complete = true;
};

// The tree of a message given as its header section (with its empty line)
// and its body, or as one text.
Tree parse(std::string_view header, std::string_view body);
Tree parse(std::string_view message);

// The Content-Transfer-Encoding mechanism of a part's header, lower-cased,
// without comments or parameters ("" when there is none).
std::string transfer_encoding(std::string_view header);
// RFC 2045 §6.1: the encodings that leave the octets as they are ("" is
// 7bit, the default).
bool is_identity_encoding(std::string_view mechanism);

// A leaf part a virus scanner is sent under clamd_scope = "attachments".
struct Attachment {
  enum class Encoding { identity, base64, quoted_printable };
  std::string_view header;
  std::string_view body;  // as transferred
  Encoding encoding = Encoding::identity;
  std::string filename;   // "" when none (for the log)
};

struct Attachments {
  // True: send the whole message instead (`why` says why): the tree is not
  // complete, or an attachment has an encoding hikyaku cannot undo.
  bool whole_message = false;
  std::string why;
  std::vector<Attachment> parts;  // in message order
};

// The attachments of a message, by rspamd's antivirus defaults
// (scan_mime_parts = true, scan_text_mime = false, scan_image_mime =
// false; lualib/lua_scanners/common.lua check_parts_match): multiparts and
// message/rfc822 parts are walked into, and a leaf part is sent when
//   - it is an attachment: Content-Disposition "attachment", or a file
//     name (Content-Disposition filename, Content-Type name, RFC 2231
//     forms), or a type other than text/* (what rspamd's content
//     detection finds in an unnamed inline part), and
//   - it is not an image: image/* whose content starts with a PNG, JPEG,
//     GIF or BMP signature (the formats rspamd recognises as images; an
//     image/* part holding anything else is sent).
// So a text/* body part without a name is not sent: EICAR pasted in a
// message's text is not found in this scope.
Attachments find_attachments(const Tree& tree);

// The octets of an attachment, its transfer encoding undone: a view into
// its body (identity) or into `storage` (decoded there).
std::string_view content(const Attachment& attachment, std::string& storage);

}  // namespace hikyaku::mail::mime

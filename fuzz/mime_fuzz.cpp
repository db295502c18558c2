// libFuzzer target: the MIME walker (mail/mime.hpp) on any message — the
// part tree, and the attachments [scan] clamd_scope = "attachments" sends to
// clamd, decoded.
// Invariants: every part's header and body lie within the input; the tree
// of the header/body split (the stored form of a large message) is the same
// as the tree of the whole text; the tree holds at most 2 × kMaxParts + 1
// parts; a message to be sent whole lists no part; a decoded attachment is
// at most twice its encoded size (quoted-printable writes CRLF for a bare
// LF) and an identity-encoded one is its body itself.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "mail/mime.hpp"

using namespace hikyaku::mail::mime;

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

bool within(std::string_view inner, std::string_view outer) {
  return inner.empty() || (inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size());
}

size_t walk(const Part& p, std::string_view input) {
  check(within(p.header, input));
  check(within(p.body, input));
  size_t n = 1;
  for (const auto& c : p.children) n += walk(c, input);
  return n;
}

bool same(const Part& a, const Part& b) {
  if (a.type.type != b.type.type || a.type.subtype != b.type.subtype || a.body.size() != b.body.size() ||
      a.children.size() != b.children.size())
    return false;
  for (size_t i = 0; i < a.children.size(); ++i) {
    if (!same(a.children[i], b.children[i])) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 256 * 1024) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const Tree tree = parse(in);
  check(walk(tree.root, in) <= 2 * kMaxParts + 1);
  const HeaderBody hb = split_entity(in);
  check(hb.header.size() + hb.body.size() == in.size());
  const Tree split = parse(hb.header, hb.body);
  check(split.complete == tree.complete && same(split.root, tree.root));

  const Attachments found = find_attachments(tree);
  if (found.whole_message) check(found.parts.empty() && !found.why.empty());
  for (const auto& a : found.parts) {
    check(within(a.body, in) && within(a.header, in));
    std::string storage;
    const std::string_view octets = content(a, storage);
    check(octets.size() <= 2 * a.body.size() + 2);
    if (a.encoding == Attachment::Encoding::identity) check(octets.data() == a.body.data());
  }
  return 0;
}

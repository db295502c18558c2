// libFuzzer target: DKIM/ARC tag lists and everything parsed from them
// (RFC 6376 §3.2 tag-list, §3.5 signature, §3.6.1 key record) and
// Authentication-Results (RFC 8601). No crash, no leak, no UB on any input.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "auth/arc/chain.hpp"
#include "auth/common/authentication_results.hpp"
#include "auth/common/tag_list.hpp"
#include "auth/dkim/key_record.hpp"
#include "auth/dkim/signature.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  using namespace hikyaku::auth;
  auto tags = common::parse_tag_list(in);
  if (tags) {
    // Invariant: tag names are unique and values carry no edge whitespace.
    for (size_t i = 0; i < tags->tags.size(); ++i) {
      const auto& v = tags->tags[i].value;
      if (!v.empty() && (v.front() == ' ' || v.back() == ' ')) __builtin_trap();
      for (size_t j = i + 1; j < tags->tags.size(); ++j)
        if (tags->tags[i].name == tags->tags[j].name) __builtin_trap();
    }
  }
  (void)dkim::parse_signature(in, dkim::SignatureKind::dkim);
  (void)dkim::parse_signature(in, dkim::SignatureKind::arc_message);
  (void)dkim::parse_key_record(in);
  (void)common::parse_authentication_results(in);
  (void)common::is_own_authentication_results(in, "mx.example.com");
  (void)arc::aar_instance(in);
  return 0;
}

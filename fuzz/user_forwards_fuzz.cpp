// libFuzzer target: the per-user forwards file (DATA_DIR/forwards) and its
// merge into a configuration. Invariants: entries or FILE:LINE:COL errors,
// never both and never a crash, uncaught exception or hang; a parsed file
// renders to text that parses back to the same entries (and the same text);
// merging it into a fixed configuration gives a loadable configuration or
// errors with a position, and no forward into a local domain.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/user_forwards.hpp"

namespace {

constexpr std::string_view kConfig = R"(
hostname = "mx.example.com"
data_dir = "/nonexistent/hk"
[[domain]]
name = "example.com"
[[mailbox]]
name = "alice"
[[mailbox]]
name = "bob"
[[address]]
address = "alice@example.com"
deliver = ["mailbox:alice", "mailbox:bob"]
[[forward]]
to = "x@gmail.example"
fallback = ["mailbox:bob"]
)";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hikyaku::config;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto parsed = parse_user_forwards(text, "forwards");
  if (!parsed.errors.empty() && !parsed.forwards.empty()) __builtin_trap();
  for (const auto& e : parsed.errors)
    if (e.where.empty()) __builtin_trap();
  if (parsed.errors.empty()) {
    const std::string rendered = render_user_forwards(parsed.forwards);
    auto again = parse_user_forwards(rendered, "forwards");
    if (!again.errors.empty() || again.forwards.size() != parsed.forwards.size()) __builtin_trap();
    for (size_t i = 0; i < again.forwards.size(); ++i) {
      const auto& a = parsed.forwards[i];
      const auto& b = again.forwards[i];
      if (a.name != b.name || a.to != b.to || a.keep_copy != b.keep_copy ||
          a.fallback_mailbox() != b.fallback_mailbox())
        __builtin_trap();
    }
    if (render_user_forwards(again.forwards) != rendered) __builtin_trap();
  }
  auto loaded = load_config_text(kConfig, "fuzz.toml", "/nonexistent", {.user_forwards_text = text});
  if (!loaded.config && loaded.errors.empty()) __builtin_trap();
  for (const auto& e : loaded.errors)
    if (e.where.empty()) __builtin_trap();
  if (loaded.config) {
    for (const auto& f : loaded.config->forwards)
      if (loaded.config->is_local_domain(f.to.substr(f.to.rfind('@') + 1))) __builtin_trap();
  }
  return 0;
}

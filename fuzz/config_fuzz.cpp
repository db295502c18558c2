// libFuzzer target: the configuration loader (TOML parse + validation).
// Any input must give either a Config or a list of FILE:LINE:COL errors —
// never a crash, an uncaught exception or a hang.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto loaded = hikyaku::config::load_config_text(text, "fuzz.toml", "/nonexistent");
  if (!loaded.config && loaded.errors.empty()) __builtin_trap();  // one or the other
  for (const auto& e : loaded.errors)
    if (e.where.empty()) __builtin_trap();
  return 0;
}

// libFuzzer target: the SPF record parser and macro expander (RFC 7208
// §4.6.1, §7) on arbitrary bytes, then a full check_host() against an
// in-memory zone holding the input as the domain's record.
#include <cstddef>
#include <cstdint>
#include <string>

#include "auth/spf/check.hpp"
#include "auth/spf/macro.hpp"
#include "auth/spf/record.hpp"
#include "dns/fake_resolver.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hikyaku;
  if (size > 4096) return 0;
  std::string text(reinterpret_cast<const char*>(data), size);
  (void)auth::spf::is_spf_record(text);
  auto rec = auth::spf::parse_record(text);

  auth::spf::MacroContext ctx;
  ctx.sender = "user@example.com";
  ctx.local_part = "user";
  ctx.sender_domain = "example.com";
  ctx.domain = "example.com";
  ctx.ip = *dns::IpAddress::parse("2001:db8::1");
  ctx.helo = "mx.example.org";
  (void)auth::spf::expand_macros(text, ctx, true);
  (void)auth::spf::expand_domain_spec(text, ctx);

  if (rec.ok()) {
    // Evaluate it: the record includes itself and others through the zone.
    dns::FakeResolver zone;
    zone.add_txt("example.com", "v=" + text.substr(2));
    zone.add_txt("inc.example.com", text);
    zone.add_a("example.com", "192.0.2.1");
    zone.add_mx("example.com", 10, "mx.example.com");
    zone.add_a("mx.example.com", "192.0.2.2");
    zone.add_ptr("192.0.2.1", "mx.example.com");
    auto ip = *dns::IpAddress::parse("192.0.2.1");
    (void)auth::spf::check_mail_from(zone, ip, "user@example.com", "mx.example.org");
  }
  return 0;
}

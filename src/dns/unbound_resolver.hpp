// Purpose:   The production Resolver: libunbound, with its cache shared by all
//            callers. With `[dns] servers` set it forwards every query to those
//            servers (a test DNS server on loopback included); without, it
//            uses the system's resolvers (/etc/resolv.conf) and /etc/hosts.
// Standards: RFC 1035 §3.3 (TXT, MX, PTR, A rdata), RFC 3596 §2.2 (AAAA),
//            RFC 7505 (null MX "."), RFC 2308 (NXDOMAIN vs NODATA), RFC 6761
//            §6 (reserved names: answered locally by libunbound unless servers
//            are set, then asked of those servers), RFC 7208 §2.6.7 (any rcode
//            other than NOERROR/NXDOMAIN is a temporary error).
// Trust:     answers are untrusted network data: every rdata is parsed with
//            bounds checks and a malformed one makes the lookup perm_error.
//            Server addresses come from the operator's configuration.
// Concurrency: thread-safe. All configuration happens in create(); after it
//            the ub_ctx is only used through blocking ub_resolve(), which
//            libunbound documents as safe from many threads on one context
//            (each call does its own work and shares the context's cache).
// Errors:    create() returns base::Result with libunbound's message; lookups
//            return a LookupResult status and never throw.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "config/config.hpp"
#include "dns/resolver.hpp"

struct ub_ctx;  // libunbound's context; its header stays private to dns/

namespace hikyaku::dns {

class UnboundResolver final : public Resolver {
 public:
  // `servers` empty: the system's resolvers and /etc/hosts. Otherwise every
  // query (RFC 6761 names included) is forwarded to these servers.
  static base::Result<std::unique_ptr<UnboundResolver>> create(const std::vector<config::Endpoint>& servers);

  ~UnboundResolver() override;
  UnboundResolver(const UnboundResolver&) = delete;
  UnboundResolver& operator=(const UnboundResolver&) = delete;

  LookupResult<std::string> txt(std::string_view name) override;
  LookupResult<MxRecord> mx(std::string_view name) override;
  LookupResult<IpAddress> a(std::string_view name) override;
  LookupResult<IpAddress> aaaa(std::string_view name) override;
  LookupResult<std::string> ptr(const IpAddress& address) override;

 private:
  explicit UnboundResolver(ub_ctx* ctx) : ctx_(ctx) {}

  ub_ctx* ctx_;  // owned; deleted with ub_ctx_delete
};

// Wire-format rdata parsers (RFC 1035 §3.3), exposed for unit tests and
// fuzzing. Each returns nullopt on malformed data. Names are returned in
// presentation form without the trailing dot ("" for the root).
namespace wire {
std::optional<std::string> parse_txt(std::string_view rdata);
std::optional<MxRecord> parse_mx(std::string_view rdata);
std::optional<std::string> parse_name(std::string_view rdata);
std::optional<IpAddress> parse_a(std::string_view rdata);
std::optional<IpAddress> parse_aaaa(std::string_view rdata);
}  // namespace wire

}  // namespace hikyaku::dns

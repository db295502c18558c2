// Purpose:   The production resolver: libunbound, with its cache shared by all
//            callers. With `[dns] servers` set it forwards every query to those
//            servers (a test DNS server on loopback included); without, it
//            uses the system's resolvers (/etc/resolv.conf) and /etc/hosts.
//            Two roles on one ub_ctx: the synchronous Resolver (ub_resolve,
//            which builds and tears down a libunbound worker per call, ~0.6 ms
//            of CPU: being replaced) and the AsyncResolver (ub_resolve_async
//            with ub_ctx_async(ctx, 1): one long-lived background thread does
//            the work; answers come back through a pipe whose read end, fd(),
//            the event loop watches, then process() runs the callbacks). One
//            class rather than an UnboundAsyncResolver beside it, so both roles
//            share one configuration and one cache while callers move over,
//            and deleting the sync methods afterwards leaves the right class.
// Standards: RFC 1035 §3.3 (TXT, MX, PTR, A rdata), RFC 3596 §2.2 (AAAA),
//            RFC 7505 (null MX "."), RFC 2308 (NXDOMAIN vs NODATA), RFC 6761
//            §6 (reserved names: answered locally by libunbound unless servers
//            are set, then asked of those servers), RFC 7208 §2.6.7 (any rcode
//            other than NOERROR/NXDOMAIN is a temporary error).
// Trust:     answers are untrusted network data: every rdata is parsed with
//            bounds checks and a malformed one makes the lookup perm_error.
//            Server addresses come from the operator's configuration.
// Concurrency: the synchronous lookups are thread-safe: all configuration
//            happens in create(); ub_resolve() is documented as safe from many
//            threads on one context (each call does its own work and shares
//            the context's cache). The asynchronous role (resolve, fd,
//            process, outstanding) belongs to one thread, the event loop's:
//            callbacks run inside process(), on that thread, with no
//            libunbound lock held, so they may call resolve() again.
// Errors:    create() returns base::Result with libunbound's message; lookups
//            return a LookupResult or Answer status and never throw.
//            Questions outstanding at destruction are cancelled (ub_cancel)
//            and their callbacks destroyed without being called.
#pragma once

#include <map>
#include <memory>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "config/config.hpp"
#include "dns/async_resolver.hpp"
#include "dns/resolver.hpp"

struct ub_ctx;  // libunbound's context; its header stays private to dns/
struct ub_result;

namespace hikyaku::dns {

class UnboundResolver final : public Resolver, public AsyncResolver {
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

  // AsyncResolver: ub_resolve_async(); the answer follows the same status
  // rules as the lookups above. `done` runs inside a later process(), or at
  // once for a name that cannot be asked (perm_error) or a local failure.
  void resolve(const Question& q, Callback done) override;

  // The read end of libunbound's result pipe (ub_fd): readable when answers
  // wait. Constant for the resolver's life; owned by libunbound (never close).
  int fd() const;
  // Read every answer waiting on fd() and run its callback (ub_process).
  // Never blocks; call it when fd() is readable (or any time).
  void process();
  // Questions asked through resolve() whose callbacks have not run.
  size_t outstanding() const { return pending_.size(); }

 private:
  struct Pending;
  explicit UnboundResolver(ub_ctx* ctx);
  static void on_async_result(void* data, int err, ub_result* result);

  ub_ctx* ctx_;  // owned; deleted with ub_ctx_delete
  // Outstanding asynchronous questions by libunbound's async_id; each
  // Pending is the callback's `mydata`. The destructor cancels them.
  std::map<int, std::unique_ptr<Pending>> pending_;
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
// The negative-caching TTL of a whole DNS message (RFC 2308 §5): the
// minimum of the TTL and the MINIMUM field of the first SOA record in the
// authority section; nullopt when there is no SOA or the message is
// malformed. ub_result.ttl cannot be used for this: libunbound 1.17 takes
// the smallest TTL of every record it parsed, the EDNS OPT pseudo-record
// included, whose "TTL" holds the DO flag: a negative answer without an
// SOA comes back with ttl 32768 (checked against dnsmasq).
std::optional<uint32_t> negative_ttl(std::string_view message);
}  // namespace wire

}  // namespace hikyaku::dns

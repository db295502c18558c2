#include "dns/unbound_resolver.hpp"

#include <unbound.h>

#include <algorithm>
#include <array>
#include <string>
#include <utility>

#include "base/log.hpp"

namespace hikyaku::dns {
namespace {

// RR types and class (RFC 1035 §3.2.2, RFC 3596 §2.1).
constexpr int kTypeA = 1;
constexpr int kTypePtr = 12;
constexpr int kTypeMx = 15;
constexpr int kTypeTxt = 16;
constexpr int kTypeAaaa = 28;
constexpr int kClassIn = 1;

// RCODEs (RFC 1035 §4.1.1).
constexpr int kRcodeNoError = 0;
constexpr int kRcodeNxDomain = 3;

// The zones libunbound answers itself by default (RFC 6761 §6 special-use
// names, RFC 6303 locally served reverse zones, RFC 8375 home.arpa, RFC 7686
// onion). When the operator names servers, those servers are the authority
// for every name (tests serve `example.test` from dnsmasq on loopback), so
// each zone is made "transparent": with no local data, the query goes out.
// `local-zone: X nodefault` through ub_ctx_set_option() did not take effect
// in libunbound 1.17 (DESIGN.md); a user zone of the same name replaces the
// default zone and its built-in data, which is what we want.
constexpr std::array kDefaultLocalZones = {
    "localhost.", "test.", "invalid.", "onion.", "home.arpa.", "resolver.arpa.", "service.arpa.",
    "127.in-addr.arpa.", "0.in-addr.arpa.", "10.in-addr.arpa.", "254.169.in-addr.arpa.",
    "168.192.in-addr.arpa.", "2.0.192.in-addr.arpa.", "100.51.198.in-addr.arpa.",
    "113.0.203.in-addr.arpa.", "255.255.255.255.in-addr.arpa.",
    "16.172.in-addr.arpa.", "17.172.in-addr.arpa.", "18.172.in-addr.arpa.", "19.172.in-addr.arpa.",
    "20.172.in-addr.arpa.", "21.172.in-addr.arpa.", "22.172.in-addr.arpa.", "23.172.in-addr.arpa.",
    "24.172.in-addr.arpa.", "25.172.in-addr.arpa.", "26.172.in-addr.arpa.", "27.172.in-addr.arpa.",
    "28.172.in-addr.arpa.", "29.172.in-addr.arpa.", "30.172.in-addr.arpa.", "31.172.in-addr.arpa.",
    "64.100.in-addr.arpa.", "65.100.in-addr.arpa.", "66.100.in-addr.arpa.", "67.100.in-addr.arpa.",
    "68.100.in-addr.arpa.", "69.100.in-addr.arpa.", "70.100.in-addr.arpa.", "71.100.in-addr.arpa.",
    "72.100.in-addr.arpa.", "73.100.in-addr.arpa.", "74.100.in-addr.arpa.", "75.100.in-addr.arpa.",
    "76.100.in-addr.arpa.", "77.100.in-addr.arpa.", "78.100.in-addr.arpa.", "79.100.in-addr.arpa.",
    "80.100.in-addr.arpa.", "81.100.in-addr.arpa.", "82.100.in-addr.arpa.", "83.100.in-addr.arpa.",
    "84.100.in-addr.arpa.", "85.100.in-addr.arpa.", "86.100.in-addr.arpa.", "87.100.in-addr.arpa.",
    "88.100.in-addr.arpa.", "89.100.in-addr.arpa.", "90.100.in-addr.arpa.", "91.100.in-addr.arpa.",
    "92.100.in-addr.arpa.", "93.100.in-addr.arpa.", "94.100.in-addr.arpa.", "95.100.in-addr.arpa.",
    "96.100.in-addr.arpa.", "97.100.in-addr.arpa.", "98.100.in-addr.arpa.", "99.100.in-addr.arpa.",
    "100.100.in-addr.arpa.", "101.100.in-addr.arpa.", "102.100.in-addr.arpa.", "103.100.in-addr.arpa.",
    "104.100.in-addr.arpa.", "105.100.in-addr.arpa.", "106.100.in-addr.arpa.", "107.100.in-addr.arpa.",
    "108.100.in-addr.arpa.", "109.100.in-addr.arpa.", "110.100.in-addr.arpa.", "111.100.in-addr.arpa.",
    "112.100.in-addr.arpa.", "113.100.in-addr.arpa.", "114.100.in-addr.arpa.", "115.100.in-addr.arpa.",
    "116.100.in-addr.arpa.", "117.100.in-addr.arpa.", "118.100.in-addr.arpa.", "119.100.in-addr.arpa.",
    "120.100.in-addr.arpa.", "121.100.in-addr.arpa.", "122.100.in-addr.arpa.", "123.100.in-addr.arpa.",
    "124.100.in-addr.arpa.", "125.100.in-addr.arpa.", "126.100.in-addr.arpa.", "127.100.in-addr.arpa.",
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.",
    "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.",
    "d.f.ip6.arpa.", "8.e.f.ip6.arpa.", "9.e.f.ip6.arpa.", "a.e.f.ip6.arpa.", "b.e.f.ip6.arpa.",
    "8.b.d.0.1.0.0.2.ip6.arpa.",
};

base::Error unbound_error(std::string_view what, int code) {
  return base::make_error("libunbound: " + std::string(what) + ": " + ub_strerror(code));
}

// Owns a ub_result.
struct ResultDeleter {
  void operator()(ub_result* r) const { ub_resolve_free(r); }
};
using ResultPtr = std::unique_ptr<ub_result, ResultDeleter>;

// Sanity checks before a name goes to libunbound: a C string of at most
// 253 octets of text (RFC 1035 §2.3.4: 255 on the wire) with no NUL.
bool askable(std::string_view name) {
  return !name.empty() && name.size() <= 254 && name.find('\0') == std::string_view::npos;
}

// Turn libunbound's outcome (the return code of ub_resolve or the `err` of
// an async callback, and the result, not owned) into a LookupResult, each
// rdata parsed into a T with `parse`. The status follows RFC 2308 (NXDOMAIN
// vs NODATA) and RFC 7208 §2.6.7: any rcode other than NOERROR and
// NXDOMAIN, a DNSSEC-bogus answer and a local failure (including timeouts,
// which libunbound reports as SERVFAIL) are temporary; a name libunbound
// refuses as syntax is permanent.
template <class T, class Parse>
LookupResult<T> read_result(int rc, const ub_result* result, Parse parse) {
  LookupResult<T> out;
  if (rc != 0 || result == nullptr) {
    out.status = rc == UB_SYNTAX ? Status::perm_error : Status::temp_error;
    return out;
  }
  if (result->bogus) {
    out.status = Status::temp_error;  // RFC 4035 §5.5: treat as SERVFAIL
    return out;
  }
  out.secure = result->secure != 0;
  out.ttl = result->ttl > 0 ? static_cast<uint32_t>(result->ttl) : 0;
  // A negative answer's TTL comes from its SOA (RFC 2308 §5), read from the
  // message itself (see wire::negative_ttl); none: 0, "do not cache".
  auto negative = [&] {
    std::string_view message;
    if (result->answer_packet != nullptr && result->answer_len > 0)
      message = {static_cast<const char*>(result->answer_packet), static_cast<size_t>(result->answer_len)};
    const auto from_soa = wire::negative_ttl(message);
    out.ttl = from_soa.value_or(0);
    out.ttl_from_soa = from_soa.has_value();
  };
  if (result->rcode == kRcodeNxDomain || result->nxdomain) {
    out.status = Status::nxdomain;
    negative();
    return out;
  }
  if (result->rcode != kRcodeNoError) {
    out.status = Status::temp_error;
    out.ttl = 0;
    return out;
  }
  if (!result->havedata) {  // NODATA: the name exists
    negative();
    return out;
  }
  for (int i = 0; result->data[i] != nullptr; ++i) {
    std::string_view rdata(result->data[i], static_cast<size_t>(result->len[i]));
    auto parsed = parse(rdata);
    if (!parsed) {
      // A record we cannot read is a broken answer, not a missing one.
      out.status = Status::perm_error;
      out.records.clear();
      return out;
    }
    out.records.push_back(std::move(*parsed));
  }
  return out;
}

// Run one blocking query (ub_resolve: a worker built for this call).
template <class T, class Parse>
LookupResult<T> query(ub_ctx* ctx, std::string_view name, int type, Parse parse) {
  if (!askable(name)) {
    LookupResult<T> out;
    out.status = Status::perm_error;
    return out;
  }
  std::string qname(name);
  ub_result* raw = nullptr;
  int rc = ub_resolve(ctx, qname.c_str(), type, kClassIn, &raw);
  ResultPtr result(raw);
  return read_result<T>(rc, result.get(), parse);
}

int rr_type(Type type) {
  switch (type) {
    case Type::a: return kTypeA;
    case Type::aaaa: return kTypeAaaa;
    case Type::mx: return kTypeMx;
    case Type::txt: return kTypeTxt;
    case Type::ptr: return kTypePtr;
  }
  return kTypeA;
}

// The Answer for an async callback's outcome, with the rules of query().
Answer answer_from(Type type, int err, const ub_result* result) {
  switch (type) {
    case Type::a: return to_answer(read_result<IpAddress>(err, result, wire::parse_a));
    case Type::aaaa: return to_answer(read_result<IpAddress>(err, result, wire::parse_aaaa));
    case Type::mx: return to_answer(read_result<MxRecord>(err, result, wire::parse_mx));
    case Type::txt: return to_answer(read_result<std::string>(err, result, wire::parse_txt));
    case Type::ptr: return to_answer(read_result<std::string>(err, result, wire::parse_name));
  }
  return Answer{};
}

// Append one label in presentation form (RFC 1035 §5.1 escapes), so a label
// holding a dot or an odd byte cannot be mistaken for two labels.
void append_label(std::string& out, std::string_view label) {
  for (unsigned char c : label) {
    if (c == '.' || c == '\\' || c == '"' || c == ';' || c == '(' || c == ')') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c <= 0x20 || c >= 0x7f) {
      out += '\\';
      out += static_cast<char>('0' + c / 100);
      out += static_cast<char>('0' + (c / 10) % 10);
      out += static_cast<char>('0' + c % 10);
    } else {
      out += static_cast<char>(c);
    }
  }
}

// Parse an uncompressed wire name at the start of `data` (libunbound hands
// out rdata with names already decompressed). Sets `used` to its length.
std::optional<std::string> read_name(std::string_view data, size_t& used) {
  std::string out;
  size_t pos = 0;
  size_t wire_length = 0;
  while (true) {
    if (pos >= data.size()) return std::nullopt;
    auto len = static_cast<unsigned char>(data[pos]);
    if (len == 0) {
      used = pos + 1;
      return out;
    }
    if (len > 63) return std::nullopt;  // compression pointer or reserved bits (RFC 1035 §4.1.4)
    wire_length += len + 1u;
    // RFC 1035 §3.1: at most 255 octets of labels and length octets, the
    // root's zero length octet that ends the name included.
    if (wire_length + 1 > 255 || pos + 1 + len > data.size()) return std::nullopt;
    if (!out.empty()) out += '.';
    append_label(out, data.substr(pos + 1, len));
    pos += 1 + len;
  }
}

}  // namespace

namespace wire {

// RFC 1035 §3.3.14: one or more <character-string>s, concatenated as RFC
// 7208 §3.3 and RFC 6376 §3.6.2.2 require.
std::optional<std::string> parse_txt(std::string_view rdata) {
  std::string out;
  size_t pos = 0;
  while (pos < rdata.size()) {
    auto len = static_cast<unsigned char>(rdata[pos]);
    if (pos + 1 + len > rdata.size()) return std::nullopt;
    out.append(rdata.substr(pos + 1, len));
    pos += 1 + len;
  }
  return out;
}

// RFC 1035 §3.3.9: PREFERENCE (16 bits) then EXCHANGE; RFC 7505 null MX is
// preference 0 and exchange "." (returned as "").
std::optional<MxRecord> parse_mx(std::string_view rdata) {
  if (rdata.size() < 3) return std::nullopt;
  MxRecord mx;
  mx.preference = static_cast<uint16_t>((static_cast<unsigned char>(rdata[0]) << 8) |
                                        static_cast<unsigned char>(rdata[1]));
  size_t used = 0;
  auto name = read_name(rdata.substr(2), used);
  if (!name || used != rdata.size() - 2) return std::nullopt;
  mx.exchange = std::move(*name);
  return mx;
}

std::optional<std::string> parse_name(std::string_view rdata) {
  size_t used = 0;
  auto name = read_name(rdata, used);
  if (!name || used != rdata.size()) return std::nullopt;
  return name;
}

std::optional<IpAddress> parse_a(std::string_view rdata) {
  if (rdata.size() != 4) return std::nullopt;
  IpAddress ip;
  for (size_t i = 0; i < 4; ++i) ip.bytes[i] = static_cast<uint8_t>(rdata[i]);
  return ip;
}

std::optional<IpAddress> parse_aaaa(std::string_view rdata) {
  if (rdata.size() != 16) return std::nullopt;
  IpAddress ip;
  ip.v6 = true;
  for (size_t i = 0; i < 16; ++i) ip.bytes[i] = static_cast<uint8_t>(rdata[i]);
  return ip;
}

namespace {

// Skip a possibly compressed name at `pos` (RFC 1035 §4.1.4).
bool skip_name(std::string_view m, size_t& pos) {
  for (int labels = 0; labels < 128; ++labels) {
    if (pos >= m.size()) return false;
    auto len = static_cast<unsigned char>(m[pos]);
    if ((len & 0xc0) == 0xc0) {  // a pointer ends the name
      if (pos + 2 > m.size()) return false;
      pos += 2;
      return true;
    }
    if (len > 63) return false;
    pos += 1 + len;
    if (len == 0) return true;
  }
  return false;
}

uint32_t read_u32(std::string_view m, size_t pos) {
  return (static_cast<uint32_t>(static_cast<unsigned char>(m[pos])) << 24) |
         (static_cast<uint32_t>(static_cast<unsigned char>(m[pos + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<unsigned char>(m[pos + 2])) << 8) |
         static_cast<uint32_t>(static_cast<unsigned char>(m[pos + 3]));
}

uint16_t read_u16(std::string_view m, size_t pos) {
  return static_cast<uint16_t>((static_cast<unsigned char>(m[pos]) << 8) | static_cast<unsigned char>(m[pos + 1]));
}

}  // namespace

// RFC 1035 §4.1: header, then QDCOUNT questions, ANCOUNT answers, NSCOUNT
// authority records; RFC 1035 §3.3.13: SOA rdata ends with five 32-bit
// fields, MINIMUM last.
std::optional<uint32_t> negative_ttl(std::string_view m) {
  constexpr int kTypeSoa = 6;
  if (m.size() < 12) return std::nullopt;
  size_t pos = 12;
  unsigned questions = read_u16(m, 4);
  unsigned answers = read_u16(m, 6);
  unsigned authority = read_u16(m, 8);
  for (unsigned i = 0; i < questions; ++i) {
    if (!skip_name(m, pos) || pos + 4 > m.size()) return std::nullopt;
    pos += 4;  // QTYPE, QCLASS
  }
  for (unsigned i = 0; i < answers + authority; ++i) {
    if (!skip_name(m, pos) || pos + 10 > m.size()) return std::nullopt;
    uint16_t type = read_u16(m, pos);
    uint32_t ttl = read_u32(m, pos + 4);
    size_t rdlength = read_u16(m, pos + 8);
    pos += 10;
    if (pos + rdlength > m.size()) return std::nullopt;
    if (i >= answers && type == kTypeSoa) {
      std::string_view rdata = m.substr(0, pos + rdlength);  // names may point back
      size_t at = pos;
      if (!skip_name(rdata, at) || !skip_name(rdata, at) || at + 20 != rdata.size()) return std::nullopt;
      // RFC 1035 §3.2.1: a TTL is an unsigned 32-bit value with the top
      // bit clear (RFC 2181 §8); treat a larger one as 0.
      uint32_t minimum = read_u32(rdata, at + 16);
      uint32_t out = std::min(ttl, minimum);
      return out > 0x7fffffffu ? 0 : out;
    }
    pos += rdlength;
  }
  return std::nullopt;
}

}  // namespace wire

base::Result<std::unique_ptr<UnboundResolver>> UnboundResolver::create(
    const std::vector<config::Endpoint>& servers) {
  ub_ctx* ctx = ub_ctx_create();
  if (ctx == nullptr) return base::make_error("libunbound: ub_ctx_create failed");
  // From here the resolver owns ctx, so every early return deletes it.
  std::unique_ptr<UnboundResolver> resolver(new UnboundResolver(ctx));
  // resolve(): a background thread, not a forked process, does the async
  // work; it must be set before the context is finalised by a first query.
  if (int rc = ub_ctx_async(ctx, 1); rc != 0) return unbound_error("async with a thread", rc);

  if (servers.empty()) {
    // The system's resolvers, as every other program on the host sees them.
    if (int rc = ub_ctx_resolvconf(ctx, nullptr); rc != 0) return unbound_error("reading /etc/resolv.conf", rc);
    if (int rc = ub_ctx_hosts(ctx, nullptr); rc != 0) return unbound_error("reading /etc/hosts", rc);
    return resolver;
  }

  // Forwarding to loopback (a test server, a local cache) is refused unless
  // do-not-query-localhost is off (DESIGN.md, checked against dnsmasq).
  if (int rc = ub_ctx_set_option(ctx, "do-not-query-localhost:", "no"); rc != 0)
    return unbound_error("do-not-query-localhost", rc);
  for (const char* zone : kDefaultLocalZones) {
    std::string value = std::string(zone) + " transparent";
    if (int rc = ub_ctx_set_option(ctx, "local-zone:", value.c_str()); rc != 0)
      return unbound_error("local-zone " + value, rc);
  }
  for (const auto& server : servers) {
    // libunbound's address syntax: "IP@PORT", IPv6 without brackets.
    std::string address = server.host;
    if (server.port != 0) address += "@" + std::to_string(server.port);
    if (int rc = ub_ctx_set_fwd(ctx, address.c_str()); rc != 0)
      return unbound_error("forward to " + address, rc);
  }
  return resolver;
}

// One outstanding resolve(): the callback's `mydata`.
struct UnboundResolver::Pending {
  UnboundResolver* owner = nullptr;
  int id = 0;  // libunbound's async_id
  Type type = Type::a;
  Callback done;
};

UnboundResolver::UnboundResolver(ub_ctx* ctx) : ctx_(ctx) {}

UnboundResolver::~UnboundResolver() {
  // A cancelled query's callback is never called (with a thread, libunbound
  // marks it and drops its answer); ub_ctx_delete then stops the background
  // thread and frees what is left. The Pendings go with pending_.
  for (const auto& [id, pending] : pending_) (void)ub_cancel(ctx_, id);
  if (ctx_ != nullptr) ub_ctx_delete(ctx_);
}

void UnboundResolver::resolve(const Question& q, Callback done) {
  if (!askable(q.name)) {
    Answer answer;
    answer.status = Status::perm_error;
    done(answer);
    return;
  }
  auto pending = std::make_unique<Pending>();
  pending->owner = this;
  pending->type = q.type;
  pending->done = std::move(done);
  int id = 0;
  // The callback can only run inside process() on this thread, so the
  // Pending is in pending_ before it can be looked for.
  int rc = ub_resolve_async(ctx_, q.name.c_str(), rr_type(q.type), kClassIn, pending.get(),
                            &UnboundResolver::on_async_result, &id);
  if (rc != 0) {
    Answer answer;
    answer.status = rc == UB_SYNTAX ? Status::perm_error : Status::temp_error;
    base::logger("dns")->warn("ub_resolve_async {} {}: {}", to_string(q.type), q.name, ub_strerror(rc));
    pending->done(answer);
    return;
  }
  pending->id = id;
  pending_.emplace(id, std::move(pending));
}

void UnboundResolver::on_async_result(void* data, int err, ub_result* raw) {
  ResultPtr result(raw);  // the callback owns the result (unbound.h)
  auto* pending = static_cast<Pending*>(data);
  UnboundResolver& self = *pending->owner;
  auto it = self.pending_.find(pending->id);
  HIKYAKU_CHECK(it != self.pending_.end());
  std::unique_ptr<Pending> owned = std::move(it->second);
  self.pending_.erase(it);
  Answer answer = answer_from(owned->type, err, result.get());
  result.reset();
  owned->done(answer);
}

int UnboundResolver::fd() const { return ub_fd(ctx_); }

void UnboundResolver::process() {
  // UB_PIPE means the background thread is gone: nothing outstanding will
  // be answered. It does not happen short of a crash in libunbound.
  if (int rc = ub_process(ctx_); rc != 0) base::logger("dns")->error("ub_process: {}", ub_strerror(rc));
}

LookupResult<std::string> UnboundResolver::txt(std::string_view name) {
  return query<std::string>(ctx_, name, kTypeTxt, wire::parse_txt);
}

LookupResult<MxRecord> UnboundResolver::mx(std::string_view name) {
  return query<MxRecord>(ctx_, name, kTypeMx, wire::parse_mx);
}

LookupResult<IpAddress> UnboundResolver::a(std::string_view name) {
  return query<IpAddress>(ctx_, name, kTypeA, wire::parse_a);
}

LookupResult<IpAddress> UnboundResolver::aaaa(std::string_view name) {
  return query<IpAddress>(ctx_, name, kTypeAaaa, wire::parse_aaaa);
}

LookupResult<std::string> UnboundResolver::ptr(const IpAddress& address) {
  return query<std::string>(ctx_, address.reverse_name(), kTypePtr, wire::parse_name);
}

}  // namespace hikyaku::dns

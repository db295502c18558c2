// Purpose:   The typed configuration of hikyaku (DESIGN.md "user-facing
//            interface"), read once from TOML by load_config() and validated
//            as a whole. Each component receives only its own struct
//            (STYLE R11); nothing here is global.
// Trust:     the file is trusted (operator-written) but may be wrong: every
//            mistake is reported as FILE:LINE:COL: message, all at once.
// Errors:    load_config returns the list of errors; never throws.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "base/access_list.hpp"
#include "mail/target.hpp"

namespace hikyaku::config {

using Seconds = std::chrono::seconds;

// "ADDRESS:PORT" — IPv4 "127.0.0.1:25", IPv6 "[::1]:25".
struct Endpoint {
  std::string host;  // without brackets
  uint16_t port = 0;
  std::string str() const;
};

struct Listen {
  std::vector<Endpoint> smtp;         // MX role, STARTTLS offered
  std::vector<Endpoint> submission;   // 587: STARTTLS then AUTH
  std::vector<Endpoint> submissions;  // 465: implicit TLS
  std::vector<Endpoint> pop3;         // STLS offered
  std::vector<Endpoint> pop3s;        // implicit TLS
  std::vector<Endpoint> imap;
  std::vector<Endpoint> imaps;
  std::vector<Endpoint> http;         // status page and /metrics

  // Is ip:port one of these listeners? A wildcard listener ("0.0.0.0",
  // "::") matches every loopback address, besides `ip` equal to an
  // explicitly listed address. `ip` is textual ("127.0.0.2", "::1").
  bool is_own(std::string_view ip, uint16_t port) const;
};

// [access]: which client addresses may connect to each listener of [listen]
// (the same names). Deny wins over allow; an empty allow list allows every
// address not denied (base/access_list.hpp). A refused client gets its
// protocol's "access denied" reply and the connection is closed.
struct Access {
  base::AccessList smtp, submission, submissions, pop3, pop3s, imap, imaps;
  // The rules of the listener called `listener` ("imaps"); an empty list
  // (allow all) for a name without rules.
  const base::AccessList& of(std::string_view listener) const;
};

// A certificate chain and its key, with where the configuration names each
// ("FILE:LINE:COL"; empty for the generated self-signed pair).
struct TlsCertificate {
  std::filesystem::path cert;
  std::filesystem::path key;
  std::string cert_where;
  std::string key_where;
};

struct Tls {
  std::filesystem::path cert;  // PEM chain; empty = TLS unavailable
  std::filesystem::path key;
  std::string cert_where, key_where;  // "FILE:LINE:COL" of the values
  // [[tls.certificate]]: more certificates, each chosen by a client's
  // server name (SNI) matching one of its own DNS names; cert/key (or the
  // self-signed pair) stay the default for every other client.
  std::vector<TlsCertificate> certificates;
  // When both are empty and `self_signed` is true, a self-signed certificate
  // for `hostname` is generated under data_dir/tls (the demo does this).
  bool self_signed = false;
  bool configured() const { return !cert.empty() && !key.empty(); }
};

struct Dns {
  std::vector<Endpoint> servers;  // empty: the system's resolvers
};

// The local address outgoing SMTP connections are bound to (issue 17: Google
// asks forwarders to send from their own IP or domain), one per family, as
// Postfix's smtp_bind_address / smtp_bind_address6. "" leaves that family's
// choice to the kernel. TOML: one address ("192.0.2.7", "2001:db8::7") or a
// list of at most one IPv4 and one IPv6 address.
struct SourceAddress {
  std::string v4;
  std::string v6;
  bool empty() const { return v4.empty() && v6.empty(); }
  bool operator==(const SourceAddress&) const = default;
};

// One source address: a plain IP literal, not a prefix (an IPv4-mapped IPv6
// address counts as IPv4: base::Cidr). The error says what is wrong.
base::Result<base::Cidr> parse_source_address(std::string_view text);
// A source_name (the EHLO name): a domain name, or empty.
bool valid_source_name(std::string_view name);

// [delivery] address_family: which of a destination's addresses (A, AAAA)
// outgoing SMTP tries; "ipv4" for a host whose IPv6 address has no PTR
// (Gmail refuses IPv6 senders without one).
enum class AddressFamily { any, ipv4, ipv6 };

struct Delivery {
  uint16_t smtp_port = 25;
  SourceAddress source_address;   // [delivery] source_address; [[forward]] may override
  // EHLO name of outgoing SMTP (the PTR name of source_address); "":
  // `hostname`. A [[forward]]'s source_name wins, a [[route]]'s helo too.
  std::string source_name;
  AddressFamily address_family = AddressFamily::any;
  std::vector<Seconds> retry{Seconds(60), Seconds(300), Seconds(900), Seconds(3600)};
  Seconds expire{5 * 86400};
  unsigned concurrency_per_domain = 10;
  // After a rate-limit reply (421 4.7.28, ...): no connection to that
  // destination for this long, then one, one more after each success
  // (delivery/state/destination_pace.hpp). Gmail asks for at least 10 min.
  Seconds rate_limit_pause{600};
  Seconds connect_timeout{30};
  // 0: the RFC 5321 §4.5.3.2 per-stage client timeouts (5 min, 10 min for
  // the final dot); otherwise one timeout for every reply.
  Seconds command_timeout{0};
};

struct Limits {
  uint64_t message_size = 50ull * 1024 * 1024;
  unsigned recipients = 100;
  // Per protocol: SMTP (smtp), submission (submission + submissions), POP3
  // (pop3 + pop3s) and IMAP (imap + imaps) each have their own pool of this
  // size, so idle SMTP clients cannot shut out mail readers (app/server.cpp).
  unsigned connections = 1000;
  unsigned connections_per_ip = 20;
  unsigned line_length = 4096;          // longer command lines: 500 5.5.6
  Seconds command_timeout{300};         // RFC 5321 §4.5.3.2.7
  Seconds stress_timeout{10};           // every protocol's, while its pool is ≥ 80% full (Postfix's stress mode)
  Seconds pop3_idle_timeout{600};       // RFC 1939 §3: at least 10 minutes
  Seconds imap_idle_timeout{1800};      // RFC 3501 §5.4: at least 30 minutes (also bounds IDLE)
  unsigned errors = 10;                 // bad commands before 421
  unsigned received_headers = 50;       // loop detection (RFC 5321 §6.3)
};

struct Auth {
  // Allow USER/PASS, AUTH PLAIN/LOGIN without TLS (POP3, IMAP, submission).
  // Off by default: passwords must not cross the network in clear text.
  bool allow_plaintext = false;
  Seconds failure_delay{2};  // slow down failed logins
  // Lockout per source address across POP3, IMAP and submission:
  // failure_limit failed logins within failure_window lock the source out
  // for `lockout` (0: never).
  unsigned failure_limit = 10;
  Seconds failure_window{600};
  Seconds lockout{600};
  // Submitted mail's Received field names the client's address and HELO
  // only when true (off: a user's home address stays private).
  bool reveal_client = false;
};

struct Srs {
  std::string domain;
  std::filesystem::path secret_file;
};

struct Domain {
  std::string name;  // lowercased
  std::string dkim_selector;
  std::filesystem::path dkim_key;
  bool arc = true;   // seal forwarded mail (off per domain)
  // Sign (DKIM) and seal (ARC) with dkim_key. false: neither, and the key is
  // not needed; true with a key that cannot be read: serve refuses to start.
  bool dkim = true;
  // Inbound DMARC (issue 4): "tag" records the result in
  // Authentication-Results and delivers; "reject" answers 550 5.7.1 at DATA
  // when the author domain's applied policy is p=reject and DMARC fails.
  std::string dmarc_inbound = "tag";
};

// [dmarc]: how the policy record and organizational domain are found.
struct Dmarc {
  // "tree-walk" (DMARCbis §4.10, the default) or "psl" (RFC 7489 §3.2 with
  // the Public Suffix List read from `public_suffix_list`).
  std::string method = "tree-walk";
  std::filesystem::path public_suffix_list = "/usr/share/publicsuffix/public_suffix_list.dat";
};

// A scanner's address ([scan] clamd, rspamd): a Unix socket or a TCP
// address (an IP literal: no DNS lookup at the end of DATA).
struct ScanService {
  std::filesystem::path unix_path;  // "unix:/run/clamav/clamd.ctl"
  Endpoint tcp;                     // "127.0.0.1:3310"; port 0 when unused
  bool configured() const { return !unix_path.empty() || tcp.port != 0; }
  std::string str() const { return unix_path.empty() ? tcp.str() : "unix:" + unix_path.string(); }
};

// [scan] (issue 17 item 1): scanners asked at the end of DATA, before the
// 250 (scan/protocol/verdict.hpp has what each answer means). Neither set:
// no scanning.
struct Scan {
  ScanService clamd;   // ClamAV clamd, INSTREAM
  ScanService rspamd;  // "http://127.0.0.1:11333": rspamd's normal worker, /checkv2
  Seconds timeout{30};  // per scanner, connect to reply
  // A scanner that cannot be asked: false ("tempfail", the default) answers
  // 451 4.7.1 so the sender retries; true ("accept") delivers unscanned.
  bool accept_on_failure = false;
  // What clamd is sent: the whole message ("message", the default), or
  // each attachment decoded ("attachments", rspamd's antivirus default;
  // the rule is mail::mime::find_attachments()).
  enum class ClamdScope { message, attachments };
  ClamdScope clamd_scope = ClamdScope::message;
  bool enabled() const { return clamd.configured() || rspamd.configured(); }
};

struct Mailbox {
  std::string name;
  std::vector<std::string> send_as;
  // Issue 15 item 5: the storage this mailbox may use, over all its
  // folders, in bytes on disk (0: no limit). Kept as Maildir++ quota
  // (mailbox/quota.hpp).
  uint64_t quota = 0;
};

struct AddressRule {
  std::string address;  // "user@domain" lowercased
  std::vector<mail::Target> deliver;
};

// [[forward]] dmarc: one of "rewrite-from", "divert", "unchanged".
bool valid_forward_dmarc(std::string_view mode);

struct Forward {
  std::string to;
  bool hidden = true;
  std::vector<mail::Target> fallback;
  Seconds defer_limit{900};
  bool notify = false;
  std::string dmarc = "rewrite-from";  // "rewrite-from" | "divert" | "unchanged": valid_forward_dmarc()
  // Issue 17: this forward's own source address and EHLO name (empty:
  // [delivery]'s).
  SourceAddress source_address;
  std::string source_name;
  // Issue 17: spam ([scan] rspamd "add header"/"rewrite subject") is kept
  // local by default — not forwarded, delivered to the recipient's
  // mailboxes (or this forward's fallback mailbox) — or, with spam =
  // "forward", forwarded like any other mail (without our X-Spam-* fields).
  bool forward_spam = false;

  bool operator==(const Forward&) const = default;
};

// [[route]] (issue 14): the next hop of mail for matching recipients.
struct NextHop {
  enum class Kind {
    mx,       // "mx": the recipient domain's MX hosts (normal delivery)
    local,    // "local": this server's own mailboxes
    host,     // "host[:port]": that host's A/AAAA addresses, no MX lookup
    address,  // "[IP]:port" (or a bare IP): that address
  };
  Kind kind = Kind::mx;
  std::string host;  // host name (host) or IP literal without brackets (address)
  uint16_t port = 25;
  std::string str() const;  // as written in the configuration's terms
};

// A relay login: the rule's own (`auth`) or one sender's ([[route.account]]).
struct RouteAccount {
  std::string sender;  // lower case; "" for the rule's `auth`
  std::string user;
  std::filesystem::path password_file;  // read at start-up; must not be world-readable
};

// "verify": required, and the certificate must chain to tls_ca_file (or the
// system's trust anchors) and name the next hop.
enum class RouteTls { none, opportunistic, required, verify };

struct Route {
  std::string where;  // "FILE:LINE:COL" of the rule, for warnings and logs
  std::string match;  // lower case: "user@domain", "@domain" or "*"
  NextHop via;
  std::string helo;   // announced to this next hop; "" = hostname
  RouteTls tls = RouteTls::opportunistic;  // at least "required" whenever there is a login
  std::filesystem::path tls_ca_file;       // trust anchors for "verify"; empty: the system's
  std::optional<RouteAccount> auth;        // one account for every sender
  std::vector<RouteAccount> accounts;      // per-sender accounts, checked first
  std::vector<std::string> mechanisms;     // allowed, upper case (default CRAM-MD5, LOGIN, PLAIN)
  // Gateway mode: addresses behind this next hop that anyone may send to
  // (accepted at RCPT, relayed unchanged); lower case. Empty: the rule
  // routes only mail this server sends anyway (forwards, submission).
  std::vector<std::string> recipients;
  // Gateway mode without a list: every address the rule matches is accepted
  // from anyone if the next hop accepts it at RCPT, asked before our 250
  // and the answer cached (delivery/callout_verifier.hpp). Not with "*".
  bool verify_recipients = false;
  std::string copy_to;  // a [[mailbox]] that keeps a copy of what this rule relays; "" none

  // Does the rule match `address` ("local@domain", any case)?
  bool matches(std::string_view address) const;
  // Does this rule catch every address `later` would (so `later` never matches)?
  bool covers(const Route& later) const;
  // The login for mail from `sender` (a per-sender account, else `auth`);
  // null: no AUTH. `sender` must be one a login has proven it may send as
  // (submitted mail); "" for any other mail, which takes `auth`.
  const RouteAccount* account_for(std::string_view sender) const;
  // Every login of the rule: the per-sender accounts, then `auth`.
  std::vector<const RouteAccount*> logins() const;
  // Does the rule send to another host (not "mx", not "local")?
  bool is_relay() const { return via.kind == NextHop::Kind::host || via.kind == NextHop::Kind::address; }
};

struct ConfigError {
  std::string where;    // "FILE:LINE:COL" (or "FILE" when no position applies)
  std::string message;
  std::string str() const { return where + ": " + message; }
};

// A file the configuration names (a key, a certificate, a secret, a list),
// with where it is named, for check-config and serve.
struct ConfiguredFile {
  std::string where;  // "FILE:LINE:COL" of the value
  std::string key;    // "domain.dkim_key", "tls.cert", …
  std::filesystem::path path;  // resolved (relative to the configuration file)
};

struct Config {
  std::filesystem::path source;  // the file read, or "<embedded demo>"
  std::string hostname = "localhost";
  std::filesystem::path data_dir;  // absolute after loading
  // The system user `serve` runs as (issue 13 item 5): started as root it
  // binds its listeners, reads its keys, then drops to this user for good;
  // the operator commands that write into data_dir run as it too. Empty: the
  // user that started it. Whether the user exists is checked at start-up
  // (and by check-config), not here, so a configuration loads anywhere.
  std::string user;
  std::string user_where;  // "FILE:LINE:COL" of the value, for those errors
  std::string log_level = "info";
  std::string log_format = "text";  // "text" or "json" (one JSON object per line)
  // RFC 5321 §4.5.1: the [[mailbox]] that gets postmaster@ (bare, and at
  // every [[domain]]) when no [[address]] says otherwise. Default: the
  // first [[mailbox]]; empty only when there is none.
  std::string postmaster;
  Listen listen;
  Access access;
  Tls tls;
  Dns dns;
  Delivery delivery;
  Limits limits;
  Auth auth;
  Srs srs;
  Dmarc dmarc;
  Scan scan;
  std::vector<Domain> domains;
  std::vector<Mailbox> mailboxes;
  std::vector<AddressRule> addresses;
  std::vector<Forward> forwards;
  std::vector<Route> routes;  // in order: the first that matches wins
  // Every file named by a path value (a domain with dkim = false does not
  // list its key).
  std::vector<ConfiguredFile> files;
  // Mistakes that do not stop the configuration from working (a [[route]]
  // that can never match), with file and line; check-config and serve print them.
  std::vector<ConfigError> warnings;

  // Lookups used by several components.
  const Domain* find_domain(std::string_view name) const;      // case-insensitive
  const Mailbox* find_mailbox(std::string_view name) const;
  const AddressRule* find_address(std::string_view address) const;  // "local@domain", case-insensitive
  const Forward* find_forward(std::string_view to) const;
  // The first [[route]] that matches `address`; null: none (normal delivery).
  const Route* find_route(std::string_view address) const;
  // The [[route]] that sends mail for `address` to another host (a host or
  // an address), if any. The catch-all "*" never takes mail for a local
  // domain: that needs a rule naming its address or domain.
  const Route* relay_route(std::string_view address) const;
  bool is_local_domain(std::string_view domain) const;
  std::filesystem::path spool_dir() const { return data_dir / "spool"; }
  std::filesystem::path mailboxes_dir() const { return data_dir / "mailboxes"; }
  std::filesystem::path mailbox_dir(std::string_view name) const { return mailboxes_dir() / std::string(name); }
  std::filesystem::path users_file() const { return data_dir / "users"; }
  // Per-user forwards (`hikyaku forward set`), merged by the loader
  // (config/user_forwards.hpp).
  std::filesystem::path forwards_file() const { return data_dir / "forwards"; }
};


struct LoadResult {
  std::optional<Config> config;        // set when errors is empty
  std::vector<ConfigError> errors;
};

struct LoadOptions {
  // Merge data_dir/forwards (per-user forwarding, config/user_forwards.hpp)
  // when it exists, before the [[forward]] chains are validated. false:
  // the configuration file alone (what `hikyaku forward` edits against).
  bool user_forwards = true;
  // When set: the forwards file's text, used instead of reading the file
  // (`forward set` checks a new file before writing it; tests).
  std::optional<std::string> user_forwards_text;
};

// Parse and validate a TOML file. Relative paths are relative to the file.
LoadResult load_config(const std::filesystem::path& file, const LoadOptions& options = {});
// Parse TOML text; `name` is used in error positions; `base_dir` resolves
// relative paths.
LoadResult load_config_text(std::string_view text, const std::string& name,
                            const std::filesystem::path& base_dir, const LoadOptions& options = {});
// The configured files that cannot be opened for reading, each as an error
// at the position that names it ("domain.dkim_key: cannot read PATH: No such
// file or directory"). check-config reports them; serve refuses to start on
// a missing signing key. `only_key`: just the files of that key
// ("domain.dkim_key").
std::vector<ConfigError> unreadable_files(const Config& config, std::string_view only_key = {});

// The embedded demo configuration (loopback only, high ports, ./var).
std::string_view demo_config_text();

}  // namespace hikyaku::config

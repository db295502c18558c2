#include "auth/inbound/checker.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "auth/arc/chain.hpp"
#include "auth/dkim/signature.hpp"
#include "auth/dkim/signer.hpp"
#include "base/strings.hpp"
#include "mail/address.hpp"

namespace hikyaku::auth::inbound {
namespace {

// RFC 8601 §2.2: a reason is free text; keep it short and on one line.
std::string one_line(std::string_view s, size_t max = 120) {
  std::string out;
  for (char c : s) {
    if (out.size() >= max) break;
    out += (c == '\r' || c == '\n' || c == '\t' || static_cast<unsigned char>(c) < 0x20) ? ' ' : c;
  }
  return out;
}

}  // namespace

std::vector<common::BodyHashKey> body_hash_keys(const common::ParsedMessage& headers_only,
                                                const dkim::VerifyOptions& options) {
  std::vector<common::BodyHashKey> keys;
  auto add = [&keys](const common::BodyHashKey& k) {
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  };
  auto add_signature = [&add](std::string_view value, dkim::SignatureKind kind) {
    // RFC 6376 §6.1.3: what verify_field() hashes; a field that does not
    // parse is permerror before any hashing.
    auto sig = dkim::parse_signature(value, kind);
    if (sig) add({sig->c.body, dkim::hash_of(sig->a), sig->l});
  };
  // DKIM: dkim::verify() checks the first max_signatures fields, top down.
  auto dkim_fields = headers_only.all("DKIM-Signature");
  for (size_t k = 0; k < dkim_fields.size() && k < options.max_signatures; ++k)
    add_signature(dkim_fields[k]->value, dkim::SignatureKind::dkim);
  // ARC: arc::validate() checks AMSs only of a chain without structural
  // errors, which has at most kMaxInstances sets (RFC 8617 §5.2).
  arc::Chain chain = arc::collect_chain(headers_only);
  if (chain.error.empty())
    for (const auto& set : chain.sets) add_signature(set.ams->value, dkim::SignatureKind::arc_message);
  // Our own signatures (RFC 8463 §3: ed25519-sha256 hashes with sha256 too).
  for (auto type : {crypto::KeyType::rsa, crypto::KeyType::ed25519}) add(dkim::signing_body_hash_key(type));
  return keys;
}

base::Result<common::BodyHashes> body_hashes_of(const mail::Message& message) {
  const common::ParsedMessage parsed = common::parse_message(message.text);
  common::BodyHashes hashes;
  for (const auto& key : body_hash_keys(parsed)) hashes.want(key);
  if (message.body) {
    // The header section (and its empty line) is all of text: the body is
    // the file's range.
    const mail::Message body_only{std::string(), message.body};
    auto st = mail::for_each_piece(body_only, [&](std::string_view piece) {
      hashes.update(piece);
      return base::Status{};
    });
    if (!st) return st.error();
  } else {
    hashes.update(parsed.body);
  }
  hashes.finish();
  return hashes;
}

Verdict check(dns::Resolver& resolver, const Input& input, const Options& options) {
  Verdict v;
  auto ip = dns::IpAddress::parse(input.client_ip);
  spf::Options spf_options;
  spf_options.receiver = options.authserv_id;
  spf_options.now = options.now;

  // SPF. RFC 7208 §2.4: MAIL FROM; a null reverse-path is checked as
  // postmaster@<HELO> (§2.4), which is the HELO identity of §2.3.
  if (!ip) {
    v.spf = {spf::Result::none, {}, "client address unknown"};
  } else if (input.mail_from) {
    v.spf = spf::check_mail_from(resolver, *ip, *input.mail_from, input.helo, spf_options);
  } else {
    v.spf = spf::check_helo(resolver, *ip, input.helo, spf_options);
  }
  if (input.mail_from) {
    v.spf_property = "smtp.mailfrom";
    v.spf_identity = *input.mail_from;
    v.spf_domain = mail::domain_of(*input.mail_from);
    // A quoted local part ("x;dmarc=pass"@evil.test) would make our header
    // a quoted string that a receiver's parser may read as more results:
    // the domain alone then (RFC 8601 §2.7.2 allows it), which is all
    // DMARC's alignment uses.
    if (common::needs_quoting(v.spf_identity)) v.spf_identity = v.spf_domain;
  } else {
    v.spf_property = "smtp.helo";
    v.spf_identity = input.helo;
    v.spf_domain = base::to_lower(input.helo);
  }

  // DKIM (RFC 6376 §6: every signature) and ARC (RFC 8617 §5.2).
  dkim::VerifyOptions verify_options;
  verify_options.now = options.now;
  auto parsed = common::parse_message(input.message);
  parsed.body_hashes = input.body_hashes;
  v.dkim = dkim::verify(parsed, resolver, verify_options);
  v.arc = arc::validate(parsed, resolver, verify_options);

  // DMARC for the author domain. RFC 7489 §6.6.1: without exactly one
  // author there is nothing to evaluate; we report permerror.
  v.author = common::find_author(parsed);
  if (v.author) {
    dmarc::Input in;
    in.from_domain = v.author->domain;
    in.spf = v.spf.result;
    in.spf_domain = v.spf_domain;
    for (const auto& d : v.dkim)
      if (d.status != dkim::Status::none) in.dkim.push_back({d.status == dkim::Status::pass, d.domain});
    dmarc::Options dopt;
    dopt.discovery = options.discovery;
    dopt.psl = options.psl;
    v.dmarc = dmarc::evaluate(resolver, in, dopt);
  } else {
    v.dmarc.result = dmarc::Result::permerror;
    v.dmarc.detail = "not exactly one From mailbox";
  }

  // Authentication-Results (RFC 8601 §2.7).
  v.results.authserv_id = options.authserv_id;
  v.results.add("spf", std::string(spf::to_string(v.spf.result)), {{v.spf_property, v.spf_identity}});
  for (const auto& d : v.dkim) {
    if (d.status == dkim::Status::none) {
      v.results.add("dkim", "none");
      continue;
    }
    std::vector<std::pair<std::string, std::string>> props{{"header.d", d.domain}};
    if (!d.selector.empty()) props.emplace_back("header.s", d.selector);
    if (!d.b_prefix.empty()) props.emplace_back("header.b", d.b_prefix);  // RFC 6008
    std::string reason = d.status == dkim::Status::pass ? std::string() : one_line(d.detail);
    v.results.add("dkim", std::string(dkim::status_name(d.status)), std::move(props), std::move(reason));
  }
  {
    std::vector<std::pair<std::string, std::string>> props;
    if (v.author) props.emplace_back("header.from", v.author->domain);
    // "policy.dmarc" records the author domain's requested policy, which
    // the forwarder needs (DMARC-aware forwarding, issue 4 item 7).
    if (v.dmarc.record) props.emplace_back("policy.dmarc", std::string(dmarc::to_string(v.dmarc.requested)));
    std::string reason;
    if (v.dmarc.result == dmarc::Result::permerror || v.dmarc.result == dmarc::Result::temperror)
      reason = one_line(v.dmarc.detail);
    v.results.add("dmarc", std::string(dmarc::to_string(v.dmarc.result)), std::move(props), std::move(reason));
  }
  {
    std::vector<std::pair<std::string, std::string>> props;
    if (v.arc.status == arc::ChainStatus::pass) {
      props.emplace_back("header.oldest-pass", std::to_string(v.arc.oldest_pass));
      if (!v.arc.domain.empty()) props.emplace_back("header.d", v.arc.domain);
    }
    std::string reason = v.arc.status == arc::ChainStatus::fail ? one_line(v.arc.reason) : std::string();
    v.results.add("arc", std::string(arc::chain_status_name(v.arc.status)), std::move(props), std::move(reason));
  }
  if (ip) {
    v.iprev = check_iprev(resolver, *ip);
    v.results.add("iprev", std::string(to_string(v.iprev->result)), {{"policy.iprev", ip->to_string()}});
  }
  return v;
}

std::string stamp(std::string message, const common::AuthenticationResults& results) {
  // The edits are found on the original, then made in place from the end
  // backwards, so that offsets not yet used stay valid and the message is
  // never copied (only moved within its own buffer, which has room for
  // the field when it came from the SMTP session: DataReader::kHeadroom).
  std::vector<std::pair<size_t, size_t>> removals;  // [start, end) of forged fields
  std::optional<size_t> insert_at;
  {
    const std::string_view view(message);
    auto parsed = common::parse_message(view);
    for (const auto& h : parsed.headers) {
      const size_t start = static_cast<size_t>(h.raw.data() - view.data());
      size_t end = start + h.raw.size();
      if (view.substr(end, 2) == "\r\n") end += 2;
      // RFC 8601 §5: fields claiming our authserv-id from outside are forged.
      if (base::iequals(common::field_name(h), "Authentication-Results") &&
          common::is_own_authentication_results(h.value, results.authserv_id)) {
        removals.emplace_back(start, end);
        continue;
      }
      // After the first field: our Received (RFC 8601 §5 prepends the field
      // "above" the fields of earlier hops; RFC 5321 §4.4 keeps Received first).
      if (!insert_at) insert_at = end;
    }
  }
  const size_t at = insert_at.value_or(0);
  bool inserted = false;
  for (auto it = removals.rbegin(); it != removals.rend(); ++it) {
    // A removal at or after the insertion point goes first: the field is
    // inserted before whatever follows it.
    if (!inserted && it->first < at) {
      message.insert(at, results.field());
      inserted = true;
    }
    message.erase(it->first, it->second - it->first);
  }
  if (!inserted) message.insert(at, results.field());  // no removal lay before it
  return message;
}

std::optional<common::AuthenticationResults> own_results(const common::ParsedMessage& message,
                                                         std::string_view authserv_id) {
  for (const auto* h : message.all("Authentication-Results")) {
    if (!common::is_own_authentication_results(h->value, authserv_id)) continue;
    auto ar = common::parse_authentication_results(h->value);
    if (ar) return ar;
  }
  return std::nullopt;
}

std::string summary(const Verdict& v, std::string_view mail_from, std::string_view client_ip) {
  std::string dkim_summary;
  for (const auto& r : v.dkim) {
    if (!dkim_summary.empty()) dkim_summary += ",";
    dkim_summary += std::string(dkim::status_name(r.status));
    if (!r.domain.empty()) dkim_summary += "(" + r.domain + ")";
  }
  std::string iprev = v.iprev ? std::string(to_string(v.iprev->result)) : "none";
  if (v.iprev && !v.iprev->name.empty()) iprev += "(" + v.iprev->name + ")";
  return fmt::format("from=<{}> client=[{}] spf={} dkim={} dmarc={} (policy={} from={}) arc={} iprev={}", mail_from,
                     client_ip, spf::to_string(v.spf.result), dkim_summary, dmarc::to_string(v.dmarc.result),
                     dmarc::to_string(v.dmarc.applied), v.author ? v.author->domain : std::string("?"),
                     arc::chain_status_name(v.arc.status), iprev);
}

}  // namespace hikyaku::auth::inbound

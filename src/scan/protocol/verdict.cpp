#include "scan/protocol/verdict.hpp"

#include <cstdio>

#include "base/strings.hpp"

namespace hikyaku::scan {
namespace {

std::string fixed2(double d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", d);
  return buf;
}

// Printable ASCII only in our fields (symbol names come from the network).
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s)
    if (c > 0x20 && c < 0x7F && c != ',' && c != '(' && c != ')') out += c;
  return out;
}

mail::Reply tempfail() { return mail::Reply(451, "4.7.1", "Try again later: the message could not be checked now"); }

}  // namespace

std::string spam_fields(const rspamd::Reply& r) {
  const bool spam = r.action != rspamd::Action::no_action;
  std::string status = std::string("X-Spam-Status: ") + (spam ? "Yes" : "No") + ", score=" + fixed2(r.score) +
                       " required=" + fixed2(r.required_score) + " action=\"" +
                       std::string(rspamd::action_label(r)) + "\"";
  // tests=A(1.00),B(2.00) folded (RFC 5322 §2.2.3) before a line passes 76,
  // after a comma.
  size_t line_len = status.size();
  bool first = true;
  for (const auto& [name, score] : r.symbols) {
    const std::string item = (first ? "tests=" : "") + printable(name).substr(0, 64) + "(" + fixed2(score) + ")";
    const std::string sep = first ? " " : ",";
    first = false;
    if (line_len + sep.size() + item.size() > 76) {
      if (sep == ",") status += ",";
      status += "\r\n\t";
      line_len = 1;
    } else {
      status += sep;
      line_len += sep.size();
    }
    status += item;
    line_len += item.size();
  }
  std::string out = status + "\r\n";
  out += "X-Spam-Score: " + fixed2(r.score) + "\r\n";
  if (spam) out += "X-Spam-Flag: YES\r\n";
  return out;
}

std::string strip_spam_fields(std::string text) {
  size_t pos = 0;
  while (pos < text.size() && base::istarts_with(std::string_view(text).substr(pos), "X-Spam-")) {
    // The field and its continuation lines.
    size_t end = pos;
    while (true) {
      const auto lf = text.find('\n', end);
      if (lf == std::string::npos) return text;  // not a header section: leave it
      end = lf + 1;
      if (end >= text.size() || (text[end] != ' ' && text[end] != '\t')) break;
    }
    pos = end;
  }
  if (pos > 0) text.erase(0, pos);
  return text;
}

Decision decide(const Report& report, OnFailure on_failure) {
  Decision d;
  std::string failure;
  // Malware first: whatever rspamd thinks, a virus is refused.
  if (report.clamd_asked) {
    switch (report.clamd.kind) {
      case clamd::Reply::Kind::found:
        d.kind = Decision::Kind::refuse;
        d.refusal = mail::Reply(554, "5.7.0", "Message rejected: it contains malware");
        d.summary = "clamd: " + report.clamd.detail + " FOUND";
        return d;
      case clamd::Reply::Kind::error: failure = "clamd: " + report.clamd.detail; break;
      case clamd::Reply::Kind::clean:
        // The detail of a clean answer says what was sent (clamd_scope =
        // "attachments": "2 attachments", "no attachment: not asked").
        d.summary = report.clamd.detail.empty() ? "clamd: clean" : "clamd: clean (" + report.clamd.detail + ")";
        break;
    }
  }
  if (report.rspamd_asked) {
    if (!report.rspamd) {
      failure += std::string(failure.empty() ? "" : "; ") + "rspamd: " + report.rspamd_error;
    } else {
      const rspamd::Reply& r = *report.rspamd;
      if (!d.summary.empty()) d.summary += "; ";
      d.summary += "rspamd: action=\"" + std::string(rspamd::action_label(r)) + "\" score=" + fixed2(r.score) +
                   "/" + fixed2(r.required_score);
      switch (r.action) {
        case rspamd::Action::reject:
          d.kind = Decision::Kind::refuse;
          d.refusal = mail::Reply(550, "5.7.1", "Message rejected as spam");
          return d;
        case rspamd::Action::soft_reject:
        case rspamd::Action::greylist:
          d.kind = Decision::Kind::refuse;
          d.refusal = tempfail();
          return d;
        // Spam kept here, never lost: "discard" (rspamd's "accept and
        // drop") and "quarantine" land in the local mailboxes' Junk like
        // "add header", and so does an action of the operator's own.
        case rspamd::Action::add_header:
        case rspamd::Action::rewrite_subject:
        case rspamd::Action::discard:
        case rspamd::Action::quarantine:
        case rspamd::Action::custom: d.kind = Decision::Kind::spam; break;
        case rspamd::Action::no_action: break;
      }
      d.fields = spam_fields(r);
    }
  }
  if (!failure.empty()) {
    if (!d.summary.empty()) d.summary += "; ";
    d.summary += failure;
    if (on_failure == OnFailure::tempfail) {
      d.kind = Decision::Kind::refuse;
      d.refusal = tempfail();
      d.fields.clear();
      d.summary += " (on_failure = tempfail)";
    } else {
      d.summary += " (on_failure = accept: delivered unscanned)";
    }
  }
  return d;
}

}  // namespace hikyaku::scan

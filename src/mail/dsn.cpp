#include "mail/dsn.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "mail/header.hpp"

namespace hikyaku::mail {
namespace {

// A reply text that starts with a 3-digit code came from an SMTP server.
bool is_smtp_reply(std::string_view text) {
  return text.size() >= 3 && text[0] >= '2' && text[0] <= '5' && text[1] >= '0' && text[1] <= '9' &&
         text[2] >= '0' && text[2] <= '9' && (text.size() == 3 || text[3] == ' ' || text[3] == '-');
}

// A field line folded at white space so no line exceeds 78 octets where
// possible (RFC 5322 §2.1.1); `line` has no CR/LF (one_line output).
std::string fold(std::string_view line) {
  std::string out;
  size_t col = 0;
  size_t pos = 0;
  while (pos < line.size()) {
    size_t sp = line.find(' ', pos + 1);
    if (sp == std::string_view::npos) sp = line.size();
    std::string_view word = line.substr(pos, sp - pos);  // includes its leading space
    if (col > 0 && col + word.size() > 76 && word.front() == ' ') {
      out += "\r\n";
      col = 0;
    }
    out += word;
    col += word.size();
    pos = sp;
  }
  return out;
}

// The original header section, made safe to embed: US-ASCII only, CRLF
// line ends, no line that could end the MIME part, hidden addresses removed.
std::string safe_headers(std::string_view headers, const std::vector<std::string>& hidden) {
  std::string out;
  out.reserve(headers.size() + 16);
  size_t pos = 0;
  while (pos < headers.size()) {
    std::string_view line = next_line(headers, pos);
    std::string clean;
    if (line.starts_with("--")) clean += ' ';  // never a boundary line
    for (unsigned char c : line) {
      if (c == '\t' || (c >= 0x20 && c < 0x7f)) clean += static_cast<char>(c);
      else clean += '?';
    }
    if (clean.size() > 990) clean.resize(990);
    out += clean;
    out += "\r\n";
  }
  return redact(std::move(out), hidden);
}

}  // namespace

std::string build_dsn(const DsnInput& in) {
  const auto& hidden = in.hidden;
  auto clean = [&](std::string_view s, size_t max = 400) { return one_line(redact(std::string(s), hidden), max); };

  // The boundary cannot occur in the parts: every line we embed is either
  // ours or prefixed so it cannot start with "--" (safe_headers).
  std::string boundary = "hikyaku-dsn-" + one_line(in.boundary_seed, 60);
  for (char& c : boundary)
    if (c == ' ' || c == '"') c = '-';

  const std::string date = rfc5322_date(in.now);
  const std::string mta = one_line(in.reporting_mta, 200);
  std::string m;
  m += "From: Mail Delivery System <MAILER-DAEMON@" + mta + ">\r\n";
  m += "To: <" + clean(in.to, 300) + ">\r\n";
  m += "Subject: Undelivered Mail Returned to Sender\r\n";
  m += "Date: " + date + "\r\n";
  m += "Message-ID: <" + one_line(in.boundary_seed, 60) + ".dsn@" + mta + ">\r\n";
  m += "Auto-Submitted: auto-replied\r\n";  // RFC 3834 §5
  m += "MIME-Version: 1.0\r\n";
  // RFC 3464 §2 / RFC 3462 §2: multipart/report, report-type=delivery-status.
  m += "Content-Type: multipart/report; report-type=delivery-status;\r\n boundary=\"" + boundary + "\"\r\n";
  m += "\r\n";
  m += "This is a MIME-encapsulated message.\r\n\r\n";

  // Part 1: for people.
  m += "--" + boundary + "\r\n";
  m += "Content-Type: text/plain; charset=us-ascii\r\n";
  m += "Content-Description: Notification\r\n\r\n";
  m += "This is the mail system at host " + mta + ".\r\n\r\n";
  m += "Your message could not be delivered to one or more recipients.\r\n\r\n";
  for (const auto& r : in.recipients) {
    std::string line = "<";
    line += clean(r.final_recipient, 300);
    line += ">: ";
    line += clean(r.diagnostic, 700);
    m += fold(line) + "\r\n";
    if (r.expired) m += "  (gave up after retrying for the maximum time)\r\n";
  }
  m += "\r\n";

  // Part 2: RFC 3464 §2.2 per-message fields, §2.3 per-recipient fields.
  m += "--" + boundary + "\r\n";
  m += "Content-Type: message/delivery-status\r\n\r\n";
  m += "Reporting-MTA: dns; " + mta + "\r\n";  // RFC 3464 §2.2.2
  m += "X-Hikyaku-Queue-ID: " + one_line(in.queue_id, 40) + "\r\n";
  if (in.arrival.time_since_epoch().count() != 0) m += "Arrival-Date: " + rfc5322_date(in.arrival) + "\r\n";  // §2.2.5
  for (const auto& r : in.recipients) {
    m += "\r\n";
    // RFC 3464 §2.3.2: the recipient as we received it — the original
    // recipient, never the (possibly hidden) forward address.
    m += "Final-Recipient: rfc822; " + clean(r.final_recipient, 300) + "\r\n";
    m += "Action: failed\r\n";  // RFC 3464 §2.3.3
    std::string status = one_line(r.status, 20);
    if (status.empty() || (status[0] != '4' && status[0] != '5')) status = "5.0.0";
    if (status[0] == '4') status[0] = '5';  // §2.3.4: "failed" carries a permanent class
    m += "Status: " + status + "\r\n";
    // RFC 3464 §2.3.6: diagnostic-type smtp for an SMTP reply; our own
    // description (connection failures, timeouts) is typed X-Hikyaku.
    std::string diag = clean(r.diagnostic, 700);
    m += fold(std::string("Diagnostic-Code: ") + (is_smtp_reply(diag) ? "smtp; " : "X-Hikyaku; ") + diag) + "\r\n";
    if (r.last_attempt.time_since_epoch().count() != 0)
      m += "Last-Attempt-Date: " + rfc5322_date(r.last_attempt) + "\r\n";  // §2.3.7
  }
  m += "\r\n";

  // Part 3: the original header section (RFC 3462 §2: text/rfc822-headers).
  m += "--" + boundary + "\r\n";
  m += "Content-Type: text/rfc822-headers\r\n";
  m += "Content-Description: Undelivered Message Headers\r\n\r\n";
  m += safe_headers(in.original_headers, hidden);
  m += "\r\n--" + boundary + "--\r\n";
  return m;
}

}  // namespace hikyaku::mail

#include "history/trace.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <iterator>

#include "history/sqlite.hpp"

namespace hikyaku::history {

namespace {

std::string when(TimePoint t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
  return fmt::format("{:%Y-%m-%d %H:%M:%S}.{:03d}Z", std::chrono::floor<std::chrono::seconds>(t), ms);
}

// Redacted addresses are already "<hidden>".
std::string angle(const std::string& address) { return address == "<hidden>" ? address : "<" + address + ">"; }

std::string received_text(Statement& m) {
  // queue_id, time, origin, sender, client, recipients, from_field, subject, checks
  std::string recipients;
  std::string all = m.text(5);
  for (size_t pos = 0; pos <= all.size();) {
    size_t end = all.find('\n', pos);
    if (end == std::string::npos) end = all.size();
    if (end > pos) recipients += (recipients.empty() ? "" : ", ") + angle(all.substr(pos, end - pos));
    pos = end + 1;
  }
  std::string text = fmt::format("{} from {}", m.text(2), angle(m.text(3)));
  if (!m.text(4).empty()) text += ", " + m.text(4);
  text += ", to " + recipients;
  if (!m.text(6).empty()) text += "\n  From: " + m.text(6);
  if (!m.text(7).empty()) text += "\n  Subject: " + m.text(7);
  if (!m.text(8).empty()) text += "\n  checks: " + m.text(8);
  return text;
}

std::string event_text(Statement& e) {
  // time, kind, recipient, target, result, reply, seconds, retry, next, tls
  const std::string kind = e.text(1);
  if (kind != "attempt") return e.text(5).empty() ? kind : kind + ": " + e.text(5);
  std::string text = fmt::format("{} via {}: {}", angle(e.text(2)), e.text(3), e.text(4));
  if (e.real(6) >= 0) text += fmt::format(" in {:.3f} s", e.real(6));
  if (e.integer(9) != 0) text += " over TLS";
  if (!e.text(5).empty()) text += " (" + e.text(5) + ")";
  if (e.integer(7) != 0) text += ", next attempt " + when(from_millis(e.integer(7)));
  if (!e.text(8).empty()) text += ", diverted to " + e.text(8);
  return text;
}

}  // namespace

base::Result<std::vector<Timeline>> trace(const std::filesystem::path& file, std::string_view query) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec))
    return base::make_error(file.string() + ": no history yet (the server writes it once it has taken mail)");
  auto db = Database::open(file, /*read_only=*/true);
  if (!db) return db.error();

  // The queue ids, oldest first.
  std::vector<std::string> ids;
  const bool address = query.find('@') != std::string_view::npos || query == "<>";
  if (address) {
    std::string a(query);
    if (a == "<>") a.clear();
    else if (a.size() >= 2 && a.front() == '<' && a.back() == '>') a = a.substr(1, a.size() - 2);
    Statement s(*db,
                "SELECT queue_id FROM (SELECT queue_id, time FROM messages WHERE sender = ?1 COLLATE NOCASE "
                "OR instr(char(10) || lower(recipients) || char(10), char(10) || lower(?1) || char(10)) > 0 "
                "UNION SELECT queue_id, min(time) FROM events WHERE recipient = ?1 COLLATE NOCASE GROUP BY queue_id) "
                "GROUP BY queue_id ORDER BY min(time) DESC LIMIT ?2");
    s.bind(1, a).bind(2, static_cast<int64_t>(kMaxMessages));
    while (s.step()) ids.push_back(s.text(0));
    if (auto st = s.status(); !st) return st.error();
    std::reverse(ids.begin(), ids.end());
  } else {
    ids.emplace_back(query);
  }

  std::vector<Timeline> out;
  Statement message(*db,
                    "SELECT queue_id, time, origin, sender, client, recipients, from_field, subject, checks "
                    "FROM messages WHERE queue_id = ?1");
  Statement events(*db,
                   "SELECT time, kind, recipient, target, result, reply, seconds, retry, next, tls FROM events "
                   "WHERE queue_id = ?1 ORDER BY time, id");
  for (const auto& id : ids) {
    Timeline t{id, {}};
    message.bind(1, id);
    while (message.step()) t.steps.push_back(Step{from_millis(message.integer(1)), received_text(message)});
    events.bind(1, id);
    while (events.step()) t.steps.push_back(Step{from_millis(events.integer(0)), event_text(events)});
    if (auto st = message.status(); !st) return st.error();
    if (auto st = events.status(); !st) return st.error();
    // The received row carries the arrival time, before every attempt.
    std::stable_sort(t.steps.begin(), t.steps.end(), [](const Step& a, const Step& b) { return a.time < b.time; });
    if (!t.steps.empty()) out.push_back(std::move(t));
  }
  return out;
}

std::string format(const std::vector<Timeline>& timelines) {
  std::string out;
  for (const auto& t : timelines) {
    if (!out.empty()) out += "\n";
    out += t.queue_id + "\n";
    for (const auto& s : t.steps) {
      std::string text = s.text;
      // Continuation lines line up under the text.
      std::string indented;
      for (char c : text) {
        indented += c;
        if (c == '\n') indented += std::string(28, ' ');
      }
      out += "  " + when(s.time) + "  " + indented + "\n";
    }
  }
  return out;
}

}  // namespace hikyaku::history

#include "imap/protocol/engine.hpp"

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <map>
#include <utility>

#include "base/strings.hpp"
#include "imap/protocol/message.hpp"
#include "imap/protocol/mutf7.hpp"
#include "imap/protocol/response.hpp"
#include "imap/protocol/thread.hpp"
#include "sasl/plain.hpp"

namespace hikyaku::imap::protocol {
namespace {

using base::iequals;

constexpr std::string_view kCrlf = "\r\n";

constexpr size_t kMaxFolderName = 200;  // octets of the wire name
constexpr size_t kMaxFolderLevels = 16;
// RFC 3501 §7.1.5 BYE text when the selected folder's UIDVALIDITY changed.
constexpr std::string_view kValidityLost = "the selected folder's UIDVALIDITY changed: select it again";

// "INBOX" (any case) as the name or its first level, in capitals: the
// name INBOX is case-insensitive (RFC 3501 §5.1), every other name is not.
std::string with_inbox_in_capitals(std::string_view name) {
  std::string out(name);
  if (out.size() >= 5 && iequals(out.substr(0, 5), "INBOX") && (out.size() == 5 || out[5] == '/')) {
    for (size_t i = 0; i < 5; ++i) out[i] = base::ascii_upper(out[i]);
  }
  return out;
}

// A LIST pattern with each run of wildcards made one ("**" and "*%" are
// "*", "%%" is "%"); nullopt when it holds more literal characters than a
// folder name can (it matches nothing). Keeps matching polynomial and small.
std::optional<std::string> simplified_pattern(std::string_view pattern) {
  std::string out;
  size_t literals = 0;
  for (char c : pattern) {
    bool wild = c == '*' || c == '%';
    if (wild && !out.empty() && (out.back() == '*' || out.back() == '%')) {
      if (c == '*') out.back() = '*';
      continue;
    }
    if (!wild && ++literals > kMaxFolderName) return std::nullopt;
    out += c;
  }
  return out;
}

// RFC 3501 §6.3.8: "*" matches anything, "%" anything but the delimiter.
// Dynamic programming over (pattern, name) positions: O(|pattern| × |name|),
// never the backtracking blow-up a pattern of many wildcards would cause.
bool wildcard_match(std::string_view pattern, std::string_view name) {
  std::vector<char> reached(name.size() + 1, 0);  // pattern so far matches name[0, j)
  std::vector<char> next(name.size() + 1, 0);
  reached[0] = 1;
  for (char p : pattern) {
    if (p == '*' || p == '%') {
      bool any = false;
      for (size_t j = 0; j <= name.size(); ++j) {
        if (p == '%' && j > 0 && name[j - 1] == '/') any = false;  // "%" does not cross a level
        any = any || reached[j];
        next[j] = any;
      }
    } else {
      next[0] = 0;
      for (size_t j = 0; j < name.size(); ++j) next[j + 1] = reached[j] && name[j] == p;
    }
    reached.swap(next);
  }
  return reached[name.size()] != 0;
}

// The parent names of "a/b/c": "a", "a/b".
std::vector<std::string> parents_of(const std::string& name) {
  std::vector<std::string> out;
  for (size_t i = name.find('/'); i != std::string::npos; i = name.find('/', i + 1)) out.push_back(name.substr(0, i));
  return out;
}

std::string section_label(const Section& s) {
  std::string out;
  for (size_t i = 0; i < s.part.size(); ++i) {
    if (i) out += '.';
    out += std::to_string(s.part[i]);
  }
  auto add = [&](const char* word) {
    if (!out.empty()) out += '.';
    out += word;
  };
  switch (s.text) {
    case Section::Text::none: break;
    case Section::Text::header: add("HEADER"); break;
    case Section::Text::text: add("TEXT"); break;
    case Section::Text::mime: add("MIME"); break;
    case Section::Text::header_fields:
    case Section::Text::header_fields_not: {
      add(s.text == Section::Text::header_fields ? "HEADER.FIELDS" : "HEADER.FIELDS.NOT");
      out += " (";
      for (size_t i = 0; i < s.fields.size(); ++i) {
        if (i) out += ' ';
        // As the client wrote it: an atom stays an atom (clients match the label).
        bool atom = !s.fields[i].empty();
        for (char ch : s.fields[i]) {
          auto u = static_cast<unsigned char>(ch);
          if (u <= 0x20 || u >= 0x7f || std::string_view("(){%*\"\\]").find(ch) != std::string_view::npos) atom = false;
        }
        out += atom ? s.fields[i] : quote(s.fields[i]);
      }
      out += ')';
      break;
    }
  }
  return out;
}

Days day_of(int64_t unix_seconds) {
  int64_t d = unix_seconds / 86400;
  if (unix_seconds < 0 && unix_seconds % 86400 != 0) --d;
  return d;
}

// Ascending, disjoint ranges of numbers [first, last].
using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;

// Appends [first, last] (above every range in `ranges`), joined to the last
// range when the two touch.
void add_range(Ranges& ranges, uint32_t first, uint32_t last) {
  if (!ranges.empty() && ranges.back().second + 1 == first) {
    ranges.back().second = last;
  } else {
    ranges.emplace_back(first, last);
  }
}

// "1:3,5" for the ranges {1, 3}, {5, 5}.
std::string ranges_text(const Ranges& ranges) {
  std::string set;
  for (const auto& [first, last] : ranges) {
    if (!set.empty()) set += ',';
    set += std::to_string(first);
    if (last > first) set += ":" + std::to_string(last);
  }
  return set;
}

// The numbers of `set` within 1:max ("*" is max), as sorted, merged ranges.
Ranges clamped_ranges(const SequenceSet& set, uint32_t max) {
  Ranges given;
  for (const auto& r : set.ranges) {
    uint32_t first = r.first == 0 ? max : r.first;
    uint32_t last = r.last == 0 ? max : r.last;
    if (first > last) std::swap(first, last);
    if (first == 0 || first > max) continue;
    given.emplace_back(first, std::min(last, max));
  }
  std::sort(given.begin(), given.end());
  Ranges out;
  for (const auto& [first, last] : given) {
    if (!out.empty() && uint64_t{first} <= uint64_t{out.back().second} + 1) {
      out.back().second = std::max(out.back().second, last);
    } else {
      out.emplace_back(first, last);
    }
  }
  return out;
}

// The numbers in the order given as a sequence-set: runs of consecutive
// numbers going up as ranges ("1:3,5"), every other number alone. For
// ESORT's ALL (RFC 5267 §3.2, sort order) no range then depends on reading
// "5:3" as 5, 4, 3 (RFC 3501 §9 makes it 3, 4, 5).
std::string sequence_set_text(const std::vector<uint32_t>& numbers) {
  Ranges ranges;
  for (uint32_t n : numbers) add_range(ranges, n, n);
  return ranges_text(ranges);
}

// RFC 4469 §6 url-resp-text (1*TEXT-CHAR without "]"): the URL as sent,
// without what would break the response code, bounded.
std::string url_resp_text(std::string_view url) {
  std::string out;
  for (char c : url.substr(0, 200)) {
    const auto u = static_cast<unsigned char>(c);
    if (u > 0x20 && u < 0x7f && c != ']') out += c;
  }
  return out.empty() ? "-" : out;
}

// Does the search's result depend on where messages are, not only on what
// they are: a sequence set, or "*" in a UID set? Then an expunge or a new
// message can change it (RFC 5267 §4.3 UPDATE tests every message again).
bool uses_positions(const SearchKey& key) {
  if (key.kind == SearchKey::Kind::sequence) return true;
  if (key.kind == SearchKey::Kind::uid &&
      std::any_of(key.set.ranges.begin(), key.set.ranges.end(),
                  [](const SequenceSet::Range& r) { return r.first == 0 || r.last == 0; }))
    return true;
  return std::any_of(key.children.begin(), key.children.end(), uses_positions);
}

// Does the search use the MODSEQ key (RFC 7162 §3.1.5, CONDSTORE-enabling)?
bool uses_modseq(const SearchKey& key) {
  if (key.kind == SearchKey::Kind::modseq) return true;
  return std::any_of(key.children.begin(), key.children.end(), uses_modseq);
}

// RFC 5256 §2.2: the sent date (the Date: field, in UTC seconds), or the
// INTERNALDATE when the field is missing or cannot be parsed.
int64_t sent_date(std::string_view header, int64_t internal_date) {
  auto date = header_value(header, "Date");
  auto sent = date ? parse_rfc5322_date_time(*date) : std::nullopt;
  return sent ? *sent : internal_date;
}

// The charsets SEARCH, SORT and THREAD take (RFC 3501 §6.4.4, RFC 5256 §3):
// keys are compared on UTF-8, which US-ASCII is part of.
bool known_charset(std::string_view charset) { return charset == "US-ASCII" || charset == "UTF-8"; }
constexpr std::string_view kBadCharset = "[BADCHARSET (US-ASCII UTF-8)] unsupported charset";
constexpr const char* kTagReuse = "Tag reuse: an updating search has this tag (RFC 5267 4.3)";

// "* SEARCH" / "* SORT" (RFC 3501 §7.2.5, RFC 5256 §4): the numbers, and
// (RFC 7162 §3.1.5-6) the highest modseq of them when the search asked for
// MODSEQ, nothing when nothing matched.
std::string numbers_response(std::string_view name, const std::vector<uint32_t>& hits,
                             const std::vector<uint64_t>& modseqs) {
  std::string out = "* " + std::string(name);
  for (uint32_t n : hits) out += " " + std::to_string(n);
  if (!modseqs.empty()) out += " (MODSEQ " + std::to_string(*std::max_element(modseqs.begin(), modseqs.end())) + ")";
  return out + "\r\n";
}

}  // namespace

Engine::Engine(Options options) : options_(options) {}

std::string Engine::capabilities() const {
  std::string caps =
      "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS ESEARCH CHILDREN LIST-EXTENDED "
      "LIST-STATUS SPECIAL-USE CREATE-SPECIAL-USE MOVE QUOTA QUOTA=RES-STORAGE UTF8=ACCEPT CONDSTORE QRESYNC "
      "SORT SORT=DISPLAY ESORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES BINARY MULTIAPPEND CATENATE "
      "CONTEXT=SEARCH CONTEXT=SORT";
  if (state_ == State::not_authenticated) {
    // RFC 3501 §6.2.1: STARTTLS before login only; RFC 3501 §6.2.3 and
    // RFC 2595 §3.1: LOGINDISABLED when LOGIN would be refused.
    if (options_.tls_available && !options_.tls_active) caps += " STARTTLS";
    if (plaintext_login_allowed()) {
      caps += " AUTH=PLAIN";
    } else {
      caps += " LOGINDISABLED";
    }
  } else if (!compressing_) {
    caps += " COMPRESS=DEFLATE";  // RFC 4978: after login
  }
  return caps;
}

std::string Engine::greeting() const {
  // RFC 3501 §7.1.1: the greeting may carry the capabilities (saves a round trip).
  return "* OK [CAPABILITY " + capabilities() + "] hikyaku IMAP4rev1 ready\r\n";
}

Action Engine::tagged(const std::string& tag, std::string_view status, std::string_view text, std::string untagged) {
  Action a;
  a.reply = std::move(untagged);
  a.reply += tag;
  a.reply += ' ';
  a.reply += status;
  a.reply += ' ';
  a.reply += text;
  a.reply += kCrlf;
  return a;
}

Action Engine::bad(const std::string& tag, const std::string& text) {
  ++errors_;
  if (errors_ >= options_.max_errors) {
    state_ = State::logout;
    Action a = tagged(tag, "BAD", text);
    a.reply = "* BYE too many errors, closing connection\r\n" + a.reply;
    a.kind = Action::Kind::close;
    return a;
  }
  return tagged(tag, "BAD", text);
}

Action Engine::on_framing_error(Framer::Status status, std::string_view partial) {
  std::string tag = tag_of(partial);
  if (status == Framer::Status::too_large) {
    // RFC 7888 §4 / RFC 3501 §7.1.3: refuse a literal we will not take.
    if (base::istarts_with(partial.substr(std::min(partial.size(), tag.size() + 1)), "APPEND")) {
      return tagged(tag, "NO", "[TOOBIG] message too large");
    }
    return bad(tag, "literal too large");
  }
  return bad(tag, "command line too long");
}

Action Engine::on_input(std::string_view text) {
  HIKYAKU_CHECK(!fetch_.has_value());  // the caller resumes a FETCH to its end first
  if (state_ == State::logout) {
    Action a;
    a.kind = Action::Kind::close;
    return a;
  }
  if (idle_tag_) {
    // RFC 2177 §3: the client ends IDLE with "DONE".
    std::string tag = std::move(*idle_tag_);
    idle_tag_.reset();
    std::string updates;
    if (state_ == State::selected && selection_lost()) return folder_gone();
    if (state_ == State::selected) sync(true, updates);
    if (!iequals(base::trim(text), "DONE")) {
      Action a = bad(tag, "expected DONE");
      a.reply = updates + a.reply;
      return end_if_lost(std::move(a));
    }
    return end_if_lost(tagged(tag, "OK", "IDLE terminated", std::move(updates)));
  }
  if (sasl_waiting_) return sasl_response(text);
  ParseResult parsed = parse_command(text);
  if (!parsed.command) return bad(parsed.tag, parsed.error);
  return end_if_lost(dispatch(*parsed.command));
}

Action Engine::end_if_lost(Action a) {
  if (state_ != State::selected || !validity_lost_ || a.kind != Action::Kind::none) return a;
  // The BYE goes just before the tagged completion, as for LOGOUT: a
  // client sees it when its command completes.
  Action bye = folder_gone();
  const size_t end = a.reply.size() >= 2 ? a.reply.size() - 2 : 0;
  const size_t tagged = a.reply.rfind(kCrlf, end == 0 ? 0 : end - 1);
  const size_t at = tagged == std::string::npos ? 0 : tagged + kCrlf.size();
  bye.reply = a.reply.substr(0, at) + bye.reply + a.reply.substr(at);
  return bye;
}

Action Engine::authenticate(const std::string& tag, std::string user, std::string password,
                            std::string mechanism, bool refused) {
  Action a;
  a.kind = Action::Kind::authenticate;
  a.user = std::move(user);
  a.password = std::move(password);
  a.mechanism = std::move(mechanism);
  a.refused = refused;
  pending_tag_ = tag;
  return a;
}

Action Engine::sasl_response(std::string_view line) {
  sasl_waiting_ = false;
  std::string tag = std::move(*pending_tag_);
  pending_tag_.reset();
  // RFC 3501 §6.2.2: "*" cancels the exchange with a tagged BAD.
  if (sasl::is_cancel(line)) return tagged(tag, "BAD", "AUTHENTICATE cancelled");
  auto creds = sasl::decode_plain(line);
  if (!creds) return bad(tag, "invalid SASL PLAIN response");
  bool refused = !creds->authzid.empty() && creds->authzid != creds->authcid;
  return authenticate(tag, std::move(creds->authcid), std::move(creds->password), "PLAIN", refused);
}

void Engine::tls_started() { options_.tls_active = true; }

Action Engine::login_result(LoginOutcome outcome, std::unique_ptr<MailAccount> account) {
  HIKYAKU_CHECK(pending_tag_.has_value());
  std::string tag = std::move(*pending_tag_);
  pending_tag_.reset();
  switch (outcome) {
    case LoginOutcome::ok:
      HIKYAKU_CHECK(account != nullptr);
      account_ = std::move(account);
      state_ = State::authenticated;
      return tagged(tag, "OK", "[CAPABILITY " + capabilities() + "] logged in");
    case LoginOutcome::unavailable:
      return tagged(tag, "NO", "[UNAVAILABLE] mailbox unavailable, try again later");
    case LoginOutcome::bad_credentials:
      break;
  }
  ++auth_failures_;
  Action a = tagged(tag, "NO", "[AUTHENTICATIONFAILED] authentication failed");
  if (auth_failures_ >= options_.max_auth_failures) {
    state_ = State::logout;
    a.reply += "* BYE too many authentication failures\r\n";
    a.kind = Action::Kind::close;
  }
  return a;
}

std::string Engine::idle_poll() {
  std::string out;
  if (state_ == State::selected) sync(true, out);
  // The client learns it now, and the session ends (state logout).
  if (state_ == State::selected && validity_lost_) out += folder_gone().reply;
  return out;
}

std::string Engine::flags_list() const {
  std::string out = "(\\Answered \\Flagged \\Deleted \\Seen \\Draft";
  for (const auto& k : known_keywords_) out += " " + k;
  return out + ")";
}

void Engine::learn(const Keywords& keywords, std::string& out) {
  bool grew = false;
  for (const auto& k : keywords) grew |= add_keyword(known_keywords_, k);
  if (grew && state_ == State::selected) out += "* FLAGS " + flags_list() + "\r\n";
}

std::string Engine::flags_fetch(size_t index, bool with_uid, bool with_flags) const {
  const auto& m = view_[index].msg;
  std::string items;
  auto item = [&](const std::string& s) {
    if (!items.empty()) items += ' ';
    items += s;
  };
  if (with_uid) item("UID " + std::to_string(m.uid));
  if (with_flags) item("FLAGS " + flag_list(m.flags, m.recent, m.keywords));
  if (condstore_) item("MODSEQ (" + std::to_string(m.modseq) + ")");  // RFC 7162 §3.1.4
  return "* " + std::to_string(index + 1) + " FETCH (" + items + ")\r\n";
}

std::string Engine::enable_condstore() {
  if (condstore_) return "";
  condstore_ = true;
  // RFC 7162 §3.1: the first enabling command with a mailbox selected
  // reports its HIGHESTMODSEQ (SELECT reports it anyway).
  if (state_ != State::selected || highest_modseq_ == 0) return "";
  return "* OK [HIGHESTMODSEQ " + std::to_string(highest_modseq_) + "] Highest\r\n";
}

void Engine::leave_selected() {
  search_updates_.clear();  // RFC 5267 §4.3: updates end with the mailbox
  changed_uids_.clear();
  known_keywords_.clear();
  view_.clear();
  read_only_ = false;
  highest_modseq_ = 0;
  reported_recent_ = 0;
  store_.reset();
  selected_.clear();
  state_ = State::authenticated;
}

std::string Engine::wire_name(std::string_view name) const {
  std::optional<std::string> utf8;
  if (utf8_) utf8 = mutf7_to_utf8(name);  // a folder's name is valid modified UTF-7
  std::string_view out = utf8 ? std::string_view(*utf8) : name;
  bool atom = !out.empty();
  for (char ch : out) {
    auto u = static_cast<unsigned char>(ch);
    if (u <= 0x20 || u >= 0x7f || std::string_view("(){%*\"\\]").find(ch) != std::string_view::npos) atom = false;
  }
  return atom ? std::string(out) : quote(out, utf8_);
}

std::optional<std::string> Engine::folder_name(std::string_view given, std::string& why) const {
  std::optional<std::string> converted;
  if (utf8_) {
    // RFC 6855 §3: after ENABLE UTF8=ACCEPT names come in UTF-8; kept (and
    // checked below) in modified UTF-7, so a folder has one name on disk.
    converted = utf8_to_mutf7(given);
    if (!converted) {
      why = "the folder name is not UTF-8 (UTF8=ACCEPT is enabled)";
      return std::nullopt;
    }
    given = *converted;
  }
  std::string name = with_inbox_in_capitals(given);
  if (name.empty()) {
    why = "the folder name is empty";
  } else if (name.size() > kMaxFolderName) {
    why = "the folder name is too long";
  } else if (name.find_first_of("*%") != std::string::npos) {
    why = "a folder name cannot hold the wildcards * or %";
  } else if (!valid_mutf7(name)) {
    // RFC 3501 §5.1.3: names travel in modified UTF-7.
    why = "the folder name is not modified UTF-7 (RFC 3501 §5.1.3)";
  } else if (name.front() == '/' || name.back() == '/' || name.find("//") != std::string::npos) {
    why = "a level of the folder name is empty";
  } else if (parents_of(name).size() >= kMaxFolderLevels) {
    why = "the folder name has too many levels";
  } else {
    return name;
  }
  return std::nullopt;
}

base::Result<std::shared_ptr<MailStore>> Engine::folder(const std::string& name) {
  if (state_ == State::selected && name == selected_) return store_;
  return account_->open(name);
}

std::optional<std::string> Engine::resolve_url(std::string_view text) {
  auto url = parse_imap_url(text);
  if (!url) return std::nullopt;
  std::string why;
  auto name = folder_name(url->mailbox, why);
  if (!name) return std::nullopt;
  auto store = folder(*name);
  if (!store) return std::nullopt;
  auto snap = (*store)->scan(false);
  if (!snap) return std::nullopt;
  // RFC 5092 §6: a UIDVALIDITY that is not the folder's names nothing.
  if (url->uidvalidity && *url->uidvalidity != snap->uidvalidity) return std::nullopt;
  auto found = std::find_if(snap->messages.begin(), snap->messages.end(),
                            [&](const StoredMessage& m) { return m.uid == url->uid; });
  if (found == snap->messages.end()) return std::nullopt;
  auto content = (*store)->read(*found);
  if (!content || !*content) return std::nullopt;
  auto section = section_text(**content, url->section);
  if (!section) return std::nullopt;
  if (url->partial_offset) {
    // RFC 5092 §5: as FETCH BODY[]<partial>; beyond the end is empty.
    const uint64_t offset = std::min<uint64_t>(*url->partial_offset, section->size());
    *section = section->substr(offset, url->partial_length.value_or(std::string::npos));
  }
  return section;
}

std::shared_ptr<MailStore> Engine::target_folder(const Command& c, Action& refusal) {
  std::string why;
  auto name = folder_name(c.mailbox, why);
  if (!name) {
    refusal = tagged(c.tag, "NO", "[TRYCREATE] " + why);
    return nullptr;
  }
  auto store = folder(*name);
  if (store) return *store;
  // RFC 3501 §6.3.11, §6.4.7: TRYCREATE when the folder does not exist.
  refusal = store.error().error_number == ENOENT ? tagged(c.tag, "NO", "[TRYCREATE] no such folder")
                                                 : refused(c.tag, store.error());
  return nullptr;
}

Action Engine::refused(const std::string& tag, const base::Error& error, std::string untagged) {
  switch (error.error_number) {
    case ENOENT: return tagged(tag, "NO", "[NONEXISTENT] no such folder", std::move(untagged));
    case EEXIST: return tagged(tag, "NO", "[ALREADYEXISTS] the folder exists already", std::move(untagged));
    case EINVAL: return tagged(tag, "NO", "[CANNOT] " + error.message, std::move(untagged));
    default: return server_bug(tag, "the folders are unavailable", error, std::move(untagged));
  }
}

Action Engine::server_bug(const std::string& tag, const std::string& text, const base::Error& error,
                          std::string untagged) {
  Action a = tagged(tag, "NO", "[SERVERBUG] " + text, std::move(untagged));
  a.problem = error.message;
  return a;
}

Action Engine::folder_gone() {
  // Another session (or program) deleted or renamed the selected folder:
  // its messages and UIDs cannot be reached any more. RFC 3501 has no
  // response for it; like Dovecot, the session ends with an untagged BYE
  // (§7.1.5) and the client reconnects and lists the folders again.
  // The same when its UIDVALIDITY changed under the session: the client
  // selects it again and learns the new one.
  const bool validity = validity_lost_;
  state_ = State::logout;
  Action a;
  a.reply = validity ? "* BYE " + std::string(kValidityLost) + "\r\n"
                     : "* BYE the selected folder was deleted or renamed by another session\r\n";
  a.kind = Action::Kind::close;
  return a;
}

Action Engine::dispatch(const Command& c) {
  const std::string& tag = c.tag;
  const bool authed = state_ == State::authenticated || state_ == State::selected;
  const bool selected = state_ == State::selected;
  auto wrong_state = [&] { return bad(tag, c.name + " not valid in this state"); };
  if (selected && c.verb != Verb::logout && selection_lost()) return folder_gone();

  switch (c.verb) {
    // ---------------------------------------------------------------- any state
    case Verb::capability:
      return tagged(tag, "OK", "CAPABILITY completed", "* CAPABILITY " + capabilities() + "\r\n");
    case Verb::noop:
    case Verb::check: {
      if (c.verb == Verb::check && !selected) return wrong_state();
      std::string updates;
      if (selected) sync(true, updates);
      return tagged(tag, "OK", c.name + " completed", std::move(updates));
    }
    case Verb::logout: {
      state_ = State::logout;
      Action a = tagged(tag, "OK", "LOGOUT completed", "* BYE hikyaku logging out\r\n");
      a.kind = Action::Kind::close;
      return a;
    }
    case Verb::id:
      // RFC 2971 §3.1: the server's own identification.
      return tagged(tag, "OK", "ID completed", "* ID (\"name\" \"hikyaku\")\r\n");

    // ---------------------------------------------------- not authenticated
    case Verb::starttls: {
      if (state_ != State::not_authenticated) return wrong_state();
      if (!options_.tls_available || options_.tls_active) return bad(tag, "TLS not available");
      Action a = tagged(tag, "OK", "Begin TLS negotiation now");
      a.kind = Action::Kind::start_tls;
      return a;
    }
    case Verb::login: {
      if (state_ != State::not_authenticated) return wrong_state();
      // RFC 3501 §6.2.3 / RFC 8314: no clear-text passwords unless allowed.
      if (!plaintext_login_allowed()) return tagged(tag, "NO", "[PRIVACYREQUIRED] LOGIN needs TLS (STARTTLS)");
      return authenticate(tag, c.user, c.password, "LOGIN", false);
    }
    case Verb::authenticate: {
      if (state_ != State::not_authenticated) return wrong_state();
      if (c.mechanism != "PLAIN") return tagged(tag, "NO", "[CANNOT] unsupported authentication mechanism");
      if (!plaintext_login_allowed()) return tagged(tag, "NO", "[PRIVACYREQUIRED] AUTHENTICATE needs TLS (STARTTLS)");
      if (!c.initial_response) {
        // RFC 3501 §6.2.2: an empty challenge; the response comes on its own line.
        pending_tag_ = tag;
        sasl_waiting_ = true;
        Action a;
        a.reply = "+ \r\n";
        return a;
      }
      pending_tag_ = tag;
      sasl_waiting_ = true;
      return sasl_response(*c.initial_response);  // RFC 4959: "=" is an empty response
    }

    // ----------------------------------------------------------- authenticated
    case Verb::select:
    case Verb::examine:
      if (!authed) return wrong_state();
      return cmd_select(c);
    case Verb::create:
    case Verb::delete_:
    case Verb::rename:
    case Verb::subscribe:
    case Verb::unsubscribe:
      if (!authed) return wrong_state();
      return cmd_folder(c);
    case Verb::list:
    case Verb::lsub:
      if (!authed) return wrong_state();
      return cmd_list(c);
    case Verb::status:
      if (!authed) return wrong_state();
      return cmd_status(c);
    case Verb::append:
      if (!authed) return wrong_state();
      return cmd_append(c);
    case Verb::compress:
      // RFC 4978 §3: once per connection; the OK goes out uncompressed,
      // everything after it compressed (the session does the compressing).
      if (!authed) return wrong_state();
      if (c.mechanism != "DEFLATE") return bad(tag, "unknown compression mechanism");
      if (compressing_) return tagged(tag, "NO", "[COMPRESSIONACTIVE] DEFLATE active already");
      {
        compressing_ = true;
        Action a = tagged(tag, "OK", "DEFLATE active");
        a.kind = Action::Kind::compress;
        return a;
      }
    case Verb::getquota:
    case Verb::getquotaroot:
    case Verb::setquota:
      if (!authed) return wrong_state();
      return cmd_quota(c);
    case Verb::namespace_:
      if (!authed) return wrong_state();
      return tagged(tag, "OK", "NAMESPACE completed", "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
    case Verb::enable: {
      if (!authed) return wrong_state();
      // RFC 5161 §3.1: only what is newly enabled is listed; an unknown
      // capability is ignored, and the response is sent even when empty.
      // RFC 7162 §3.2.3: ENABLE QRESYNC enables CONDSTORE too, and lists
      // QRESYNC; "ENABLE QRESYNC CONDSTORE" lists both (CONDSTORE was
      // enabled by this command).
      std::string enabled;
      std::string highest;  // RFC 7162 §3.1: "* OK [HIGHESTMODSEQ n]" when selected
      const bool condstore_was_on = condstore_;
      bool condstore_listed = false;
      for (const auto& capability : c.items) {
        if (capability == "UTF8=ACCEPT" && !utf8_) {
          utf8_ = true;
          enabled += " UTF8=ACCEPT";
        } else if (capability == "CONDSTORE" && !condstore_was_on && !condstore_listed) {
          condstore_listed = true;
          enabled += " CONDSTORE";
          highest += enable_condstore();
        } else if (capability == "QRESYNC" && !qresync_) {
          qresync_ = true;
          enabled += " QRESYNC";
          highest += enable_condstore();
        }
      }
      return tagged(tag, "OK", "ENABLE completed", "* ENABLED" + enabled + "\r\n" + highest);
    }
    case Verb::idle: {
      if (!authed) return wrong_state();
      std::string updates;
      if (selected) sync(true, updates);
      idle_tag_ = tag;
      Action a;
      a.kind = Action::Kind::idle;
      a.reply = updates + "+ idling\r\n";
      return a;
    }

    // ---------------------------------------------------------------- selected
    case Verb::close:
    case Verb::unselect: {
      if (!selected) return wrong_state();
      // RFC 3501 §6.4.2: CLOSE expunges silently (not in a read-only mailbox).
      if (c.verb == Verb::close && !read_only_) {
        std::string unsent;
        (void)expunge_deleted(nullptr, unsent);  // best effort
      }
      leave_selected();
      return tagged(tag, "OK", c.name + " completed");
    }
    case Verb::expunge:
      if (!selected) return wrong_state();
      return cmd_expunge(c);
    case Verb::search:
      if (!selected) return wrong_state();
      return cmd_search(c);
    case Verb::sort:
      if (!selected) return wrong_state();
      return cmd_sort(c);
    case Verb::thread:
      if (!selected) return wrong_state();
      return cmd_thread(c);
    case Verb::cancelupdate:
      if (!selected) return wrong_state();
      return cmd_cancelupdate(c);
    case Verb::fetch:
      if (!selected) return wrong_state();
      return cmd_fetch(c);
    case Verb::store:
      if (!selected) return wrong_state();
      return cmd_store(c);
    case Verb::copy:
    case Verb::move:
      if (!selected) return wrong_state();
      return cmd_copy(c);
  }
  return bad(tag, "unknown command");
}

bool Engine::sync(bool allow_expunge, std::string& out) {
  if (validity_lost_) return false;
  auto snap = store_->scan(!read_only_);
  if (!snap) return false;
  if (snap->uidvalidity != uidvalidity_) {
    // Matching the view by UID would now pair the client's UIDs with other
    // messages (a STORE or EXPUNGE on the wrong one).
    validity_lost_ = true;
    return false;
  }
  uidnext_ = snap->uidnext;
  highest_modseq_ = snap->highest_modseq;
  const auto& msgs = snap->messages;
  size_t j = 0;
  uint32_t last_uid = 0;
  for (size_t i = 0; i < view_.size(); ++i) {
    auto& e = view_[i];
    last_uid = std::max(last_uid, e.msg.uid);
    while (j < msgs.size() && msgs[j].uid < e.msg.uid) ++j;
    if (j < msgs.size() && msgs[j].uid == e.msg.uid) {
      const auto& m = msgs[j];
      if (!e.gone && (m.flags != e.msg.flags || m.keywords != e.msg.keywords || m.modseq != e.msg.modseq))
        note_change(i);
      // RFC 7162 §3.1: with CONDSTORE on, a new MODSEQ is reported even
      // when the flags look the same (e.g. changed and changed back).
      if ((m.flags != e.msg.flags || m.keywords != e.msg.keywords || (condstore_ && m.modseq != e.msg.modseq)) &&
          !e.gone) {
        e.msg.flags = m.flags;
        e.msg.keywords = m.keywords;
        e.msg.modseq = m.modseq;
        learn(m.keywords, out);
        out += flags_fetch(i, condstore_, true);
      }
      e.msg.modseq = m.modseq;
      e.msg.key = m.key;
    } else {
      e.gone = true;
    }
  }
  size_t added = 0;
  for (const auto& m : msgs) {
    if (m.uid > last_uid) {
      learn(m.keywords, out);
      view_.push_back({m, false});
      note_change(view_.size() - 1);
      ++added;
    }
  }
  if (allow_expunge) out += report_expunges();
  size_t recent = 0;
  for (const auto& e : view_) recent += e.msg.recent ? 1 : 0;
  // RFC 3501 §7.3.1: EXISTS when the size grew; §7.3.2: RECENT with it.
  if (added > 0) out += "* " + std::to_string(view_.size()) + " EXISTS\r\n";
  if (added > 0 || recent != reported_recent_) {
    out += "* " + std::to_string(recent) + " RECENT\r\n";
    reported_recent_ = recent;
  }
  out += report_search_updates();
  return true;
}

std::string Engine::report_expunges() {
  std::string out;
  // RFC 5267 §4.3: an expunged message leaves each updating search's result
  // in a REMOVEFROM sent before its EXPUNGE (or VANISHED), while its number
  // still means it to the client.
  for (auto& u : search_updates_) {
    std::vector<size_t> removed;
    for (size_t i = 0; i < view_.size(); ++i) {
      if (!view_[i].gone) continue;
      auto at = std::lower_bound(u.matched.begin(), u.matched.end(), view_[i].msg.uid);
      if (at == u.matched.end() || *at != view_[i].msg.uid) continue;
      u.matched.erase(at);
      removed.push_back(i);
    }
    out += search_update_response(u, "REMOVEFROM", removed);
  }
  if (qresync_) {
    // RFC 7162 §3.2.10: once QRESYNC is enabled, VANISHED (UIDs, ascending)
    // replaces EXPUNGE, whatever removed the messages: EXPUNGE, UID
    // EXPUNGE, MOVE (RFC 6851 §4.3), another session or program.
    std::vector<uint32_t> uids;
    for (const auto& e : view_) {
      if (e.gone) uids.push_back(e.msg.uid);
    }
    if (!uids.empty()) out += "* VANISHED " + sequence_set_text(uids) + "\r\n";
  } else {
    // RFC 3501 §7.4.1: highest first, so each number is still the one the
    // client knows.
    for (size_t i = view_.size(); i-- > 0;) {
      if (view_[i].gone) out += "* " + std::to_string(i + 1) + " EXPUNGE\r\n";
    }
  }
  std::erase_if(view_, [](const ViewEntry& e) { return e.gone; });
  return out;
}

std::string Engine::vanished_earlier(const SequenceSet& uids) const {
  // RFC 7162 §3.2.6: "A server that receives a mod-sequence smaller than
  // <minmodseq>, where <minmodseq> is the value of the smallest expunged
  // mod-sequence it remembers minus one, MUST behave as if it was requested
  // to report all expunged messages from the provided UID set parameter."
  // hikyaku remembers no expunged UIDs (the uidlist drops them; HIGHESTMODSEQ
  // still grows), so every client's modseq is below that: the answer is
  // every UID of the set below UIDNEXT that the folder does not hold. It can
  // name UIDs the client never saw, or was told of before: VANISHED
  // (EARLIER) changes no message count or sequence number (§3.2.10), so a
  // UID the client does not know is nothing to it, while one left out would
  // be a message it keeps for ever. "*" is UIDNEXT-1 here, not the highest
  // UID held: "n:*" then covers the expunged messages above that one too.
  if (uidnext_ <= 1) return "";
  Ranges gone;
  size_t i = 0;  // view_ is in ascending UID order, every UID below uidnext_
  for (const auto& [first, last] : clamped_ranges(uids, uidnext_ - 1)) {
    while (i < view_.size() && view_[i].msg.uid < first) ++i;
    uint32_t next = first;  // the lowest UID of [first, last] not yet seen held
    for (; i < view_.size() && view_[i].msg.uid <= last; ++i) {
      if (view_[i].msg.uid > next) add_range(gone, next, view_[i].msg.uid - 1);
      next = view_[i].msg.uid + 1;
    }
    if (next <= last) add_range(gone, next, last);
  }
  return gone.empty() ? "" : "* VANISHED (EARLIER) " + ranges_text(gone) + "\r\n";
}

bool Engine::resolve(const SequenceSet& set, bool uid, std::vector<size_t>& out) const {
  out.clear();
  if (uid) {
    uint32_t star = view_.empty() ? 0 : view_.back().msg.uid;
    if (view_.empty()) return true;
    for (size_t i = 0; i < view_.size(); ++i) {
      if (set.contains(view_[i].msg.uid, star)) out.push_back(i);
    }
    return true;
  }
  const uint32_t n = static_cast<uint32_t>(view_.size());
  for (const auto& r : set.ranges) {
    uint32_t a = r.first == 0 ? n : r.first;
    uint32_t b = r.last == 0 ? n : r.last;
    if (a == 0 || b == 0 || a > n || b > n) return false;  // RFC 3501 §9: no such message
  }
  for (uint32_t i = 1; i <= n; ++i) {
    if (set.contains(i, n)) out.push_back(i - 1);
  }
  return true;
}

Action Engine::cmd_select(const Command& c) {
  // RFC 7162 §3.2.5: the QRESYNC parameter only once ENABLE QRESYNC was
  // answered; a BAD SELECT leaves the selected folder selected.
  if (c.qresync && !qresync_) return bad(c.tag, "SELECT (QRESYNC ...) needs ENABLE QRESYNC first");
  // RFC 3501 §6.3.1: a failed SELECT leaves no mailbox selected.
  std::string prefix;
  if (state_ == State::selected) {
    leave_selected();
    prefix = "* OK [CLOSED] previous mailbox closed\r\n";  // RFC 7162 §3.2.11
  }
  std::string why;
  auto name = folder_name(c.mailbox, why);
  if (!name) return tagged(c.tag, "NO", "[NONEXISTENT] " + why, prefix);
  auto opened = account_->open(*name);
  if (!opened) return refused(c.tag, opened.error(), prefix);
  read_only_ = c.verb == Verb::examine;
  auto snap = (*opened)->scan(!read_only_);
  if (!snap) return server_bug(c.tag, "mailbox unavailable", snap.error(), prefix);
  store_ = std::move(*opened);
  selected_ = *name;
  uidvalidity_ = snap->uidvalidity;
  validity_lost_ = false;
  uidnext_ = snap->uidnext;
  highest_modseq_ = snap->highest_modseq;
  if (c.condstore) condstore_ = true;  // RFC 7162 §3.1.8; HIGHESTMODSEQ is reported below anyway
  view_.clear();
  view_.shrink_to_fit();  // kept for as long as the folder is selected: no spare capacity
  view_.reserve(snap->messages.size());
  size_t recent = 0;
  std::optional<size_t> first_unseen;
  for (auto& m : snap->messages) {
    for (const auto& k : m.keywords) add_keyword(known_keywords_, k);
    if (m.recent) ++recent;
    if (!first_unseen && !(m.flags & kSeen)) first_unseen = view_.size() + 1;
    view_.push_back({std::move(m), false});
  }
  reported_recent_ = recent;
  state_ = State::selected;
  std::string out = prefix;
  out += "* FLAGS " + flags_list() + "\r\n";
  // "\*": new keywords can be created (up to the store's limit).
  std::string permanent = flags_list();
  permanent.insert(permanent.size() - 1, " \\*");
  out += "* OK [PERMANENTFLAGS " + std::string(read_only_ ? "()" : permanent) + "] flags permitted\r\n";
  out += "* " + std::to_string(view_.size()) + " EXISTS\r\n";
  out += "* " + std::to_string(recent) + " RECENT\r\n";
  if (first_unseen) out += "* OK [UNSEEN " + std::to_string(*first_unseen) + "] first unseen\r\n";
  out += "* OK [UIDVALIDITY " + std::to_string(uidvalidity_) + "] UIDs valid\r\n";
  out += "* OK [UIDNEXT " + std::to_string(uidnext_) + "] predicted next UID\r\n";
  // RFC 7162 §3.1.2.1: on every SELECT/EXAMINE, CONDSTORE enabled or not.
  if (highest_modseq_ != 0) {
    out += "* OK [HIGHESTMODSEQ " + std::to_string(highest_modseq_) + "] Highest\r\n";
  } else {
    out += "* OK [NOMODSEQ] Sorry, this mailbox format doesn't support modsequences\r\n";
  }
  // RFC 7162 §3.2.5.1: with the client's UIDVALIDITY (else it must start
  // over, and gets a plain SELECT), what changed since its modseq among its
  // known UIDs (1:UIDNEXT-1 when it sent none): VANISHED (EARLIER) first,
  // then a FETCH (UID FLAGS MODSEQ) per message with a higher modseq —
  // what "UID FETCH known-uids (FLAGS) (CHANGEDSINCE modseq VANISHED)"
  // would say.
  if (c.qresync && c.qresync->uidvalidity == uidvalidity_ && highest_modseq_ != 0) {
    SequenceSet known;
    if (c.qresync->known_uids) {
      known = *c.qresync->known_uids;
    } else if (uidnext_ > 1) {
      known.ranges.push_back({1, uidnext_ - 1});
    }
    out += vanished_earlier(known);
    const Ranges wanted = clamped_ranges(known, uidnext_ > 1 ? uidnext_ - 1 : 0);
    size_t r = 0;
    for (size_t i = 0; i < view_.size(); ++i) {  // both in ascending UID order
      const auto& m = view_[i].msg;
      while (r < wanted.size() && wanted[r].second < m.uid) ++r;
      if (r == wanted.size()) break;
      if (m.uid >= wanted[r].first && m.modseq > c.qresync->modseq) out += flags_fetch(i, true, true);
    }
  }
  return tagged(c.tag, "OK", std::string(read_only_ ? "[READ-ONLY] " : "[READ-WRITE] ") + c.name + " completed",
                std::move(out));
}

Action Engine::cmd_folder(const Command& c) {
  std::string why;
  auto name = folder_name(c.verb == Verb::create && c.mailbox.ends_with('/')
                              ? std::string_view(c.mailbox).substr(0, c.mailbox.size() - 1)  // RFC 3501 §6.3.3
                              : std::string_view(c.mailbox),
                          why);
  if (!name) return tagged(c.tag, "NO", "[CANNOT] " + why);
  base::Status done;
  switch (c.verb) {
    case Verb::create: {
      if (*name == "INBOX") return tagged(c.tag, "NO", "[ALREADYEXISTS] INBOX always exists");
      // RFC 6154 §3: a use the server cannot give fails the CREATE, with
      // USEATTR; hikyaku gives a folder at most one, and not \All or
      // \Flagged (virtual folders, which it does not have).
      std::string use;
      if (c.items.size() > 1) return tagged(c.tag, "NO", "[USEATTR] a folder has at most one special use");
      if (!c.items.empty()) {
        for (const char* known : kStorableSpecialUses) {
          if (base::iequals(c.items[0], known)) use = known;
        }
        if (use.empty()) return tagged(c.tag, "NO", "[USEATTR] " + c.items[0] + " cannot be given to a folder here");
      }
      done = account_->create(*name, use);
      break;
    }
    case Verb::delete_:
      if (*name == "INBOX") return tagged(c.tag, "NO", "[CANNOT] INBOX cannot be deleted");
      // RFC 3501 leaves it open; deleting the folder this session reads
      // would leave its view without a store.
      if (state_ == State::selected && *name == selected_) {
        return tagged(c.tag, "NO", "[INUSE] the folder is selected; close it first");
      }
      done = account_->remove(*name);
      break;
    case Verb::rename: {
      auto to = folder_name(c.mailbox2, why);
      if (!to) return tagged(c.tag, "NO", "[CANNOT] " + why);
      if (*to == "INBOX") return tagged(c.tag, "NO", "[ALREADYEXISTS] INBOX always exists");
      if (state_ == State::selected && (selected_ == *name || selected_.starts_with(*name + "/"))) {
        return tagged(c.tag, "NO", "[INUSE] the folder is selected; close it first");
      }
      done = account_->rename(*name, *to);
      break;
    }
    default:  // RFC 3501 §6.3.6/§6.3.7: names that do not exist may be subscribed
      done = account_->subscribe(*name, c.verb == Verb::subscribe);
      break;
  }
  std::string updates;
  if (state_ == State::selected) sync(true, updates);
  if (!done) return refused(c.tag, done.error(), std::move(updates));
  return tagged(c.tag, "OK", c.name + " completed", std::move(updates));
}

Action Engine::cmd_list(const Command& c) {
  std::string out;
  const bool lsub = c.verb == Verb::lsub;
  const auto& o = c.list;
  if (c.mailbox2.empty() && !lsub && !o.extended) {
    // RFC 3501 §6.3.8: an empty pattern asks for the hierarchy delimiter.
    out = "* LIST (\\Noselect) \"/\" \"\"\r\n";
  } else {
    auto folders = account_->folders();
    auto subscriptions = account_->subscriptions();
    if (!folders) return server_bug(c.tag, "the folders are unavailable", folders.error());
    if (!subscriptions) return server_bug(c.tag, "the folders are unavailable", subscriptions.error());
    // Every name LIST could show: the folders, their parents that are not
    // folders themselves, and the subscribed names.
    struct Name {
      bool exists = false;
      bool children = false;            // a folder below it exists
      bool subscribed = false;
      bool subscribed_children = false;  // a subscribed name below it
      std::string special_use;
    };
    std::map<std::string, Name> names;
    for (const auto& f : *folders) {
      auto& n = names[f.name];
      n.exists = true;
      n.special_use = f.special_use;
      for (const auto& p : parents_of(f.name)) names[p].children = true;
    }
    for (const auto& s : *subscriptions) {
      names[s].subscribed = true;
      for (const auto& p : parents_of(s)) names[p].subscribed_children = true;
    }
    std::vector<std::string> patterns;
    for (const auto& p : lsub ? std::vector<std::string>{c.mailbox2} : o.patterns) {
      if (p.empty()) continue;
      std::string pattern = c.mailbox + p;
      if (utf8_) {
        auto converted = utf8_to_mutf7(pattern);  // the wildcards are ASCII and stay as they are
        if (!converted) continue;                 // matches no name
        pattern = std::move(*converted);
      }
      if (auto simple = simplified_pattern(with_inbox_in_capitals(pattern))) patterns.push_back(std::move(*simple));
    }
    const bool by_subscription = lsub || o.select_subscribed;
    auto matched = [&](const std::string& name) {
      for (const auto& p : patterns) {
        if (wildcard_match(p, name)) return true;
      }
      return false;
    };
    // RFC 5258 §3.5: CHILDINFO for a parent whose subscribed descendant is
    // not listed itself (no pattern matches it).
    auto childinfo = [&](const std::string& parent) {
      for (auto it = names.upper_bound(parent + "/"); it != names.end() && it->first.starts_with(parent + "/"); ++it) {
        if (it->second.subscribed && !matched(it->first)) return true;
      }
      return false;
    };
    std::vector<std::pair<std::string, const Name*>> listed;  // INBOX first, then by name
    std::map<std::string, bool> with_childinfo;
    for (const auto& [name, n] : names) {
      if (!matched(name)) continue;
      bool shown = false;
      if (by_subscription) {
        // RFC 5258 §3.5 RECURSIVEMATCH / RFC 3501 §6.3.9 LSUB "%": a parent
        // of subscribed names is shown, though not subscribed itself.
        bool info = o.recursive_match && n.subscribed_children && childinfo(name);
        if (info) with_childinfo[name] = true;
        shown = n.subscribed || info || (lsub && n.subscribed_children);
      } else {
        shown = n.exists || n.children;
      }
      if (o.select_special_use) shown = shown && !n.special_use.empty();
      if (!shown) continue;
      if (name == "INBOX") {
        listed.insert(listed.begin(), {name, &n});
      } else {
        listed.emplace_back(name, &n);
      }
    }
    for (const auto& [name, n] : listed) {
      std::vector<std::string> attributes;
      if (lsub) {
        if (!n->subscribed) attributes.emplace_back("\\Noselect");
      } else {
        if (!n->exists) attributes.emplace_back(o.extended ? "\\NonExistent" : "\\Noselect");
        // RFC 5258 §4: CHILDREN attributes, always for a plain LIST (clients
        // expect them), for a LIST of subscriptions only when asked for.
        if ((n->exists || n->children) && (!o.select_subscribed || o.return_children))
          attributes.emplace_back(n->children ? "\\HasChildren" : "\\HasNoChildren");
        if (!n->special_use.empty()) attributes.push_back(n->special_use);  // RFC 6154 §2, asked or not
        // RFC 5258 §3.4: \Subscribed when asked for either way.
        if ((o.select_subscribed || o.return_subscribed) && n->subscribed) attributes.emplace_back("\\Subscribed");
      }
      out += std::string("* ") + (lsub ? "LSUB" : "LIST") + " (";
      for (size_t i = 0; i < attributes.size(); ++i) out += (i ? " " : "") + attributes[i];
      out += ") \"/\" " + wire_name(name);
      if (with_childinfo.count(name)) out += " (\"CHILDINFO\" (\"SUBSCRIBED\"))";
      out += "\r\n";
      // RFC 5819 §2: the STATUS of each listed folder follows its LIST; a
      // folder whose status cannot be had is listed without one.
      if (o.return_status && n->exists) {
        auto store = folder(name);
        if (store) {
          if (auto failed = status_response(c, name, **store, out)) {
            if (failed->reply.find(" BAD ") != std::string::npos) return *failed;
          }
        }
      }
    }
  }
  std::string updates;
  if (state_ == State::selected) sync(true, updates);
  return tagged(c.tag, "OK", c.name + " completed", out + updates);
}

std::optional<Action> Engine::status_response(const Command& c, const std::string& name, MailStore& store,
                                              std::string& out) {
  auto snap = store.scan(false);
  if (!snap) return server_bug(c.tag, "mailbox unavailable", snap.error());
  std::string items;
  for (const auto& item : c.items) {
    uint64_t value = 0;
    if (item == "MESSAGES") {
      value = snap->messages.size();
    } else if (item == "RECENT") {
      for (const auto& m : snap->messages) value += m.recent ? 1 : 0;
    } else if (item == "UIDNEXT") {
      value = snap->uidnext;
    } else if (item == "UIDVALIDITY") {
      value = snap->uidvalidity;
    } else if (item == "UNSEEN") {
      for (const auto& m : snap->messages) value += (m.flags & kSeen) ? 0 : 1;
    } else if (item == "DELETED") {  // RFC 9208: messages marked \Deleted
      for (const auto& m : snap->messages) value += (m.flags & kDeleted) ? 1 : 0;
    } else if (item == "DELETED-STORAGE") {  // RFC 9208: what EXPUNGE would free, in KiB
      uint64_t bytes = 0;
      for (const auto& m : snap->messages) bytes += (m.flags & kDeleted) ? m.size : 0;
      value = (bytes + 1023) / 1024;
    } else if (item == "HIGHESTMODSEQ") {  // RFC 7162 §3.1.7 (CONDSTORE-enabling)
      value = snap->highest_modseq;
      out += enable_condstore();
    } else {
      return bad(c.tag, "unknown STATUS item " + item.substr(0, 40));
    }
    if (!items.empty()) items += ' ';
    items += item + " " + std::to_string(value);
  }
  out += "* STATUS " + wire_name(name) + " (" + items + ")\r\n";
  return std::nullopt;
}

Action Engine::cmd_status(const Command& c) {
  std::string why;
  auto name = folder_name(c.mailbox, why);
  if (!name) return tagged(c.tag, "NO", "[NONEXISTENT] " + why);
  auto store = folder(*name);
  if (!store) return refused(c.tag, store.error());
  std::string out;
  if (auto failed = status_response(c, *name, **store, out)) return *failed;
  return tagged(c.tag, "OK", "STATUS completed", std::move(out));
}

Action Engine::cmd_quota(const Command& c) {
  // RFC 9208: one quota root, "", over every folder, with the STORAGE
  // resource in units of 1024 octets. Limits are the configuration's:
  // SETQUOTA is refused (no QUOTASET capability).
  if (c.verb == Verb::setquota) return tagged(c.tag, "NO", "[NOPERM] quotas are set in the server's configuration");
  std::string name;
  if (c.verb == Verb::getquotaroot) {
    std::string why;
    auto given = folder_name(c.mailbox, why);
    if (!given) return tagged(c.tag, "NO", "[NONEXISTENT] " + why);
    auto store = folder(*given);
    if (!store) return refused(c.tag, store.error());
    name = *given;
  }
  auto quota = account_->quota();
  if (!quota) return server_bug(c.tag, "quota unavailable", quota.error());
  std::string out;
  if (c.verb == Verb::getquotaroot) out = "* QUOTAROOT " + wire_name(name) + (*quota ? " \"\"\r\n" : "\r\n");
  if (c.verb == Verb::getquota && (!*quota || !c.mailbox.empty())) {
    return tagged(c.tag, "NO", "[NONEXISTENT] no such quota root");
  }
  if (*quota) {
    // Whole KiB rounded up, as Dovecot reports the same maildirsize.
    out += "* QUOTA \"\" (STORAGE " + std::to_string(((*quota)->used + 1023) / 1024) + " " +
           std::to_string(((*quota)->limit + 1023) / 1024) + ")\r\n";
  }
  std::string updates;
  if (state_ == State::selected) sync(true, updates);
  return tagged(c.tag, "OK", c.name + " completed", out + updates);
}

Action Engine::cmd_append(const Command& c) {
  Action refusal;
  auto store = target_folder(c, refusal);
  if (!store) return refusal;
  // RFC 3502 §6.3.11: every message or none (MailStore::append_all).
  std::vector<std::string> converted;  // literal8 messages with their binary parts as base64
  converted.reserve(c.append.size());
  std::vector<NewMessage> messages;
  messages.reserve(c.append.size());
  // The whole command's messages, as built, are bounded like its literals
  // (the framer's bound): CATENATE URLs copy stored messages, so a small
  // command could otherwise make the server hold gigabytes.
  uint64_t built = 0;
  const std::string too_big = "[TOOBIG] the messages of one APPEND together exceed the message size limit";
  for (const auto& m : c.append) {
    NewMessage n;
    // RFC 4469 §5: a CATENATE message is its parts joined, every URL
    // resolved first (any that names nothing fails the whole APPEND).
    std::string catenated;
    bool binary = m.binary;
    for (const auto& part : m.catenate) {
      if (part.url) {
        auto text = resolve_url(part.data);
        if (!text) return tagged(c.tag, "NO", "[BADURL " + url_resp_text(part.data) + "] the URL names no message");
        catenated += *text;
      } else {
        catenated += part.data;
        binary |= part.binary;
      }
      if (catenated.size() > options_.max_message_size) return tagged(c.tag, "NO", "[TOOBIG] message too large");
      if (built + catenated.size() > options_.max_message_size) return tagged(c.tag, "NO", too_big);
    }
    std::string_view content = m.catenate.empty() ? std::string_view(m.message) : std::string_view(catenated);
    built += content.size();
    if (built > options_.max_message_size) return tagged(c.tag, "NO", too_big);
    for (const auto& f : m.flags) {
      n.flags |= flag_bit(f);
      add_keyword(n.keywords, f);
    }
    n.internal_date = m.date;
    n.content = content;
    if (binary) {
      // RFC 3516 §4.3: binary content is stored base64-encoded, so that
      // BODY[] never serves octets a literal cannot carry.
      converted.push_back(encode_binary_parts(content));
      n.content = converted.back();
    } else if (!m.catenate.empty()) {
      converted.push_back(std::move(catenated));
      n.content = converted.back();
    }
    messages.push_back(std::move(n));
  }
  auto appended = store->append_all(messages);
  if (!appended && appended.error().error_number == EDQUOT) {
    return tagged(c.tag, "NO", "[OVERQUOTA] the mailbox is full");
  }
  if (!appended) return server_bug(c.tag, "could not store the message", appended.error());
  if (appended->empty()) return tagged(c.tag, "NO", "[SERVERBUG] could not store the message");
  std::string updates;
  if (state_ == State::selected) sync(true, updates);
  // RFC 4315 §3: the mailbox's UIDVALIDITY, selected or not (never 0); a
  // MULTIAPPEND's UIDs as a uid-set, in the order of the messages.
  std::vector<uint32_t> uids;
  for (const auto& a : *appended) uids.push_back(a.uid);
  return tagged(c.tag, "OK",
                "[APPENDUID " + std::to_string(appended->front().uidvalidity) + " " + sequence_set_text(uids) +
                    "] APPEND completed",
                std::move(updates));
}

Action Engine::cmd_fetch(const Command& c) {
  FetchRun f{c};
  if (!resolve(c.set, c.uid, f.indexes)) return bad(c.tag, "invalid message sequence number");
  using K = FetchAtt::Kind;
  for (const auto& a : c.fetch) {
    switch (a.kind) {
      case K::flags: f.has_flags = true; break;
      case K::uid: f.has_uid = true; break;
      case K::modseq: f.has_modseq = true; break;
      case K::internaldate: case K::rfc822_size: break;
      case K::rfc822: case K::rfc822_text: f.sets_seen = true; f.want_content = true; break;
      case K::body_section: case K::binary: f.sets_seen |= !a.peek; f.want_content = true; break;
      default: f.want_content = true; break;
    }
  }
  f.sets_seen = f.sets_seen && !read_only_;
  // RFC 7162 §3.2.6: VANISHED only once QRESYNC is enabled (the parser
  // took it only in a UID FETCH with CHANGEDSINCE).
  if (c.vanished && !qresync_) return bad(c.tag, "VANISHED needs ENABLE QRESYNC first");
  // RFC 7162 §3.1: FETCH MODSEQ and CHANGEDSINCE enable CONDSTORE.
  std::string out = f.has_modseq || c.changed_since ? enable_condstore() : "";
  // RFC 7162 §3.2.6: the expunged UIDs of the set, before any FETCH.
  if (c.vanished) out += vanished_earlier(c.set);
  // RFC 3501 §6.4.5: BODY[...] and RFC822(.TEXT) set \Seen, here for all
  // the messages at once (MaildirStore: one uidlist rewrite for their new
  // modseqs, not one per message).
  if (f.sets_seen) {
    f.seen_now.assign(view_.size(), false);
    std::vector<size_t> unseen;
    std::vector<StoredMessage> messages;
    for (size_t index : f.indexes) {
      const auto& e = view_[index];
      if (e.gone || (e.msg.flags & kSeen) || (c.changed_since && e.msg.modseq <= *c.changed_since)) continue;
      unseen.push_back(index);
      messages.push_back(e.msg);
    }
    auto marked = store_->update_flags_all(messages, [](MailStore::FlagState& s) { s.flags |= kSeen; });
    for (size_t i = 0; i < unseen.size() && i < marked.size(); ++i) {
      auto& r = marked[i];
      if (!r || !*r) continue;  // failed or gone: the content read below tells which
      auto& m = view_[unseen[i]].msg;
      m.flags = (*r)->flags;
      m.keywords = std::move((*r)->keywords);
      m.modseq = (*r)->modseq;
      note_change(unseen[i]);
      f.seen_now[unseen[i]] = true;
    }
  }
  fetch_ = std::move(f);
  return fetch_step(std::move(out));
}

Action Engine::resume() {
  HIKYAKU_CHECK(fetch_.has_value());
  return end_if_lost(fetch_step(""));
}

// The FETCH responses from where fetch_ stands, until about kFetchChunk
// octets are waiting: then Action::Kind::more, and resume() goes on from
// the next attribute. A client's pipe then holds one chunk of the reply,
// not all of it (100 times the mailbox, for 100 BODY[] of every message).
Action Engine::fetch_step(std::string out) {
  FetchRun& f = *fetch_;
  const Command& c = f.c;
  using K = FetchAtt::Kind;
  auto more = [&] {
    Action a;
    a.kind = Action::Kind::more;
    a.reply = std::move(out);
    return a;
  };
  while (f.at < f.indexes.size()) {
    const size_t index = f.indexes[f.at];
    auto& e = view_[index];
    const bool flags_changed = f.sets_seen && f.seen_now[index];
    // Each item after the first in a message's FETCH; "* n FETCH (" before
    // the first (a message whose every item is left out gets no FETCH).
    auto item = [&](const std::string& s) {
      out += f.opened ? " " : "* " + std::to_string(index + 1) + " FETCH (";
      f.opened = true;
      out += s;
    };
    if (!f.started) {
      if (e.gone) {  // expunged elsewhere; reported at the next chance (RFC 2180 §4.1)
        f.expunged = true;
        ++f.at;
        continue;
      }
      // RFC 7162 §3.1.4.1: only messages changed since the client's modseq.
      if (c.changed_since && e.msg.modseq <= *c.changed_since) {
        ++f.at;
        continue;
      }
      f.content.clear();
      if (f.want_content) {
        auto r = store_->read(e.msg);
        if (!r) {
          if (!f.failed) f.problem = r.error().message;
          f.failed = true;
          ++f.at;
          continue;
        }
        if (!*r) {  // expunged elsewhere since this view was taken
          f.expunged = true;
          ++f.at;
          continue;
        }
        f.content = std::move(**r);
      }
      f.started = true;
      f.opened = false;
      f.item = 0;
      // RFC 7162 §3.1: once CONDSTORE is on, a FETCH that reports a flag
      // change (here the implicit \Seen) carries UID and MODSEQ.
      if ((c.uid || (condstore_ && flags_changed)) && !f.has_uid) item("UID " + std::to_string(e.msg.uid));
    }
    const std::string& content = f.content;
    for (; f.item < c.fetch.size(); ++f.item) {
      if (out.size() >= kFetchChunk) return more();
      const FetchAtt& a = c.fetch[f.item];
      switch (a.kind) {
        case K::uid: item("UID " + std::to_string(e.msg.uid)); break;
        case K::flags: item("FLAGS " + flag_list(e.msg.flags, e.msg.recent, e.msg.keywords)); break;
        case K::internaldate: item("INTERNALDATE " + internal_date(e.msg.internal_date)); break;
        case K::rfc822_size: item("RFC822.SIZE " + std::to_string(e.msg.size)); break;
        case K::rfc822: item("RFC822 " + literal(content)); break;
        case K::rfc822_header: item("RFC822.HEADER " + literal(split_message(content).header)); break;
        case K::rfc822_text: item("RFC822.TEXT " + literal(split_message(content).body)); break;
        case K::envelope: item("ENVELOPE " + envelope(content)); break;
        case K::body: item("BODY " + body_structure(content, false)); break;
        case K::bodystructure: item("BODYSTRUCTURE " + body_structure(content, true)); break;
        case K::modseq: item("MODSEQ (" + std::to_string(e.msg.modseq) + ")"); break;
        case K::body_section: {
          std::string label = "BODY[" + section_label(a.section) + "]";
          auto text = section_text(content, a.section);
          if (a.partial_offset) label += "<" + std::to_string(*a.partial_offset) + ">";
          if (!text) {
            item(label + " NIL");
            break;
          }
          std::string_view v = *text;
          if (a.partial_offset) {
            // RFC 3501 §6.4.5: a partial beyond the end is an empty string.
            uint64_t off = std::min<uint64_t>(*a.partial_offset, v.size());
            v = v.substr(off, a.partial_count);
          }
          item(label + " " + literal(v));
          break;
        }
        case K::binary: case K::binary_size: {
          // RFC 3516 §4.2: the part with its transfer encoding undone; the
          // partial and the size count decoded octets.
          const std::string name = a.kind == K::binary ? "BINARY[" : "BINARY.SIZE[";
          std::string label = name + section_label(a.section) + "]";
          auto part = binary_section(content, a.section.part);
          if (part.status == BinarySection::Status::unknown_cte) {
            f.unknown_cte = true;  // the item is left out; the command ends NO [UNKNOWN-CTE]
            break;
          }
          if (a.kind == K::binary_size) {
            // A part that does not exist is empty, as BINARY[] of it is NIL.
            item(label + " " + std::to_string(part.octets.size()));
            break;
          }
          if (a.partial_offset) label += "<" + std::to_string(*a.partial_offset) + ">";
          if (part.status == BinarySection::Status::missing) {
            item(label + " NIL");
            break;
          }
          std::string_view v = part.octets;
          if (a.partial_offset) v = v.substr(std::min<uint64_t>(*a.partial_offset, v.size()), a.partial_count);
          // RFC 3516 §4.2: literal8 only for octets a literal cannot carry (NUL).
          item(label + " " + binary_literal(v));
          break;
        }
      }
    }
    if (flags_changed && !f.has_flags) item("FLAGS " + flag_list(e.msg.flags, e.msg.recent, e.msg.keywords));
    // RFC 7162 §3.1: a flag change carries its MODSEQ once CONDSTORE is on;
    // §3.1.4.1: CHANGEDSINCE implies MODSEQ.
    if (condstore_ && !f.has_modseq && (flags_changed || c.changed_since)) {
      item("MODSEQ (" + std::to_string(e.msg.modseq) + ")");
    }
    // Every item left out (BINARY of an unknown encoding only): no FETCH.
    if (f.opened) out += ")\r\n";
    f.started = false;
    f.content = std::string();
    ++f.at;
    if (out.size() >= kFetchChunk && f.at < f.indexes.size()) return more();
  }
  const bool failed = f.failed, expunged = f.expunged, unknown_cte = f.unknown_cte;
  std::string problem = std::move(f.problem);
  const std::string tag = c.tag;
  const bool uid = c.uid;
  fetch_.reset();
  std::string updates;
  sync(uid, updates);
  if (failed) {
    return server_bug(tag, "some messages could not be read", base::make_error(std::move(problem)), out + updates);
  }
  if (unknown_cte) {
    return tagged(tag, "NO", "[UNKNOWN-CTE] a part has a Content-Transfer-Encoding hikyaku cannot decode",
                  out + updates);
  }
  // RFC 5530 §3 / RFC 2180 §4.1.2. A UID FETCH names UIDs: one that no
  // longer exists is simply not there (its EXPUNGE is in `updates`).
  if (expunged && !uid)
    return tagged(tag, "NO", "[EXPUNGEISSUED] some of the requested messages no longer exist", out + updates);
  return tagged(tag, "OK", uid ? "UID FETCH completed" : "FETCH completed", out + updates);
}

Action Engine::cmd_store(const Command& c) {
  std::vector<size_t> indexes;
  if (!resolve(c.set, c.uid, indexes)) return bad(c.tag, "invalid message sequence number");
  if (read_only_) return tagged(c.tag, "NO", "[READ-ONLY] mailbox is read-only");
  uint8_t bits = 0;
  Keywords named;
  for (const auto& f : c.store.flags) {
    bits |= flag_bit(f);
    add_keyword(named, f);  // "\Recent" and unknown "\X" are ignored
  }
  // RFC 7162 §3.1: STORE (UNCHANGEDSINCE) enables CONDSTORE.
  std::string out = c.unchanged_since ? enable_condstore() : "";
  bool failed = false;
  bool expunged = false;  // a message of the set was expunged by another session
  std::vector<size_t> targets;  // indexes of the messages to change
  std::vector<StoredMessage> messages;
  for (size_t index : indexes) {
    if (view_[index].gone) {
      expunged = true;
      continue;
    }
    targets.push_back(index);
    messages.push_back(view_[index].msg);
  }
  // Applied to the flags as they are in the store now (another session
  // may have changed them since this view saw them), all in one store call.
  const auto mode = c.store.mode;
  const std::optional<uint64_t> unchanged_since = c.unchanged_since;
  auto change = [&](MailStore::FlagState& st) {
    // RFC 7162 §3.1.3: changed since the client's UNCHANGEDSINCE: left as
    // it is (the test runs under the store's lock).
    if (unchanged_since && st.modseq > *unchanged_since) {
      st.skip = true;
      return;
    }
    switch (mode) {
      case StoreOp::Mode::replace:
        st.flags = bits;
        st.keywords = named;
        break;
      case StoreOp::Mode::add:
        st.flags |= bits;
        for (const auto& k : named) add_keyword(st.keywords, k);
        break;
      case StoreOp::Mode::remove:
        st.flags &= static_cast<uint8_t>(~bits);
        for (const auto& k : named) remove_keyword(st.keywords, k);
        break;
    }
  };
  auto results = store_->update_flags_all(messages, change);
  std::vector<uint32_t> modified;  // RFC 7162 §3.1.3: those that failed UNCHANGEDSINCE
  for (size_t i = 0; i < targets.size() && i < results.size(); ++i) {
    const size_t index = targets[i];
    auto& e = view_[index];
    auto& r = results[i];
    if (!r) {
      failed = true;
      continue;
    }
    if (!*r) {  // expunged by another session: reported later
      expunged = true;
      continue;
    }
    if ((*r)->skip) {
      modified.push_back(c.uid ? e.msg.uid : static_cast<uint32_t>(index + 1));
      continue;
    }
    e.msg.flags = (*r)->flags;
    e.msg.keywords = std::move((*r)->keywords);
    e.msg.modseq = (*r)->modseq;
    note_change(index);
    learn(e.msg.keywords, out);
    // RFC 7162 §3.1.3: with CONDSTORE on, .SILENT still reports the MODSEQ.
    if (!c.store.silent || condstore_) out += flags_fetch(index, c.uid || condstore_, !c.store.silent);
  }
  std::string updates;
  sync(c.uid, updates);
  if (failed) return tagged(c.tag, "NO", "[LIMIT] some flags could not be stored (too many keywords?)", out + updates);
  // As FETCH: every message a STORE answers OK for got its FETCH FLAGS.
  if (expunged && !c.uid)
    return tagged(c.tag, "NO", "[EXPUNGEISSUED] some of the messages no longer exist", out + updates);
  if (!modified.empty()) {
    return tagged(c.tag, "OK", "[MODIFIED " + sequence_set_text(modified) + "] Conditional STORE failed",
                  out + updates);
  }
  return tagged(c.tag, "OK", c.uid ? "UID STORE completed" : "STORE completed", out + updates);
}

bool Engine::matches(const SearchKey& k, size_t index, std::optional<std::string>& content) {
  using K = SearchKey::Kind;
  const auto& m = view_[index].msg;
  auto text = [&]() -> const std::string& { return content_of(index, content); };
  auto header = [&](std::string_view name) -> std::optional<std::string> {
    return header_values(split_message(text()).header, name);
  };
  // RFC 3501 §6.4.4: the field contains the string, as it is or with its
  // RFC 2047 encoded words decoded (what the reader sees: "=?UTF-8?Q?
  // Invoice_March?=" is found by "Invoice March", as in Dovecot); address
  // fields are also matched in their canonical form.
  auto contains = [](const std::string& value, std::string_view needle) {
    return icontains(value, needle) ||
           (value.find("=?") != std::string::npos && icontains(decode_encoded_words(value), needle));
  };
  auto header_has = [&](std::string_view name, std::string_view needle) {
    auto v = header(name);
    return v && (contains(*v, needle) || icontains(address_search_text(*v), needle));
  };
  auto sent = [&]() -> std::optional<Days> {
    auto v = header("Date");
    return v ? parse_rfc5322_date(*v) : std::nullopt;
  };
  switch (k.kind) {
    case K::all: return true;
    case K::answered: return m.flags & kAnswered;
    case K::deleted: return m.flags & kDeleted;
    case K::draft: return m.flags & kDraft;
    case K::flagged: return m.flags & kFlagged;
    case K::seen: return m.flags & kSeen;
    case K::recent: return m.recent;
    case K::new_: return m.recent && !(m.flags & kSeen);
    case K::old: return !m.recent;
    case K::unanswered: return !(m.flags & kAnswered);
    case K::undeleted: return !(m.flags & kDeleted);
    case K::undraft: return !(m.flags & kDraft);
    case K::unflagged: return !(m.flags & kFlagged);
    case K::unseen: return !(m.flags & kSeen);
    case K::keyword: return (m.flags & flag_bit(k.value)) || has_keyword(m.keywords, k.value);
    case K::unkeyword: return !(m.flags & flag_bit(k.value)) && !has_keyword(m.keywords, k.value);
    case K::bcc: return header_has("Bcc", k.value);
    case K::cc: return header_has("Cc", k.value);
    case K::from: return header_has("From", k.value);
    case K::to: return header_has("To", k.value);
    case K::subject: return header_has("Subject", k.value);
    case K::header: {
      auto v = header(k.field);
      return v && contains(*v, k.value);
    }
    case K::body: return icontains(split_message(text()).body, k.value);
    case K::text: return icontains(text(), k.value);
    case K::before: return day_of(m.internal_date) < k.date;
    case K::on: return day_of(m.internal_date) == k.date;
    case K::since: return day_of(m.internal_date) >= k.date;
    case K::sentbefore: { auto d = sent(); return d && *d < k.date; }
    case K::senton: { auto d = sent(); return d && *d == k.date; }
    case K::sentsince: { auto d = sent(); return d && *d >= k.date; }
    case K::larger: return m.size > k.number;
    case K::smaller: return m.size < k.number;
    case K::uid: return k.set.contains(m.uid, view_.empty() ? 0 : view_.back().msg.uid);
    case K::modseq: return m.modseq >= k.number;  // RFC 7162 §3.1.5
    case K::sequence: {
      auto n = static_cast<uint32_t>(view_.size());
      return k.set.contains(static_cast<uint32_t>(index + 1), n);
    }
    case K::not_: return !matches(k.children[0], index, content);
    case K::or_: return matches(k.children[0], index, content) || matches(k.children[1], index, content);
    case K::and_:
      for (const auto& child : k.children) {
        if (!matches(child, index, content)) return false;
      }
      return true;
  }
  return false;
}

const std::string& Engine::content_of(size_t index, std::optional<std::string>& content) {
  if (!content) {
    auto r = store_->read(view_[index].msg);
    content = r && *r ? std::move(**r) : std::string();  // gone: matches no text
  }
  return *content;
}

Action Engine::cmd_search(const Command& c) {
  if (update_tag_in_use(c)) return bad(c.tag, kTagReuse);
  if (!c.items.empty()) {
    // RFC 6855 §3 (erratum 4029): no CHARSET once UTF8=ACCEPT is enabled.
    if (utf8_) return bad(c.tag, "SEARCH takes no CHARSET once UTF8=ACCEPT is enabled");
    if (!known_charset(c.items[0])) {
      return tagged(c.tag, "NO", kBadCharset);
    }
  }
  // RFC 7162 §3.1.5: the MODSEQ key enables CONDSTORE, and (§3.1.6) the reply
  // then carries the highest modseq of the messages it returns.
  const bool with_modseq = uses_modseq(c.search);
  std::string out = with_modseq ? enable_condstore() : "";
  std::vector<uint32_t> hits;  // ascending: sequence numbers, or UIDs in view order
  std::vector<uint64_t> modseqs;  // with_modseq: one per hit
  std::vector<uint32_t> hit_uids;  // ascending
  for (size_t i = 0; i < view_.size(); ++i) {
    if (view_[i].gone) continue;
    std::optional<std::string> content;
    if (matches(c.search, i, content)) {
      hits.push_back(c.uid ? view_[i].msg.uid : static_cast<uint32_t>(i + 1));
      hit_uids.push_back(view_[i].msg.uid);
      if (with_modseq) modseqs.push_back(view_[i].msg.modseq);
    }
  }
  if (c.search_return.requested) {
    out += esearch_response(c, hits, modseqs);
    if (c.search_return.update) {
      // RFC 5267 §4.3: keep the result; the changes are reported from the
      // sync below on (a tag already kept was refused above); past the
      // limit the result is sent but not kept: NOUPDATE.
      if (search_updates_.size() >= kMaxSearchUpdates) {
        out += "* NO [NOUPDATE \"" + c.tag + "\"] too many updating searches\r\n";
      } else {
        search_updates_.push_back({c.tag, c.uid, c.search, uses_positions(c.search), std::move(hit_uids)});
      }
    }
  } else {
    out += numbers_response("SEARCH", hits, modseqs);
  }
  std::string updates;
  sync(c.uid, updates);
  return tagged(c.tag, "OK", c.uid ? "UID SEARCH completed" : "SEARCH completed", out + updates);
}

Action Engine::cmd_sort(const Command& c) {
  if (update_tag_in_use(c)) return bad(c.tag, kTagReuse);
  // RFC 5256 §3: the charset is required; one we do not know is refused
  // as SEARCH refuses it (RFC 3501 §6.4.4). Keys are compared on UTF-8.
  if (c.items.empty() || !known_charset(c.items[0])) {
    return tagged(c.tag, "NO", kBadCharset);
  }
  using C = SortKey::Criterion;
  // One value per criterion: a number (ARRIVAL, DATE, SIZE) or a text.
  struct Value {
    int64_t number = 0;
    std::string text;
  };
  struct Row {
    size_t index = 0;
    std::vector<Value> values;
  };
  const bool with_modseq = uses_modseq(c.search);  // RFC 7162 §3.1.5, as SEARCH
  std::string out = with_modseq ? enable_condstore() : "";
  const bool needs_header = std::any_of(c.sort.begin(), c.sort.end(), [](const SortKey& k) {
    return k.criterion != C::arrival && k.criterion != C::size;
  });
  std::vector<Row> rows;
  for (size_t i = 0; i < view_.size(); ++i) {
    if (view_[i].gone) continue;
    std::optional<std::string> content;  // read at most once, by the search or here
    if (!matches(c.search, i, content)) continue;
    const auto& m = view_[i].msg;
    // Only the header is looked at; RFC822.SIZE and INTERNALDATE are known.
    std::string_view header = needs_header ? split_message(content_of(i, content)).header : std::string_view();
    auto field = [&](std::string_view name) { return header_values(header, name).value_or(""); };
    Row row;
    row.index = i;
    for (const auto& k : c.sort) {
      Value v;
      switch (k.criterion) {
        case C::arrival: v.number = m.internal_date; break;  // RFC 5256 §3: INTERNALDATE
        case C::size: v.number = static_cast<int64_t>(m.size); break;  // RFC822.SIZE
        case C::date: v.number = sent_date(header, m.internal_date); break;  // RFC 5256 §3 DATE
        case C::subject: v.text = base_subject(header_value(header, "Subject").value_or("")).text; break;
        case C::from: v.text = first_mailbox(field("From")); break;
        case C::to: v.text = first_mailbox(field("To")); break;
        case C::cc: v.text = first_mailbox(field("Cc")); break;
        case C::displayfrom: v.text = first_display_name(field("From")); break;  // RFC 5957 §3
        case C::displayto: v.text = first_display_name(field("To")); break;
      }
      // RFC 5256 §3 asks for i;unicode-casemap; hikyaku compares with
      // i;ascii-casemap (RFC 4790 §9.2: ASCII letters upper-cased, then
      // octet by octet), the same on ASCII, octet order beyond it.
      v.text = base::to_upper(v.text);
      row.values.push_back(std::move(v));
    }
    rows.push_back(std::move(row));
  }
  // Criteria in order, REVERSE inverting one; RFC 5256 §3: messages that
  // compare equal on all of them are in sequence number order.
  std::sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
    for (size_t k = 0; k < c.sort.size(); ++k) {
      const Value& x = a.values[k];
      const Value& y = b.values[k];
      int order = x.number < y.number ? -1 : x.number > y.number ? 1 : x.text.compare(y.text);
      if (order != 0) return c.sort[k].reverse ? order > 0 : order < 0;
    }
    return a.index < b.index;
  });
  std::vector<uint32_t> hits;
  std::vector<uint64_t> modseqs;
  for (const auto& row : rows) {
    hits.push_back(c.uid ? view_[row.index].msg.uid : static_cast<uint32_t>(row.index + 1));
    if (with_modseq) modseqs.push_back(view_[row.index].msg.modseq);
  }
  if (c.search_return.requested) {
    out += esearch_response(c, hits, modseqs);  // RFC 5267 §3.2, in sort order
    // RFC 5267 §4.3 allows a server to refuse UPDATE (NOUPDATE): hikyaku does not keep
    // sorted results (their ADDTO positions) current.
    if (c.search_return.update) out += "* NO [NOUPDATE \"" + c.tag + "\"] SORT results are not updated\r\n";
  } else {
    out += numbers_response("SORT", hits, modseqs);
  }
  std::string updates;
  sync(c.uid, updates);
  return tagged(c.tag, "OK", c.uid ? "UID SORT completed" : "SORT completed", out + updates);
}

Action Engine::cmd_thread(const Command& c) {
  // RFC 5256 §4: the charset is required, as in SORT.
  if (c.items.empty() || !known_charset(c.items[0])) {
    return tagged(c.tag, "NO", kBadCharset);
  }
  const bool references = c.thread == Command::ThreadAlgorithm::references;
  std::string out = uses_modseq(c.search) ? enable_condstore() : "";  // RFC 7162 §3.1.5, as SEARCH
  std::vector<ThreadMessage> messages;
  for (size_t i = 0; i < view_.size(); ++i) {
    if (view_[i].gone) continue;
    std::optional<std::string> content;  // read at most once, by the search or here
    if (!matches(c.search, i, content)) continue;
    const auto& m = view_[i].msg;
    std::string_view header = split_message(content_of(i, content)).header;
    ThreadMessage t;
    t.number = c.uid ? m.uid : static_cast<uint32_t>(i + 1);
    t.sent = sent_date(header, m.internal_date);
    if (references) {
      // RFC 5256 §3 REFERENCES step 1: the References field's msg-ids, or
      // else In-Reply-To's first one.
      auto id = message_ids(header_value(header, "Message-ID").value_or(""));
      if (!id.empty()) t.message_id = std::move(id.front());
      t.references = message_ids(header_values(header, "References").value_or(""));
      if (t.references.empty()) {
        auto in_reply_to = message_ids(header_value(header, "In-Reply-To").value_or(""));
        if (!in_reply_to.empty()) t.references.push_back(std::move(in_reply_to.front()));
      }
    }
    auto subject = base_subject(header_value(header, "Subject").value_or(""));
    t.base_subject = base::to_upper(subject.text);  // compared as SORT compares (i;ascii-casemap)
    t.reply_or_forward = subject.reply_or_forward;
    messages.push_back(std::move(t));
  }
  // RFC 5256 §4: thread-data = "THREAD" [SP 1*thread-list].
  std::string threads = references ? thread_references(messages) : thread_ordered_subject(messages);
  out += threads.empty() ? "* THREAD\r\n" : "* THREAD " + threads + "\r\n";
  std::string updates;
  sync(c.uid, updates);
  return tagged(c.tag, "OK", c.uid ? "UID THREAD completed" : "THREAD completed", out + updates);
}

std::string Engine::esearch_response(const Command& c, const std::vector<uint32_t>& hits,
                                     const std::vector<uint64_t>& modseqs) {
  // RFC 4731 §3.1: * ESEARCH (TAG "t") [UID] MIN n MAX n ALL set COUNT n;
  // MIN, MAX and ALL only when something matched, COUNT always. RFC 4731
  // §3.2 (a search with RFC 7162's MODSEQ key): MODSEQ last, when something
  // matched: the highest modseq of the messages returned (those of MIN and
  // MAX; all of them for ALL or COUNT).
  const auto& r = c.search_return;
  std::string out = esearch_correlator(c.tag, c.uid);
  if (!hits.empty()) {
    if (r.min) out += " MIN " + std::to_string(hits.front());
    if (r.max) out += " MAX " + std::to_string(hits.back());
    if (r.all) out += " ALL " + sequence_set_text(hits);
  }
  if (r.count) out += " COUNT " + std::to_string(hits.size());
  // RFC 5267 §4.4: PARTIAL (low:high set): the hits at positions low to high
  // of the result (as many as there are), in its order; NIL when none is.
  // Always sent, as COUNT is, even when nothing matched.
  size_t partial_begin = 0, partial_end = 0;  // the positions' indexes into hits: [begin, end)
  if (r.partial) {
    partial_begin = std::min<size_t>(r.partial->first - 1, hits.size());
    partial_end = std::min<size_t>(r.partial->last, hits.size());
    const std::vector<uint32_t> slice(hits.begin() + static_cast<std::ptrdiff_t>(partial_begin),
                                      hits.begin() + static_cast<std::ptrdiff_t>(partial_end));
    out += " PARTIAL (" + std::to_string(r.partial->first) + ":" + std::to_string(r.partial->last) + " " +
           (slice.empty() ? std::string("NIL") : sequence_set_text(slice)) + ")";
  }
  if (!hits.empty() && modseqs.size() == hits.size()) {
    uint64_t highest = 0;
    if (r.all || r.count) {
      highest = *std::max_element(modseqs.begin(), modseqs.end());
    } else {
      if (r.min) highest = std::max(highest, modseqs.front());
      if (r.max) highest = std::max(highest, modseqs.back());
      for (size_t i = partial_begin; i < partial_end; ++i) highest = std::max(highest, modseqs[i]);
    }
    // Nothing returned (a PARTIAL range past the end): no MODSEQ either.
    if (highest != 0) out += " MODSEQ " + std::to_string(highest);
  }
  return out + "\r\n";
}

std::string Engine::esearch_correlator(const std::string& tag, bool uid) {
  // RFC 4731 §3.1 search-correlator; a tag has no '"' or '\\' (tag_of).
  return "* ESEARCH (TAG \"" + tag + "\")" + (uid ? " UID" : "");
}

void Engine::note_change(size_t index) {
  if (!search_updates_.empty()) changed_uids_.push_back(view_[index].msg.uid);
}

std::string Engine::search_update_response(const SearchUpdate& u, std::string_view what,
                                           const std::vector<size_t>& indexes) const {
  if (indexes.empty()) return "";
  std::vector<uint32_t> numbers;
  numbers.reserve(indexes.size());
  for (size_t i : indexes) numbers.push_back(u.uid ? view_[i].msg.uid : static_cast<uint32_t>(i + 1));
  // RFC 5267 §4.3: (context-position sequence-set). The position only
  // places messages in a sorted result; an unsorted one is in ascending
  // order, where the numbers alone place them, and hikyaku sends 0.
  return esearch_correlator(u.tag, u.uid) + " " + std::string(what) + " (0 " + sequence_set_text(numbers) + ")\r\n";
}

std::string Engine::report_search_updates() {
  if (search_updates_.empty()) {
    changed_uids_.clear();
    return "";
  }
  std::sort(changed_uids_.begin(), changed_uids_.end());
  changed_uids_.erase(std::unique(changed_uids_.begin(), changed_uids_.end()), changed_uids_.end());
  // The view_ indexes of the messages noted (view_ is in ascending UID
  // order); a message expunged meanwhile is left to report_expunges.
  std::vector<size_t> changed;
  size_t i = 0;
  for (uint32_t uid : changed_uids_) {
    while (i < view_.size() && view_[i].msg.uid < uid) ++i;
    if (i < view_.size() && view_[i].msg.uid == uid && !view_[i].gone) changed.push_back(i);
  }
  changed_uids_.clear();
  std::vector<size_t> everything;  // every message there is, for positional searches
  if (std::any_of(search_updates_.begin(), search_updates_.end(), [](const SearchUpdate& u) { return u.positional; })) {
    for (size_t k = 0; k < view_.size(); ++k) {
      if (!view_[k].gone) everything.push_back(k);
    }
  }
  std::string out;
  for (auto& u : search_updates_) {
    std::vector<size_t> added, removed;
    for (size_t index : u.positional ? everything : changed) {
      const uint32_t uid = view_[index].msg.uid;
      const bool was = std::binary_search(u.matched.begin(), u.matched.end(), uid);
      std::optional<std::string> content;
      const bool now = matches(u.criteria, index, content);
      if (now && !was) added.push_back(index);
      if (was && !now) removed.push_back(index);
    }
    for (size_t index : removed) {
      u.matched.erase(std::lower_bound(u.matched.begin(), u.matched.end(), view_[index].msg.uid));
    }
    for (size_t index : added) {
      const uint32_t uid = view_[index].msg.uid;
      u.matched.insert(std::lower_bound(u.matched.begin(), u.matched.end(), uid), uid);
    }
    out += search_update_response(u, "REMOVEFROM", removed);
    out += search_update_response(u, "ADDTO", added);
  }
  return out;
}

bool Engine::updating(const std::string& tag) const {
  return std::any_of(search_updates_.begin(), search_updates_.end(),
                     [&](const SearchUpdate& u) { return u.tag == tag; });
}

bool Engine::update_tag_in_use(const Command& c) const {
  // RFC 5267 §4.3: an updating search's tag names its ESEARCH updates, so a
  // second one with a tag still in use is refused with BAD.
  return c.search_return.update && updating(c.tag);
}

Action Engine::cmd_cancelupdate(const Command& c) {
  // RFC 5267 §4.3: CANCELUPDATE ends the updates of the searches named. A
  // tag with no updating search is refused, and then none is cancelled.
  if (!std::all_of(c.items.begin(), c.items.end(), [&](const std::string& tag) { return updating(tag); })) {
    return tagged(c.tag, "NO", "no updating search has that tag");
  }
  std::erase_if(search_updates_, [&](const SearchUpdate& u) {
    return std::find(c.items.begin(), c.items.end(), u.tag) != c.items.end();
  });
  return tagged(c.tag, "OK", "CANCELUPDATE completed");
}

Action Engine::cmd_copy(const Command& c) {
  const bool move = c.verb == Verb::move;
  std::vector<size_t> indexes;
  if (!resolve(c.set, c.uid, indexes)) return bad(c.tag, "invalid message sequence number");
  if (move && read_only_) return tagged(c.tag, "NO", "[READ-ONLY] mailbox is read-only");
  Action refusal;
  auto opened = target_folder(c, refusal);
  if (!opened) return refusal;
  MailStore& target = *opened;
  // RFC 3501 §6.4.7: a COPY that fails leaves the target as it was, so
  // the copies made so far are expunged again. A message expunged by
  // another session fails a COPY by sequence numbers (RFC 2180 §4.4.1,
  // RFC 5530 §3); a UID COPY copies the UIDs that still exist. MOVE (RFC
  // 6851 §3.3) is the same COPY, then EXPUNGE of the originals.
  const std::string what = move ? "moved" : "copied";
  const std::string expunged_text = "[EXPUNGEISSUED] some of the messages no longer exist; nothing " + what;
  if (!c.uid) {
    for (size_t index : indexes) {
      if (view_[index].gone) return tagged(c.tag, "NO", expunged_text);
    }
  }
  std::vector<Appended> copies;
  auto undo = [&](std::string_view code, std::string_view text, std::string problem = {}) {
    for (const auto& a : copies) {
      StoredMessage m;
      m.uid = a.uid;
      m.key = a.key;
      (void)target.expunge(m);  // best effort: a failure here leaves an extra copy, never a loss
    }
    Action a = tagged(c.tag, "NO", std::string(code) + std::string(text));
    a.problem = std::move(problem);
    return a;
  };
  std::string from, to;
  std::vector<size_t> done;
  uint32_t uidvalidity = 0;
  for (size_t index : indexes) {
    const auto& e = view_[index];
    if (e.gone) continue;
    auto content = store_->read(e.msg);
    if (!content) return undo("[SERVERBUG] ", "could not read a message; nothing " + what, content.error().message);
    if (!*content) {
      if (!c.uid) return undo("", expunged_text);
      continue;
    }
    auto appended = target.append(**content, e.msg.flags, e.msg.keywords, e.msg.internal_date);
    if (!appended && appended.error().error_number == EDQUOT) {
      return undo("[OVERQUOTA] ", "the mailbox is full; nothing " + what);
    }
    if (!appended) return undo("[SERVERBUG] ", "could not store a copy; nothing " + what, appended.error().message);
    uidvalidity = appended->uidvalidity;
    if (!from.empty()) from += ',', to += ',';
    from += std::to_string(e.msg.uid);
    to += std::to_string(appended->uid);
    copies.push_back(std::move(*appended));
    done.push_back(index);
  }
  std::string code = from.empty() ? "" : "[COPYUID " + std::to_string(uidvalidity) + " " + from + " " + to + "]";
  std::string out;
  bool left = false;
  if (move) {
    // RFC 6851 §4.3: COPYUID in an untagged OK before the EXPUNGEs.
    if (!code.empty()) out = "* OK " + code + " moved\r\n";
    for (size_t index : done) {
      if (store_->expunge(view_[index].msg)) {
        view_[index].gone = true;
      } else {
        left = true;
      }
    }
    code.clear();
  }
  std::string updates;
  sync(true, updates);
  if (left) {
    return tagged(c.tag, "NO", "[SERVERBUG] copied, but some originals could not be removed", out + updates);
  }
  if (!code.empty()) code += ' ';
  return tagged(c.tag, "OK", code + (c.uid ? "UID " : "") + c.name + " completed", out + updates);
}

bool Engine::expunge_deleted(const SequenceSet* uids, std::string& updates) {
  // What has \Deleted now (RFC 3501 §6.4.2, §6.4.3), not when this session
  // last looked: another session may have set or cleared it since. The view
  // is brought up to date, and each flag checked again as its message goes.
  sync(false, updates);
  bool removed_all = true;
  const uint32_t star = view_.empty() ? 0 : view_.back().msg.uid;
  for (auto& e : view_) {
    if (e.gone || !(e.msg.flags & kDeleted)) continue;
    if (uids != nullptr && !uids->contains(e.msg.uid, star)) continue;  // RFC 4315 §2.1
    auto removed = store_->expunge_if_deleted(e.msg);
    if (!removed) {
      removed_all = false;
    } else if (*removed) {
      e.gone = true;
    }
  }
  return removed_all;
}

Action Engine::cmd_expunge(const Command& c) {
  if (read_only_) return tagged(c.tag, "NO", "[READ-ONLY] mailbox is read-only");
  std::string updates;
  const bool removed_all = expunge_deleted(c.uid ? &c.set : nullptr, updates);
  sync(true, updates);
  if (!removed_all) return tagged(c.tag, "NO", "[SERVERBUG] some messages could not be expunged", std::move(updates));
  return tagged(c.tag, "OK", c.uid ? "UID EXPUNGE completed" : "EXPUNGE completed", std::move(updates));
}

}  // namespace hikyaku::imap::protocol

#include "imap/protocol/command.hpp"

#include <algorithm>
#include <array>
#include <utility>

#include "base/strings.hpp"
#include "imap/protocol/framer.hpp"

namespace hikyaku::imap::protocol {
namespace {

using base::iequals;
using base::to_upper;

constexpr int kMaxSearchDepth = 32;
constexpr uint64_t kMaxModseq = 9223372036854775807ULL;  // 2^63-1 (RFC 7162 §7 mod-sequence-value)
constexpr size_t kMaxListItems = 1000;
constexpr size_t kMaxAppendMessages = 1000;  // RFC 3502 MULTIAPPEND: messages in one command
constexpr size_t kMaxCatenateParts = 100;    // RFC 4469 CATENATE: parts of one message

// RFC 3501 §9: atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards /
// quoted-specials / resp-specials.
bool is_atom_char(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u <= 0x1f || u >= 0x7f) return false;
  switch (c) {
    case '(': case ')': case '{': case ' ': case '%': case '*': case '"': case '\\': case ']':
      return false;
    default:
      return true;
  }
}
bool is_astring_char(char c) { return is_atom_char(c) || c == ']'; }
bool is_list_char(char c) { return is_atom_char(c) || c == '%' || c == '*' || c == ']'; }

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[pos_]; }
  bool accept(char c) {
    if (peek() != c || at_end()) return false;
    ++pos_;
    return true;
  }
  bool sp() { return accept(' '); }
  bool fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
    return false;
  }
  const std::string& error() const { return error_; }

  // 1*ATOM-CHAR (or ASTRING-CHAR when `astring`).
  bool atom(std::string& out, bool astring = false) {
    size_t start = pos_;
    while (!at_end() && (astring ? is_astring_char(s_[pos_]) : is_atom_char(s_[pos_]))) ++pos_;
    if (pos_ == start) return fail("expected an atom");
    out.assign(s_.substr(start, pos_ - start));
    return true;
  }

  // quoted = DQUOTE *QUOTED-CHAR DQUOTE
  bool quoted(std::string& out) {
    if (!accept('"')) return fail("expected a quoted string");
    out.clear();
    while (!at_end()) {
      char c = s_[pos_++];
      if (c == '"') return true;
      if (c == '\r' || c == '\n' || c == '\0') return fail("bad character in quoted string");
      if (c == '\\') {
        if (at_end() || (s_[pos_] != '"' && s_[pos_] != '\\')) return fail("bad escape in quoted string");
        c = s_[pos_++];
      }
      out += c;
    }
    return fail("unterminated quoted string");
  }

  // literal = "{" number ["+"] "}" CRLF *CHAR8 (the framer put the octets inline)
  bool literal(std::string& out) {
    size_t close = s_.find('}', pos_);
    if (peek() != '{' || close == std::string_view::npos) return fail("expected a literal");
    uint64_t size = 0;
    bool non_sync = false;
    if (!literal_at_end(s_.substr(pos_, close + 1 - pos_), size, non_sync) ||
        s_.substr(close + 1, 2) != "\r\n" || s_.size() - (close + 3) < size) {
      return fail("malformed literal");
    }
    pos_ = close + 3;
    out.assign(s_.substr(pos_, size));
    pos_ += size;
    return true;
  }

  bool string(std::string& out) {
    if (peek() == '"') return quoted(out);
    if (peek() == '{') return literal(out);
    return fail("expected a string");
  }
  bool astring(std::string& out) {
    if (peek() == '"' || peek() == '{') return string(out);
    return atom(out, true);
  }
  bool nstring(std::optional<std::string>& out) {
    if (peek() == 'N' || peek() == 'n') {
      std::string a;
      size_t save = pos_;
      if (atom(a) && iequals(a, "NIL")) {
        out.reset();
        return true;
      }
      pos_ = save;
    }
    std::string v;
    if (!string(v)) return false;
    out = std::move(v);
    return true;
  }
  // list-mailbox = 1*list-char / string
  bool list_mailbox(std::string& out) {
    if (peek() == '"' || peek() == '{') return string(out);
    size_t start = pos_;
    while (!at_end() && is_list_char(s_[pos_])) ++pos_;
    if (pos_ == start) return fail("expected a mailbox pattern");
    out.assign(s_.substr(start, pos_ - start));
    return true;
  }

  // RFC 3501 §6.3.10 "(" status-att *(SP status-att) ")", upper-cased
  // (STATUS, and LIST's RETURN (STATUS (...)), RFC 5819).
  bool status_items(std::vector<std::string>& out) {
    if (!accept('(')) return fail("expected a list of status items");
    do {
      std::string item;
      if (!atom(item)) return false;
      if (out.size() >= 20) return fail("too many items");
      out.push_back(to_upper(item));
    } while (sp());
    return accept(')') || fail("unterminated status list");
  }

  bool number(uint64_t& out, uint64_t max = UINT32_MAX) {
    size_t start = pos_;
    uint64_t n = 0;
    while (!at_end() && s_[pos_] >= '0' && s_[pos_] <= '9') {
      const auto digit = static_cast<uint64_t>(s_[pos_] - '0');
      if (n > (max - digit) / 10) return fail("number too large");  // n * 10 + digit > max, without wrapping
      n = n * 10 + digit;
      ++pos_;
    }
    if (pos_ == start) return fail("expected a number");
    out = n;
    return true;
  }
  bool nz_number(uint32_t& out) {
    uint64_t n = 0;
    if (!number(n)) return false;
    if (n == 0) return fail("0 is not a valid message number");
    out = static_cast<uint32_t>(n);
    return true;
  }
  bool seq_number(uint32_t& out) {
    if (accept('*')) {
      out = 0;
      return true;
    }
    return nz_number(out);
  }
  // sequence-set = (seq-number / seq-range) ["," sequence-set]
  bool sequence_set(SequenceSet& out) {
    do {
      SequenceSet::Range r;
      if (!seq_number(r.first)) return fail("bad sequence set");
      r.last = r.first;
      if (accept(':') && !seq_number(r.last)) return fail("bad sequence set");
      if (out.ranges.size() >= 10000) return fail("sequence set too long");
      out.ranges.push_back(r);
    } while (accept(','));
    return true;
  }
  // A sequence-set without "*": RFC 7162 §7 known-uids, known-sequence-set,
  // known-uid-set.
  bool known_set(SequenceSet& out) {
    if (!sequence_set(out)) return false;
    for (const auto& r : out.ranges) {
      if (r.first == 0 || r.last == 0) return fail("\"*\" is not allowed here (RFC 7162 known-uids)");
    }
    return true;
  }

  // flag-list = "(" [flag *(SP flag)] ")"; flag = "\" atom / atom
  bool flag(std::string& out) {
    std::string a;
    bool system = accept('\\');
    if (!atom(a)) return fail("bad flag");
    out = system ? "\\" + a : a;
    return true;
  }
  bool flag_list(std::vector<std::string>& out) {
    if (!accept('(')) return fail("expected a flag list");
    if (accept(')')) return true;
    do {
      std::string f;
      if (!flag(f)) return false;
      if (out.size() >= kMaxListItems) return fail("too many flags");
      out.push_back(std::move(f));
    } while (sp());
    if (!accept(')')) return fail("unterminated flag list");
    return true;
  }

  // date-text = date-day "-" date-month "-" date-year (optionally quoted)
  bool date(Days& out) {
    std::string text;
    if (peek() == '"') {
      if (!quoted(text)) return false;
    } else if (!atom(text)) {
      return false;
    }
    auto d = parse_date_text(text);
    if (!d) return fail("bad date");
    out = *d;
    return true;
  }

  // date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE
  bool date_time(int64_t& out) {
    std::string text;
    if (!quoted(text)) return fail("bad date-time");
    if (!text.empty() && text[0] == ' ') text.erase(0, 1);
    auto words = base::split_words(text);
    if (words.size() != 3) return fail("bad date-time");
    auto d = parse_date_text(words[0]);
    std::string_view t = words[1], z = words[2];
    if (!d || t.size() != 8 || t[2] != ':' || t[5] != ':' || z.size() != 5 || (z[0] != '+' && z[0] != '-'))
      return fail("bad date-time");
    auto two = [](std::string_view s, int& v) {
      if (s.size() != 2 || s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9') return false;
      v = (s[0] - '0') * 10 + (s[1] - '0');
      return true;
    };
    int hh, mm, ss, zh, zm;
    if (!two(t.substr(0, 2), hh) || !two(t.substr(3, 2), mm) || !two(t.substr(6, 2), ss) ||
        !two(z.substr(1, 2), zh) || !two(z.substr(3, 2), zm) || hh > 23 || mm > 59 || ss > 60)
      return fail("bad date-time");
    int64_t offset = (zh * 60 + zm) * 60 * (z[0] == '-' ? -1 : 1);
    out = *d * 86400 + hh * 3600 + mm * 60 + ss - offset;
    return true;
  }

  // section = "[" [section-spec] "]"
  bool section(Section& out) {
    if (!accept('[')) return fail("expected a section");
    // section-part = nz-number *("." nz-number)
    while (peek() >= '1' && peek() <= '9') {
      uint32_t n = 0;
      if (!nz_number(n)) return false;
      if (out.part.size() >= 64) return fail("section too deep");
      out.part.push_back(n);
      if (!accept('.')) break;
      if (peek() >= '1' && peek() <= '9') continue;
      break;
    }
    if (accept(']')) return true;
    std::string word;
    if (!atom(word)) return fail("bad section");
    word = to_upper(word);
    if (word == "HEADER") {
      out.text = Section::Text::header;
    } else if (word == "TEXT") {
      out.text = Section::Text::text;
    } else if (word == "MIME" && !out.part.empty()) {
      out.text = Section::Text::mime;
    } else if (word == "HEADER.FIELDS" || word == "HEADER.FIELDS.NOT") {
      out.text = word == "HEADER.FIELDS" ? Section::Text::header_fields : Section::Text::header_fields_not;
      if (!sp() || !accept('(')) return fail("expected a header list");
      do {
        std::string f;
        if (!astring(f)) return false;
        if (out.fields.size() >= kMaxListItems) return fail("too many header fields");
        out.fields.push_back(f);  // as sent: echoed in the response label
      } while (sp());
      if (!accept(')')) return fail("unterminated header list");
    } else {
      return fail("bad section");
    }
    if (!accept(']')) return fail("unterminated section");
    return true;
  }

  // An optional "<" offset "." count ">" after a section (RFC 3501 §9).
  bool partial(FetchAtt& a) {
    if (!accept('<')) return true;
    uint64_t offset = 0, count = 0;
    if (!number(offset, UINT32_MAX) || !accept('.') || !number(count, UINT32_MAX) || count == 0 || !accept('>'))
      return fail("bad partial");
    a.partial_offset = offset;
    a.partial_count = count;
    return true;
  }

  bool fetch_att(std::vector<FetchAtt>& out) {
    std::string word;
    size_t save = pos_;
    // The atom stops at '[' only because '[' is an atom char: take letters,
    // digits and dots by hand.
    while (!at_end() && (base::ascii_alnum(s_[pos_]) || s_[pos_] == '.')) ++pos_;
    word = to_upper(s_.substr(save, pos_ - save));
    if (word.empty()) return fail("expected a fetch attribute");
    FetchAtt a;
    using K = FetchAtt::Kind;
    if (word == "ALL" || word == "FAST" || word == "FULL") return fail("macro inside a list");
    if (word == "ENVELOPE") a.kind = K::envelope;
    else if (word == "FLAGS") a.kind = K::flags;
    else if (word == "INTERNALDATE") a.kind = K::internaldate;
    else if (word == "RFC822") a.kind = K::rfc822;
    else if (word == "RFC822.HEADER") a.kind = K::rfc822_header;
    else if (word == "RFC822.SIZE") a.kind = K::rfc822_size;
    else if (word == "RFC822.TEXT") a.kind = K::rfc822_text;
    else if (word == "BODYSTRUCTURE") a.kind = K::bodystructure;
    else if (word == "UID") a.kind = K::uid;
    else if (word == "MODSEQ") a.kind = K::modseq;  // RFC 7162 §3.1.4
    else if (word == "BINARY" || word == "BINARY.PEEK" || word == "BINARY.SIZE") {
      // RFC 3516 §4.2 / RFC 4466 §2.1: section-binary = "[" [section-part] "]".
      a.kind = word == "BINARY.SIZE" ? K::binary_size : K::binary;
      a.peek = word == "BINARY.PEEK";
      if (!section(a.section)) return false;
      if (a.section.text != Section::Text::none) return fail("BINARY takes part numbers only");
      if (a.kind == K::binary && !partial(a)) return false;
    }
    else if (word == "BODY" || word == "BODY.PEEK") {
      if (peek() != '[') {
        if (word == "BODY.PEEK") return fail("BODY.PEEK needs a section");
        a.kind = K::body;
      } else {
        a.kind = K::body_section;
        a.peek = word == "BODY.PEEK";
        if (!section(a.section) || !partial(a)) return false;
      }
    } else {
      return fail("unknown fetch attribute " + word.substr(0, 40));
    }
    out.push_back(std::move(a));
    return true;
  }

  bool fetch_atts(std::vector<FetchAtt>& out) {
    using K = FetchAtt::Kind;
    size_t save = pos_;
    std::string word;
    if (peek() != '(' && atom(word)) {
      word = to_upper(word);
      // RFC 3501 §6.4.5 macros.
      if (word == "ALL" || word == "FAST" || word == "FULL") {
        out.push_back({K::flags});
        out.push_back({K::internaldate});
        out.push_back({K::rfc822_size});
        if (word != "FAST") out.push_back({K::envelope});
        if (word == "FULL") out.push_back({K::body});
        return true;
      }
    }
    pos_ = save;
    error_.clear();
    if (accept('(')) {
      do {
        if (out.size() >= 100) return fail("too many fetch attributes");
        if (!fetch_att(out)) return false;
      } while (sp());
      if (!accept(')')) return fail("unterminated fetch attribute list");
      return true;
    }
    return fetch_att(out);
  }

  // One search key (RFC 3501 §6.4.4).
  bool search_key(SearchKey& out, int depth) {
    using K = SearchKey::Kind;
    if (depth > kMaxSearchDepth) return fail("search too deeply nested");
    if (accept('(')) {
      out.kind = K::and_;
      do {
        SearchKey k;
        if (!search_key(k, depth + 1)) return false;
        if (out.children.size() >= kMaxListItems) return fail("too many search keys");
        out.children.push_back(std::move(k));
      } while (sp());
      if (!accept(')')) return fail("unterminated search list");
      return true;
    }
    if ((peek() >= '0' && peek() <= '9') || peek() == '*') {
      out.kind = K::sequence;
      return sequence_set(out.set);
    }
    std::string word;
    if (!atom(word)) return fail("expected a search key");
    word = to_upper(word);
    struct Simple {
      const char* name;
      K kind;
    };
    static constexpr std::array<Simple, 15> kSimpleKeys{{
        {"ALL", K::all}, {"ANSWERED", K::answered}, {"DELETED", K::deleted}, {"DRAFT", K::draft},
        {"FLAGGED", K::flagged}, {"SEEN", K::seen}, {"RECENT", K::recent}, {"NEW", K::new_},
        {"OLD", K::old}, {"UNANSWERED", K::unanswered}, {"UNDELETED", K::undeleted},
        {"UNDRAFT", K::undraft}, {"UNFLAGGED", K::unflagged}, {"UNSEEN", K::unseen}, {"ALL", K::all},
    }};
    for (const auto& s : kSimpleKeys) {
      if (word == s.name) {
        out.kind = s.kind;
        return true;
      }
    }
    struct WithString {
      const char* name;
      K kind;
    };
    static constexpr std::array<WithString, 8> kStringKeys{{
        {"BCC", K::bcc}, {"CC", K::cc}, {"FROM", K::from}, {"TO", K::to},
        {"SUBJECT", K::subject}, {"BODY", K::body}, {"TEXT", K::text}, {"KEYWORD", K::keyword},
    }};
    for (const auto& s : kStringKeys) {
      if (word == s.name) {
        out.kind = s.kind;
        if (!sp()) return fail("missing argument");
        if (s.kind == K::keyword) return flag(out.value);
        return astring(out.value);
      }
    }
    if (word == "UNKEYWORD") {
      out.kind = K::unkeyword;
      return sp() && flag(out.value);
    }
    if (word == "HEADER") {
      out.kind = K::header;
      return (sp() && astring(out.field) && sp() && astring(out.value)) || fail("bad HEADER key");
    }
    struct WithDate {
      const char* name;
      K kind;
    };
    static constexpr std::array<WithDate, 6> kDateKeys{{
        {"BEFORE", K::before}, {"ON", K::on}, {"SINCE", K::since},
        {"SENTBEFORE", K::sentbefore}, {"SENTON", K::senton}, {"SENTSINCE", K::sentsince},
    }};
    for (const auto& s : kDateKeys) {
      if (word == s.name) {
        out.kind = s.kind;
        return (sp() && date(out.date)) || fail("bad date");
      }
    }
    if (word == "LARGER" || word == "SMALLER") {
      out.kind = word == "LARGER" ? K::larger : K::smaller;
      return (sp() && number(out.number, UINT64_MAX / 10)) || fail("bad size");
    }
    if (word == "UID") {
      out.kind = K::uid;
      return (sp() && sequence_set(out.set)) || fail("bad UID set");
    }
    if (word == "MODSEQ") {
      // RFC 7162 §3.1.5: MODSEQ [SP entry-name SP entry-type-req] SP
      // mod-sequence-valzer. Modseqs are per message here, so the entry
      // ("/flags/\\seen") is read and ignored, as §3.1.5 allows.
      out.kind = K::modseq;
      if (!sp()) return fail("bad MODSEQ key");
      if (peek() == '"') {
        std::string entry, type;
        if (!quoted(entry) || !sp() || !atom(type) || !sp()) return fail("bad MODSEQ key");
        if (!iequals(type, "PRIV") && !iequals(type, "SHARED") && !iequals(type, "ALL"))
          return fail("bad MODSEQ entry type");
      }
      return number(out.number, kMaxModseq) || fail("bad MODSEQ value");
    }
    if (word == "NOT") {
      out.kind = K::not_;
      out.children.resize(1);
      return sp() && search_key(out.children[0], depth + 1);
    }
    if (word == "OR") {
      out.kind = K::or_;
      out.children.resize(2);
      return sp() && search_key(out.children[0], depth + 1) && sp() &&
             search_key(out.children[1], depth + 1);
    }
    return fail("unknown search key " + word.substr(0, 40));
  }

  // search-key *(SP search-key), into `out` (an and_).
  bool search_keys(SearchKey& out) {
    do {
      SearchKey k;
      if (!search_key(k, 0)) return false;
      if (out.children.size() >= kMaxListItems) return fail("too many search keys");
      out.children.push_back(std::move(k));
    } while (sp());
    return true;
  }

  // RFC 4731 §3 (SEARCH) and RFC 5267 §3.2 (SORT): an optional
  // "RETURN" SP "(" [option *(SP option)] ")" SP, options MIN MAX ALL COUNT,
  // and RFC 5267 §4.2 CONTEXT, §4.3 UPDATE, §4.4 "PARTIAL" SP partial-range.
  bool return_options(Command::SearchReturn& r) {
    size_t save = pos_;
    std::string word;
    if (!atom(word) || !iequals(word, "RETURN")) {
      pos_ = save;
      error_.clear();
      return true;
    }
    r.requested = true;
    if (!sp() || !accept('(')) return fail("bad RETURN options");
    if (!accept(')')) {
      do {
        std::string option;
        if (!atom(option)) return false;
        if (iequals(option, "MIN")) r.min = true;
        else if (iequals(option, "MAX")) r.max = true;
        else if (iequals(option, "ALL")) r.all = true;
        else if (iequals(option, "COUNT")) r.count = true;
        else if (iequals(option, "UPDATE")) r.update = true;
        else if (iequals(option, "CONTEXT")) r.context = true;
        else if (iequals(option, "PARTIAL") && !r.partial) {
          // RFC 5267 §6: partial-range = nz-number ":" nz-number; no "*".
          Command::SearchReturn::Partial range;
          if (!sp() || !nz_number(range.first) || !accept(':') || !nz_number(range.last))
            return fail("bad PARTIAL range (RFC 5267: low:high)");
          if (range.first > range.last) std::swap(range.first, range.last);
          r.partial = range;
        } else {
          return fail("unknown RETURN option");
        }
      } while (sp());
      if (!accept(')')) return fail("unterminated RETURN options");
    }
    // RFC 4731 §3.1: () means ALL. (UPDATE) is not (): it asks for no
    // result now, only for the changes to come; CONTEXT is only a hint.
    if (!r.min && !r.max && !r.all && !r.count && !r.partial && !r.update) r.all = true;
    return sp() || fail("missing argument");
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;
  std::string error_;
};

struct VerbName {
  const char* name;
  Verb verb;
};
constexpr std::array<VerbName, 37> kVerbs{{
    {"CAPABILITY", Verb::capability}, {"NOOP", Verb::noop}, {"LOGOUT", Verb::logout},
    {"STARTTLS", Verb::starttls}, {"AUTHENTICATE", Verb::authenticate}, {"LOGIN", Verb::login},
    {"SELECT", Verb::select}, {"EXAMINE", Verb::examine}, {"CREATE", Verb::create},
    {"DELETE", Verb::delete_}, {"RENAME", Verb::rename}, {"SUBSCRIBE", Verb::subscribe},
    {"UNSUBSCRIBE", Verb::unsubscribe}, {"LIST", Verb::list}, {"LSUB", Verb::lsub},
    {"STATUS", Verb::status}, {"APPEND", Verb::append}, {"IDLE", Verb::idle}, {"ID", Verb::id},
    {"ENABLE", Verb::enable}, {"NAMESPACE", Verb::namespace_}, {"CHECK", Verb::check},
    {"CLOSE", Verb::close}, {"UNSELECT", Verb::unselect}, {"EXPUNGE", Verb::expunge},
    {"SEARCH", Verb::search}, {"FETCH", Verb::fetch}, {"STORE", Verb::store}, {"COPY", Verb::copy},
    {"GETQUOTA", Verb::getquota}, {"GETQUOTAROOT", Verb::getquotaroot}, {"SETQUOTA", Verb::setquota},
    {"COMPRESS", Verb::compress}, {"MOVE", Verb::move}, {"SORT", Verb::sort}, {"THREAD", Verb::thread},
    {"CANCELUPDATE", Verb::cancelupdate},
}};

bool parse_arguments(Parser& p, Command& c) {
  auto need_sp = [&] { return p.sp() || p.fail("missing argument"); };
  switch (c.verb) {
    case Verb::capability: case Verb::noop: case Verb::logout: case Verb::starttls:
    case Verb::idle: case Verb::namespace_: case Verb::check: case Verb::close:
    case Verb::unselect:
      return true;
    case Verb::expunge:
      if (c.uid) return need_sp() && p.sequence_set(c.set);  // RFC 4315 §2.1
      return true;
    case Verb::authenticate: {
      if (!need_sp() || !p.atom(c.mechanism)) return false;
      c.mechanism = to_upper(c.mechanism);
      if (p.sp()) {  // RFC 4959 initial response: base64 or "="
        std::string ir;
        while (!p.at_end() && p.peek() != ' ') ir += p.peek(), p.accept(p.peek());
        if (ir.empty()) return p.fail("empty initial response");
        c.initial_response = std::move(ir);
      }
      return true;
    }
    case Verb::login:
      return need_sp() && p.astring(c.user) && need_sp() && p.astring(c.password);
    case Verb::compress:  // RFC 4978 §3: COMPRESS SP algorithm
      if (!need_sp() || !p.atom(c.mechanism)) return false;
      c.mechanism = to_upper(c.mechanism);
      return true;
    case Verb::create: {
      // RFC 4466 §2.2 create-params; the one parameter hikyaku knows is
      // RFC 6154 §3's USE (use-attr list), kept in `items`. Another is BAD.
      if (!need_sp() || !p.astring(c.mailbox)) return false;
      if (!p.sp()) return true;
      if (!p.accept('(')) return p.fail("expected create parameters");
      std::string param;
      if (!p.atom(param) || !iequals(param, "USE") || !need_sp()) return p.fail("unknown CREATE parameter");
      if (!p.flag_list(c.items)) return false;
      return p.accept(')') || p.fail("unterminated create parameters");
    }
    case Verb::select: case Verb::examine: {
      // RFC 4466 §2.1 select-params; those hikyaku knows are CONDSTORE
      // (RFC 7162 §3.1.8) and QRESYNC (§3.2.5). Another is BAD.
      if (!need_sp() || !p.astring(c.mailbox)) return false;
      if (!p.sp()) return true;
      if (!p.accept('(')) return p.fail("expected select parameters");
      do {
        std::string param;
        if (!p.atom(param)) return false;
        if (iequals(param, "CONDSTORE")) {
          c.condstore = true;
          continue;
        }
        if (!iequals(param, "QRESYNC") || c.qresync) return p.fail("unknown or repeated SELECT parameter");
        // "QRESYNC" SP "(" uidvalidity SP mod-sequence-value [SP known-uids]
        // [SP seq-match-data] ")"; seq-match-data = "(" known-sequence-set
        // SP known-uid-set ")" (RFC 7162 §7). The match data only helps a
        // server that keeps expunged UIDs by modseq, which hikyaku does not
        // (engine.cpp, cmd_select): it is checked and dropped.
        Command::Qresync q;
        uint64_t modseq = 0;
        if (!need_sp() || !p.accept('(') || !p.nz_number(q.uidvalidity) || !need_sp() ||
            !p.number(modseq, kMaxModseq))
          return p.fail("bad QRESYNC parameter");
        if (modseq == 0) return p.fail("a QRESYNC mod-sequence is at least 1");
        q.modseq = modseq;
        bool more = p.sp();
        if (more && p.peek() != '(') {
          SequenceSet known;
          if (!p.known_set(known)) return false;
          q.known_uids = std::move(known);
          more = p.sp();
        }
        if (more) {
          SequenceSet sequences, uids;
          if (!p.accept('(') || !p.known_set(sequences) || !need_sp() || !p.known_set(uids) || !p.accept(')'))
            return p.fail("bad QRESYNC sequence match data");
        }
        if (!p.accept(')')) return p.fail("unterminated QRESYNC parameter");
        c.qresync = std::move(q);
      } while (p.sp());
      return p.accept(')') || p.fail("unterminated select parameters");
    }
    case Verb::delete_:
    case Verb::subscribe: case Verb::unsubscribe: case Verb::getquota: case Verb::getquotaroot:
      return need_sp() && p.astring(c.mailbox);
    case Verb::setquota: {
      // RFC 9208 §4.1.3: quota-root SP "(" [resource SP limit *(SP resource SP limit)] ")"
      // (number64; bounded so the parser's arithmetic cannot overflow).
      constexpr uint64_t kMaxLimit = (uint64_t{1} << 63) / 10;
      if (!need_sp() || !p.astring(c.mailbox) || !need_sp() || !p.accept('(')) return p.fail("bad SETQUOTA");
      if (p.accept(')')) return true;
      do {
        std::string resource;
        uint64_t limit = 0;
        if (!p.atom(resource) || !need_sp() || !p.number(limit, kMaxLimit)) return false;
        if (c.items.size() >= 20) return p.fail("too many resources");
        c.items.push_back(to_upper(resource));
        c.items.push_back(std::to_string(limit));
      } while (p.sp());
      return p.accept(')') || p.fail("unterminated resource list");
    }
    case Verb::rename:
      return need_sp() && p.astring(c.mailbox) && need_sp() && p.astring(c.mailbox2);
    case Verb::lsub:
      return need_sp() && p.astring(c.mailbox) && need_sp() && p.list_mailbox(c.mailbox2);
    case Verb::list: {
      auto& o = c.list;
      if (!need_sp()) return false;
      if (p.accept('(')) {  // RFC 5258 §3: selection options
        o.extended = true;
        bool recursive = false;
        bool other = false;
        if (!p.accept(')')) {
          do {
            std::string option;
            if (!p.atom(option)) return false;
            if (iequals(option, "SUBSCRIBED")) o.select_subscribed = other = true;
            else if (iequals(option, "REMOTE")) {}  // no remote mailboxes here; qualifies nothing
            else if (iequals(option, "SPECIAL-USE")) o.select_special_use = other = true;
            else if (iequals(option, "RECURSIVEMATCH")) recursive = o.recursive_match = true;
            else return p.fail("unknown LIST selection option");
          } while (p.sp());
          if (!p.accept(')')) return p.fail("unterminated selection options");
        }
        // RECURSIVEMATCH needs another option that it qualifies, not only
        // REMOTE (RFC 5258 §3.1).
        if (recursive && !other) return p.fail("RECURSIVEMATCH alone");
        if (!need_sp()) return false;
      }
      if (!p.astring(c.mailbox) || !need_sp()) return false;
      if (p.accept('(')) {  // several patterns
        o.extended = true;
        do {
          std::string pattern;
          if (!p.list_mailbox(pattern)) return false;
          if (o.patterns.size() >= 20) return p.fail("too many patterns");
          o.patterns.push_back(std::move(pattern));
        } while (p.sp());
        if (!p.accept(')')) return p.fail("unterminated pattern list");
      } else {
        std::string pattern;
        if (!p.list_mailbox(pattern)) return false;
        o.patterns.push_back(std::move(pattern));
      }
      c.mailbox2 = o.patterns.front();
      if (p.at_end()) return true;
      // RFC 5258 §3: RETURN (options).
      std::string word;
      if (!need_sp() || !p.atom(word) || !iequals(word, "RETURN") || !need_sp() || !p.accept('(')) {
        return p.fail("bad LIST return options");
      }
      o.extended = true;
      if (p.accept(')')) return true;
      do {
        std::string option;
        if (!p.atom(option)) return false;
        if (iequals(option, "SUBSCRIBED")) {
          o.return_subscribed = true;
        } else if (iequals(option, "CHILDREN")) {
          o.return_children = true;
        } else if (iequals(option, "SPECIAL-USE")) {  // RFC 6154 §5.1
          o.return_special_use = true;
        } else if (iequals(option, "STATUS")) {  // RFC 5819: STATUS (items)
          if (o.return_status || !need_sp()) return p.fail("bad STATUS return option");
          o.return_status = true;
          if (!p.status_items(c.items)) return false;
        } else {
          return p.fail("unknown LIST return option");
        }
      } while (p.sp());
      return p.accept(')') || p.fail("unterminated return options");
    }
    case Verb::status:
      return need_sp() && p.astring(c.mailbox) && need_sp() && p.status_items(c.items);
    case Verb::append: {
      // RFC 3502 §6.3.11: mailbox 1*(SP [flag-list SP] [date-time SP]
      // append-data); a single message is the RFC 3501 §6.3.11 form.
      if (!need_sp() || !p.astring(c.mailbox)) return false;
      while (p.sp()) {
        if (c.append.size() >= kMaxAppendMessages) return p.fail("too many messages in one APPEND");
        Command::AppendMessage m;
        if (p.peek() == '(') {
          if (!p.flag_list(m.flags) || !need_sp()) return false;
        }
        if (p.peek() == '"') {
          int64_t t = 0;
          if (!p.date_time(t) || !need_sp()) return false;
          m.date = t;
        }
        if (p.peek() == 'C' || p.peek() == 'c') {
          // RFC 4469 §5: "CATENATE" SP "(" cat-part *(SP cat-part) ")",
          // cat-part = "TEXT" SP literal / "URL" SP astring (RFC 3516
          // §4.4: a literal8 TEXT too).
          std::string word;
          if (!p.atom(word) || !iequals(word, "CATENATE") || !need_sp() || !p.accept('('))
            return p.fail("bad APPEND data");
          do {
            if (m.catenate.size() >= kMaxCatenateParts) return p.fail("too many CATENATE parts");
            Command::AppendMessage::CatPart part;
            if (!p.atom(word) || !need_sp()) return p.fail("bad CATENATE part");
            if (iequals(word, "URL")) {
              part.url = true;
              if (!p.astring(part.data)) return false;
            } else if (iequals(word, "TEXT")) {
              part.binary = p.accept('~');
              if (!p.literal(part.data)) return false;
            } else {
              return p.fail("bad CATENATE part");
            }
            m.catenate.push_back(std::move(part));
          } while (p.sp());
          if (!p.accept(')')) return p.fail("unterminated CATENATE list");
        } else if (p.peek() == 'U' || p.peek() == 'u') {
          // RFC 6855 §4: "UTF8" SP "(" literal8 ")". A plain literal inside
          // the parentheses is taken too (the "~" only says the octets may
          // be 8-bit, which a Maildir keeps either way).
          std::string word;
          if (!p.atom(word) || !iequals(word, "UTF8") || !need_sp() || !p.accept('(')) return p.fail("bad APPEND data");
          p.accept('~');
          if (!p.literal(m.message)) return false;
          if (!p.accept(')')) return p.fail("unterminated UTF8 APPEND data");
        } else {
          // RFC 3516 §4.3: append-data = literal / literal8.
          m.binary = p.accept('~');
          if (!p.literal(m.message)) return false;
        }
        c.append.push_back(std::move(m));
      }
      return !c.append.empty() || p.fail("APPEND needs a message");
    }
    case Verb::id: {
      // RFC 2971: "ID" SP ( "(" string SP nstring *(SP string SP nstring) ")" / nil )
      if (!need_sp()) return false;
      if (p.accept('(')) {
        do {
          std::string key;
          std::optional<std::string> value;
          if (!p.string(key) || !need_sp() || !p.nstring(value)) return false;
          if (c.items.size() >= 60) return p.fail("too many ID parameters");
          c.items.push_back(std::move(key));
          c.items.push_back(value.value_or("NIL"));
        } while (p.sp());
        return p.accept(')') || p.fail("unterminated ID list");
      }
      std::string nil;
      return (p.atom(nil) && iequals(nil, "NIL")) || p.fail("bad ID argument");
    }
    case Verb::enable:
      if (!need_sp()) return false;
      do {
        std::string cap;
        if (!p.atom(cap)) return false;
        if (c.items.size() >= 50) return p.fail("too many capabilities");
        c.items.push_back(to_upper(cap));
      } while (p.sp());
      return true;
    case Verb::search: {
      c.search.kind = SearchKey::Kind::and_;
      if (!need_sp()) return false;
      // RFC 4731 §3: optional RETURN (options) before the criteria.
      if (!p.return_options(c.search_return)) return false;
      // RFC 3501 §6.4.4: optional CHARSET; we search ASCII case-insensitively,
      // which is right for US-ASCII and harmless for UTF-8.
      {
        Parser save = p;
        std::string word;
        if (p.atom(word) && iequals(word, "CHARSET")) {
          std::string cs;
          if (!need_sp() || !p.astring(cs) || !need_sp()) return false;
          c.items.push_back(to_upper(cs));  // the engine judges it
        } else {
          p = save;
        }
      }
      return p.search_keys(c.search);
    }
    case Verb::sort: {
      // RFC 5256 §4: "SORT" SP sort-criteria SP search-criteria, where
      // search-criteria = charset 1*(SP search-key) (the charset is
      // required); RFC 5267 §3.2 (ESORT): [SP "RETURN" SP "(" ... ")"]
      // after "SORT", the options of RFC 4731.
      c.search.kind = SearchKey::Kind::and_;
      if (!need_sp() || !p.return_options(c.search_return)) return false;
      if (!p.accept('(')) return p.fail("expected sort criteria");
      do {
        if (c.sort.size() >= 20) return p.fail("too many sort criteria");
        SortKey k;
        std::string word;
        if (!p.atom(word)) return p.fail("expected a sort criterion");
        if (iequals(word, "REVERSE")) {
          k.reverse = true;
          if (!need_sp() || !p.atom(word)) return p.fail("expected a sort criterion after REVERSE");
        }
        using C = SortKey::Criterion;
        struct Name {
          const char* name;
          C criterion;
        };
        static constexpr std::array<Name, 9> kCriteria{{
            {"ARRIVAL", C::arrival}, {"CC", C::cc}, {"DATE", C::date}, {"FROM", C::from}, {"SIZE", C::size},
            {"SUBJECT", C::subject}, {"TO", C::to},
            {"DISPLAYFROM", C::displayfrom}, {"DISPLAYTO", C::displayto},  // RFC 5957 §3
        }};
        const auto* found = std::find_if(kCriteria.begin(), kCriteria.end(),
                                         [&](const Name& n) { return iequals(word, n.name); });
        if (found == kCriteria.end()) return p.fail("unknown sort criterion");
        k.criterion = found->criterion;
        c.sort.push_back(k);
      } while (p.sp());
      if (!p.accept(')')) return p.fail("unterminated sort criteria");
      std::string charset;
      if (!need_sp() || !p.astring(charset) || !need_sp()) return p.fail("expected a charset");
      c.items.push_back(to_upper(charset));  // the engine judges it
      return p.search_keys(c.search);
    }
    case Verb::thread: {
      // RFC 5256 §4: "THREAD" SP thread-alg SP search-criteria, the
      // charset required as in SORT.
      c.search.kind = SearchKey::Kind::and_;
      std::string algorithm;
      if (!need_sp() || !p.atom(algorithm)) return p.fail("expected a threading algorithm");
      if (iequals(algorithm, "REFERENCES")) {
        c.thread = Command::ThreadAlgorithm::references;
      } else if (iequals(algorithm, "ORDEREDSUBJECT")) {
        c.thread = Command::ThreadAlgorithm::ordered_subject;
      } else {
        return p.fail("unknown threading algorithm");
      }
      std::string charset;
      if (!need_sp() || !p.astring(charset) || !need_sp()) return p.fail("expected a charset");
      c.items.push_back(to_upper(charset));  // the engine judges it
      return p.search_keys(c.search);
    }
    case Verb::fetch: {
      if (!need_sp() || !p.sequence_set(c.set) || !need_sp() || !p.fetch_atts(c.fetch)) return false;
      if (!p.sp()) return true;
      // RFC 4466 §2.4 fetch-modifiers: RFC 7162 §3.1.4.1 (CHANGEDSINCE n)
      // and §3.2.6 VANISHED, which is only for UID FETCH and only with
      // CHANGEDSINCE (the engine checks that QRESYNC is enabled).
      if (!p.accept('(')) return p.fail("bad FETCH modifier");
      do {
        std::string modifier;
        if (!p.atom(modifier)) return p.fail("bad FETCH modifier");
        if (iequals(modifier, "CHANGEDSINCE") && !c.changed_since) {
          uint64_t since = 0;
          if (!need_sp() || !p.number(since, kMaxModseq)) return p.fail("bad CHANGEDSINCE");
          c.changed_since = since;
        } else if (iequals(modifier, "VANISHED") && !c.vanished) {
          c.vanished = true;
        } else {
          return p.fail("bad FETCH modifier");
        }
      } while (p.sp());
      if (!p.accept(')')) return p.fail("unterminated FETCH modifiers");
      if (c.vanished && (!c.uid || !c.changed_since))
        return p.fail("VANISHED needs UID FETCH and CHANGEDSINCE (RFC 7162 §3.2.6)");
      return true;
    }
    case Verb::copy: case Verb::move:
      return need_sp() && p.sequence_set(c.set) && need_sp() && p.astring(c.mailbox);
    case Verb::cancelupdate:
      // RFC 5267 §6: "CANCELUPDATE" 1*(SP quoted), the tags of searches.
      do {
        std::string search_tag;
        if (!need_sp() || !p.quoted(search_tag)) return p.fail("expected a quoted search tag");
        if (c.items.size() >= 100) return p.fail("too many search tags");
        c.items.push_back(std::move(search_tag));
      } while (!p.at_end());
      return true;
    case Verb::store: {
      if (!need_sp() || !p.sequence_set(c.set) || !need_sp()) return false;
      if (p.accept('(')) {
        // RFC 4466 §2.5 store-modifiers, before the item: RFC 7162 §3.1.3
        // (UNCHANGEDSINCE n); 0 is allowed (it fails for every message).
        std::string modifier;
        uint64_t since = 0;
        if (!p.atom(modifier) || !iequals(modifier, "UNCHANGEDSINCE") || !need_sp() || !p.number(since, kMaxModseq) ||
            !p.accept(')') || !need_sp())
          return p.fail("bad STORE modifier");
        c.unchanged_since = since;
      }
      std::string item;
      if (p.accept('+')) c.store.mode = StoreOp::Mode::add;
      else if (p.accept('-')) c.store.mode = StoreOp::Mode::remove;
      if (!p.atom(item)) return false;
      item = to_upper(item);
      if (item == "FLAGS.SILENT") c.store.silent = true;
      else if (item != "FLAGS") return p.fail("unknown STORE item");
      if (!need_sp()) return false;
      if (p.peek() == '(') return p.flag_list(c.store.flags);
      do {
        std::string f;
        if (!p.flag(f)) return false;
        if (c.store.flags.size() >= kMaxListItems) return p.fail("too many flags");
        c.store.flags.push_back(std::move(f));
      } while (p.sp());
      return true;
    }
  }
  return p.fail("unsupported command");
}

}  // namespace

bool SequenceSet::contains(uint32_t n, uint32_t star) const {
  for (const auto& r : ranges) {
    uint32_t a = r.first == 0 ? star : r.first;
    uint32_t b = r.last == 0 ? star : r.last;
    if (a > b) std::swap(a, b);
    if (n >= a && n <= b) return true;
  }
  return false;
}

Days days_from_civil(int64_t y, unsigned m, unsigned d) {
  // Howard Hinnant's days_from_civil algorithm (public domain description).
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

std::optional<Days> parse_date_text(std::string_view text) {
  static constexpr std::array<const char*, 12> kMonths{"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                      "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
  auto parts = base::split(text, '-');
  if (parts.size() != 3 || parts[0].empty() || parts[0].size() > 2 || parts[2].size() != 4) return std::nullopt;
  auto day = base::parse_uint(parts[0]);
  auto year = base::parse_uint(parts[2]);
  if (!day || !year || *day < 1 || *day > 31 || *year < 1) return std::nullopt;
  for (unsigned m = 0; m < 12; ++m) {
    if (iequals(parts[1], kMonths[m])) return days_from_civil(static_cast<int64_t>(*year), m + 1, static_cast<unsigned>(*day));
  }
  return std::nullopt;
}

namespace {

// RFC 3986 §2.1 percent-decoding; nullopt for a "%" without two hex digits.
std::optional<std::string> percent_decode(std::string_view text) {
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size() || hex(text[i + 1]) < 0 || hex(text[i + 2]) < 0) return std::nullopt;
    out += static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2]));
    i += 2;
  }
  return out;
}

std::optional<uint64_t> url_number(std::string_view text, uint64_t max) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  auto n = base::parse_uint(text);
  if (!n || *n > max) return std::nullopt;
  return *n;
}

}  // namespace

std::optional<ImapUrl> parse_imap_url(std::string_view url) {
  // Sanity checks: server-relative, bounded.
  if (!url.starts_with("/") || url.starts_with("//") || url.size() > 4096) return std::nullopt;
  url.remove_prefix(1);
  // enc-mailbox holds no ";" (RFC 5092 bchar): the parameters start there.
  const size_t semi = url.find(';');
  if (semi == std::string_view::npos || semi == 0) return std::nullopt;
  std::string_view mailbox = url.substr(0, semi);
  const bool slash_before = mailbox.ends_with('/');
  if (slash_before) mailbox.remove_suffix(1);
  ImapUrl out;
  auto decoded = percent_decode(mailbox);
  if (!decoded || decoded->empty()) return std::nullopt;
  out.mailbox = std::move(*decoded);
  // ";KEY=value" parameters, each but the last followed by "/" (the
  // UIDVALIDITY one directly after the mailbox, the others after a "/"),
  // in the order UIDVALIDITY, UID, SECTION, PARTIAL.
  auto params = base::split(url.substr(semi + 1), ';');
  int stage = 0;  // 0: UIDVALIDITY may come; 1: UID must; 2: SECTION may; 3: PARTIAL may; 4: done
  for (size_t i = 0; i < params.size(); ++i) {
    std::string_view param = params[i];
    if (i + 1 < params.size()) {
      if (!param.ends_with('/')) return std::nullopt;
      param.remove_suffix(1);
    }
    const size_t eq = param.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    const std::string_view key = param.substr(0, eq), value = param.substr(eq + 1);
    if (iequals(key, "UIDVALIDITY") && stage == 0 && i == 0 && !slash_before) {
      auto v = url_number(value, UINT32_MAX);
      if (!v || *v == 0) return std::nullopt;
      out.uidvalidity = static_cast<uint32_t>(*v);
      stage = 1;
    } else if (iequals(key, "UID") && stage <= 1 && (i > 0 || slash_before)) {
      auto v = url_number(value, UINT32_MAX);
      if (!v || *v == 0) return std::nullopt;
      out.uid = static_cast<uint32_t>(*v);
      stage = 2;
    } else if (iequals(key, "SECTION") && stage == 2) {
      auto section = percent_decode(value);
      if (!section || section->empty()) return std::nullopt;
      // The section-spec of BODY[...] (RFC 5092 §11 isection), read by the
      // FETCH parser.
      const std::string bracketed = "[" + *section + "]";
      Parser p(bracketed);
      if (!p.section(out.section) || !p.at_end()) return std::nullopt;
      stage = 3;
    } else if (iequals(key, "PARTIAL") && (stage == 2 || stage == 3)) {
      const size_t dot = value.find('.');
      auto offset = url_number(value.substr(0, dot), UINT32_MAX);
      if (!offset) return std::nullopt;
      out.partial_offset = *offset;
      if (dot != std::string_view::npos) {
        auto length = url_number(value.substr(dot + 1), UINT32_MAX);
        if (!length || *length == 0) return std::nullopt;
        out.partial_length = *length;
      }
      stage = 4;
    } else {
      return std::nullopt;  // unknown (URLAUTH, EXPIRE...), repeated or out of order
    }
  }
  if (out.uid == 0) return std::nullopt;
  return out;
}

std::string tag_of(std::string_view text) {
  size_t n = 0;
  while (n < text.size() && n < 64 && is_astring_char(text[n]) && text[n] != '+') ++n;
  if (n == 0 || (n < text.size() && text[n] != ' ')) return "*";
  return std::string(text.substr(0, n));
}

ParseResult parse_command(std::string_view text) {
  ParseResult r;
  r.tag = tag_of(text);
  if (r.tag == "*") {
    r.error = "invalid tag";
    return r;
  }
  Parser p(text.substr(r.tag.size()));
  std::string verb;
  if (!p.sp() || !p.atom(verb)) {
    r.error = "missing command";
    return r;
  }
  Command c;
  c.tag = r.tag;
  c.name = to_upper(verb);
  if (c.name == "UID") {
    c.uid = true;
    if (!p.sp() || !p.atom(verb)) {
      r.error = "missing command after UID";
      return r;
    }
    c.name = to_upper(verb);
    if (c.name != "FETCH" && c.name != "SEARCH" && c.name != "STORE" && c.name != "COPY" && c.name != "MOVE" &&
        c.name != "EXPUNGE" && c.name != "SORT" && c.name != "THREAD") {
      r.error = "UID " + c.name.substr(0, 20) + " is not a UID command";
      return r;
    }
  }
  bool found = false;
  for (const auto& v : kVerbs) {
    if (c.name == v.name) {
      c.verb = v.verb;
      found = true;
      break;
    }
  }
  if (!found) {
    r.error = "unknown command";
    return r;
  }
  if (!parse_arguments(p, c)) {
    r.error = p.error().empty() ? "syntax error" : p.error();
    r.error = c.name + ": " + r.error;
    return r;
  }
  if (!p.at_end()) {
    r.error = c.name + ": unexpected characters after the arguments";
    return r;
  }
  r.command = std::move(c);
  return r;
}

}  // namespace hikyaku::imap::protocol

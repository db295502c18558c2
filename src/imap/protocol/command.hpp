// Purpose:   Parse one framed IMAP command (see framer.hpp: literals inline)
//            into a typed Command: tag, verb, UID prefix and the arguments
//            of that verb — astrings, quoted strings, literals, lists,
//            sequence sets ("1:*", "2,4:6"), flag lists, fetch attributes
//            (BODY[section]<partial>, BODY.PEEK, BINARY[part], macros),
//            search keys
//            (NOT/OR/parenthesised), dates. Sans-I/O: no state, no Asio.
// Standards: RFC 3501 §9 (formal syntax), §6 (commands); RFC 2177 (IDLE),
//            RFC 2971 (ID), RFC 5161 (ENABLE), RFC 2342 (NAMESPACE),
//            RFC 3691 (UNSELECT), RFC 4315 (UID EXPUNGE), RFC 4959
//            (SASL-IR), RFC 7888 (LITERAL+), RFC 7162 §3.1 (CONDSTORE:
//            SELECT/EXAMINE (CONDSTORE), FETCH MODSEQ and (CHANGEDSINCE n),
//            STORE (UNCHANGEDSINCE n), SEARCH MODSEQ), RFC 7162 §3.2
//            (QRESYNC: SELECT/EXAMINE (QRESYNC (...)), UID FETCH
//            (CHANGEDSINCE n VANISHED)), RFC 4466 (the modifier syntax),
//            RFC 5256 §3-4 (SORT, THREAD), RFC 5957 §3 (DISPLAYFROM,
//            DISPLAYTO), RFC 5267 §3 (ESORT: SORT RETURN (...)),
//            RFC 3516 §4 (BINARY: FETCH BINARY[part]<partial>,
//            BINARY.PEEK, BINARY.SIZE; literal8 "~{n}" in APPEND),
//            RFC 3502 §6.3.11 (MULTIAPPEND: several messages in one APPEND),
//            RFC 4469 §5 (CATENATE: APPEND data made of TEXT and URL parts),
//            RFC 5267 §4.4 (RETURN (PARTIAL low:high); "*" and a single
//            number are errors), §4.2 (RETURN (CONTEXT)), §4.3 (RETURN
//            (UPDATE), CANCELUPDATE "tag" ...).
// Trust:     input is untrusted network data; every byte value is handled;
//            nesting depth of search keys is bounded.
// Concurrency: pure functions.
// Errors:    a ParseResult with `error` set (and the tag when one could be
//            read) for anything malformed; no exceptions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hikyaku::imap::protocol {

enum class Verb {
  capability, noop, logout,                                    // any state
  starttls, authenticate, login,                               // not authenticated
  select, examine, create, delete_, rename, subscribe, unsubscribe,
  list, lsub, status, append, idle, id, enable, namespace_,   // authenticated
  getquota, getquotaroot, setquota,                            // authenticated (RFC 9208)
  compress,                                                    // authenticated (RFC 4978)
  check, close, unselect, expunge, search, fetch, store, copy, // selected
  move,                                                        // selected (RFC 6851)
  sort, thread,                                                // selected (RFC 5256)
  cancelupdate,                                                // selected (RFC 5267 §4.3)
};

// RFC 3501 §9 sequence-set: ranges of numbers; 0 stands for "*".
struct SequenceSet {
  struct Range {
    uint32_t first = 0;
    uint32_t last = 0;
  };
  std::vector<Range> ranges;
  // Does `n` fall in the set, with "*" meaning `star` (the largest number in use)?
  bool contains(uint32_t n, uint32_t star) const;
};

// RFC 3501 §6.4.5 section-spec.
struct Section {
  enum class Text { none, header, header_fields, header_fields_not, text, mime };
  std::vector<uint32_t> part;        // "1.2" → {1, 2}; empty: the whole message
  Text text = Text::none;
  std::vector<std::string> fields;   // HEADER.FIELDS (...), as sent
};

struct FetchAtt {
  enum class Kind {
    envelope, flags, internaldate, rfc822, rfc822_header, rfc822_size, rfc822_text,
    body, bodystructure, uid, body_section,
    modseq,  // RFC 7162 §3.1.4
    binary, binary_size,  // RFC 3516 §4.2 BINARY[part]<partial>, BINARY.SIZE[part]
  };
  Kind kind = Kind::flags;
  bool peek = false;                 // BODY.PEEK[...], BINARY.PEEK[...]
  Section section;                   // binary, binary_size: only `part`
  std::optional<uint64_t> partial_offset;  // <offset.count>
  uint64_t partial_count = 0;
};

// A calendar date (RFC 3501 date-day "dd-Mon-yyyy"), as days since 1970-01-01.
using Days = int64_t;

struct SearchKey {
  enum class Kind {
    all, answered, deleted, draft, flagged, seen, recent, new_, old,
    unanswered, undeleted, undraft, unflagged, unseen, keyword, unkeyword,
    bcc, cc, from, to, subject, body, text, header,
    before, on, since, sentbefore, senton, sentsince, larger, smaller,
    uid, sequence, not_, or_, and_,
    modseq,  // RFC 7162 §3.1.5 (the value in `number`; an entry name is ignored)
  };
  Kind kind = Kind::all;
  std::string field;   // header: field name
  std::string value;   // substring / keyword
  uint64_t number = 0; // larger/smaller/modseq
  Days date = 0;
  SequenceSet set;
  std::vector<SearchKey> children;  // not_: 1, or_: 2, and_: n
};

// RFC 5256 §3 sort-key: a sort criterion, optionally REVERSE; RFC 5957 §3
// adds DISPLAYFROM and DISPLAYTO.
struct SortKey {
  enum class Criterion { arrival, cc, date, from, size, subject, to, displayfrom, displayto };
  Criterion criterion = Criterion::arrival;
  bool reverse = false;
};

struct StoreOp {
  enum class Mode { replace, add, remove };
  Mode mode = Mode::replace;
  bool silent = false;
  std::vector<std::string> flags;
};

struct Command {
  std::string tag;
  Verb verb = Verb::noop;
  std::string name;                  // the verb as sent, upper-cased (logs, replies)
  bool uid = false;                  // UID FETCH/SEARCH/STORE/COPY/MOVE/EXPUNGE/SORT

  std::string mailbox;               // select/examine/create/delete/status/append/copy/move,
                                     // rename (old), list/lsub (reference),
                                     // getquotaroot; the quota root of getquota/setquota
  std::string mailbox2;              // rename (new), list/lsub (pattern)
  std::vector<std::string> items;    // status items, enable capabilities, ID
                                     // params (name, value, ...), upper-cased
                                     // except ID values; setquota (resource,
                                     // limit, ...); create (RFC 6154 use
                                     // attributes, as sent); search, sort (the
                                     // CHARSET given, upper-cased); cancelupdate
                                     // (the tags, as sent)
  std::string user;                  // login
  std::string password;              // login: secret, never log
  std::string mechanism;             // authenticate (upper-cased)
  std::optional<std::string> initial_response;  // authenticate (RFC 4959)

  SequenceSet set;                   // fetch/store/copy/search UID-set/uid expunge
  std::vector<FetchAtt> fetch;
  StoreOp store;
  SearchKey search;                  // and_ of the top-level keys (SEARCH, SORT)
  std::vector<SortKey> sort;         // SORT: the sort criteria, most significant first
  // RFC 5256 §3 THREAD: the algorithm asked for.
  enum class ThreadAlgorithm { ordered_subject, references };
  ThreadAlgorithm thread = ThreadAlgorithm::references;
  // RFC 4731 ESEARCH: SEARCH RETURN (MIN MAX ALL COUNT); "RETURN ()" is ALL.
  // RFC 5267 §3.2 ESORT: the same options for SORT RETURN (...). RFC 5267
  // §4.4: PARTIAL low:high.
  struct SearchReturn {
    bool requested = false;  // answer with * ESEARCH instead of * SEARCH
    bool min = false, max = false, all = false, count = false;
    // RFC 5267 §4.4 partial-range: positions in the result list (1-based,
    // in sort order for SORT), first <= last (a reversed range is swapped).
    struct Partial {
      uint32_t first = 1;
      uint32_t last = 1;
    };
    std::optional<Partial> partial;
    bool update = false;   // RFC 5267 §4.3 UPDATE: keep the client's copy of the result current
    bool context = false;  // RFC 5267 §4.2 CONTEXT: a hint that UPDATE or PARTIAL may follow; no effect
  };
  SearchReturn search_return;
  // RFC 5258 LIST-EXTENDED (and RFC 5819 LIST-STATUS): LIST (select
  // options) reference (patterns) RETURN (options). mailbox2 holds the
  // first pattern; the STATUS items go to `items`.
  struct ListOptions {
    bool extended = false;           // any of the extended syntax was used
    bool select_subscribed = false;  // (SUBSCRIBED)
    bool select_special_use = false; // (SPECIAL-USE), RFC 6154 §5.1
    bool recursive_match = false;    // (... RECURSIVEMATCH): CHILDINFO for parents
    bool return_subscribed = false;
    bool return_children = false;
    bool return_special_use = false;
    bool return_status = false;
    std::vector<std::string> patterns;  // all of them (mailbox2 is the first)
  };
  ListOptions list;
  // APPEND: one message, or several in one command (RFC 3502 MULTIAPPEND).
  struct AppendMessage {
    std::vector<std::string> flags;
    std::optional<int64_t> date;     // date-time as Unix seconds
    std::string message;             // the literal (empty with CATENATE)
    bool binary = false;             // sent as literal8 "~{n}" (RFC 3516 §4.3)
    // RFC 4469 §5 CATENATE (cat-part *(SP cat-part)): the message is the
    // parts joined, TEXT as sent and URL as the engine resolves it.
    struct CatPart {
      bool url = false;              // URL "imap-url" (else TEXT literal)
      std::string data;              // the URL as sent, or the text
      bool binary = false;           // TEXT as a literal8
    };
    std::vector<CatPart> catenate;   // empty: `message` is the message
  };
  std::vector<AppendMessage> append;
  bool condstore = false;                  // SELECT/EXAMINE (CONDSTORE), RFC 7162 §3.1.8
  // RFC 7162 §3.2.5 SELECT/EXAMINE (QRESYNC (uidvalidity modseq
  // [known-uids] [seq-match-data])); the seq-match-data is parsed and dropped.
  struct Qresync {
    uint32_t uidvalidity = 0;
    uint64_t modseq = 0;                   // >= 1
    std::optional<SequenceSet> known_uids; // no "*"
  };
  std::optional<Qresync> qresync;
  std::optional<uint64_t> changed_since;   // FETCH (CHANGEDSINCE n), RFC 7162 §3.1.4.1
  bool vanished = false;                   // UID FETCH (CHANGEDSINCE n VANISHED), RFC 7162 §3.2.6
  std::optional<uint64_t> unchanged_since; // STORE (UNCHANGEDSINCE n), RFC 7162 §3.1.3
};

struct ParseResult {
  std::optional<Command> command;
  std::string tag;    // "*" when no valid tag could be read
  std::string error;  // for "tag BAD <error>"
};

ParseResult parse_command(std::string_view text);

// RFC 5092 §11 (the subset RFC 4469 §5 CATENATE needs): a server-relative
// IMAP URL naming a message or a section of it in the user's own mailboxes,
// "/" enc-mailbox [";UIDVALIDITY=" n] "/;UID=" n ["/;SECTION=" enc-section]
// ["/;PARTIAL=" offset ["." length]], keys case-insensitive, %XX decoded.
struct ImapUrl {
  std::string mailbox;                   // decoded (the wire form: modified UTF-7)
  std::optional<uint32_t> uidvalidity;
  uint32_t uid = 0;
  Section section;                       // the whole message when empty
  std::optional<uint64_t> partial_offset;
  std::optional<uint64_t> partial_length;
};
// nullopt for anything else (an absolute "imap://" URL, URLAUTH, a
// malformed part): the engine answers NO [BADURL].
std::optional<ImapUrl> parse_imap_url(std::string_view url);

// The tag at the start of `text`, or "*" (for replies to unframeable input).
std::string tag_of(std::string_view text);

// Parse "dd-Mon-yyyy" (RFC 3501 date-text); nullopt if malformed.
std::optional<Days> parse_date_text(std::string_view text);
// Days since the epoch for a civil date (proleptic Gregorian).
Days days_from_civil(int64_t y, unsigned m, unsigned d);

}  // namespace hikyaku::imap::protocol

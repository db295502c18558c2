// Purpose:   The IMAP4rev1 server conversation as a sans-I/O engine: framed
//            commands in, response bytes and "actions" out. The states of
//            RFC 3501 §3 (not authenticated, authenticated, selected,
//            logout), the command table with state checks, SASL PLAIN, the
//            selected mailbox's view (sequence numbers ↔ UIDs, flags,
//            pending EXPUNGE/EXISTS/FETCH updates) and every command's work
//            over a MailStore. What needs I/O or time — TLS handshakes,
//            password checks (argon2id), the failed-login delay, opening the
//            mailbox, waiting in IDLE — is asked of the caller through an
//            Action. Mailbox operations call the MailStore synchronously:
//            the session runs the engine on its worker pool.
// Standards: RFC 3501 (IMAP4rev1), RFC 2177 (IDLE), RFC 2971 (ID),
//            RFC 5161 (ENABLE), RFC 2342 (NAMESPACE), RFC 3691 (UNSELECT),
//            RFC 4315 (UIDPLUS), RFC 4959 (SASL-IR), RFC 7888 (LITERAL+),
//            RFC 4731 (ESEARCH), RFC 5258/5819 (LIST-EXTENDED, LIST-STATUS),
//            RFC 6154 (SPECIAL-USE attributes, always shown), RFC 6851
//            (MOVE), RFC 4978 (COMPRESS=DEFLATE: the session
//            compresses, compression.hpp), RFC 5530 (response codes), RFC 9208 (QUOTA: one root over the
//            mailbox, STORAGE only), RFC 2595 §3.1/RFC 8314 (STARTTLS,
//            LOGINDISABLED), RFC 4616 (PLAIN), RFC 7162 §3.1 (CONDSTORE:
//            MODSEQ, HIGHESTMODSEQ, CHANGEDSINCE, UNCHANGEDSINCE/MODIFIED,
//            SEARCH MODSEQ; on once any CONDSTORE-enabling command was
//            seen, for the connection's life) and §3.2 (QRESYNC, after
//            ENABLE QRESYNC: SELECT/EXAMINE (QRESYNC ...), UID FETCH
//            (CHANGEDSINCE n VANISHED), VANISHED instead of EXPUNGE, the
//            CLOSED response code; no expunge history is kept, so VANISHED
//            (EARLIER) names every UID asked about that is not held),
//            RFC 5256 §3 (SORT, THREAD), RFC 5957 (SORT=DISPLAY),
//            RFC 5267 §3 (ESORT), RFC 3516 (BINARY: FETCH BINARY[part],
//            BINARY.PEEK, BINARY.SIZE decode base64 and quoted-printable,
//            literal8 when the octets hold a NUL, NO [UNKNOWN-CTE]; a
//            literal8 APPEND stores its binary parts as base64), RFC 3502
//            (MULTIAPPEND: all messages or none, APPENDUID with a uid-set),
//            RFC 4469 (CATENATE: TEXT parts and server-relative IMAP URLs of
//            the user's own messages, NO [BADURL] for one that names
//            nothing, checked after TRYCREATE), RFC 5267 §4 (CONTEXT=SEARCH,
//            CONTEXT=SORT: RETURN (PARTIAL low:high) for SEARCH and SORT;
//            RETURN (UPDATE) for SEARCH, answered by ADDTO/REMOVEFROM
//            whenever the client is told of a change, until CANCELUPDATE or
//            the mailbox is left; UPDATE for SORT is refused with NOUPDATE).
// Trust:     every command is untrusted; passwords travel only inside an
//            Action::authenticate and never appear in replies or logs made
//            here. Folder names are checked here (valid modified UTF-7, no
//            empty level, no wildcard) before a MailAccount sees them.
// Concurrency: one Engine per connection, one thread at a time.
// Errors:    protocol errors are tagged NO/BAD replies (values); storage
//            failures become "NO [SERVERBUG]" and the session goes on; an
//            answer to an action that was not asked for is a bug
//            (HIKYAKU_CHECK).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "imap/protocol/command.hpp"
#include "imap/protocol/framer.hpp"
#include "imap/protocol/store.hpp"

namespace hikyaku::imap::protocol {

struct Options {
  bool tls_available = false;    // STARTTLS can be offered
  bool tls_active = false;       // implicit TLS (993) or after STARTTLS
  bool allow_plaintext = false;  // config.auth.allow_plaintext (same rule as POP3)
  unsigned max_errors = 10;      // BAD commands before the server hangs up
  unsigned max_auth_failures = 3;
  uint64_t max_message_size = 50ull * 1024 * 1024;  // a CATENATE result larger: NO [TOOBIG] (RFC 4469 §5)
};

enum class State { not_authenticated, authenticated, selected, logout };

enum class LoginOutcome { ok, bad_credentials, unavailable };

struct Action {
  enum class Kind {
    none,          // write `reply`, read on
    start_tls,     // write `reply`, handshake, then tls_started()
    authenticate,  // verify user/password, open the account, then login_result()
    idle,          // write `reply` ("+ idling"); until input arrives, call
                   // idle_poll() when the mailbox may have changed
    close,         // write `reply`, close the connection
    compress,      // write `reply` uncompressed, then DEFLATE both ways (RFC 4978)
    more,          // write `reply`, then call resume() for the rest of the
                   // command's answer (a long FETCH, in chunks of kFetchChunk)
  };
  Kind kind = Kind::none;
  std::string reply;
  std::string user;       // authenticate
  std::string password;   // authenticate: secret, never log
  std::string mechanism;  // authenticate: "LOGIN" or "PLAIN"
  bool refused = false;   // authenticate: already refused (foreign authzid): delay only
  // Why a reply says [SERVERBUG] (the store's error, naming files): for the
  // server's log, never sent to the client.
  std::string problem;
};

class Engine {
 public:
  explicit Engine(Options options);

  std::string greeting() const;
  // One framed command; during AUTHENTICATE, the client's response line;
  // during IDLE, the line that should be "DONE".
  Action on_input(std::string_view text);
  // Framing trouble (Framer::Status too_long / too_large) with what was read.
  Action on_framing_error(Framer::Status status, std::string_view partial);
  // The "+" continuation request for a synchronising literal.
  static std::string continuation() { return "+ Ready for literal data\r\n"; }

  // After Action::Kind::more, once its reply is written: the next part.
  Action resume();
  // About how much of a FETCH's answer one Action carries.
  static constexpr size_t kFetchChunk = 1 << 20;

  void tls_started();
  // The answer to Action::authenticate; `account`: the user's folders when ok.
  Action login_result(LoginOutcome outcome, std::unique_ptr<MailAccount> account = nullptr);
  // During IDLE: untagged updates since the last report (may be empty).
  // A BYE when the selected folder's UIDVALIDITY changed: state() is then
  // logout, and the session ends once it is written.
  std::string idle_poll();
  // Give back the view's spare capacity (at the start of IDLE, which a
  // phone holds all day).
  void release_spare_capacity() { view_.shrink_to_fit(); }

  State state() const { return state_; }
  bool idling() const { return idle_tag_.has_value(); }
  const std::string& user() const { return user_; }
  // The selected folder's name (empty when none is selected).
  const std::string& selected() const { return selected_; }
  std::string capabilities() const;
  bool plaintext_login_allowed() const { return options_.tls_active || options_.allow_plaintext; }

 private:
  struct ViewEntry {
    StoredMessage msg;
    bool gone = false;  // expunged elsewhere, EXPUNGE not yet reported
  };

  Action dispatch(const Command& c);
  Action bad(const std::string& tag, const std::string& text);
  Action tagged(const std::string& tag, std::string_view status, std::string_view text,
                std::string untagged = {});
  Action authenticate(const std::string& tag, std::string user, std::string password,
                      std::string mechanism, bool refused);
  Action sasl_response(std::string_view line);

  Action cmd_select(const Command& c);
  Action cmd_list(const Command& c);
  Action cmd_status(const Command& c);
  Action cmd_folder(const Command& c);  // CREATE, DELETE, RENAME, (UN)SUBSCRIBE
  // "* STATUS NAME (...)" for c.items appended to `out`; an Action when the
  // store failed (NO) or an item is unknown (BAD).
  std::optional<Action> status_response(const Command& c, const std::string& name, MailStore& store,
                                        std::string& out);
  // A tagged NO [SERVERBUG] `text`, with `error` kept for the log.
  Action server_bug(const std::string& tag, const std::string& text, const base::Error& error,
                    std::string untagged = {});
  // The session's end when the selected folder has gone, or its UIDs lost
  // their meaning (an untagged BYE).
  Action folder_gone();
  // The selected folder can no longer be served under the UIDs the client
  // holds: deleted or renamed, or its UIDVALIDITY changed (sync()).
  bool selection_lost() const { return validity_lost_ || store_->gone(); }
  // After a command's answer: a selection lost meanwhile ends the session
  // once that answer is written.
  Action end_if_lost(Action a);
  // The folder name a command gave, checked and with INBOX in capitals, in
  // modified UTF-7 (converted from UTF-8 once UTF8=ACCEPT is enabled);
  // nullopt (and `why`) when it is not a name a folder can have.
  std::optional<std::string> folder_name(std::string_view given, std::string& why) const;
  // A folder name (modified UTF-7) as a response carries it: an atom or a
  // string, in UTF-8 once UTF8=ACCEPT is enabled (RFC 6855 §3).
  std::string wire_name(std::string_view name) const;
  // The selected folder's store when `name` is selected, else the folder opened.
  base::Result<std::shared_ptr<MailStore>> folder(const std::string& name);
  // The folder an APPEND, COPY or MOVE stores into; nullptr and `refusal`
  // (NO [TRYCREATE] when it does not exist) when there is none.
  std::shared_ptr<MailStore> target_folder(const Command& c, Action& refusal);
  // RFC 4469 §5: the bytes a CATENATE URL names (a message or a section of
  // it, partial applied) in this user's folders; nullopt when the URL is
  // invalid or names nothing (NO [BADURL]).
  std::optional<std::string> resolve_url(std::string_view url);
  // The tagged NO for a MailAccount error (RFC 5530 codes by errno).
  Action refused(const std::string& tag, const base::Error& error, std::string untagged = {});
  Action cmd_append(const Command& c);
  Action cmd_quota(const Command& c);
  // RFC 4731 * ESEARCH; `modseqs` (one per hit, or empty): RFC 7162 §3.1.5
  // MODSEQ. `hits` in the order to report: ascending for SEARCH, sort order
  // for ESORT (RFC 5267 §3.2: MIN and MAX are the first and last of them,
  // ALL keeps their order; §4.4: PARTIAL counts positions in that order).
  static std::string esearch_response(const Command& c, const std::vector<uint32_t>& hits,
                                      const std::vector<uint64_t>& modseqs);
  // Remove from the store what has \Deleted now (only UIDs in `uids`, when
  // given), the view synced first; untagged updates of that sync go to
  // `updates`. False when some message could not be removed.
  bool expunge_deleted(const SequenceSet* uids, std::string& updates);
  Action cmd_fetch(const Command& c);
  // A FETCH answered in parts (Action::Kind::more): where it stands.
  struct FetchRun {
    Command c;
    std::vector<size_t> indexes;  // view_ indexes of the set, in order
    size_t at = 0;                // indexes[at]: the message being answered
    bool started = false;         // its content read and its answer begun
    bool opened = false;          // "* n FETCH (" written for it
    size_t item = 0;              // its next attribute in c.fetch
    std::string content;          // its bytes, while attributes remain
    bool want_content = false, sets_seen = false, has_uid = false, has_flags = false, has_modseq = false;
    std::vector<bool> seen_now;   // by view_ index: \Seen set by this FETCH
    bool failed = false, expunged = false, unknown_cte = false;
    std::string problem;  // the first read's error, for the log
  };
  std::optional<FetchRun> fetch_;
  Action fetch_step(std::string out);
  Action cmd_store(const Command& c);
  Action cmd_search(const Command& c);
  Action cmd_sort(const Command& c);  // RFC 5256 §3, RFC 5957, RFC 5267 §3
  Action cmd_thread(const Command& c);  // RFC 5256 §3
  Action cmd_copy(const Command& c);  // COPY and MOVE
  Action cmd_expunge(const Command& c);
  Action cmd_cancelupdate(const Command& c);  // RFC 5267 §4.3

  // Reconcile the view with the store; untagged updates go to `out`.
  // EXPUNGE responses only when `allow_expunge` (RFC 3501 §7.4.1: never
  // during FETCH, STORE, SEARCH). False when the store failed.
  bool sync(bool allow_expunge, std::string& out);
  // The one place expunges are reported: drops the view's gone entries
  // and says so, "* n EXPUNGE" each, or once QRESYNC is on one "* VANISHED
  // uids" (RFC 7162 §3.2.10).
  std::string report_expunges();
  // RFC 7162 §3.2.5.1/§3.2.6 "* VANISHED (EARLIER) set": the UIDs of `uids`
  // ("*": UIDNEXT-1) below UIDNEXT that are not in the view; "" if none.
  std::string vanished_earlier(const SequenceSet& uids) const;
  // Indexes into view_ named by a sequence set (seq numbers or UIDs);
  // false when a sequence number does not exist.
  bool resolve(const SequenceSet& set, bool uid, std::vector<size_t>& out) const;
  bool matches(const SearchKey& key, size_t index, std::optional<std::string>& content);
  // Message `index`'s text, read into `content` the first time (once per
  // message and command); "" when it is gone from the store.
  const std::string& content_of(size_t index, std::optional<std::string>& content);
  void leave_selected();
  // "(\Answered ... kw1 kw2)": the system flags and the keywords in use.
  std::string flags_list() const;
  // Note keywords seen in the mailbox; "* FLAGS" when the list grew (RFC
  // 3501 §7.2.6) while selected.
  void learn(const Keywords& keywords, std::string& out);
  // "* n FETCH (...)" for message `index` after a flag change: UID when
  // `with_uid`, FLAGS when `with_flags`, MODSEQ once CONDSTORE is on.
  std::string flags_fetch(size_t index, bool with_uid, bool with_flags) const;

  // RFC 5267 §4.3: a SEARCH RETURN (UPDATE) whose result the client keeps,
  // and this session with it, until CANCELUPDATE or the mailbox is left.
  struct SearchUpdate {
    std::string tag;                // the SEARCH's tag, its name in ESEARCH (TAG "t")
    bool uid = false;               // UID SEARCH: UIDs are reported, else sequence numbers
    SearchKey criteria;
    // The criteria name sequence numbers or "*" (which an expunge or a new
    // message moves): every message is tested again at each report.
    bool positional = false;
    std::vector<uint32_t> matched;  // the UIDs of the result as the client knows it, ascending
  };
  // RFC 5267 §4.3: at most this many updating searches per selected
  // mailbox; one more is answered, with NOUPDATE.
  static constexpr size_t kMaxSearchUpdates = 10;
  // "* ESEARCH (TAG "t") [UID]": the start of every ESEARCH response.
  static std::string esearch_correlator(const std::string& tag, bool uid);
  // Message `index`'s flags, keywords or modseq changed, or it is new: the
  // next report_search_updates tests it against each updating search.
  void note_change(size_t index);
  // RFC 5267 §4.3: "* ESEARCH ... ADDTO/REMOVEFROM" for every updating
  // search whose result changed (the messages noted, or all of a
  // positional one); after the FETCH and EXISTS responses of the same
  // changes, so every number sent is one the client knows.
  std::string report_search_updates();
  // Whether an updating search (RFC 5267 §4.3) has `tag`.
  bool updating(const std::string& tag) const;
  // A SEARCH or SORT with RETURN (UPDATE) whose tag an updating search has.
  bool update_tag_in_use(const Command& c) const;
  // "* ESEARCH (TAG "t") [UID] ADDTO (0 set)" (or REMOVEFROM) for the
  // messages at view_ indexes `indexes` (ascending); "" when there are none.
  std::string search_update_response(const SearchUpdate& u, std::string_view what,
                                     const std::vector<size_t>& indexes) const;
  // The first CONDSTORE-enabling command (RFC 7162 §3.1): sets condstore_;
  // with a folder selected, "* OK [HIGHESTMODSEQ n]". "" when CONDSTORE was
  // on already, nothing is selected, or the store keeps no modseqs.
  std::string enable_condstore();

  Options options_;
  State state_ = State::not_authenticated;
  std::string user_;
  unsigned errors_ = 0;
  unsigned auth_failures_ = 0;
  std::optional<std::string> pending_tag_;  // AUTHENTICATE/LOGIN waiting for its answer
  bool sasl_waiting_ = false;               // AUTHENTICATE PLAIN sent "+ ", wants a response
  std::optional<std::string> idle_tag_;
  bool compressing_ = false;  // COMPRESS DEFLATE was answered OK
  bool utf8_ = false;         // ENABLE UTF8=ACCEPT (RFC 6855): names travel in UTF-8
  // RFC 7162 §3.1: a CONDSTORE-enabling command was seen (for the
  // connection's life; leave_selected keeps it): every FETCH carries MODSEQ.
  bool condstore_ = false;
  // RFC 7162 §3.2.3: ENABLE QRESYNC was answered (it turned condstore_ on
  // too): SELECT (QRESYNC ...), FETCH VANISHED, VANISHED for EXPUNGE.
  bool qresync_ = false;
  std::unique_ptr<MailAccount> account_;
  // Selected state.
  std::shared_ptr<MailStore> store_;
  std::string selected_;  // the selected folder's name
  std::vector<ViewEntry> view_;
  bool read_only_ = false;
  uint32_t uidvalidity_ = 0;
  // A scan found another UIDVALIDITY (the uidlist was lost and rebuilt):
  // the view's UIDs would name other messages, so it is left as it was and
  // the session ends before the next command (RFC 3501 §2.3.1.1).
  bool validity_lost_ = false;
  uint32_t uidnext_ = 1;
  uint64_t highest_modseq_ = 0;  // the selected folder's, at the last scan (0: none kept)
  size_t reported_recent_ = 0;
  Keywords known_keywords_;
  std::vector<SearchUpdate> search_updates_;  // RFC 5267 §4.3, in the order made
  std::vector<uint32_t> changed_uids_;        // note_change, while search_updates_ is not empty
};

}  // namespace hikyaku::imap::protocol

// Unit tests for IMAP THREAD (RFC 5256 §3): msg-id reading, REFERENCES
// steps 1-6 case by case (links, loops, duplicates, dummies, subjects,
// dates), ORDEREDSUBJECT, and the bounds a hostile header meets.
#include "imap/protocol/thread.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "base/strings.hpp"
#include "imap/protocol/message.hpp"

namespace hikyaku::imap::protocol {
namespace {

// A message numbered `number` (its sequence number), sent at `sent`.
ThreadMessage message(uint32_t number, std::string id, std::vector<std::string> references = {},
                      const std::string& subject = "", int64_t sent = 0) {
  ThreadMessage m;
  m.number = number;
  m.sent = sent;
  m.message_id = std::move(id);
  m.references = std::move(references);
  auto base = base_subject(subject);
  m.base_subject = base::to_upper(base.text);  // as the engine compares them
  m.reply_or_forward = base.reply_or_forward;
  return m;
}

TEST(Thread, Rfc5322MessageIds) {
  EXPECT_EQ(message_ids("<a@b>"), (std::vector<std::string>{"a@b"}));
  EXPECT_EQ(message_ids(" <a@b>\r\n\t<c@d> (comment <x@y>) <e@f>"),
            (std::vector<std::string>{"a@b", "c@d", "e@f"}));
  EXPECT_EQ(message_ids("\"quoted <q@r>\" <a@b>"), (std::vector<std::string>{"a@b"}));
  EXPECT_EQ(message_ids("<a\r\n @b>"), (std::vector<std::string>{"a@b"}));  // folded inside
  EXPECT_EQ(message_ids("<no-at> <<a@b> <c@d"), (std::vector<std::string>{"a@b"}));
  EXPECT_TRUE(message_ids("").empty());
  EXPECT_TRUE(message_ids("(unterminated <a@b>").empty());
  EXPECT_TRUE(message_ids("your message of yesterday").empty());
}

TEST(Thread, Rfc5256BaseSubjectReplyOrForward) {
  EXPECT_FALSE(base_subject("foo").reply_or_forward);
  EXPECT_FALSE(base_subject("  [list] foo").reply_or_forward);  // WSP and a blob are not
  EXPECT_TRUE(base_subject("Re: foo").reply_or_forward);
  EXPECT_TRUE(base_subject("[list] Fwd: foo").reply_or_forward);
  EXPECT_TRUE(base_subject("foo (fwd)").reply_or_forward);
  EXPECT_TRUE(base_subject("[fwd: foo]").reply_or_forward);
  EXPECT_FALSE(base_subject("Ad: foo").reply_or_forward);
}

TEST(Thread, Rfc5256ReferencesLinksAndDates) {
  // 2 replies to 1, 3 to 2, 4 to 1: "1 (2 3)(4)"; the children by sent date.
  std::vector<ThreadMessage> m = {
      message(1, "a@x"),
      message(2, "b@x", {"a@x"}, "", 10),
      message(3, "c@x", {"a@x", "b@x"}, "", 20),
      message(4, "d@x", {"a@x"}, "", 5),
  };
  EXPECT_EQ(thread_references(m), "(1 (4)(2 3))");
  // Threads by their first message's date, ties in mailbox order.
  m = {message(1, "a@x", {}, "", 50), message(2, "b@x", {}, "", 10), message(3, "c@x", {}, "", 50)};
  EXPECT_EQ(thread_references(m), "(2)(1)(3)");
  EXPECT_EQ(thread_references({}), "");
  // The numbers are the ones given (UIDs for UID THREAD).
  m = {message(7, "a@x"), message(9, "b@x", {"a@x"})};
  EXPECT_EQ(thread_references(m), "(7 9)");
}

TEST(Thread, Rfc5256ReferencesLoopsAndTruncatedReferences) {
  // The imaptest "thread" case: 2's References make 3 (c) a child of 1 (a);
  // 3's own reference (b, which is its child) would loop: 3 has no parent.
  std::vector<ThreadMessage> m = {
      message(1, "a@b", {}, "", 1706),
      message(2, "b@b", {"a@b", "c@b"}, "", 1506),
      message(3, "c@b", {"b@b"}, "", 1606),
  };
  EXPECT_EQ(thread_references(m), "(3 2)(1)");
  // A message referring to itself has no parent.
  m = {message(1, "a@x", {"a@x"})};
  EXPECT_EQ(thread_references(m), "(1)");
  // A link made by an earlier References is kept when a later message's
  // References disagree (step 1.A: "don't change the existing link").
  m = {message(1, "a@x"), message(2, "b@x"), message(3, "c@x", {"a@x", "z@x"}),
       message(4, "d@x", {"b@x", "z@x", "e@x"})};
  EXPECT_EQ(thread_references(m), "(1 (3)(4))(2)");
}

TEST(Thread, Rfc5256ReferencesDuplicateAndMissingIds) {
  // A second message with the same Message-ID is threaded as unique.
  std::vector<ThreadMessage> m = {message(1, "a@b"), message(2, "b@b", {"a@b"}), message(3, "c@b", {"b@b"}),
                                  message(4, "b@b", {"a@b"})};
  EXPECT_EQ(thread_references(m), "(1 (2 3)(4))");
  // Without Message-IDs: each its own thread.
  m = {message(1, ""), message(2, "")};
  EXPECT_EQ(thread_references(m), "(1)(2)");
}

TEST(Thread, Rfc5256ReferencesDummies) {
  // A dummy at the top with two children stays (its children are listed);
  // with one, the child takes its place; under a message, a dummy's
  // children take its place.
  std::vector<ThreadMessage> m = {message(1, "", {"gone@x"}), message(2, "", {"gone@x"})};
  EXPECT_EQ(thread_references(m), "((1)(2))");
  m = {message(1, "", {"gone@x"})};
  EXPECT_EQ(thread_references(m), "(1)");
  m = {message(1, "a@x"), message(2, "b@x", {"a@x", "gone@x"}), message(3, "c@x", {"a@x", "gone@x"})};
  EXPECT_EQ(thread_references(m), "(1 (2)(3))");
  // A dummy at the top sorts by its first child's date.
  m = {message(1, "a@x", {}, "", 30), message(2, "", {"gone@x"}, "", 40), message(3, "", {"gone@x"}, "", 20)};
  EXPECT_EQ(thread_references(m), "((3)(2))(1)");
}

TEST(Thread, Rfc5256ReferencesSubjects) {
  // Step 5: a reply joins the non-reply of its subject as its child; two
  // non-replies go under a dummy; an empty subject never joins.
  std::vector<ThreadMessage> m = {message(1, "a@x", {}, "foo", 1), message(2, "b@x", {}, "Re: foo", 2)};
  EXPECT_EQ(thread_references(m), "(1 2)");
  m = {message(1, "a@x", {}, "Re: foo", 1), message(2, "b@x", {}, "foo", 2)};
  EXPECT_EQ(thread_references(m), "(2 1)");
  m = {message(1, "a@x", {}, "foo", 1), message(2, "b@x", {}, "foo", 2), message(3, "c@x", {}, "bar", 3)};
  EXPECT_EQ(thread_references(m), "((1)(2))(3)");
  m = {message(1, "a@x", {}, "", 1), message(2, "b@x", {}, "Re: ", 2)};
  EXPECT_EQ(thread_references(m), "(1)(2)");
  // A dummy (two replies to a message not in the mailbox) takes a thread
  // of its subject as a child.
  m = {message(1, "b@x", {"gone@x"}, "Re: foo", 1), message(2, "c@x", {"gone@x"}, "Re: foo", 2),
       message(3, "d@x", {}, "foo", 3)};
  EXPECT_EQ(thread_references(m), "((1)(2)(3))");
}

TEST(Thread, Rfc5256OrderedSubject) {
  // By base subject, then date; threads by their first message's date; one
  // child after a space, several each in parentheses.
  std::vector<ThreadMessage> m = {
      message(1, "", {}, "b", 10), message(2, "", {}, "a", 20), message(3, "", {}, "Re: b", 5),
      message(4, "", {}, "a", 30), message(5, "", {}, "B", 15), message(6, "", {}, "", 1),
  };
  EXPECT_EQ(thread_ordered_subject(m), "(6)(3 (1)(5))(2 4)");
  EXPECT_EQ(thread_ordered_subject({}), "");
}

TEST(Thread, HostileReferencesAreBounded) {
  // A chain 3,000 deep: links beyond kMaxDepth levels are refused, so a
  // message far down starts its own thread, and nothing is quadratic in
  // the chain's length beyond that bound.
  std::vector<ThreadMessage> m;
  for (uint32_t i = 1; i <= 3000; ++i) {
    std::vector<std::string> refs;
    if (i > 1) refs.push_back(std::to_string(i - 1) + "@x");
    m.push_back(message(i, std::to_string(i) + "@x", refs, "", i));
  }
  std::string threads = thread_references(m);
  EXPECT_TRUE(threads.starts_with("(1 2 3 "));
  EXPECT_GT(std::count(threads.begin(), threads.end(), '('), 1);
  // One message with more references than are read: only the last count.
  std::vector<std::string> refs;
  for (size_t i = 0; i < kMaxReferences + 50; ++i) refs.push_back("r" + std::to_string(i) + "@x");
  m = {message(1, "r0@x"), message(2, "z@x", refs)};
  EXPECT_EQ(thread_references(m), "(1)(2)");  // r0 is beyond the window: 2 is not 1's
}

}  // namespace
}  // namespace hikyaku::imap::protocol

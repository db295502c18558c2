// mailbox::UidList: the file format of hikyaku-uidlist, read and written
// (the store's use of it: imap/maildir_store_test.cpp).
#include "mailbox/uidlist.hpp"

#include <string>

#include <gtest/gtest.h>

namespace hikyaku::mailbox {
namespace {

TEST(UidList, FormatsVersionTwoAndReadsItBack) {
  UidList list;
  list.validity = 1700000000;
  list.next = 12;
  list.first_recent = 11;
  list.highest_modseq = 9223372036854775807ULL;
  list.entries.push_back({3, "1700000000.M1P2Q3.host,S=10,W=12", 7, std::string("RS")});
  list.entries.push_back({11, "1700000001.M1P2Q4.host", 1, std::string()});
  const std::string text = list.format();
  EXPECT_EQ(text,
            "hikyaku-uidlist 2 1700000000 12 11 9223372036854775807\n"
            "3 1700000000.M1P2Q3.host,S=10,W=12 7 2,RS\n"
            "11 1700000001.M1P2Q4.host 1 2,\n");
  auto back = UidList::parse(text);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->validity, list.validity);
  EXPECT_EQ(back->next, list.next);
  EXPECT_EQ(back->first_recent, list.first_recent);
  EXPECT_EQ(back->highest_modseq, list.highest_modseq);
  ASSERT_EQ(back->entries.size(), 2u);
  EXPECT_EQ(back->entries[0].uid, 3u);
  EXPECT_EQ(back->entries[0].name, "1700000000.M1P2Q3.host,S=10,W=12");
  EXPECT_EQ(back->entries[0].modseq, 7u);
  EXPECT_EQ(back->entries[0].letters, "RS");
  EXPECT_EQ(back->entries[1].letters, "");
  EXPECT_EQ(back->format(), text);
}

TEST(UidList, AnEmptyListHasOnlyItsHeader) {
  auto list = UidList::parse("hikyaku-uidlist 2 5 1 1 1\n");
  ASSERT_TRUE(list);
  EXPECT_TRUE(list->entries.empty());
  EXPECT_EQ(list->format(), "hikyaku-uidlist 2 5 1 1 1\n");
}

TEST(UidList, ReadsVersionOne) {
  auto list = UidList::parse("hikyaku-uidlist 1 555 4 3\n1 a\n3 b\n");
  ASSERT_TRUE(list);
  EXPECT_EQ(list->validity, 555u);
  EXPECT_EQ(list->next, 4u);
  EXPECT_EQ(list->first_recent, 3u);
  EXPECT_EQ(list->highest_modseq, 1u);
  ASSERT_EQ(list->entries.size(), 2u);
  EXPECT_EQ(list->entries[1].name, "b");
  EXPECT_FALSE(list->entries[1].letters);  // numbered as it is at the next scan
  // FIRST-RECENT is optional in version 1, and never beyond NEXT.
  EXPECT_EQ(UidList::parse("hikyaku-uidlist 1 555 4\n")->first_recent, 4u);
  EXPECT_EQ(UidList::parse("hikyaku-uidlist 1 555 4 9\n")->first_recent, 4u);
  EXPECT_EQ(UidList::parse("hikyaku-uidlist 1 555 4 x\n")->first_recent, 4u);
}

TEST(UidList, TakesAnyWhiteSpaceBetweenTokens) {
  auto list = UidList::parse("hikyaku-uidlist  2\t555 4 1 9\r\n 1  a 2 2,S\r\n\n3\tb\t9\t2,\n");
  ASSERT_TRUE(list);
  ASSERT_EQ(list->entries.size(), 2u);
  EXPECT_EQ(list->entries[0].letters, "S");
  EXPECT_EQ(list->entries[1].name, "b");
  EXPECT_EQ(list->entries[1].modseq, 9u);
  EXPECT_EQ(UidList::parse("hikyaku-uidlist 2 555 4 1 9\n1 a 2 2,")->entries.size(), 1u);  // no last newline
}

TEST(UidList, RefusesWhatItDidNotWrite) {
  for (const char* bad : {
           "",                                                    // empty
           "hikyaku-uidlist 2 555 4 1 9",                         // no header line end
           "dovecot-uidlist 2 555 4 1 9\n",                       // another magic
           "hikyaku-uidlist 3 555 4 1 9\n",                       // unknown version
           "hikyaku-uidlist 2 0 4 1 9\n",                         // UIDVALIDITY 0
           "hikyaku-uidlist 2 555 0 1 9\n",                       // NEXT 0
           "hikyaku-uidlist 2 555 4 1\n",                         // no HIGHESTMODSEQ
           "hikyaku-uidlist 2 555 4 1 0\n",                       // HIGHESTMODSEQ 0
           "hikyaku-uidlist 2 555 4 1 9223372036854775808\n",     // above 2^63-1
           "hikyaku-uidlist 2 4294967296 4 1 9\n",                // UIDVALIDITY too large
           "hikyaku-uidlist 2 555 4 1 9\n2 a 1 2,\n1 b 1 2,\n",   // UIDs not ascending
           "hikyaku-uidlist 2 555 4 1 9\n2 a 1 2,\n2 b 1 2,\n",   // a UID twice
           "hikyaku-uidlist 2 555 4 1 9\n4 a 1 2,\n",             // UID not below NEXT
           "hikyaku-uidlist 2 555 4 1 9\n0 a 1 2,\n",             // UID 0
           "hikyaku-uidlist 2 555 4 1 9\n1 a 0 2,\n",             // modseq 0
           "hikyaku-uidlist 2 555 4 1 9\n1 a 10 2,\n",            // modseq above HIGHESTMODSEQ
           "hikyaku-uidlist 2 555 4 1 9\n1 a 1 S\n",              // no "2,"
           "hikyaku-uidlist 2 555 4 1 9\n1 a 1\n",                // no info
           "hikyaku-uidlist 2 555 4 1 9\n1\n",                    // no name
           "hikyaku-uidlist 2 555 4 1 9\nx a 1 2,\n",             // not a number
           "hikyaku-uidlist 2 555 4 1 9\n1x a 1 2,\n",            // not only a number
           "hikyaku-uidlist 2 555 4 1 9\n-1 a 1 2,\n",            // a sign
           "hikyaku-uidlist 2 +555 4 1 9\n",                      // a sign
       }) {
    EXPECT_FALSE(UidList::parse(bad)) << bad;
  }
}

}  // namespace
}  // namespace hikyaku::mailbox

#include "mail/target.hpp"

#include <gtest/gtest.h>

namespace hikyaku::mail {
namespace {

TEST(Target, ParsesWhatTheConfigurationWrites) {
  auto m = Target::parse("Mailbox:spare");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(*m, (Target{Target::Kind::mailbox, "spare"}));
  auto f = Target::parse("forward:Me@Gmail.test");
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_EQ(*f, (Target{Target::Kind::forward, "me@gmail.test"}));
  EXPECT_EQ(Target::parse(f->str()).value(), *f);  // str() reads back equal
}

TEST(Target, SaysWhatIsWrong) {
  EXPECT_EQ(Target::parse("mailbox:../etc").error().message, "'../etc' is not a mailbox name");
  EXPECT_EQ(Target::parse("mailbox:").error().message, "'' is not a mailbox name");
  EXPECT_EQ(Target::parse("forward:not an address").error().message, "'not an address' is not an email address");
  EXPECT_EQ(Target::parse("forward:").error().message, "'' is not an email address");
  EXPECT_EQ(Target::parse("pipe:/bin/sh").error().message,
            "'pipe:/bin/sh' must be \"mailbox:NAME\" or \"forward:ADDRESS\"");
  EXPECT_FALSE(Target::parse("relay:a@b.test"));  // never written by hand
}

TEST(Target, MailboxNamesAreOneDirectory) {
  for (const char* ok : {"a", "me.gm", "x_y-z", "A1"}) EXPECT_TRUE(valid_mailbox_name(ok)) << ok;
  for (const char* bad : {"", ".hidden", "a/b", "..", "a b", "é"}) EXPECT_FALSE(valid_mailbox_name(bad)) << bad;
  EXPECT_TRUE(valid_mailbox_name(std::string(64, 'a')));
  EXPECT_FALSE(valid_mailbox_name(std::string(65, 'a')));
}

}  // namespace
}  // namespace hikyaku::mail

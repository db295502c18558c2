#include "mail/message.hpp"

#include <gtest/gtest.h>

#include <filesystem>

namespace hikyaku::mail {
namespace {

// A file without a name holding `bytes`, as a FileRange over all of it.
FileRange file_with(const std::string& bytes) {
  auto fd = base::open_temporary(std::filesystem::temp_directory_path());
  EXPECT_TRUE(fd) << fd.error().message;
  EXPECT_TRUE(base::write_all(fd->get(), bytes, "tmp"));
  return FileRange{std::make_shared<const base::UniqueFd>(std::move(fd).value()), "tmp", 0, bytes.size()};
}

std::string all_of(const Message& m, size_t piece) {
  std::string out;
  auto st = for_each_piece(
      m,
      [&](std::string_view p) {
        EXPECT_LE(p.size(), piece);
        out += p;
        return base::Status{};
      },
      piece);
  EXPECT_TRUE(st);
  return out;
}

TEST(Message, CursorReadsTextThenTheBodyFileInPieces) {
  const std::string body = "a\r\nbb\r\nccc\r\n";
  Message m{"Subject: x\r\n\r\n", file_with("skip" + body)};
  m.body->offset = 4;
  m.body->size = body.size();
  EXPECT_EQ(m.size(), 14 + body.size());
  for (size_t piece : {size_t{1}, size_t{5}, size_t{1000}}) EXPECT_EQ(all_of(m, piece), m.text + body);
}

TEST(Message, AShortFileIsAnErrorNeverATruncatedMessage) {
  Message m{"Subject: x\r\n\r\n", file_with("abc")};
  m.body->size = 10;
  auto st = for_each_piece(m, [](std::string_view) { return base::Status{}; });
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("short file"), std::string::npos) << st.error().message;
}

// RFC 5322 §2.1: a stored large message is split after the empty line that
// ends its header section; a small one is read whole.
TEST(Message, ReadMessageKeepsOnlyALargeMessagesHeaderSectionInMemory) {
  const std::string head = "Received: x\r\nSubject: y\r\n\r\n";
  const std::string body(kSpillThreshold + 10, 'b');
  auto large = read_message(file_with(head + body));
  ASSERT_TRUE(large);
  EXPECT_EQ(large->text, head);
  ASSERT_TRUE(large->body);
  EXPECT_EQ(large->body->offset, head.size());
  EXPECT_EQ(all_of(*large, 4096), head + body);

  // Just past the threshold, shorter than the window the split looks in.
  const std::string just = head + std::string(kSpillThreshold - head.size() + 1, 'j');
  auto barely = read_message(file_with(just));
  ASSERT_TRUE(barely) << barely.error().message;
  EXPECT_EQ(barely->text, head);
  EXPECT_EQ(all_of(*barely, 7777), just);

  // The largest header section a client may send, with our fields in
  // front of it: still split at its empty line, not inside the header.
  std::string client_head;
  while (client_head.size() < kMaxHeaderSection - 100) client_head += "X-Filler: " + std::string(60, 'f') + "\r\n";
  const std::string ours = "Received: " + std::string(2000, 'r') + "\r\nAuthentication-Results: mx; spf=pass\r\n";
  const std::string big_head = ours + client_head + "\r\n";
  auto big = read_message(file_with(big_head + body));
  ASSERT_TRUE(big);
  EXPECT_EQ(big->text.size(), big_head.size());
  EXPECT_TRUE(big->text.ends_with("\r\n\r\n"));

  auto small = read_message(file_with(head + "small\r\n"));
  ASSERT_TRUE(small);
  EXPECT_EQ(small->text, head + "small\r\n");
  EXPECT_FALSE(small->body);
}

}  // namespace
}  // namespace hikyaku::mail

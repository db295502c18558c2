#include "imap/protocol/compression.hpp"

#include <zlib.h>

#include <string>

#include <gtest/gtest.h>

namespace hikyaku::imap::protocol {
namespace {

// The client's side, straight on zlib: raw DEFLATE, 32 KiB window.
class Peer {
 public:
  Peer() {
    EXPECT_EQ(deflateInit2(&out_, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    EXPECT_EQ(inflateInit2(&in_, -15), Z_OK);
  }
  ~Peer() {
    deflateEnd(&out_);
    inflateEnd(&in_);
  }
  std::string compress(const std::string& plain, int flush = Z_SYNC_FLUSH) {
    std::string out(plain.size() + 1024, '\0');
    out_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(plain.data()));
    out_.avail_in = static_cast<uInt>(plain.size());
    out_.next_out = reinterpret_cast<Bytef*>(out.data());
    out_.avail_out = static_cast<uInt>(out.size());
    EXPECT_NE(deflate(&out_, flush), Z_STREAM_ERROR);
    out.resize(out.size() - out_.avail_out);
    return out;
  }
  // Everything `packed` holds, or "<error>".
  std::string decompress(const std::string& packed) {
    std::string out(1 << 20, '\0');
    in_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(packed.data()));
    in_.avail_in = static_cast<uInt>(packed.size());
    in_.next_out = reinterpret_cast<Bytef*>(out.data());
    in_.avail_out = static_cast<uInt>(out.size());
    int rc = inflate(&in_, Z_SYNC_FLUSH);
    if (rc != Z_OK && rc != Z_BUF_ERROR) return "<error>";
    if (in_.avail_in != 0) return "<input left>";
    out.resize(out.size() - in_.avail_out);
    return out;
  }

 private:
  z_stream out_{};
  z_stream in_{};
};

std::string drain(Deflate& d, size_t step = 1 << 16) {
  std::string all;
  for (;;) {
    auto got = d.decompress(step);
    EXPECT_TRUE(got);
    if (!got || got->empty()) return all;
    all += *got;
  }
}

// RFC 4978 §4: each response is flushed, so the client decodes it at once.
TEST(Compression, Rfc4978EachResponseDecodesOnItsOwn) {
  Deflate d;
  Peer client;
  for (const std::string& reply : {std::string("* CAPABILITY IMAP4rev1\r\n"), std::string("a1 OK done\r\n"), std::string(100000, 'x')}) {
    auto packed = d.compress(reply);
    ASSERT_TRUE(packed);
    EXPECT_EQ(client.decompress(*packed), reply);
  }
  auto empty = d.compress("");
  ASSERT_TRUE(empty);
  EXPECT_EQ(client.decompress(*empty), "");
}

TEST(Compression, CommandsArriveInAnyPieces) {
  Deflate d;
  Peer client;
  std::string packed = client.compress("a1 SELECT INBOX\r\n") + client.compress("a2 NOOP\r\n");
  // Byte by byte: nothing is lost or repeated.
  std::string got;
  for (char c : packed) {
    d.feed(std::string(1, c));
    got += drain(d);
  }
  EXPECT_EQ(got, "a1 SELECT INBOX\r\na2 NOOP\r\n");
  EXPECT_FALSE(d.pending());
}

// A few KiB that inflate to 8 MiB come out in bounded steps.
TEST(Compression, ABombIsHandedOutInBoundedSteps) {
  Deflate d;
  Peer client;
  std::string packed = client.compress(std::string(8 << 20, 'A'));
  EXPECT_LT(packed.size(), 64u * 1024);
  d.feed(packed);
  size_t total = 0;
  while (d.pending()) {
    auto got = d.decompress(64 * 1024);
    ASSERT_TRUE(got);
    EXPECT_LE(got->size(), 64u * 1024);
    total += got->size();
  }
  EXPECT_EQ(total, 8u << 20);
}

TEST(Compression, CorruptInputAndDataAfterTheEndAreErrors) {
  {
    Deflate d;
    d.feed(std::string("\xff\xff\xff\xff\xff\xff", 6));
    EXPECT_FALSE(d.decompress(1024));
  }
  {
    Deflate d;
    Peer client;
    d.feed(client.compress("a1 LOGOUT\r\n", Z_FINISH));
    EXPECT_EQ(drain(d), "a1 LOGOUT\r\n");
    d.feed("more");
    EXPECT_FALSE(d.decompress(1024));
  }
}

}  // namespace
}  // namespace hikyaku::imap::protocol

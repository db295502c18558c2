#include "imap/protocol/compression.hpp"

#include <zlib.h>

#include "base/result.hpp"

namespace hikyaku::imap::protocol {

struct Deflate::Streams {
  z_stream out{};  // deflate: our responses
  z_stream in{};   // inflate: the client's commands
  std::string input;      // fed, not yet consumed by inflate
  size_t input_used = 0;  // bytes of `input` consumed
  bool more_output = false;  // the last inflate filled its buffer: it may hold more
  bool ended = false;        // the client's stream has ended (Z_STREAM_END)
};

Deflate::Deflate() : z_(std::make_unique<Streams>()) {
  // Raw DEFLATE (negative window bits). Our side: 8 KiB window, memLevel 6.
  HIKYAKU_CHECK(deflateInit2(&z_->out, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -13, 6, Z_DEFAULT_STRATEGY) == Z_OK);
  // The client's side may use the largest window (RFC 1951: 32 KiB).
  HIKYAKU_CHECK(inflateInit2(&z_->in, -15) == Z_OK);
}

Deflate::~Deflate() {
  deflateEnd(&z_->out);
  inflateEnd(&z_->in);
}

base::Result<std::string> Deflate::compress(std::string_view plain) {
  std::string out;
  z_stream& z = z_->out;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(plain.data()));
  z.avail_in = static_cast<uInt>(plain.size());
  // Z_SYNC_FLUSH: all of it goes out now, ending on a byte boundary; the
  // loop runs until deflate leaves room in its buffer (nothing more held).
  do {
    const size_t at = out.size();
    const size_t room = plain.size() / 2 + 64;
    out.resize(at + room);
    z.next_out = reinterpret_cast<Bytef*>(out.data() + at);
    z.avail_out = static_cast<uInt>(room);
    int rc = deflate(&z, Z_SYNC_FLUSH);
    if (rc != Z_OK && rc != Z_BUF_ERROR) return base::make_error("deflate failed");
    out.resize(at + room - z.avail_out);
  } while (z.avail_out == 0);
  return out;
}

void Deflate::feed(std::string_view compressed) {
  // Keep only what inflate has not consumed yet.
  z_->input.erase(0, z_->input_used);
  z_->input_used = 0;
  z_->input.append(compressed);
}

bool Deflate::pending() const { return z_->input_used < z_->input.size() || z_->more_output; }

base::Result<std::string> Deflate::decompress(size_t max) {
  std::string out(max, '\0');
  z_stream& z = z_->in;
  const size_t available = z_->input.size() - z_->input_used;
  if (z_->ended) {
    if (available > 0) return base::make_error("data after the end of the compressed stream");
    return std::string();
  }
  z.next_in = reinterpret_cast<Bytef*>(z_->input.data() + z_->input_used);
  z.avail_in = static_cast<uInt>(available);
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(max);
  int rc = inflate(&z, Z_SYNC_FLUSH);
  z_->input_used += available - z.avail_in;
  if (rc == Z_STREAM_END) {
    z_->ended = true;
  } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
    return base::make_error("corrupt compressed input");
  }
  out.resize(max - z.avail_out);
  z_->more_output = z.avail_out == 0;
  return out;
}

}  // namespace hikyaku::imap::protocol

// Purpose:   IMAP COMPRESS=DEFLATE (RFC 4978): after "COMPRESS DEFLATE" is
//            answered OK, every byte in both directions is raw DEFLATE
//            (RFC 1951: no zlib or gzip header). Sans-I/O: the session
//            hands received bytes to feed() and reads the commands back
//            with decompress(); it passes every response through
//            compress(), which flushes (Z_SYNC_FLUSH, RFC 4978 §4) so the
//            client can decode each response as soon as it arrives.
// Memory:    the inflater keeps the 32 KiB window the client may use; our
//            deflater uses an 8 KiB window and memLevel 6 (about 64 KiB in
//            all instead of zlib's default 256 KiB): idle phones in IDLE
//            cost little, at a small loss of ratio.
// Trust:     the compressed input is untrusted. decompress() returns at
//            most `max` bytes per call, so a small input that inflates
//            enormously (a "zip bomb") is parsed in bounded steps by the
//            framer, which applies its own line and literal limits.
// Errors:    corrupt input or an input after the end of the stream is an
//            Error (the session ends the connection); nothing throws.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace hikyaku::imap::protocol {

class Deflate {
 public:
  Deflate();
  ~Deflate();
  Deflate(const Deflate&) = delete;
  Deflate& operator=(const Deflate&) = delete;

  // Compress `plain`, flushed: the peer can decode all of it now.
  base::Result<std::string> compress(std::string_view plain);

  // Received compressed bytes; decompress() hands them out decompressed.
  void feed(std::string_view compressed);
  // Up to `max` decompressed bytes of what was fed (possibly none: more
  // input is needed).
  base::Result<std::string> decompress(size_t max);
  // Fed input not yet decompressed (call decompress() before reading more).
  bool pending() const;

 private:
  struct Streams;
  std::unique_ptr<Streams> z_;
};

}  // namespace hikyaku::imap::protocol

// Unit tests for the MIME walker (RFC 2045/2046/2183/2231) and the
// attachments [scan] clamd_scope = "attachments" sends to clamd.
#include "mail/mime.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace hikyaku::mail::mime {
namespace {

using namespace std::string_literals;

// A multipart with one part, `inner`, under boundary `name`.
std::string nest(const std::string& inner, const std::string& name) {
  std::string out = "Content-Type: multipart/mixed; boundary=";
  out += name;
  out += "\r\n\r\n--";
  out += name;
  out += "\r\n";
  out += inner;
  out += "\r\n--";
  out += name;
  out += "--\r\n";
  return out;
}

// A multipart/mixed message with the given body parts (each its MIME
// header, an empty line and its body).
std::string mixed(const std::vector<std::string>& parts, std::string_view boundary = "b1") {
  std::string m = "From: a@example.com\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
                  "Content-Type: multipart/mixed; boundary=\"" +
                  std::string(boundary) + "\"\r\n\r\npreamble\r\n";
  for (const auto& p : parts) m += "--" + std::string(boundary) + "\r\n" + p + "\r\n";
  return m + "--" + std::string(boundary) + "--\r\nepilogue\r\n";
}

// The decoded attachments of `message` ("WHOLE" when it must be sent whole).
std::vector<std::string> sent(std::string_view message) {
  const Tree tree = parse(message);
  const Attachments a = find_attachments(tree);
  if (a.whole_message) return {"WHOLE"};
  std::vector<std::string> out;
  for (const auto& part : a.parts) {
    std::string storage;
    out.emplace_back(content(part, storage));
  }
  return out;
}

constexpr std::string_view kText = "Content-Type: text/plain; charset=utf-8\r\n\r\nHello.";

TEST(Mime, Rfc2046Section5_1_1TreeAndViews) {
  const std::string m = mixed({std::string(kText), "Content-Type: application/pdf\r\n\r\n%PDF-1.4"});
  const Tree t = parse(m);
  EXPECT_TRUE(t.complete);
  ASSERT_TRUE(t.root.multipart());
  ASSERT_EQ(t.root.children.size(), 2u);
  EXPECT_EQ(t.root.children[0].type.subtype, "PLAIN");
  EXPECT_EQ(t.root.children[0].body, "Hello.");
  EXPECT_EQ(t.root.children[1].type.type, "APPLICATION");
  EXPECT_EQ(t.root.children[1].body, "%PDF-1.4");
  // The header/body split of the stored form gives the same tree.
  const HeaderBody hb = split_entity(m);
  const Tree t2 = parse(hb.header, hb.body);
  ASSERT_EQ(t2.root.children.size(), 2u);
  EXPECT_EQ(t2.root.children[1].body, "%PDF-1.4");
}

TEST(Mime, AttachmentRuleLikeRspamdAntivirusDefaults) {
  struct Case {
    const char* name;
    std::string message;
    std::vector<std::string> want;
  };
  const std::string png = "\x89PNG\r\n\x1a\n rest"s;
  const std::vector<Case> cases = {
      {"plain text only: nothing is sent", "Subject: x\r\n\r\nX5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR", {}},
      {"text body and html alternative: nothing",
       mixed({std::string(kText), "Content-Type: text/html\r\n\r\n<p>hi</p>"}), {}},
      {"base64 attachment decoded (RFC 2045 §6.8)",
       mixed({std::string(kText), "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
                     "Content-Disposition: attachment; filename=\"a.bin\"\r\n\r\naGVs\r\nbG8=\r\n"}),
       {"hello"}},
      {"text/plain with Content-Disposition attachment (RFC 2183 §2.2), quoted-printable",
       mixed({std::string(kText), "Content-Type: text/plain\r\nContent-Disposition: attachment\r\n"
                     "Content-Transfer-Encoding: quoted-printable\r\n\r\na=3Db"}),
       {"a=b"}},
      {"text/plain with a name (Content-Type name)",
       mixed({"Content-Type: text/plain; name=x.txt\r\n\r\nEICAR"}), {"EICAR"}},
      {"RFC 2231 §3 filename*",
       mixed({"Content-Type: text/plain\r\nContent-Disposition: inline; filename*=utf-8''x.txt\r\n\r\nX"}), {"X"}},
      {"inline unnamed non-text part: sent",
       mixed({std::string(kText), "Content-Type: application/zip\r\n\r\nPK"}),
       {"PK"}},
      {"single-part message of a non-text type",
       "Content-Type: application/x-msdownload\r\nContent-Transfer-Encoding: 7bit\r\n\r\nMZ", {"MZ"}},
      {"a real PNG is not sent",
       mixed({std::string(kText),
              "Content-Type: image/png\r\nContent-Disposition: attachment; filename=a.png\r\n\r\n" + png}),
       {}},
      {"a base64 JPEG is not sent",
       mixed({"Content-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\n\r\n/9j/4AAQ\r\n"}), {}},
      {"image/png that is not an image is sent",
       mixed({"Content-Type: image/png; name=a.png\r\n\r\nMZ\x90"}), {"MZ\x90"}},
      {"message/rfc822 is walked into (RFC 2046 §5.2.1)",
       mixed({std::string(kText), "Content-Type: message/rfc822\r\n\r\n" +
                         mixed({"Content-Type: application/pdf\r\n\r\ninner"}, "b2")}),
       {"inner"}},
      {"multipart/digest parts are messages (RFC 2046 §5.1.5)",
       "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\n"
       "Content-Type: application/pdf\r\n\r\nin digest\r\n--d--\r\n",
       {"in digest"}},
      {"CTE case and comment", mixed({"Content-Type: application/pdf\r\nContent-Transfer-Encoding: "
                                      "BASE64 (encoded)\r\n\r\naGk=\r\n"}), {"hi"}},
      {"an encoding hikyaku cannot undo: whole",
       mixed({"Content-Type: application/pdf\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin"}),
       {"WHOLE"}},
      {"multipart without boundary: whole", "Content-Type: multipart/mixed\r\n\r\nMZ", {"WHOLE"}},
      {"multipart without a delimiter line: whole", "Content-Type: multipart/mixed; boundary=q\r\n\r\nMZ",
       {"WHOLE"}},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(sent(c.message), c.want) << c.name;
  }
}

TEST(Mime, BoundsMeanTheWholeMessage) {
  // Nesting deeper than kMaxDepth.
  std::string deep = "Content-Type: application/pdf\r\n\r\nbottom";
  for (int i = 0; i < kMaxDepth + 4; ++i) deep = nest(deep, "n" + std::to_string(i));
  EXPECT_FALSE(parse(deep).complete);
  EXPECT_EQ(sent(deep), std::vector<std::string>{"WHOLE"});
  // Shallower nesting is walked.
  std::string shallow = "Content-Type: application/pdf\r\n\r\nbottom";
  for (int i = 0; i < 5; ++i) shallow = nest(shallow, "n" + std::to_string(i));
  EXPECT_EQ(sent(shallow), std::vector<std::string>{"bottom"});
  // More parts than kMaxParts.
  std::vector<std::string> many(kMaxParts + 1, std::string(kText));
  EXPECT_FALSE(parse(mixed(many)).complete);
  EXPECT_EQ(sent(mixed(many)), std::vector<std::string>{"WHOLE"});
  std::vector<std::string> enough(kMaxParts - 1, std::string(kText));
  EXPECT_TRUE(parse(mixed(enough)).complete);
}

TEST(Mime, Rfc2045Section5_1ContentType) {
  const ContentType ct = parse_content_type(" Text/HTML (c) ; Charset=\"utf-8\"; name=a\\\"b", ContentType{});
  EXPECT_EQ(ct.type, "TEXT");
  EXPECT_EQ(ct.subtype, "HTML");
  EXPECT_EQ(param(ct, "CHARSET"), "utf-8");
  EXPECT_EQ(param(ct, "NAME"), "a\\\"b");
  EXPECT_EQ(param(ct, "BOUNDARY"), std::nullopt);
  const ContentType junk = parse_content_type("garbage", ContentType{"MESSAGE", "RFC822", {{"X", "y"}}});
  EXPECT_EQ(junk.type, "MESSAGE");
  EXPECT_TRUE(junk.params.empty());
  EXPECT_EQ(transfer_encoding("Content-Transfer-Encoding:  Quoted-Printable\r\n\r\n"), "quoted-printable");
  EXPECT_EQ(transfer_encoding("Subject: x\r\n\r\n"), "");
  EXPECT_TRUE(is_identity_encoding("8bit"));
  EXPECT_FALSE(is_identity_encoding("base64"));
}

}  // namespace
}  // namespace hikyaku::mail::mime

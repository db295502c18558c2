// AnswerCache: TTLs, RFC 2308 negative and server-failure caching,
// coalescing, the size bound, with an injected clock and a scripted upstream.
#include "dns/answer_cache.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace hikyaku::dns {
namespace {

using std::chrono::seconds;

// An upstream that answers `next` (at once, or when deliver() is called)
// and counts what it is asked.
class ScriptedResolver final : public AsyncResolver {
 public:
  Answer next;
  bool deferred = false;
  std::vector<Question> asked;

  void resolve(const Question& q, Callback done) override {
    asked.push_back(q);
    if (!deferred) {
      done(next);
      return;
    }
    held_.emplace_back(std::move(done), next);
  }
  void deliver() {
    auto batch = std::exchange(held_, {});
    for (auto& [done, answer] : batch) done(answer);
  }
  size_t held() const { return held_.size(); }

 private:
  std::vector<std::pair<Callback, Answer>> held_;
};

Answer answer(Status status, uint32_t ttl, std::vector<std::string> texts = {}) {
  Answer a;
  a.status = status;
  a.ttl = ttl;
  a.texts = std::move(texts);
  return a;
}

class AnswerCacheTest : public ::testing::Test {
 protected:
  AnswerCache::Clock::time_point now_{};
  ScriptedResolver upstream_;
  AnswerCache::Now clock() {
    return [this] { return now_; };
  }
  // Resolve `q` through `cache` and return the answer given at once.
  static Answer ask(AnswerCache& cache, const Question& q) {
    Answer got;
    bool called = false;
    cache.resolve(q, [&](const Answer& a) {
      got = a;
      called = true;
    });
    EXPECT_TRUE(called) << "an immediate upstream or a hit answers inside resolve()";
    return got;
  }
  const Question q_ = Question::of(Type::txt, "example.test");
};

TEST_F(AnswerCacheTest, AnswerKeptForItsTtlWhichCountsDown_RFC1035_3_2_1) {
  AnswerCache cache(upstream_, {}, clock());
  upstream_.next = answer(Status::ok, 300, {"v=spf1 -all"});
  EXPECT_EQ(ask(cache, q_).texts.at(0), "v=spf1 -all");
  now_ += seconds(100);
  Answer hit = ask(cache, q_);
  EXPECT_EQ(hit.texts.at(0), "v=spf1 -all");
  EXPECT_EQ(hit.ttl, 200u) << "a hit carries the seconds left";
  EXPECT_EQ(upstream_.asked.size(), 1u);
  EXPECT_EQ(cache.hits(), 1u);
  now_ += seconds(199);
  ask(cache, q_);
  EXPECT_EQ(upstream_.asked.size(), 1u) << "299 s: still fresh";
  now_ += seconds(1);
  ask(cache, q_);
  EXPECT_EQ(upstream_.asked.size(), 2u) << "300 s: expired, asked again";
}

TEST_F(AnswerCacheTest, TtlCappedAtMaxTtl) {
  AnswerCache cache(upstream_, {}, clock());
  upstream_.next = answer(Status::ok, 86400, {"x"});
  ask(cache, q_);
  now_ += seconds(3599);
  ask(cache, q_);
  EXPECT_EQ(upstream_.asked.size(), 1u);
  now_ += seconds(1);
  ask(cache, q_);
  EXPECT_EQ(upstream_.asked.size(), 2u) << "kept one hour at most";
}

TEST_F(AnswerCacheTest, ZeroTtlAnswerIsNotKept) {
  AnswerCache cache(upstream_, {}, clock());
  upstream_.next = answer(Status::ok, 0, {"x"});
  ask(cache, q_);
  ask(cache, q_);
  EXPECT_EQ(upstream_.asked.size(), 2u);
  EXPECT_EQ(cache.size(), 0u);
}

TEST_F(AnswerCacheTest, NegativeAnswersKeptForTheirTtl_RFC2308_5) {
  AnswerCache cache(upstream_, {}, clock());
  upstream_.next = answer(Status::nxdomain, 600);
  EXPECT_EQ(ask(cache, q_).status, Status::nxdomain);
  now_ += seconds(599);
  EXPECT_EQ(ask(cache, q_).status, Status::nxdomain);
  EXPECT_EQ(upstream_.asked.size(), 1u) << "NXDOMAIN cached for the SOA-derived TTL";

  auto mx = Question::of(Type::mx, "example.test");
  upstream_.next = answer(Status::ok, 120);  // NODATA
  EXPECT_EQ(ask(cache, mx).status, Status::ok);
  now_ += seconds(119);
  EXPECT_TRUE(ask(cache, mx).mx.empty());
  EXPECT_EQ(upstream_.asked.size(), 2u) << "NODATA cached for its TTL";
  now_ += seconds(1);
  ask(cache, mx);
  EXPECT_EQ(upstream_.asked.size(), 3u);
}

TEST_F(AnswerCacheTest, NegativeAnswerWithoutSoaKeptBriefly_RFC2308_5) {
  AnswerCache cache(upstream_, {}, clock());
  upstream_.next = answer(Status::nxdomain, 0);  // libunbound: no SOA in the answer
  ask(cache, q_);
  now_ += seconds(29);
  ask(cache, q_);
  EXPECT_EQ(upstream_.asked.size(), 1u) << "the 30 s default";
  now_ += seconds(1);
  ask(cache, q_);
  EXPECT_EQ(upstream_.asked.size(), 2u);

  AnswerCache::Limits strict;
  strict.negative_ttl_without_soa = 0;  // RFC 2308 §5 to the letter
  AnswerCache letter(upstream_, strict, clock());
  ask(letter, q_);
  ask(letter, q_);
  EXPECT_EQ(upstream_.asked.size(), 4u);
}

// An SOA that says 0 means "do not cache" (RFC 2308 §5): not the 30 s a
// negative answer without an SOA gets. Before, both were kept 30 s, so an
// MX published after a NODATA with TTL 0 was not seen for 30 s.
TEST_F(AnswerCacheTest, NegativeAnswerWhoseSoaSaysZeroIsNotKept_RFC2308_5) {
  AnswerCache cache(upstream_, {}, clock());
  upstream_.next = answer(Status::ok, 0);  // NODATA
  upstream_.next.ttl_from_soa = true;
  ask(cache, q_);
  ask(cache, q_);
  EXPECT_EQ(upstream_.asked.size(), 2u);
}

TEST_F(AnswerCacheTest, ServerFailureKeptFiveSecondsAndNeverPastFiveMinutes_RFC2308_7_1) {
  AnswerCache cache(upstream_, {}, clock());
  upstream_.next = answer(Status::temp_error, 0);
  EXPECT_EQ(ask(cache, q_).status, Status::temp_error);
  now_ += seconds(4);
  EXPECT_EQ(ask(cache, q_).status, Status::temp_error);
  EXPECT_EQ(upstream_.asked.size(), 1u);
  now_ += seconds(1);
  ask(cache, q_);
  EXPECT_EQ(upstream_.asked.size(), 2u) << "after 5 s a failure is asked again";

  AnswerCache::Limits long_failure;
  long_failure.temp_error_ttl = 3600;
  AnswerCache capped(upstream_, long_failure, clock());
  auto other = Question::of(Type::a, "down.test");
  ask(capped, other);
  now_ += seconds(299);
  ask(capped, other);
  EXPECT_EQ(upstream_.asked.size(), 3u);
  now_ += seconds(1);
  ask(capped, other);
  EXPECT_EQ(upstream_.asked.size(), 4u) << "MUST NOT cache a server failure longer than five minutes";
}

TEST_F(AnswerCacheTest, PermanentErrorIsNeverKept) {
  AnswerCache cache(upstream_, {}, clock());
  upstream_.next = answer(Status::perm_error, 300);
  ask(cache, q_);
  ask(cache, q_);
  EXPECT_EQ(upstream_.asked.size(), 2u);
}

TEST_F(AnswerCacheTest, ConcurrentQuestionsShareOneUpstreamQuery) {
  AnswerCache cache(upstream_, {}, clock());
  upstream_.deferred = true;
  upstream_.next = answer(Status::ok, 0, {"shared"});  // TTL 0: shared, not kept
  std::vector<std::string> got;
  for (int i = 0; i < 3; ++i) cache.resolve(q_, [&](const Answer& a) { got.push_back(a.texts.at(0)); });
  cache.resolve(Question::of(Type::mx, "example.test"), [&](const Answer&) { got.push_back("mx"); });
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(upstream_.asked.size(), 2u) << "three TXT questions, one query; the MX is its own";
  EXPECT_EQ(cache.coalesced(), 2u);
  EXPECT_EQ(cache.in_flight(), 2u);
  upstream_.deliver();
  EXPECT_EQ(got, (std::vector<std::string>{"shared", "shared", "shared", "mx"}));
  EXPECT_EQ(cache.in_flight(), 0u);
  cache.resolve(q_, [](const Answer&) {});
  EXPECT_EQ(upstream_.asked.size(), 3u) << "TTL 0: the next question goes upstream";
}

TEST_F(AnswerCacheTest, WaiterMayAskTheSameQuestionAgain) {
  AnswerCache cache(upstream_, {}, clock());
  upstream_.deferred = true;
  upstream_.next = answer(Status::ok, 0, {"x"});
  int second = 0;
  cache.resolve(q_, [&](const Answer&) { cache.resolve(q_, [&](const Answer&) { ++second; }); });
  upstream_.deliver();
  EXPECT_EQ(upstream_.held(), 1u) << "a new query, not a join of the finished one";
  upstream_.deliver();
  EXPECT_EQ(second, 1);
}

TEST_F(AnswerCacheTest, BoundedSizeDropsTheSoonestToExpire) {
  AnswerCache::Limits small;
  small.max_entries = 3;
  AnswerCache cache(upstream_, small, clock());
  for (uint32_t ttl : {100u, 500u, 50u, 400u, 300u}) {
    upstream_.next = answer(Status::ok, ttl, {"x"});
    ask(cache, Question::of(Type::a, "h" + std::to_string(ttl) + ".test"));
  }
  EXPECT_EQ(cache.size(), 3u);
  size_t asked = upstream_.asked.size();
  for (uint32_t ttl : {500u, 400u, 300u}) ask(cache, Question::of(Type::a, "h" + std::to_string(ttl) + ".test"));
  EXPECT_EQ(upstream_.asked.size(), asked) << "the three longest-lived stayed";
  ask(cache, Question::of(Type::a, "h50.test"));
  EXPECT_EQ(upstream_.asked.size(), asked + 1);

  // Expired entries make room first.
  now_ += seconds(1000);
  upstream_.next = answer(Status::ok, 10, {"x"});
  ask(cache, Question::of(Type::a, "late.test"));
  EXPECT_EQ(cache.size(), 1u);
}

TEST_F(AnswerCacheTest, AnswerArrivingAfterTheCacheIsGoneIsDropped) {
  upstream_.deferred = true;
  upstream_.next = answer(Status::ok, 300, {"x"});
  bool called = false;
  {
    AnswerCache cache(upstream_, {}, clock());
    cache.resolve(q_, [&](const Answer&) { called = true; });
  }
  upstream_.deliver();  // under ASan, a use after free would stop here
  EXPECT_FALSE(called);
}

}  // namespace
}  // namespace hikyaku::dns

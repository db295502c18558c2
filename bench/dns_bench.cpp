// CPU per uncached DNS lookup by hikyaku's resolver (bench/dns.sh), built
// against the build tree's static libraries (no GoogleTest). Modes:
//   sync        UnboundResolver::a() one after another: ub_resolve(), which
//               builds and tears down a libunbound worker per call (the path
//               being replaced).
//   async       UnboundResolver::resolve() with OUTSTANDING questions in
//               flight, driven by a poll() loop on fd() + process(): one
//               long-lived libunbound background thread does the work.
//   async-cache the same through an AnswerCache (every name distinct, so
//               only its bookkeeping is added).
//   probe       exit 0 once the server answers (for the script's start-up).
// Every name is distinct (nNNN.RUN.bench.test), so neither libunbound's
// cache nor ours can answer: each lookup is a query to the server.
// CPU is getrusage(RUSAGE_SELF) user+sys: this process and all its threads,
// libunbound's background thread included. Output, one line:
//   MODE lookups=N errors=E wall_s=W cpu_s=C cpu_us_per_lookup=X lookups_per_s=Y
#include <poll.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "dns/answer_cache.hpp"
#include "dns/unbound_resolver.hpp"

using namespace hikyaku;

namespace {

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

std::string name_of(long i, const std::string& run) { return "n" + std::to_string(i) + "." + run + ".bench.test"; }

// Keep `outstanding` questions in flight until `total` have been answered.
long run_async(dns::UnboundResolver& unbound, dns::AsyncResolver& via, long total, long outstanding,
               const std::string& run) {
  long issued = 0, answered = 0, errors = 0;
  std::function<void()> issue = [&] {
    long i = issued++;
    via.resolve(dns::Question::of(dns::Type::a, name_of(i, run)), [&](const dns::Answer& a) {
      ++answered;
      if (a.status != dns::Status::ok || a.addresses.size() != 1) ++errors;
      if (issued < total) issue();
    });
  };
  while (issued < total && issued < outstanding) issue();
  while (answered < total) {
    pollfd p{unbound.fd(), POLLIN, 0};
    if (poll(&p, 1, 10000) == 0) {
      std::fprintf(stderr, "no answer for 10 s (%ld of %ld answered)\n", answered, total);
      return -1;
    }
    unbound.process();
  }
  return errors;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: dns_bench PORT MODE [LOOKUPS] [OUTSTANDING] [RUN]\n");
    return 2;
  }
  auto port = static_cast<uint16_t>(std::atoi(argv[1]));
  std::string mode = argv[2];
  long total = argc > 3 ? std::atol(argv[3]) : 20000;
  long outstanding = argc > 4 ? std::atol(argv[4]) : 200;
  std::string run = argc > 5 ? argv[5] : "r0";

  auto created = dns::UnboundResolver::create({config::Endpoint{"127.0.0.1", port}});
  if (!created.ok()) {
    std::fprintf(stderr, "%s\n", created.error().message.c_str());
    return 1;
  }
  auto resolver = std::move(created).value();

  if (mode == "probe") {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline)
      if (resolver->a("probe.bench.test").status == dns::Status::ok) return 0;
    return 1;
  }
  // The TXT record answers, joined (a check that the server is the bench's).
  auto txt = resolver->txt("txt.bench.test");
  if (txt.status != dns::Status::ok || txt.records.empty()) {
    std::fprintf(stderr, "txt.bench.test: no TXT record\n");
    return 1;
  }

  long errors = 0;
  double cpu0 = cpu_seconds();
  auto wall0 = std::chrono::steady_clock::now();
  if (mode == "sync") {
    for (long i = 0; i < total; ++i) {
      auto r = resolver->a(name_of(i, run));
      if (r.status != dns::Status::ok || r.records.size() != 1) ++errors;
    }
  } else if (mode == "async") {
    errors = run_async(*resolver, *resolver, total, outstanding, run);
  } else if (mode == "async-cache") {
    dns::AnswerCache cache(*resolver);
    errors = run_async(*resolver, cache, total, outstanding, run);
  } else {
    std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
    return 2;
  }
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  double cpu = cpu_seconds() - cpu0;
  if (errors < 0) return 1;
  std::printf("%s lookups=%ld errors=%ld wall_s=%.3f cpu_s=%.3f cpu_us_per_lookup=%.1f lookups_per_s=%.0f\n",
              mode.c_str(), total, errors, wall, cpu, cpu / static_cast<double>(total) * 1e6,
              static_cast<double>(total) / wall);
  return errors == 0 ? 0 : 1;
}

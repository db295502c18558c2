// Purpose:   Test support, not linked into the server: a real dnsmasq on a
//            free loopback port (PEERS.md), started with the records given
//            and stopped by the destructor. Shared by the dns and dns_asio
//            unit tests. Header-only so the dns library does not carry it.
// Trust:     test code; binds 127.0.0.1 only.
// Concurrency: one test thread; the fixture forks dnsmasq.
// Errors:    ready() is false when dnsmasq did not answer within 10 s.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace hikyaku::dns::test_support {

// A port that was free a moment ago (UDP and TCP both unbound when checked).
inline uint16_t free_port() {
  for (int attempt = 0; attempt < 20; ++attempt) {
    int udp = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(udp, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        getsockname(udp, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      close(udp);
      continue;
    }
    int tcp = socket(AF_INET, SOCK_STREAM, 0);
    bool tcp_free = bind(tcp, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(tcp);
    close(udp);
    if (tcp_free) return ntohs(addr.sin_port);
  }
  return 0;
}

// True once a server on `port` answers a DNS query (any rcode).
inline bool answers(uint16_t port) {
  // Header: ID 0x4242, RD, one question "ready.test. IN A".
  using namespace std::string_literals;
  std::string q = "\x42\x42\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"s;
  q += "\x05ready\x04test\x00"s;
  q += "\x00\x01\x00\x01"s;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = false;
  if (sendto(fd, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr) ==
      static_cast<ssize_t>(q.size())) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) == 1) {
      char buf[512];
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      ok = n >= 12 && buf[0] == 0x42 && buf[1] == 0x42;
    }
  }
  close(fd);
  return ok;
}

class Dnsmasq {
 public:
  explicit Dnsmasq(const std::vector<std::string>& records) {
    port_ = free_port();
    if (port_ == 0) return;
    std::vector<std::string> args = {"dnsmasq",
                                     "--no-daemon",
                                     "--no-resolv",
                                     "--no-hosts",
                                     "--port=" + std::to_string(port_),
                                     "--listen-address=127.0.0.1",
                                     "--bind-interfaces",
                                     "--conf-file=/dev/null",
                                     "--local=/test/"};
    args.insert(args.end(), records.begin(), records.end());
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      // Child: quiet dnsmasq's log on stderr.
      int devnull = open("/dev/null", O_WRONLY);
      if (devnull >= 0) dup2(devnull, STDERR_FILENO);
      execvp("dnsmasq", argv.data());
      execv("/usr/sbin/dnsmasq", argv.data());
      _exit(127);
    }
    // Wait on a condition (STYLE R13): the first answer, for up to 10 s.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (answers(port_)) {
        ready_ = true;
        return;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;  // it exited (port taken, bad option)
        return;
      }
    }
  }
  ~Dnsmasq() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
  }
  Dnsmasq(const Dnsmasq&) = delete;
  Dnsmasq& operator=(const Dnsmasq&) = delete;

  bool ready() const { return ready_; }
  uint16_t port() const { return port_; }

 private:
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  bool ready_ = false;
};

}  // namespace hikyaku::dns::test_support

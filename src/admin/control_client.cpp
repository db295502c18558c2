// Purpose:   `hikyaku queue flush`: the client side of the control channel
//            (control.hpp). With the server running, one request over
//            DATA_DIR/control and its reply; with the server stopped (no
//            socket, or nobody listening), the same filter applied to the
//            spool itself: each matching waiting delivery gets a record
//            "due now", so the server attempts it as soon as it starts.
// Trust:     run by the operator (root or the service user); the socket is
//            owner-only.
// Errors:    messages on `err`; 0 done, 1 the server or the spool refused,
//            2 a malformed request.
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <ostream>

#include "admin/commands.hpp"
#include "admin/control.hpp"
#include "admin/reload_command.hpp"
#include "base/clock.hpp"
#include "base/strings.hpp"
#include "queue/flush_filter.hpp"
#include "queue/spool.hpp"

namespace hikyaku::admin {

namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// The server's one-line reply; nullopt when no server listens on `path`.
base::Result<std::optional<std::string>> ask_server(const std::filesystem::path& path, const std::string& request) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string name = path.string();
  if (name.size() >= sizeof(address.sun_path)) return base::make_error("socket path too long: " + name);
  std::memcpy(address.sun_path, name.c_str(), name.size() + 1);
  Fd s{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (s.fd < 0) return base::make_error(std::string("socket: ") + std::strerror(errno));
  if (::connect(s.fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    if (errno == ENOENT || errno == ECONNREFUSED) return std::optional<std::string>();
    return base::make_error(name + ": " + std::strerror(errno));
  }
  const timeval timeout{30, 0};  // the server answers at once; a hung one must not hang the operator
  (void)::setsockopt(s.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  (void)::setsockopt(s.fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  for (size_t sent = 0; sent < request.size();) {
    const ssize_t n = ::send(s.fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return base::make_error(name + ": " + std::strerror(errno));
    sent += static_cast<size_t>(n);
  }
  std::string reply;
  char buf[512];
  while (reply.find('\n') == std::string::npos && reply.size() <= kMaxControlLine) {
    const ssize_t n = ::recv(s.fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return base::make_error(name + ": no reply: " + std::strerror(errno));
    if (n == 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  if (reply.empty()) return base::make_error(name + ": the server closed the connection without a reply");
  return std::optional<std::string>(reply);
}

// Is a server running on this data directory (it holds the lock on its pid
// file)? Then the spool is its to write.
bool server_running(const config::Config& config) { return server_pid(config).ok(); }

// The server is stopped: record "due now" for each matching waiting slot.
int flush_spool(const config::Config& config, const queue::FlushFilter& filter, std::ostream& out,
                std::ostream& err) {
  base::SystemClock clock;
  queue::Spool spool(config.spool_dir(), clock);
  auto entries = spool.list();
  if (!entries) {
    err << entries.error().message << "\n";
    return 1;
  }
  const auto now = clock.now();
  size_t made_due = 0;
  bool found = filter.queue_id.empty();
  for (const auto& entry : *entries) {
    if (!filter.queue_id.empty() && entry.id != filter.queue_id) continue;
    found = true;
    auto message = spool.load(entry.id);
    if (!message) {
      err << entry.id << ": " << message.error().message << "\n";
      return 1;
    }
    for (size_t i = 0; i < message->slots.size(); ++i) {
      policy::SlotState state = message->slots[i];
      if (state.final() || state.next_attempt <= now || !filter.matches(entry.id, state)) continue;
      state.next_attempt = {};
      if (auto st = spool.record(*message, i, state); !st) {
        err << entry.id << ": " << st.error().message << "\n";
        return 1;
      }
      ++made_due;
    }
  }
  if (!found) {
    err << "no queued message " << filter.queue_id << "\n";
    return 1;
  }
  out << "hikyaku is not running: " << made_due << " waiting deliver" << (made_due == 1 ? "y" : "ies")
      << " made due; they start when it starts\n";
  return 0;
}

}  // namespace

int queue_flush(const config::Config& config, const std::string& id, const std::string& destination,
                std::ostream& out, std::ostream& err) {
  // The server's own rules check the request before anything is sent.
  auto request = parse_control_request(
      format_control_request(ControlRequest{ControlRequest::Kind::flush, id, base::to_lower(destination)}));
  if (!request) {
    err << request.error().message << "\n";
    return 2;
  }
  auto reply = ask_server(config.data_dir / kControlSocket, format_control_request(*request));
  if (!reply) {
    err << reply.error().message << "\n";
    return 1;
  }
  if (!*reply) {
    if (server_running(config)) {
      err << "hikyaku is running (" << (config.data_dir / "hikyaku.pid").string() << ") but does not listen on "
          << (config.data_dir / kControlSocket).string() << " (see its log)\n";
      return 1;
    }
    return flush_spool(config, queue::FlushFilter{request->queue_id, request->destination}, out, err);
  }
  const ControlReply answer = parse_control_reply(**reply);
  (answer.ok ? out : err) << answer.text << "\n";
  return answer.ok ? 0 : 1;
}

}  // namespace hikyaku::admin

#include "queue/delivery_agent.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "base/file.hpp"

namespace hikyaku::queue {

base::Result<std::shared_ptr<const std::string>> read_message(const DeliveryRequest& request) {
  if (request.message) return request.message;
  int fd = ::open(request.message_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return base::errno_error("open", request.message_path, errno);
  std::string out(request.message_size, '\0');
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(fd, out.data() + done, out.size() - done,
                        static_cast<off_t>(request.message_offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : EIO;  // 0: the spool file is shorter than its header says
      ::close(fd);
      return base::errno_error("read", request.message_path, err);
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return std::make_shared<const std::string>(std::move(out));
}


}  // namespace hikyaku::queue

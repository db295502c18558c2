#include "queue/delivery_agent.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "base/file.hpp"

namespace hikyaku::queue {

base::Result<std::shared_ptr<const mail::Message>> read_message(const DeliveryRequest& request) {
  if (request.message) return request.message;
  int fd = ::open(request.message_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return base::errno_error("open", request.message_path, errno);
  auto message = mail::read_message(mail::FileRange{std::make_shared<const base::UniqueFd>(fd), request.message_path,
                                                    request.message_offset, request.message_size});
  if (!message) return message.error();
  return std::make_shared<const mail::Message>(std::move(message).value());
}

}  // namespace hikyaku::queue

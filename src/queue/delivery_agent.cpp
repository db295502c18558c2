#include "queue/delivery_agent.hpp"

namespace hikyaku::queue {

base::Result<std::shared_ptr<const mail::Message>> read_message(const DeliveryRequest& request) {
  if (request.message) return request.message;
  auto message = mail::read_message(request.message_path, request.message_offset, request.message_size);
  if (!message) return message.error();
  return std::make_shared<const mail::Message>(std::move(message).value());
}

}  // namespace hikyaku::queue

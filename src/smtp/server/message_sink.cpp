#include "smtp/server/message_sink.hpp"

namespace hikyaku::smtp::server {
namespace {

// The default admission: the message was stored in one step by store().
class AlreadyStored final : public PendingMessage {
 public:
  explicit AlreadyStored(std::string id) : id_(std::move(id)) {}
  base::Result<std::string> commit() override { return id_; }

 private:
  std::string id_;
};

}  // namespace

base::Result<Admission> MessageSink::admit(const mail::Envelope& envelope, std::string message) {
  auto id = store(envelope, std::move(message));
  if (!id) return id.error();
  return Admission{std::nullopt, std::make_unique<AlreadyStored>(std::move(id).value())};
}

base::Result<MessageSink::Stored> MessageSink::accept(const mail::Envelope& envelope, std::string message) {
  auto admission = admit(envelope, std::move(message));
  if (!admission) return admission.error();
  if (admission->refusal) return Stored{{}, std::move(admission->refusal)};
  auto id = admission->pending->commit();
  if (!id) return id.error();
  return Stored{std::move(id).value(), std::nullopt};
}

}  // namespace hikyaku::smtp::server

// Tests for net::bind/listen: a port bound without listening refuses
// connections until listen() (serve binds as root and listens once ready).
#include "net/listener.hpp"

#include <gtest/gtest.h>

namespace hikyaku::net {
namespace {

bool connects(asio::io_context& io, const tcp::endpoint& to) {
  tcp::socket s(io);
  boost::system::error_code ec;
  s.connect(to, ec);
  return !ec;
}

TEST(Listener, BindWithoutListenRefusesUntilListen) {
  asio::io_context io;
  auto acceptor = bind(io, "127.0.0.1", 0, /*listen_now=*/false);
  ASSERT_TRUE(acceptor.ok()) << acceptor.error().message;
  const auto at = (*acceptor)->local_endpoint();
  EXPECT_NE(at.port(), 0);
  EXPECT_FALSE(connects(io, at));
  ASSERT_TRUE(listen(**acceptor, "127.0.0.1:" + std::to_string(at.port())).ok());
  EXPECT_TRUE(connects(io, at));
}

TEST(Listener, BindListensByDefault) {
  asio::io_context io;
  auto acceptor = bind(io, "127.0.0.1", 0);
  ASSERT_TRUE(acceptor.ok()) << acceptor.error().message;
  EXPECT_TRUE(connects(io, (*acceptor)->local_endpoint()));
  EXPECT_FALSE(bind(io, "not-an-address", 25).ok());
}

}  // namespace
}  // namespace hikyaku::net

// Purpose:   The Asio vocabulary shared by listeners and protocol sessions:
//            namespace aliases and the awaitable types. Only session,
//            listener and app files include this (protocol logic is sans-I/O).
#pragma once

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl.hpp>

namespace hikyaku::net {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
template <class T = void>
using awaitable = asio::awaitable<T>;
using asio::use_awaitable;

}  // namespace hikyaku::net

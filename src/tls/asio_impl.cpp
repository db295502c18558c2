// The one translation unit that compiles Asio and Asio SSL
// (BOOST_ASIO_SEPARATE_COMPILATION): every other file only includes headers.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>

// tests/api/http/sse_test_client.cc
#include "tests/api/http/sse_test_client.h"

#include <array>
#include <cctype>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace bridge::api::testing {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

struct SseTestClient::Impl {
  net::io_context io;
  net::ip::tcp::socket socket{io};
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::buffer_body> parser;
  std::array<char, 4096> chunk{};

  // Runs the io_context until `done` or `timeout`; cancels what is pending
  // on timeout. True when the operation completed.
  bool RunFor(const bool& done, std::chrono::milliseconds timeout) {
    io.restart();
    io.run_for(timeout);
    if (done) {
      return true;
    }
    boost::system::error_code ignored;
    socket.cancel(ignored);
    io.restart();
    io.run();
    return false;
  }
};

SseTestClient::SseTestClient(std::uint16_t port, const std::string& target,
                             const std::vector<std::pair<std::string, std::string>>& headers)
    : impl_(std::make_unique<Impl>()) {
  boost::system::error_code ec;
  impl_->socket.connect({net::ip::make_address("127.0.0.1"), port}, ec);
  if (ec) {
    error_ = "connect: " + ec.message();
    return;
  }
  bhttp::request<bhttp::empty_body> req{bhttp::verb::get, target, 11};
  req.set(bhttp::field::host, "127.0.0.1");
  req.set(bhttp::field::accept, "text/event-stream");
  for (const auto& [name, value] : headers) {
    req.set(name, value);
  }
  bhttp::write(impl_->socket, req, ec);
  if (ec) {
    error_ = "write: " + ec.message();
    return;
  }
  impl_->parser.body_limit(boost::none);
  bool done = false;
  bhttp::async_read_header(impl_->socket, impl_->buffer, impl_->parser,
                           [&](boost::system::error_code e, std::size_t) {
                             ec = e;
                             done = true;
                           });
  if (!impl_->RunFor(done, std::chrono::milliseconds(5000)) || ec) {
    error_ = "read header: " + (ec ? ec.message() : std::string("timeout"));
    return;
  }
  const auto& res = impl_->parser.get();
  status_ = static_cast<int>(res.result_int());
  for (const auto& field : res) {
    std::string name(field.name_string());
    for (char& c : name) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    headers_[name] = std::string(field.value());
  }
  if (impl_->parser.is_done()) {
    ended_ = true;
  }
}

SseTestClient::~SseTestClient() { Close(); }

std::string SseTestClient::Header(const std::string& lower_name) const {
  auto it = headers_.find(lower_name);
  return it == headers_.end() ? "" : it->second;
}

void SseTestClient::Close() {
  boost::system::error_code ignored;
  impl_->socket.shutdown(net::ip::tcp::socket::shutdown_both, ignored);
  impl_->socket.close(ignored);
}

bool SseTestClient::ReadSome(std::chrono::milliseconds timeout) {
  if (ended_ || status_ == 0) {
    return false;
  }
  auto& body = impl_->parser.get().body();
  body.data = impl_->chunk.data();
  body.size = impl_->chunk.size();
  bool done = false;
  boost::system::error_code ec;
  bhttp::async_read_some(impl_->socket, impl_->buffer, impl_->parser,
                         [&](boost::system::error_code e, std::size_t) {
                           ec = e;
                           done = true;
                         });
  const bool completed = impl_->RunFor(done, timeout);
  const std::size_t got = impl_->chunk.size() - body.size;
  body_.append(impl_->chunk.data(), got);
  if (ec == bhttp::error::need_buffer) {
    ec = {};
  }
  if ((completed && ec) || impl_->parser.is_done()) {
    ended_ = true;
  }
  return got > 0;
}

bool SseTestClient::WaitFor(const std::string& text, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (body_.find(text) == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (ended_ || left.count() <= 0) {
      return false;
    }
    ReadSome(left);
  }
  return true;
}

bool SseTestClient::WaitForEnd(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!ended_) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return false;
    }
    ReadSome(left);
  }
  return true;
}

}  // namespace bridge::api::testing

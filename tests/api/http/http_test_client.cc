// tests/api/http/http_test_client.cc
#include "tests/api/http/http_test_client.h"

#include <cctype>
#include <chrono>
#include <sstream>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace bridge::api::testing {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

struct HttpTestClient::Impl {
  net::io_context io;
  std::unique_ptr<beast::tcp_stream> stream = std::make_unique<beast::tcp_stream>(io);
  beast::flat_buffer buffer;
  bool connected = false;
};

HttpTestClient::HttpTestClient(std::uint16_t port) : impl_(std::make_unique<Impl>()), port_(port) {}
HttpTestClient::~HttpTestClient() = default;

namespace {

HttpResult ReadResponse(beast::tcp_stream& stream, beast::flat_buffer& buffer) {
  HttpResult out;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  boost::system::error_code ec;
  stream.expires_after(std::chrono::seconds(30));
  bhttp::read(stream, buffer, parser, ec);
  if (ec) {
    out.error = ec.message();
    return out;
  }
  auto& res = parser.get();
  out.status = static_cast<int>(res.result_int());
  out.body = res.body();
  out.keep_alive = res.keep_alive();
  for (const auto& field : res) {
    std::string name(field.name_string());
    for (char& c : name) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    out.headers[name] = std::string(field.value());
  }
  return out;
}

}  // namespace

HttpResult HttpTestClient::Send(const std::string& method, const std::string& target,
                                const std::vector<std::pair<std::string, std::string>>& headers,
                                const std::string& body) {
  bhttp::request<bhttp::string_body> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(bhttp::field::host, "127.0.0.1");
  for (const auto& [name, value] : headers) {
    req.set(name, value);
  }
  if (!body.empty() || method == "POST") {
    req.body() = body;
    if (req.find(bhttp::field::content_type) == req.end()) {
      req.set(bhttp::field::content_type, "application/json");
    }
  }
  req.prepare_payload();
  std::string bytes;
  {
    std::ostringstream text;
    text << req;
    bytes = text.str();
  }
  return SendRaw(bytes);
}

HttpResult HttpTestClient::SendRaw(const std::string& bytes) {
  boost::system::error_code ec;
  if (!impl_->connected) {
    impl_->stream->expires_after(std::chrono::seconds(10));
    impl_->stream->connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port_), ec);
    if (ec) {
      HttpResult out;
      out.error = "connect: " + ec.message();
      return out;
    }
    impl_->connected = true;
    ++connections_opened_;
  }
  impl_->stream->expires_after(std::chrono::seconds(30));
  net::write(*impl_->stream, net::buffer(bytes), ec);
  if (ec) {
    impl_->connected = false;
    HttpResult out;
    out.error = "write: " + ec.message();
    return out;
  }
  HttpResult out = ReadResponse(*impl_->stream, impl_->buffer);
  if (out.status == 0 || !out.keep_alive) {
    impl_->stream->close();
    impl_->stream = std::make_unique<beast::tcp_stream>(impl_->io);
    impl_->buffer.clear();
    impl_->connected = false;
  }
  return out;
}

HttpResult Fetch(std::uint16_t port, const std::string& method, const std::string& target,
                 const std::string& token, const std::string& body) {
  HttpTestClient client(port);
  std::vector<std::pair<std::string, std::string>> headers;
  if (!token.empty()) {
    headers.emplace_back("Authorization", "Bearer " + token);
  }
  return client.Send(method, target, headers, body);
}

}  // namespace bridge::api::testing

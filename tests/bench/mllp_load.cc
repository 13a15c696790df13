// mllp_load: an MLLP load generator for lab-bridge (or any MLLP receiver).
//
// N connections; each sends its next message only when the ACK of the
// previous one arrived (the way a LIS sends), M messages in all, over plain
// TCP or TLS. Reports messages/s and ACK latency (p50/p99/max), and checks
// that every ACK's MSA-2 is the MSH-10 of the message it answers.
//
//   mllp_load --port 2575 --connections 20 --messages 10000
//   mllp_load --port P --tls --ca ca.crt [--cert c.crt --key c.key]
//   mllp_load --port P --until-aa --acked-file acked.txt --prefix RUN1-
//
// Messages: synthetic ORU^R01 (tests/bench/oru_generator.h, 1-4 KB, 5-30 OBX,
// deterministic per index), or --message-file F (one message, used as a
// template: every "{i}" in it becomes the message's index, e.g. in PID-3 for
// a patient per message); MSH-10 is set to <prefix><index> either way.
//
// --until-aa is the crash-test mode: a message is resent, byte for byte,
// until it gets AA or CA: after an AR/CR, a reply that does not answer it,
// a timeout, a refused connection, or a connection closed before the ACK.
// AE/CE are final (the same bytes would get the same answer). --acked-file
// then lists "<control id> <OBX count>" for every message that got AA/CA.
// Without --until-aa every message is sent once and any failure counts.
//
// Exit status: 0 when every message got AA/CA and no ACK named the wrong
// message; 1 otherwise; 2 for bad options. One summary line on stdout, and
// the same numbers as JSON with --json FILE.
#include <openssl/ssl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include "tests/bench/oru_generator.h"

namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);

struct Options {
  std::string host = "127.0.0.1";
  int port = 2575;
  int connections = 20;
  int messages = 10000;
  int first_index = 0;
  std::string prefix = "LOAD-";
  std::string message_file;
  bool tls = false;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string server_name;
  bool until_aa = false;
  int retry_delay_ms = 100;
  int timeout_seconds = 30;
  int max_seconds = 600;
  std::string acked_file;
  std::string json_file;
  int threads = 1;
};

// MSH-n of an ER7 message ("" when absent); MSH-1 is the field separator.
std::string HeaderField(const std::string& message, int n) {
  const std::size_t end = message.find_first_of("\r\n");
  const std::string msh = message.substr(0, end);
  if (msh.size() < 4 || msh.compare(0, 3, "MSH") != 0) {
    return "";
  }
  const char sep = msh[3];
  int field = 1;
  std::size_t start = 3;
  while (field < n - 1) {
    start = msh.find(sep, start + 1);
    if (start == std::string::npos) {
      return "";
    }
    ++field;
  }
  const std::size_t stop = msh.find(sep, start + 1);
  return msh.substr(start + 1, stop == std::string::npos ? std::string::npos : stop - start - 1);
}

// Replaces MSH-10; returns false when the message has no MSH-10.
bool SetControlId(std::string* message, const std::string& id) {
  const std::size_t end = message->find_first_of("\r\n");
  if (message->size() < 4 || message->compare(0, 3, "MSH") != 0) {
    return false;
  }
  const char sep = (*message)[3];
  std::size_t start = 3;
  for (int field = 1; field < 9; ++field) {
    start = message->find(sep, start + 1);
    if (start == std::string::npos || start > end) {
      return false;
    }
  }
  std::size_t stop = message->find(sep, start + 1);
  if (stop == std::string::npos || stop > end) {
    stop = end == std::string::npos ? message->size() : end;
  }
  message->replace(start + 1, stop - start - 1, id);
  return true;
}

struct Ack {
  std::string code;
  std::string control_id;
};

// MSA-1 and MSA-2 of a reply payload.
std::optional<Ack> ReadAck(const std::string& reply) {
  char sep = '|';
  if (reply.size() > 3 && reply.compare(0, 3, "MSH") == 0) {
    sep = reply[3];
  }
  std::size_t pos = 0;
  while (pos < reply.size()) {
    std::size_t end = reply.find_first_of("\r\n", pos);
    if (end == std::string::npos) {
      end = reply.size();
    }
    if (end - pos > 4 && reply.compare(pos, 3, "MSA") == 0 && reply[pos + 3] == sep) {
      std::vector<std::string> fields;
      std::stringstream segment(reply.substr(pos, end - pos));
      std::string f;
      while (std::getline(segment, f, sep)) {
        fields.push_back(f);
      }
      Ack ack;
      ack.code = fields.size() > 1 ? fields[1] : "";
      ack.control_id = fields.size() > 2 ? fields[2] : "";
      return ack;
    }
    pos = end + 1;
  }
  return std::nullopt;
}

int CountObx(const std::string& message) {
  int count = 0;
  std::size_t pos = 0;
  while ((pos = message.find("\rOBX|", pos)) != std::string::npos) {
    ++count;
    ++pos;
  }
  return count;
}

struct Message {
  std::string control_id;
  std::string frame;  // <VT> payload <FS><CR>
  int obx = 0;
};

// What happened to each message, and the counters of the whole run.
struct Tally {
  std::mutex mu;
  std::vector<std::int64_t> latencies_us;  // one per reply that answered its message
  std::vector<std::string> final_code;     // per message: "AA", "AE", ... or "" (none)
  std::int64_t replies = 0;
  std::int64_t accepted = 0;  // AA/CA
  std::int64_t rejected = 0;  // AE/CE (final)
  std::int64_t refused = 0;   // AR/CR (retried in --until-aa)
  std::int64_t mismatched = 0;
  std::int64_t no_msa = 0;
  std::int64_t timeouts = 0;
  std::int64_t connect_failures = 0;
  std::int64_t closed_before_ack = 0;
  std::int64_t write_failures = 0;
  std::int64_t resends = 0;
};

class Connection {
 public:
  Connection(net::any_io_executor executor, ssl::context* tls, const Options& options)
      : executor_(executor), tls_(tls), options_(options), timer_(executor) {}

  net::awaitable<bool> Connect(const tcp::resolver::results_type& endpoints) {
    Close();
    plain_.reset();
    secure_.reset();
    tcp::socket socket(executor_);
    Arm();
    auto [ec, endpoint] = co_await net::async_connect(socket, endpoints, kUseTuple);
    if (ec) {
      Disarm();
      co_return false;
    }
    socket.set_option(tcp::no_delay(true));
    if (tls_ == nullptr) {
      Disarm();
      plain_ = std::make_unique<tcp::socket>(std::move(socket));
      open_ = true;
      co_return true;
    }
    secure_ = std::make_unique<ssl::stream<tcp::socket>>(std::move(socket), *tls_);
    const std::string name = options_.server_name.empty() ? options_.host : options_.server_name;
    SSL_set_tlsext_host_name(secure_->native_handle(), name.c_str());
    secure_->set_verify_callback(ssl::host_name_verification(name));
    auto [hs] = co_await secure_->async_handshake(ssl::stream_base::client, kUseTuple);
    Disarm();
    if (hs) {
      co_return false;
    }
    open_ = true;
    co_return true;
  }

  // Sends one frame and reads the next reply frame. nullopt: the connection
  // failed, closed or timed out (*why says which).
  net::awaitable<std::optional<std::string>> Exchange(const std::string& frame, std::string* why) {
    Arm();
    boost::system::error_code ec;
    if (plain_) {
      std::tie(ec, std::ignore) = co_await net::async_write(*plain_, net::buffer(frame), kUseTuple);
    } else {
      std::tie(ec, std::ignore) =
          co_await net::async_write(*secure_, net::buffer(frame), kUseTuple);
    }
    if (ec) {
      Disarm();
      *why = timed_out_ ? "timeout" : "write";
      co_return std::nullopt;
    }
    for (;;) {
      const std::size_t start = buffer_.find('\x0b');
      if (start != std::string::npos) {
        const std::size_t end = buffer_.find('\x1c', start);
        if (end != std::string::npos) {
          std::string payload = buffer_.substr(start + 1, end - start - 1);
          std::size_t next = end + 1;
          if (next < buffer_.size() && buffer_[next] == '\r') {
            ++next;
          }
          buffer_.erase(0, next);
          Disarm();
          co_return payload;
        }
      }
      char chunk[16384];
      std::size_t n = 0;
      if (plain_) {
        std::tie(ec, n) = co_await plain_->async_read_some(net::buffer(chunk), kUseTuple);
      } else {
        std::tie(ec, n) = co_await secure_->async_read_some(net::buffer(chunk), kUseTuple);
      }
      if (ec) {
        Disarm();
        *why = timed_out_ ? "timeout" : "closed";
        co_return std::nullopt;
      }
      buffer_.append(chunk, n);
    }
  }

  void Close() {
    open_ = false;
    buffer_.clear();
    boost::system::error_code ignored;
    if (plain_) {
      plain_->close(ignored);
    }
    if (secure_) {
      secure_->next_layer().close(ignored);
    }
  }

  bool open() const { return open_; }

 private:
  // A deadline for the operation in progress: the socket is closed when it passes.
  void Arm() {
    timed_out_ = false;
    timer_.expires_after(std::chrono::seconds(options_.timeout_seconds));
    timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) {
        timed_out_ = true;
        Close();
      }
    });
  }
  void Disarm() { timer_.cancel(); }

  net::any_io_executor executor_;
  ssl::context* tls_;
  const Options& options_;
  net::steady_timer timer_;
  std::unique_ptr<tcp::socket> plain_;
  std::unique_ptr<ssl::stream<tcp::socket>> secure_;
  std::string buffer_;
  bool open_ = false;
  bool timed_out_ = false;
};

bool Accepted(const std::string& code) { return code == "AA" || code == "CA"; }
bool Final(const std::string& code) { return Accepted(code) || code == "AE" || code == "CE"; }

net::awaitable<void> Sender(const Options& options, ssl::context* tls,
                            const tcp::resolver::results_type& endpoints,
                            const std::vector<Message>& messages, std::atomic<int>* next,
                            Tally* tally, Clock::time_point give_up) {
  auto executor = co_await net::this_coro::executor;
  Connection connection(executor, tls, options);
  net::steady_timer pause(executor);
  std::vector<std::int64_t> latencies;
  latencies.reserve(messages.size() / std::max(1, options.connections) + 16);
  for (;;) {
    const int index = next->fetch_add(1);
    if (index >= static_cast<int>(messages.size())) {
      break;
    }
    const Message& m = messages[static_cast<std::size_t>(index)];
    std::string final_code;
    for (int attempt = 0;; ++attempt) {
      if (attempt > 0) {
        std::lock_guard<std::mutex> lock(tally->mu);
        ++tally->resends;
      }
      if (Clock::now() > give_up) {
        break;
      }
      if (!connection.open()) {
        if (!co_await connection.Connect(endpoints)) {
          {
            std::lock_guard<std::mutex> lock(tally->mu);
            ++tally->connect_failures;
          }
          if (!options.until_aa) {
            break;
          }
          pause.expires_after(std::chrono::milliseconds(options.retry_delay_ms));
          co_await pause.async_wait(kUseTuple);
          continue;
        }
      }
      const auto sent = Clock::now();
      std::string why;
      std::optional<std::string> reply = co_await connection.Exchange(m.frame, &why);
      const auto answered = Clock::now();
      if (!reply.has_value()) {
        connection.Close();
        {
          std::lock_guard<std::mutex> lock(tally->mu);
          if (why == "timeout") {
            ++tally->timeouts;
          } else if (why == "write") {
            ++tally->write_failures;
          } else {
            ++tally->closed_before_ack;
          }
        }
        if (!options.until_aa) {
          break;
        }
        pause.expires_after(std::chrono::milliseconds(options.retry_delay_ms));
        co_await pause.async_wait(kUseTuple);
        continue;
      }
      std::optional<Ack> ack = ReadAck(*reply);
      bool retry = false;
      {
        std::lock_guard<std::mutex> lock(tally->mu);
        ++tally->replies;
        if (!ack.has_value()) {
          ++tally->no_msa;
          retry = true;
        } else if (ack->control_id != m.control_id) {
          ++tally->mismatched;
          retry = true;
        } else {
          latencies.push_back(
              std::chrono::duration_cast<std::chrono::microseconds>(answered - sent).count());
          if (Accepted(ack->code)) {
            ++tally->accepted;
          } else if (ack->code == "AE" || ack->code == "CE") {
            ++tally->rejected;
          } else {
            ++tally->refused;
          }
          final_code = ack->code;
          retry = !Final(ack->code);
        }
      }
      if (!retry || !options.until_aa) {
        break;
      }
      if (!ack.has_value() || ack->control_id != m.control_id) {
        connection.Close();  // out of step with the server: start afresh
      }
      pause.expires_after(std::chrono::milliseconds(options.retry_delay_ms));
      co_await pause.async_wait(kUseTuple);
    }
    std::lock_guard<std::mutex> lock(tally->mu);
    tally->final_code[static_cast<std::size_t>(index)] = final_code;
  }
  connection.Close();
  std::lock_guard<std::mutex> lock(tally->mu);
  tally->latencies_us.insert(tally->latencies_us.end(), latencies.begin(), latencies.end());
}

double Percentile(std::vector<std::int64_t>* sorted, double p) {
  if (sorted->empty()) {
    return 0;
  }
  const std::size_t i = std::min(sorted->size() - 1,
                                 static_cast<std::size_t>(p * static_cast<double>(sorted->size())));
  return static_cast<double>((*sorted)[i]) / 1000.0;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<Message> BuildMessages(const Options& options, std::string* error) {
  std::string template_message;
  if (!options.message_file.empty()) {
    template_message = ReadFile(options.message_file);
    for (char& c : template_message) {
      if (c == '\n') {
        c = '\r';
      }
    }
    while (!template_message.empty() && template_message.back() == '\r') {
      template_message.pop_back();
    }
    template_message += '\r';
    if (HeaderField(template_message, 10).empty() && template_message.find("MSH") != 0) {
      *error = "--message-file: no MSH segment in " + options.message_file;
      return {};
    }
  }
  std::vector<Message> messages;
  messages.reserve(static_cast<std::size_t>(options.messages));
  for (int i = 0; i < options.messages; ++i) {
    const int index = options.first_index + i;
    std::string text;
    if (template_message.empty()) {
      std::mt19937_64 rng(0x9e3779b97f4a7c15ULL ^ static_cast<std::uint64_t>(index));
      text = bridge::bench::GenerateOru(rng, index);
    } else {
      text = template_message;
      for (std::size_t at = text.find("{i}"); at != std::string::npos; at = text.find("{i}", at)) {
        text.replace(at, 3, std::to_string(index));
      }
    }
    Message m;
    m.control_id = options.prefix + std::to_string(index);
    if (!SetControlId(&text, m.control_id)) {
      *error = "cannot set MSH-10 in the message";
      return {};
    }
    m.obx = CountObx("\r" + text);
    m.frame = "\x0b" + text + "\x1c\r";
    messages.push_back(std::move(m));
  }
  return messages;
}

std::unique_ptr<ssl::context> MakeTls(const Options& options, std::string* error) {
  auto context = std::make_unique<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
  boost::system::error_code ec;
  context->set_verify_mode(ssl::verify_peer, ec);
  if (options.ca_file.empty()) {
    context->set_default_verify_paths(ec);
  } else {
    context->load_verify_file(options.ca_file, ec);
  }
  if (!ec && !options.cert_file.empty()) {
    context->use_certificate_chain_file(options.cert_file, ec);
    if (!ec) {
      context->use_private_key_file(options.key_file, ssl::context::pem, ec);
    }
  }
  if (ec) {
    *error = "TLS files: " + ec.message();
    return nullptr;
  }
  return context;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"MLLP load generator: N connections, M messages, ACK latency and MSA-2 checks"};
  app.add_option("--host", o.host, "Server address");
  app.add_option("--port", o.port, "MLLP port")->required()->check(CLI::Range(1, 65535));
  app.add_option("--connections", o.connections, "Concurrent connections")
      ->check(CLI::Range(1, 10000));
  app.add_option("--messages", o.messages, "Messages in all")->check(CLI::Range(1, 100000000));
  app.add_option("--first-index", o.first_index, "Index of the first message (MSH-10 suffix)");
  app.add_option("--prefix", o.prefix, "MSH-10 prefix");
  app.add_option("--message-file", o.message_file, "Template message instead of synthetic ORUs");
  app.add_flag("--tls", o.tls, "Use TLS (1.2 minimum)");
  app.add_option("--ca", o.ca_file, "CA bundle for the server certificate");
  app.add_option("--cert", o.cert_file, "Client certificate (mutual TLS)");
  app.add_option("--key", o.key_file, "Client key (mutual TLS)");
  app.add_option("--server-name", o.server_name, "Name to verify (default: --host)");
  app.add_flag("--until-aa", o.until_aa, "Resend each message until it gets AA/CA");
  app.add_option("--retry-delay-ms", o.retry_delay_ms, "Pause before a resend or reconnect");
  app.add_option("--timeout", o.timeout_seconds, "Seconds to wait for each ACK (and connect)")
      ->check(CLI::Range(1, 3600));
  app.add_option("--max-seconds", o.max_seconds, "Give up resending after this long");
  app.add_option("--acked-file", o.acked_file, "Write '<control id> <OBX count>' per AA/CA");
  app.add_option("--json", o.json_file, "Write the summary as JSON");
  app.add_option("--threads", o.threads, "I/O threads")->check(CLI::Range(1, 64));
  CLI11_PARSE(app, argc, argv);

  std::string error;
  std::vector<Message> messages = BuildMessages(o, &error);
  if (!error.empty()) {
    std::cerr << "mllp_load: " << error << "\n";
    return 2;
  }
  std::unique_ptr<ssl::context> tls;
  if (o.tls) {
    tls = MakeTls(o, &error);
    if (!tls) {
      std::cerr << "mllp_load: " << error << "\n";
      return 2;
    }
  }
  net::io_context io;
  boost::system::error_code ec;
  tcp::resolver resolver(io);
  const tcp::resolver::results_type endpoints =
      resolver.resolve(o.host, std::to_string(o.port), ec);
  if (ec) {
    std::cerr << "mllp_load: cannot resolve " << o.host << ": " << ec.message() << "\n";
    return 2;
  }

  Tally tally;
  tally.final_code.resize(messages.size());
  std::atomic<int> next{0};
  const auto started = Clock::now();
  const auto give_up = started + std::chrono::seconds(o.max_seconds);
  for (int i = 0; i < o.connections; ++i) {
    net::co_spawn(io, Sender(o, tls.get(), endpoints, messages, &next, &tally, give_up),
                  net::detached);
  }
  std::vector<std::thread> threads;
  for (int i = 1; i < o.threads; ++i) {
    threads.emplace_back([&io] { io.run(); });
  }
  io.run();
  for (std::thread& t : threads) {
    t.join();
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();

  std::int64_t accepted_messages = 0;
  std::int64_t unanswered = 0;
  std::ofstream acked;
  if (!o.acked_file.empty()) {
    acked.open(o.acked_file);
  }
  for (std::size_t i = 0; i < messages.size(); ++i) {
    if (Accepted(tally.final_code[i])) {
      ++accepted_messages;
      if (acked.is_open()) {
        acked << messages[i].control_id << " " << messages[i].obx << "\n";
      }
    } else if (tally.final_code[i].empty()) {
      ++unanswered;
    }
  }
  if (acked.is_open()) {
    acked.close();
  }
  std::sort(tally.latencies_us.begin(), tally.latencies_us.end());
  const double p50 = Percentile(&tally.latencies_us, 0.50);
  const double p99 = Percentile(&tally.latencies_us, 0.99);
  const double max_ms =
      tally.latencies_us.empty() ? 0 : static_cast<double>(tally.latencies_us.back()) / 1000.0;
  const double rate = static_cast<double>(tally.replies) / seconds;

  char line[1024];
  std::snprintf(
      line, sizeof(line),
      "mllp_load: %d connections%s, %zu messages in %.2f s: %.0f msg/s; ACK latency "
      "p50 %.2f ms, p99 %.2f ms, max %.2f ms; accepted %lld, AE/CE %lld, AR/CR %lld, "
      "wrong MSA-2 %lld, no MSA %lld, unanswered %lld; resends %lld, connect failures "
      "%lld, closed before ACK %lld, timeouts %lld, write failures %lld",
      o.connections, o.tls ? " (TLS)" : "", messages.size(), seconds, rate, p50, p99, max_ms,
      static_cast<long long>(accepted_messages), static_cast<long long>(tally.rejected),
      static_cast<long long>(tally.refused), static_cast<long long>(tally.mismatched),
      static_cast<long long>(tally.no_msa), static_cast<long long>(unanswered),
      static_cast<long long>(tally.resends), static_cast<long long>(tally.connect_failures),
      static_cast<long long>(tally.closed_before_ack), static_cast<long long>(tally.timeouts),
      static_cast<long long>(tally.write_failures));
  std::cout << line << std::endl;
  if (!o.json_file.empty()) {
    std::ofstream json(o.json_file);
    json << "{\"connections\": " << o.connections << ", \"tls\": " << (o.tls ? "true" : "false")
         << ", \"messages\": " << messages.size() << ", \"seconds\": " << seconds
         << ", \"replies\": " << tally.replies << ", \"msg_per_s\": " << rate
         << ", \"p50_ms\": " << p50 << ", \"p99_ms\": " << p99 << ", \"max_ms\": " << max_ms
         << ", \"accepted_messages\": " << accepted_messages
         << ", \"accepted_replies\": " << tally.accepted << ", \"rejected\": " << tally.rejected
         << ", \"refused\": " << tally.refused << ", \"mismatched\": " << tally.mismatched
         << ", \"no_msa\": " << tally.no_msa << ", \"unanswered\": " << unanswered
         << ", \"resends\": " << tally.resends
         << ", \"connect_failures\": " << tally.connect_failures
         << ", \"closed_before_ack\": " << tally.closed_before_ack
         << ", \"timeouts\": " << tally.timeouts << ", \"write_failures\": " << tally.write_failures
         << "}\n";
  }
  const bool ok = accepted_messages == static_cast<std::int64_t>(messages.size()) &&
                  tally.mismatched == 0 && tally.no_msa == 0;
  return ok ? 0 : 1;
}

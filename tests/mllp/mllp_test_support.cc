#include "tests/mllp/mllp_test_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdlib>

#include <gtest/gtest.h>

#include "mllp/frame_encoder.h"

namespace bridge::mllp::testing {

std::string TestMessage(const std::string& control_id) {
  return "MSH|^~\\&|LAB|LABFAC|BRIDGE|CLINIC|20240101120000||ORU^R01|" + control_id +
         "|P|2.5\rPID|1||12345^^^MPS_PMS^MR||DOE^JANE\rOBX|1|NM|K^Potassium||6.8|mmol/L||HH";
}

std::string ControlId(std::string_view message) {
  const std::size_t end = message.find('\r');
  std::string_view msh = message.substr(0, end);
  std::size_t pos = 0;
  for (int field = 0; field < 9; ++field) {
    pos = msh.find('|', pos);
    if (pos == std::string_view::npos) {
      return "";
    }
    ++pos;
  }
  return std::string(msh.substr(pos, msh.find('|', pos) - pos));
}

std::string AckFor(std::string_view message, std::string_view code) {
  return "MSH|^~\\&|BRIDGE|CLINIC|LAB|LABFAC|20240101120001||ACK|A" + ControlId(message) +
         "|P|2.5\rMSA|" + std::string(code) + "|" + ControlId(message);
}

std::optional<std::string> Msa2(std::string_view ack) {
  const std::size_t msa = ack.find("MSA|");
  if (msa == std::string_view::npos) {
    return std::nullopt;
  }
  const std::size_t code_end = ack.find('|', msa + 4);
  if (code_end == std::string_view::npos) {
    return std::nullopt;
  }
  const std::size_t end = ack.find_first_of("|\r", code_end + 1);
  return std::string(ack.substr(code_end + 1, end - code_end - 1));
}

RawConnection::RawConnection(std::uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd_);
    fd_ = -1;
    return;
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

bool RawConnection::Send(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) {
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

void RawConnection::ShutdownWrite() { ::shutdown(fd_, SHUT_WR); }

std::optional<std::string> RawConnection::ReadFrame(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (ready_.empty()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return std::nullopt;
    }
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      return std::nullopt;
    }
    std::array<char, 65536> buf;
    const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
    if (n <= 0) {
      return std::nullopt;
    }
    std::vector<DecodedFrame> frames;
    decoder_.Feed(std::string_view(buf.data(), static_cast<std::size_t>(n)), &frames);
    for (DecodedFrame& f : frames) {
      ready_.push_back(std::move(f.payload));
    }
  }
  std::string out = std::move(ready_.front());
  ready_.erase(ready_.begin());
  return out;
}

bool RawConnection::WaitClosed(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return false;
    }
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      return false;
    }
    std::array<char, 65536> buf;
    const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
    if (n <= 0) {
      return true;  // FIN or RST
    }
  }
}

AckHandler::~AckHandler() {
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    workers.swap(workers_);
  }
  for (std::thread& t : workers) {
    t.join();
  }
}

void AckHandler::HandleFrame(std::string payload, const PeerInfo& peer, ReplyFn done) {
  ++handled_;
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_subject_ = peer.certificate_subject;
  }
  if (override_reply) {
    override_reply(std::move(payload), std::move(done));
    return;
  }
  if (delay_.count() == 0) {
    done(AckFor(payload));
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  workers_.emplace_back([payload = std::move(payload), done = std::move(done), d = delay_] {
    std::this_thread::sleep_for(d);
    done(AckFor(payload));
  });
}

void AckHandler::HandleOversizeFrame(std::string prefix, const PeerInfo&, ReplyFn done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_oversize_prefix_ = prefix;
  }
  done(AckFor(prefix, "AR"));
}

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

int RunCommand(const std::string& command, std::string* output) {
  output->clear();
  FILE* pipe = ::popen(("( " + command + " ) 2>&1").c_str(), "r");
  if (pipe == nullptr) {
    return -1;
  }
  std::array<char, 4096> buf;
  while (std::size_t n = std::fread(buf.data(), 1, buf.size(), pipe)) {
    output->append(buf.data(), n);
  }
  const int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::optional<TestPki> MakeTestPki(const std::filesystem::path& dir) {
  const std::string d = dir.string();
  const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
  auto ca = [&](const std::string& name) {
    return "openssl req -x509 " + ec + " -days 2 -subj /CN=" + name + " -keyout " + d + "/" +
           name + ".key -out " + d + "/" + name + ".crt";
  };
  auto leaf = [&](const std::string& name, const std::string& cn, const std::string& ca_name,
                  const std::string& ext) {
    return "openssl req " + ec + " -subj '/O=Test Lab/CN=" + cn + "' -keyout " + d + "/" + name +
           ".key -out " + d + "/" + name + ".csr && printf '" + ext + "' > " + d + "/" + name +
           ".ext && openssl x509 -req -days 2 -in " + d + "/" + name + ".csr -CA " + d + "/" +
           ca_name + ".crt -CAkey " + d + "/" + ca_name + ".key -CAcreateserial -extfile " + d +
           "/" + name + ".ext -out " + d + "/" + name + ".crt";
  };
  const std::vector<std::string> commands = {
      ca("ca"),
      ca("rogue-ca"),
      leaf("server", "localhost", "ca",
           "subjectAltName=DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n"),
      leaf("client-a", "lis-a", "ca",
           "subjectAltName=DNS:lis-a.example\\nextendedKeyUsage=clientAuth\\n"),
      leaf("client-b", "lis-b", "ca", "extendedKeyUsage=clientAuth\\n"),
      leaf("rogue", "lis-a", "rogue-ca", "extendedKeyUsage=clientAuth\\n"),
  };
  for (const std::string& c : commands) {
    std::string out;
    if (RunCommand(c, &out) != 0) {
      ADD_FAILURE() << "openssl failed: " << c << "\n" << out;
      return std::nullopt;
    }
  }
  TestPki pki;
  pki.ca_crt = dir / "ca.crt";
  pki.server_crt = dir / "server.crt";
  pki.server_key = dir / "server.key";
  pki.client_a_crt = dir / "client-a.crt";
  pki.client_a_key = dir / "client-a.key";
  pki.client_b_crt = dir / "client-b.crt";
  pki.client_b_key = dir / "client-b.key";
  pki.rogue_crt = dir / "rogue.crt";
  pki.rogue_key = dir / "rogue.key";
  return pki;
}

}  // namespace bridge::mllp::testing

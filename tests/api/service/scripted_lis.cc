// tests/api/service/scripted_lis.cc
#include "tests/api/service/scripted_lis.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

#include "absl/time/clock.h"

namespace bridge::testing {
namespace {

constexpr char kStart = 0x0b;
constexpr char kEnd[] = "\x1c\x0d";

bool SendAll(int fd, const std::string& bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      return false;
    }
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

// MSH-10 of an ER7 message (the 10th |-field of the first segment).
std::string ControlId(const std::string& payload) {
  const std::size_t end = payload.find('\r');
  const std::string msh = payload.substr(0, end);
  int field = 1;  // MSH-1 is the '|' itself
  std::size_t pos = 3;
  while (pos <= msh.size()) {
    const std::size_t next = msh.find('|', pos + 1);
    ++field;
    if (field == 10) {
      return msh.substr(pos + 1, next == std::string::npos ? std::string::npos : next - pos - 1);
    }
    if (next == std::string::npos) {
      break;
    }
    pos = next;
  }
  return "";
}

}  // namespace

std::string LisAck(const std::string& code, const std::string& control_id) {
  static std::atomic<int> counter{0};
  return "MSH|^~\\&|LAB_LIS|REFERENCE_LAB|PMS_LAB|MPS_PMS|20260221120000||ACK^O01|LISACK" +
         std::to_string(++counter) + "|P|2.5.1\rMSA|" + code + "|" + control_id + "\r";
}

LisScript AlwaysAccept() {
  return [](const LisMessage& m) { return LisAction::Reply({LisAck("AA", m.control_id)}); };
}

ScriptedLis::ScriptedLis(LisScript script, std::uint16_t port) : script_(std::move(script)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(listen_fd_, 64) != 0) {
    throw std::runtime_error(std::string("scripted LIS: cannot listen: ") + std::strerror(errno));
  }
  socklen_t length = sizeof(address);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
  port_ = ntohs(address.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

ScriptedLis::~ScriptedLis() { Stop(); }

void ScriptedLis::Stop() {
  if (stopping_.exchange(true)) {
    return;
  }
  ::shutdown(listen_fd_, SHUT_RDWR);
  ::close(listen_fd_);
  acceptor_.join();
  std::vector<std::thread> servers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : fds_) {
      ::shutdown(fd, SHUT_RDWR);
    }
    servers = std::move(servers_);
  }
  for (std::thread& t : servers) {
    t.join();
  }
}

void ScriptedLis::AcceptLoop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) {
      continue;
    }
    const int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) {
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      ::close(fd);
      break;
    }
    fds_.push_back(fd);
    const int connection = connections_++;
    servers_.emplace_back([this, fd, connection] { Serve(fd, connection); });
  }
}

void ScriptedLis::Serve(int fd, int connection) {
  std::string buffer;
  char chunk[16384];
  bool open = true;
  while (open && !stopping_) {
    const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) {
      break;
    }
    buffer.append(chunk, static_cast<std::size_t>(n));
    for (;;) {
      const std::size_t start = buffer.find(kStart);
      if (start == std::string::npos) {
        buffer.clear();
        break;
      }
      const std::size_t end = buffer.find(kEnd, start);
      if (end == std::string::npos) {
        buffer.erase(0, start);
        break;
      }
      LisMessage m;
      m.payload = buffer.substr(start + 1, end - start - 1);
      buffer.erase(0, end + 2);
      m.connection = connection;
      m.control_id = ControlId(m.payload);
      m.received_at = absl::Now();
      {
        std::lock_guard<std::mutex> lock(mu_);
        m.index = static_cast<int>(messages_.size());
        messages_.push_back(m);
      }
      const LisAction action = script_(m);
      if (action.delay > absl::ZeroDuration()) {
        absl::SleepFor(action.delay);
      }
      for (const std::string& reply : action.replies) {
        if (!SendAll(fd, std::string(1, kStart) + reply + kEnd)) {
          open = false;
        }
      }
      if (action.hang_up) {
        open = false;
        break;
      }
    }
  }
  ::shutdown(fd, SHUT_RDWR);
  std::lock_guard<std::mutex> lock(mu_);
  ::close(fd);
  for (int& f : fds_) {
    if (f == fd) {
      f = -1;
    }
  }
}

bool ScriptedLis::SendToLastConnection(const std::string& payload) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto fd = fds_.rbegin(); fd != fds_.rend(); ++fd) {
    if (*fd >= 0) {
      return SendAll(*fd, std::string(1, kStart) + payload + kEnd);
    }
  }
  return false;
}

std::vector<LisMessage> ScriptedLis::messages() const {
  std::lock_guard<std::mutex> lock(mu_);
  return messages_;
}

bool ScriptedLis::WaitForMessages(std::size_t count, absl::Duration timeout) const {
  return WaitUntil([&] { return messages().size() >= count; }, timeout);
}

bool WaitUntil(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) {
      return false;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

}  // namespace bridge::testing

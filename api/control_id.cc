#include "api/control_id.h"

#include <unistd.h>

#include <chrono>

namespace bridge::api {
namespace {

void AppendBase36(std::uint64_t value, int width, std::string* out) {
  static constexpr char kDigits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  char buffer[16];
  for (int i = width - 1; i >= 0; --i) {
    buffer[i] = kDigits[value % 36];
    value /= 36;
  }
  out->append(buffer, width);
}

}  // namespace

ControlIdGenerator::ControlIdGenerator() : process_id_(static_cast<std::uint64_t>(getpid())) {}

std::string ControlIdGenerator::Next() {
  const std::uint64_t ms =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  const std::uint64_t n = counter_.fetch_add(1, std::memory_order_relaxed);
  // 2 + 9 (ms, good until year 5000) + 4 (pid < 36^4) + 5 (counter) = 20.
  std::string id = "LB";
  AppendBase36(ms, 9, &id);
  AppendBase36(process_id_ % 1679616, 4, &id);
  AppendBase36(n % 60466176, 5, &id);
  return id;
}

}  // namespace bridge::api

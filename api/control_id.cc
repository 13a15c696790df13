#include "api/control_id.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>

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

// One counter for the whole process: two generators never hand out the same
// (millisecond, counter) pair.
std::atomic<std::uint64_t> process_counter{0};

std::uint64_t DrawTag(std::uint64_t pid) {
  std::random_device random;
  const std::uint64_t salt = (static_cast<std::uint64_t>(random()) << 32) ^ random();
  return (pid * 0x9E3779B97F4A7C15ull) ^ salt;
}

// Drawn once per process: a child forked after the first draw gets its own.
std::uint64_t ProcessTag() {
  static std::mutex mutex;
  static std::uint64_t drawn_for_pid = 0;
  static std::uint64_t tag = 0;
  const std::uint64_t pid = static_cast<std::uint64_t>(getpid());
  std::lock_guard<std::mutex> lock(mutex);
  if (drawn_for_pid != pid) {
    tag = DrawTag(pid);
    drawn_for_pid = pid;
  }
  return tag;
}

}  // namespace

ControlIdGenerator::ControlIdGenerator() : process_tag_(ProcessTag()) {}

std::string ControlIdGenerator::Next() {
  const std::uint64_t ms =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  const std::uint64_t n = process_counter.fetch_add(1, std::memory_order_relaxed);
  // 2 + 9 (ms, good until year 5000) + 4 (process tag) + 5 (counter) = 20.
  std::string id = "LB";
  AppendBase36(ms, 9, &id);
  AppendBase36(process_tag_ % 1679616, 4, &id);
  AppendBase36(n % 60466176, 5, &id);
  return id;
}

}  // namespace bridge::api

// ControlIdGenerator: MSH-10 values for the messages lab-bridge writes (ACKs,
// orders). At most 20 characters (MSH-10 is ST(20) up to v2.5.1), never the
// same twice in one process, and distinct across processes and restarts:
// "LB" + milliseconds since the epoch + process id + a counter, base 36.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace bridge::api {

class ControlIdGenerator {
 public:
  ControlIdGenerator();
  ControlIdGenerator(const ControlIdGenerator&) = delete;
  ControlIdGenerator& operator=(const ControlIdGenerator&) = delete;

  std::string Next();

 private:
  std::uint64_t process_id_;
  std::atomic<std::uint64_t> counter_{0};
};

}  // namespace bridge::api

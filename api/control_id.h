// ControlIdGenerator: MSH-10 values for the messages lab-bridge writes (ACKs,
// orders). At most 20 characters (MSH-10 is ST(20) up to v2.5.1), never the
// same twice in one process, and distinct across processes and restarts:
// "LB" + milliseconds since the epoch + a process tag + a counter, base 36.
// The counter is shared by every generator of the process (the ACK builder
// and the order service each own one, and their ids must not meet), and the
// tag mixes the process id with random bits drawn at start, since replicas
// in containers all run as process 1.
//
// Thread-safe.
#pragma once

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
  std::uint64_t process_tag_;
};

}  // namespace bridge::api

// `lab-bridge parse --check -` on a large export streamed through a pipe:
// it must count every message and keep its memory flat (constant memory is
// what lets it check multi-gigabyte exports).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <string>

#include "tests/support/test_paths.h"

namespace bridge::api {
namespace {

TEST(ParseStreamTest, ChecksAQuarterGigabyteInConstantMemory) {
  const std::string binary = (bridge::testing::BinaryDir() / "lab-bridge").string();
  const std::string message = bridge::testing::ReadFileOrDie(
      bridge::testing::SourceDir() / "tests/fixtures/hl7/synthetic_full_oru.hl7");
  int to_child[2];
  int from_child[2];
  ASSERT_EQ(pipe(to_child), 0);
  ASSERT_EQ(pipe(from_child), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(to_child[0], 0);
    dup2(from_child[1], 1);
    close(to_child[1]);
    close(from_child[0]);
    execl(binary.c_str(), binary.c_str(), "parse", "--check", "-", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(to_child[0]);
  close(from_child[1]);
  signal(SIGPIPE, SIG_IGN);

  std::string block;
  const int per_block = 256;
  for (int i = 0; i < per_block; ++i) block += message + "\n";
  const std::size_t target = 256u << 20;
  std::size_t written = 0;
  std::size_t messages = 0;
  while (written < target) {
    std::size_t off = 0;
    while (off < block.size()) {
      ssize_t n = write(to_child[1], block.data() + off, block.size() - off);
      ASSERT_GT(n, 0);
      off += static_cast<std::size_t>(n);
    }
    written += block.size();
    messages += per_block;
  }
  close(to_child[1]);
  std::string output;
  std::array<char, 4096> buffer;
  ssize_t n;
  while ((n = read(from_child[0], buffer.data(), buffer.size())) > 0)
    output.append(buffer.data(), n);
  close(from_child[0]);
  int status = 0;
  struct rusage usage {};
  ASSERT_EQ(wait4(pid, &status, 0, &usage), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << output;
  EXPECT_NE(output.find("checked " + std::to_string(messages) +
                        " messages: " + std::to_string(messages) + " parsed, 0 failed"),
            std::string::npos)
      << output;
  // ru_maxrss is in KiB: a few MiB of buffers, nowhere near the 256 MiB read.
  EXPECT_LT(usage.ru_maxrss, 48 * 1024) << "max RSS " << usage.ru_maxrss << " KiB";
}

}  // namespace
}  // namespace bridge::api

#include "api/control_id.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

namespace bridge::api {
namespace {

TEST(ControlIdGeneratorTest, IdsAreShortAndNeverRepeatAcrossThreads) {
  ControlIdGenerator ids;
  std::vector<std::vector<std::string>> per_thread(4);
  std::vector<std::thread> threads;
  for (auto& out : per_thread) {
    threads.emplace_back([&ids, &out] {
      for (int i = 0; i < 20000; ++i) out.push_back(ids.Next());
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  for (const auto& out : per_thread) {
    for (const std::string& id : out) {
      EXPECT_LE(id.size(), 20u);
      all.insert(id);
    }
  }
  EXPECT_EQ(all.size(), 80000u);
}

TEST(ControlIdGeneratorTest, GeneratorsOfOneProcessNeverMeet) {
  // The ACK builder and the order service each own a generator; calls in
  // the same millisecond from both must still differ.
  std::set<std::string> all;
  for (int round = 0; round < 2000; ++round) {
    ControlIdGenerator a;
    ControlIdGenerator b;
    EXPECT_TRUE(all.insert(a.Next()).second);
    EXPECT_TRUE(all.insert(b.Next()).second);
  }
  EXPECT_EQ(all.begin()->substr(0, 2), "LB");
}

TEST(ControlIdGeneratorTest, ForkedProcessesDrawTheirOwnIds) {
  // Two processes in the same millisecond: a child forked from this one
  // writes its ids to a pipe; none may equal the parent's.
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  constexpr int kIds = 2000;
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(pipe_fds[0]);
    ControlIdGenerator ids;
    std::string out;
    for (int i = 0; i < kIds; ++i) out += ids.Next() + "\n";
    const ssize_t ignored = write(pipe_fds[1], out.data(), out.size());
    (void)ignored;
    _exit(0);
  }
  close(pipe_fds[1]);
  ControlIdGenerator ids;
  std::set<std::string> parent;
  for (int i = 0; i < kIds; ++i) parent.insert(ids.Next());
  std::string text;
  char buffer[4096];
  for (ssize_t n; (n = read(pipe_fds[0], buffer, sizeof buffer)) > 0;) text.append(buffer, n);
  close(pipe_fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  int seen = 0;
  for (std::size_t pos = 0, end; (end = text.find('\n', pos)) != std::string::npos; pos = end + 1) {
    ++seen;
    EXPECT_EQ(parent.count(text.substr(pos, end - pos)), 0u) << text.substr(pos, end - pos);
  }
  EXPECT_EQ(seen, kIds);
}

}  // namespace
}  // namespace bridge::api

// Codec speed on one core: full parse (splitting, unescaping, ORU grouping,
// and reading every value), encode, and the streaming check used by
// `lab-bridge parse --check`. Run with tests/bench/run_hl7_bench.sh, which
// also measures python-hl7 on the same bytes.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "mapping/hl7/batch.h"
#include "mapping/hl7/encoder.h"
#include "mapping/hl7/message.h"
#include "mapping/hl7/oru.h"
#include "tests/bench/oru_generator.h"

namespace bridge::hl7 {
namespace {

const std::vector<std::string>& Messages() {
  static const std::vector<std::string> messages = bench::GenerateOruSet(1000);
  return messages;
}

std::size_t TotalBytes() {
  std::size_t total = 0;
  for (const std::string& m : Messages()) total += m.size();
  return total;
}

// Reads every value in the tree, so nothing is left for later.
std::size_t ReadEveryValue(const Message& m) {
  std::size_t sum = 0;
  for (int s = 0; s < m.segment_count(); ++s) {
    SegmentRef segment = m.segment(s);
    for (int f = 1; f <= segment.field_count(); ++f) {
      Element field = segment.Field(f);
      for (int r = 1; r <= field.size(); ++r) {
        Element rep = field.Rep(r);
        for (int c = 1; c <= rep.size(); ++c) {
          Element comp = rep.Comp(c);
          for (int x = 1; x <= comp.size(); ++x) sum += comp.Sub(x).value().size();
        }
      }
    }
  }
  return sum;
}

// The full parse: every segment, field, repetition, component and
// subcomponent located, every escaped value decoded, ORU groups built.
void BM_ParseFull(benchmark::State& state) {
  Message message;
  std::size_t i = 0;
  for (auto _ : state) {
    const std::string& bytes = Messages()[i++ % Messages().size()];
    if (!Message::ParseInto(bytes, {}, &message).ok()) state.SkipWithError("parse failed");
    OruR01 oru = GroupOruR01(message);
    benchmark::DoNotOptimize(oru.patient_results.size());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(
      static_cast<std::int64_t>(state.iterations() * TotalBytes() / Messages().size()));
}
BENCHMARK(BM_ParseFull);

// The same, then every value read through the public accessors (what a
// mapper does), as the python-hl7 comparison reads every field.
void BM_ParseAndReadEveryValue(benchmark::State& state) {
  Message message;
  std::size_t i = 0;
  for (auto _ : state) {
    const std::string& bytes = Messages()[i++ % Messages().size()];
    if (!Message::ParseInto(bytes, {}, &message).ok()) state.SkipWithError("parse failed");
    OruR01 oru = GroupOruR01(message);
    benchmark::DoNotOptimize(oru.patient_results.size());
    benchmark::DoNotOptimize(ReadEveryValue(message));
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(
      static_cast<std::int64_t>(state.iterations() * TotalBytes() / Messages().size()));
}
BENCHMARK(BM_ParseAndReadEveryValue);

void BM_ParseTreeOnly(benchmark::State& state) {
  Message message;
  std::size_t i = 0;
  for (auto _ : state) {
    const std::string& bytes = Messages()[i++ % Messages().size()];
    if (!Message::ParseInto(bytes, {}, &message).ok()) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(message.segment_count());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(
      static_cast<std::int64_t>(state.iterations() * TotalBytes() / Messages().size()));
}
BENCHMARK(BM_ParseTreeOnly);

void BM_Encode(benchmark::State& state) {
  std::vector<Message> parsed;
  for (const std::string& bytes : Messages()) parsed.push_back(*Message::Parse(bytes));
  std::size_t i = 0;
  for (auto _ : state) {
    std::string out = Encode(parsed[i++ % parsed.size()]);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(
      static_cast<std::int64_t>(state.iterations() * TotalBytes() / Messages().size()));
}
BENCHMARK(BM_Encode);

// What `parse --check` does per message of a large LF-separated export:
// split the stream, then parse each message.
void BM_StreamCheck(benchmark::State& state) {
  std::string export_bytes;
  for (const std::string& m : Messages()) {
    export_bytes += m;
    export_bytes += '\n';
  }
  Message message;
  std::size_t ok = 0;
  for (auto _ : state) {
    MessageSplitter splitter;
    auto check = [&](const SplitMessage& piece) {
      ok += Message::ParseInto(piece.bytes, {}, &message).ok();
    };
    for (std::size_t pos = 0; pos < export_bytes.size(); pos += 1 << 16) {
      splitter.Feed(std::string_view(export_bytes).substr(pos, 1 << 16), check);
    }
    splitter.Finish(check);
  }
  benchmark::DoNotOptimize(ok);
  state.SetItemsProcessed(state.iterations() * Messages().size());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * export_bytes.size()));
}
BENCHMARK(BM_StreamCheck);

}  // namespace
}  // namespace bridge::hl7

// `hl7_bench --write-corpus FILE` writes the generated messages, one per LF
// line (segments stay CR-separated), for the python-hl7 comparison.
// `hl7_bench --parse-twice` parses (and groups) every message twice and
// nothing else, for instruction counts that a loaded machine does not skew:
// run it under callgrind with --toggle-collect='bridge::hl7::Message::ParseInto*'
// and --toggle-collect='bridge::hl7::GroupOruR01*' (docs/BENCHMARKS.md); the
// instructions per message are the total / 2,000.
int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--write-corpus") {
    std::ofstream out(argv[2], std::ios::binary);
    for (const std::string& m : bridge::hl7::Messages()) out << m << '\n';
    return out ? 0 : 1;
  }
  if (argc == 2 && std::string(argv[1]) == "--parse-twice") {
    bridge::hl7::Message message;
    std::size_t groups = 0;
    for (int pass = 0; pass < 2; ++pass) {
      for (const std::string& bytes : bridge::hl7::Messages()) {
        if (!bridge::hl7::Message::ParseInto(bytes, {}, &message).ok()) return 1;
        groups += bridge::hl7::GroupOruR01(message).patient_results.size();
      }
    }
    std::printf("parsed %zu messages, %zu patient results\n", 2 * bridge::hl7::Messages().size(),
                groups);
    return 0;
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

// `rwkv bench <name>`: dispatches to the registered benchmarks (one file each, RWKV_BENCH).
#include <iostream>

#include "core/error.h"
#include "train/cli/command.h"

namespace rwkv::cli {

std::map<std::string, Command>& bench_registry() {
  static std::map<std::string, Command> benches;
  return benches;
}

BenchRegistration::BenchRegistration(std::string name, std::string summary, CommandFn run) {
  bench_registry().emplace(name, Command{name, std::move(summary), std::move(run)});
}

namespace {

int run_bench(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << "usage: rwkv bench <name> [options]\n"
                 "       rwkv bench --config F [options]   (the same as `rwkv bench train`)\n\nbenchmarks:\n";
    for (const auto& [name, bench] : bench_registry()) {
      std::cout << "  " << name << std::string(name.size() < 14 ? 14 - name.size() : 1, ' ') << bench.summary
                << "\n";
    }
    return args.empty() ? 2 : 0;
  }
  // `rwkv bench --config F ...` is the training benchmark: options instead of a name mean "train".
  if (args[0].starts_with("--")) return bench_registry().at("train").run(args);
  const auto found = bench_registry().find(args[0]);
  if (found == bench_registry().end()) {
    std::string known;
    for (const auto& [name, bench] : bench_registry()) known += " " + name;
    RWKV_FAIL("unknown benchmark '", args[0], "'; known:", known);
  }
  return found->second.run(std::vector<std::string>(args.begin() + 1, args.end()));
}

}  // namespace

RWKV_COMMAND("bench", "run a benchmark (`rwkv bench --help` lists them)", run_bench);

}  // namespace rwkv::cli

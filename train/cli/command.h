// The `rwkv` command line: each subcommand lives in its own file in train/cli/ and registers itself with
// RWKV_COMMAND; main.cpp only dispatches. A subcommand gets the arguments after its name and returns the
// process exit code; it may throw rwkv::Error, which main turns into "rwkv <name>: error: ..." and exit 1.
#pragma once

#include <boost/program_options.hpp>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace rwkv::cli {

using CommandFn = std::function<int(const std::vector<std::string>& args)>;

struct Command {
  std::string name;
  std::string summary;  // one line for `rwkv --help`
  CommandFn run;
};

// All registered subcommands, ordered by name.
std::map<std::string, Command>& registry();

struct Registration {
  Registration(std::string name, std::string summary, CommandFn run);
};

// Parses a subcommand's options into `values` (and the variables bound to them). Returns false after printing
// `description` when --help was given; unknown options and bad values throw, and main reports them.
bool parse_options(const std::vector<std::string>& args,
                   const boost::program_options::options_description& description,
                   boost::program_options::variables_map& values);

}  // namespace rwkv::cli

#define RWKV_CLI_CONCAT_INNER(a, b) a##b
#define RWKV_CLI_CONCAT(a, b) RWKV_CLI_CONCAT_INNER(a, b)
// RWKV_COMMAND("data-info", "summarise a token dataset", run_data_info);
#define RWKV_COMMAND(name, summary, fn) \
  static const ::rwkv::cli::Registration RWKV_CLI_CONCAT(rwkv_command_, __LINE__){name, summary, fn}

namespace rwkv::cli {

// `rwkv bench <name> [options]`: each benchmark registers itself like a subcommand.
std::map<std::string, Command>& bench_registry();

struct BenchRegistration {
  BenchRegistration(std::string name, std::string summary, CommandFn run);
};

}  // namespace rwkv::cli

// RWKV_BENCH("data", "batch assembly from mmap", run_bench_data);
#define RWKV_BENCH(name, summary, fn) \
  static const ::rwkv::cli::BenchRegistration RWKV_CLI_CONCAT(rwkv_bench_, __LINE__){name, summary, fn}

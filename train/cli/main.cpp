// Entry point of the `rwkv` binary: dispatches to the subcommand named by the first argument.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "train/cli/command.h"
#include "train/run_log.h"

namespace rwkv::cli {

std::map<std::string, Command>& registry() {
  static std::map<std::string, Command> commands;
  return commands;
}

Registration::Registration(std::string name, std::string summary, CommandFn run) {
  registry().emplace(name, Command{name, std::move(summary), std::move(run)});
}

bool parse_options(const std::vector<std::string>& args,
                   const boost::program_options::options_description& description,
                   boost::program_options::variables_map& values) {
  namespace po = boost::program_options;
  po::store(po::command_line_parser(args).options(description).run(), values);
  if (values.count("help")) {
    std::cout << description << "\n";
    return false;
  }
  po::notify(values);
  return true;
}

namespace {

void print_usage(std::ostream& out) {
  out << "usage: rwkv <command> [options]\n\n"
         "A C++/CUDA trainer for RWKV-4 language models.\n\ncommands:\n";
  for (const auto& [name, command] : registry()) {
    out << "  " << name << std::string(name.size() < 14 ? 14 - name.size() : 1, ' ') << command.summary
        << "\n";
  }
  out << "\n`rwkv <command> --help` describes a command's options.\n";
}

}  // namespace
}  // namespace rwkv::cli

int main(int argc, char** argv) {
  using namespace rwkv::cli;
  // OpenBLAS and OpenMP each keep worker threads that spin while idle, and on a few cores each set steals the
  // other's: libgomp's spinning made CPU training ~10x slower on 2 cores, OpenBLAS's yielding cost another ~25%.
  // Both libraries read these variables when they are loaded, before main, so set them and start again once
  // (a user's explicit settings are kept).
  bool set_any = false;
  for (const auto& [name, value] : {std::pair{"OMP_WAIT_POLICY", "passive"}, std::pair{"OPENBLAS_THREAD_TIMEOUT", "4"}}) {
    if (std::getenv(name) == nullptr) {
      ::setenv(name, value, 1);
      set_any = true;
    }
  }
  if (set_any) ::execv("/proc/self/exe", argv);  // only returns on failure: then carry on with the defaults
  if (argc < 2) {
    print_usage(std::cerr);
    return 2;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    print_usage(std::cout);
    return 0;
  }
  if (name == "--version") {
    std::cout << "rwkv " << rwkv::kRwkvVersion << "\n";
    return 0;
  }
  const auto found = registry().find(name);
  if (found == registry().end()) {
    std::cerr << "rwkv: unknown command '" << name << "'\n\n";
    print_usage(std::cerr);
    return 2;
  }
  const std::vector<std::string> args(argv + 2, argv + argc);
  try {
    return found->second.run(args);
  } catch (const std::exception& e) {
    std::cerr << "rwkv " << name << ": error: " << e.what() << "\n";
    return 1;
  }
}

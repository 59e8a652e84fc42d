// `rwkv report --run PROJ_DIR [--out FILE.html]`: one self-contained HTML page about a training run.
#include <boost/program_options.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "core/durable_file.h"
#include "core/error.h"
#include "train/cli/command.h"
#include "train/report.h"

namespace rwkv::cli {

namespace {

int run_report(const std::vector<std::string>& args) {
  namespace po = boost::program_options;
  std::string run_dir, out_path;
  po::options_description description(
      "usage: rwkv report --run PROJ_DIR [--out FILE.html]\n\n"
      "Writes one HTML page (no network needed: styles, script and charts are inline) about the training run in\n"
      "PROJ_DIR: configuration, hardware, training and validation loss, learning rate, tokens/s and memory per\n"
      "step (metrics.jsonl), and the checkpoints");
  description.add_options()("help,h", "show this help")("run", po::value(&run_dir)->required(),
                                                        "the run's proj_dir")(
      "out", po::value(&out_path), "the page to write (default: PROJ_DIR/report.html)");
  po::variables_map values;
  if (!parse_options(args, description, values)) return 0;
  if (out_path.empty()) out_path = (std::filesystem::path(run_dir) / "report.html").string();

  const RunReport report = read_run_report(run_dir);
  for (const std::string& warning : report.warnings) std::cerr << "rwkv report: warning: " << warning << "\n";
  const std::string html = render_report_html(report);
  try {
    replace_file_atomically(out_path, html);
  } catch (const Error& e) {
    RWKV_FAIL("report: ", e.what());
  }
  std::cout << "wrote " << out_path << " (" << report.steps.size() << " steps, " << report.validations.size()
            << " validations, " << report.checkpoints.size() << " checkpoints)\n";
  return 0;
}

}  // namespace

RWKV_COMMAND("report", "write an HTML page about a training run (curves, config, hardware, checkpoints)",
             run_report);

}  // namespace rwkv::cli

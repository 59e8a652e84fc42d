// `rwkv bench tokenizer`: BPE encoding throughput (MB/s of UTF-8 text, tokens/s) on a real corpus, to
// compare with HuggingFace `tokenizers` (tests/reference/tokenizer/bench_hf.js measures it the same way).
#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "data/json.h"
#include "data/tokenizer.h"
#include "data/unicode.h"
#include "train/cli/command.h"

namespace rwkv::cli {
namespace {

namespace po = boost::program_options;

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// The documents of the input: the lines' text_key strings of a .jsonl, or the whole of any other file.
std::vector<std::string> read_documents(const std::string& path, const std::string& format,
                                        const std::string& text_key) {
  const std::string extension = std::filesystem::path(path).extension().string();
  const bool jsonl = format == "jsonl" || (format == "auto" && (extension == ".jsonl" || extension == ".json"));
  std::ifstream file(path, std::ios::binary);
  RWKV_CHECK(file, "bench tokenizer: cannot open ", path);
  std::vector<std::string> documents;
  if (!jsonl) {
    std::ostringstream content;
    content << file.rdbuf();
    documents.push_back(std::move(content).str());
    return documents;
  }
  std::string line;
  for (std::uint64_t number = 1; std::getline(file, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      documents.push_back(data::json::parse(line).at(text_key).as_string());
    } catch (const Error& error) {
      RWKV_FAIL("bench tokenizer: ", path, ":", number, ": ", error.what());
    }
  }
  return documents;
}

int run_bench_tokenizer(const std::vector<std::string>& args) {
  std::string tokenizer_path;
  std::string input;
  std::string format;
  std::string text_key;
  unsigned threads = 0;
  unsigned repeats = 0;
  std::size_t piece_bytes = 0;
  po::options_description options(
      "usage: rwkv bench tokenizer --tokenizer T.json --input F [options]\n\n"
      "Encodes every document of F (.jsonl: one {\"text\": ...} per line; other files: one document) on\n"
      "--threads threads, documents handed out dynamically, and reports MB/s of UTF-8 text and tokens/s for\n"
      "each repeat and their median. The per-thread BPE caches stay warm between repeats (the first repeat\n"
      "starts cold). A document larger than --piece_bytes is cut into independent pieces (as `rwkv tokenize`\n"
      "does), so that one big document also uses all threads.\n\noptions");
  options.add_options()("help,h", "show this help")("tokenizer", po::value(&tokenizer_path)->required(),
                                                    "tokenizer.json file")("input", po::value(&input)->required(),
                                                                           "text corpus (.jsonl or plain text)")(
      "format", po::value(&format)->default_value("auto"), "auto, txt or jsonl")(
      "text_key", po::value(&text_key)->default_value("text"), "key of the text in .jsonl lines")(
      "threads", po::value(&threads), "encoding threads (default: all cores)")(
      "repeats", po::value(&repeats)->default_value(3), "timed passes over the corpus")(
      "piece_bytes", po::value(&piece_bytes)->default_value(std::size_t{1} << 20),
      "cut larger documents into independent pieces of about this size (0: never)");
  po::variables_map vm;
  if (!parse_options(args, options, vm)) return 0;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  RWKV_CHECK(repeats > 0, "bench tokenizer: --repeats must be positive");

  auto start = Clock::now();
  const data::Tokenizer tokenizer = data::Tokenizer::from_file(tokenizer_path);
  std::cout << std::fixed << std::setprecision(1) << "tokenizer: " << tokenizer_path << " (" << tokenizer.vocab_size()
            << " tokens), loaded in " << 1000 * seconds_since(start) << " ms\n";

  const std::vector<std::string> documents = read_documents(input, format, text_key);
  std::vector<std::string_view> work;  // documents, big ones cut into independent pieces
  std::uint64_t bytes = 0;
  for (const std::string& document : documents) {
    const std::size_t invalid = data::unicode::find_invalid_utf8(document);
    RWKV_CHECK(invalid == std::string::npos, "bench tokenizer: ", input, " is not valid UTF-8 at byte ", invalid);
    bytes += document.size();
    if (piece_bytes == 0 || document.size() <= piece_bytes) {
      work.emplace_back(document);
    } else {
      for (const auto piece : tokenizer.independent_pieces(document, piece_bytes)) work.push_back(piece);
    }
  }
  std::cout << "input: " << input << ", " << documents.size() << " documents (" << work.size() << " work items), "
            << bytes / 1e6 << " MB\n";

  std::vector<double> rates;
  std::uint64_t tokens = 0;
  for (unsigned repeat = 0; repeat < repeats; ++repeat) {
    std::vector<std::uint64_t> counts(work.size());
    start = Clock::now();
    const auto count = static_cast<std::int64_t>(work.size());
    const int thread_count = static_cast<int>(threads);
#pragma omp parallel num_threads(thread_count)
    {
      std::vector<std::int32_t> ids;
#pragma omp for schedule(dynamic, 1)
      for (std::int64_t i = 0; i < count; ++i) {
        ids.clear();
        tokenizer.encode(work[i], ids);
        counts[i] = ids.size();
      }
    }
    const double seconds = seconds_since(start);
    tokens = 0;
    for (const auto n : counts) tokens += n;
    rates.push_back(bytes / 1e6 / seconds);
    std::cout << "  repeat " << repeat + 1 << ": " << std::setprecision(2) << seconds << " s, " << std::setprecision(1)
              << rates.back() << " MB/s, " << std::setprecision(2) << tokens / seconds / 1e6 << " M tokens/s\n";
  }
  std::sort(rates.begin(), rates.end());
  const double median = rates[rates.size() / 2];
  std::cout << std::setprecision(1) << "tokenizer: " << threads << " threads, " << tokens << " tokens, median "
            << median << " MB/s, " << std::setprecision(2) << median * 1e6 * tokens / bytes / 1e6 << " M tokens/s\n";
  return 0;
}

}  // namespace

RWKV_BENCH("tokenizer", "BPE encoding throughput of a tokenizer.json on a text corpus", run_bench_tokenizer);

}  // namespace rwkv::cli

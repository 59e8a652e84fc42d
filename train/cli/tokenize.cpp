// `rwkv tokenize`: text (.txt = one document, .jsonl = one {"text": ...} document per line) -> binidx
// dataset with the end-of-document token after each document, as GPT-NeoX preprocess_data.py --append-eod
// and RWKV-LM make_data.py produce. Documents are encoded on several threads; output order is input order.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "data/binidx_writer.h"
#include "data/json.h"
#include "data/magic_prime.h"
#include "data/token_dtype.h"
#include "data/tokenizer.h"
#include "data/unicode.h"
#include "train/cli/command.h"

namespace rwkv::cli {
namespace {

namespace po = boost::program_options;

// Text handed to the workers per round; bounds memory, and progress is reported between rounds.
constexpr std::size_t kRoundBytesPerThread = std::size_t{4} << 20;
// A single large document is cut into independent pieces of about this size (see independent_pieces).
constexpr std::size_t kPieceBytes = std::size_t{1} << 20;

enum class InputFormat { text, jsonl };

struct Options {
  std::string tokenizer;
  std::vector<std::string> inputs;
  std::string output;
  std::string format = "auto";
  std::string text_key = "text";
  std::string invalid_utf8 = "error";
  std::uint64_t ctx_len = 0;
  std::uint64_t micro_bsz = 12;
  std::int64_t eod_id = 0;
  unsigned threads = 0;
};

InputFormat input_format(const Options& options, const std::string& path) {
  if (options.format == "txt") return InputFormat::text;
  if (options.format == "jsonl") return InputFormat::jsonl;
  RWKV_CHECK(options.format == "auto", "--format must be auto, txt or jsonl, not '", options.format, "'");
  const std::string extension = std::filesystem::path(path).extension().string();
  return extension == ".jsonl" || extension == ".json" ? InputFormat::jsonl : InputFormat::text;
}

// Progress on stderr: a line rewritten in place on a terminal, otherwise a line every 30 seconds.
class Progress {
public:
  explicit Progress(std::uint64_t total_bytes) : total_bytes_(total_bytes), terminal_(::isatty(2) != 0) {}

  void update(std::uint64_t bytes, std::uint64_t documents, std::uint64_t tokens) {
    const auto now = std::chrono::steady_clock::now();
    const double since_last = std::chrono::duration<double>(now - last_).count();
    if (since_last < (terminal_ ? 0.25 : 30.0)) return;
    last_ = now;
    std::cerr << (terminal_ ? "\r" : "") << describe(bytes, documents, tokens) << (terminal_ ? "   " : "\n")
              << std::flush;
    shown_ = true;
  }
  void done() {
    if (terminal_ && shown_) std::cerr << "\n";
  }
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

private:
  std::string describe(std::uint64_t bytes, std::uint64_t documents, std::uint64_t tokens) const {
    std::ostringstream line;
    const double elapsed = seconds();
    const double rate = bytes / 1e6 / std::max(elapsed, 1e-9);
    line << std::fixed << std::setprecision(1) << "tokenize: " << bytes / 1e6 << " MB";
    if (total_bytes_ > 0) line << " of " << total_bytes_ / 1e6 << " MB (" << 100.0 * bytes / total_bytes_ << "%)";
    line << ", " << documents << " documents, " << tokens << " tokens, " << rate << " MB/s";
    if (total_bytes_ > bytes && rate > 0)
      line << ", " << std::setprecision(0) << (total_bytes_ - bytes) / 1e6 / rate << " s left";
    return line.str();
  }

  std::uint64_t total_bytes_;
  bool terminal_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_ = start_;
};

// Runs job(i) for i in [0, count) on `threads` threads. The threads are kept across calls so that their
// per-thread BPE caches stay warm; the first exception is rethrown on the calling thread.
class WorkerPool {
public:
  explicit WorkerPool(unsigned threads) : threads_(std::max(1u, threads)) {}

  template <typename Job>
  void run(std::size_t count, const Job& job) {
    std::atomic<std::size_t> next{0};
    std::exception_ptr failure;
    std::atomic<bool> failed{false};
    const auto work = [&] {
      for (std::size_t i = next++; i < count && !failed; i = next++) {
        try {
          job(i);
        } catch (...) {
          if (!failed.exchange(true)) failure = std::current_exception();
        }
      }
    };
#pragma omp parallel num_threads(threads_)
    work();
    if (failure) std::rethrow_exception(failure);
  }

private:
  int threads_;
};

std::string read_whole_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  RWKV_CHECK(file, "cannot open ", path);
  std::ostringstream content;
  content << file.rdbuf();
  return std::move(content).str();
}

// Makes text valid UTF-8 or fails, as --invalid_utf8 says; where names the text in the message.
void check_utf8(std::string& text, const Options& options, const std::string& where) {
  const std::size_t invalid = data::unicode::find_invalid_utf8(text);
  if (invalid == std::string::npos) return;
  RWKV_CHECK(options.invalid_utf8 == "replace", where, ": not valid UTF-8 at byte offset ", invalid,
             " (use --invalid_utf8 replace to replace such bytes with U+FFFD)");
  text = data::unicode::to_valid_utf8(text);
}

struct Totals {
  std::uint64_t bytes = 0;
  std::uint64_t documents = 0;
  std::uint64_t empty_documents = 0;
  std::uint64_t blank_lines = 0;
};

class TokenizeJob {
public:
  TokenizeJob(const Options& options, const data::Tokenizer& tokenizer, data::BinidxWriter& writer,
              std::uint64_t total_bytes)
      : options_(options), tokenizer_(tokenizer), writer_(writer), pool_(options.threads), progress_(total_bytes) {}

  void add_text_file(const std::string& path) {
    std::string text = read_whole_file(path);
    check_utf8(text, options_, path);
    // One document: cut it where that cannot change the ids, encode the pieces in parallel.
    const std::vector<std::string_view> pieces = tokenizer_.independent_pieces(text, kPieceBytes);
    std::vector<std::int32_t> document;
    const std::size_t per_round = std::max<std::size_t>(1, options_.threads * (kRoundBytesPerThread / kPieceBytes));
    for (std::size_t first = 0; first < pieces.size(); first += per_round) {
      const std::size_t count = std::min(per_round, pieces.size() - first);
      std::vector<std::vector<std::int32_t>> ids(count);
      pool_.run(count, [&](std::size_t i) { tokenizer_.encode(pieces[first + i], ids[i]); });
      for (std::size_t i = 0; i < count; ++i) {
        document.insert(document.end(), ids[i].begin(), ids[i].end());
        totals_.bytes += pieces[first + i].size();
      }
      progress_.update(totals_.bytes, totals_.documents, writer_.tokens() + document.size());
    }
    add_document(document);
  }

  void add_jsonl_file(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    RWKV_CHECK(file, "cannot open ", path);
    std::uint64_t line_number = 0;
    std::string line;
    bool more = true;
    while (more) {
      // One round: a batch of lines, parsed and encoded in parallel, written in order.
      std::vector<std::string> lines;
      std::vector<std::uint64_t> line_numbers;
      std::size_t round_bytes = 0;
      while (round_bytes < options_.threads * kRoundBytesPerThread) {
        if (!std::getline(file, line)) {
          more = false;
          break;
        }
        ++line_number;
        totals_.bytes += line.size() + 1;
        if (line.find_first_not_of(" \t\r") == std::string::npos) {
          ++totals_.blank_lines;
          continue;
        }
        round_bytes += line.size();
        lines.push_back(std::move(line));
        line_numbers.push_back(line_number);
      }
      RWKV_CHECK(!file.bad(), "error reading ", path);
      std::vector<std::vector<std::int32_t>> ids(lines.size());
      pool_.run(lines.size(), [&](std::size_t i) {
        const std::string where = path + ":" + std::to_string(line_numbers[i]);
        data::json::Value value;
        try {
          value = data::json::parse(lines[i]);
        } catch (const Error& error) {
          RWKV_FAIL(where, ": ", error.what());
        }
        RWKV_CHECK(value.is_object(), where, ": expected a JSON object with a \"", options_.text_key, "\" string");
        const data::json::Value* text = value.find(options_.text_key);
        RWKV_CHECK(text != nullptr, where, ": no \"", options_.text_key, "\" key (see --text_key)");
        RWKV_CHECK(text->is_string(), where, ": \"", options_.text_key, "\" is ",
                   data::json::Value::kind_name(text->kind()), ", expected a string");
        tokenizer_.encode(text->as_string(), ids[i]);
      });
      for (auto& document : ids) add_document(document);
      progress_.update(totals_.bytes, totals_.documents, writer_.tokens());
    }
  }

  const Totals& totals() const { return totals_; }
  Progress& progress() { return progress_; }

private:
  // Skips empty documents (GPT-NeoX preprocessing does the same); appends the end-of-document token.
  void add_document(std::vector<std::int32_t>& ids) {
    if (ids.empty()) {
      ++totals_.empty_documents;
      return;
    }
    if (options_.eod_id >= 0) ids.push_back(static_cast<std::int32_t>(options_.eod_id));
    writer_.add_document(ids);
    ++totals_.documents;
  }

  const Options& options_;
  const data::Tokenizer& tokenizer_;
  data::BinidxWriter& writer_;
  WorkerPool pool_;
  Progress progress_;
  Totals totals_;
};

int run_tokenize(const std::vector<std::string>& args) {
  Options options;
  po::options_description description(
      "usage: rwkv tokenize --tokenizer T.json --input F [--input G ...] --output PREFIX [options]\n\n"
      "Tokenizes text with a HuggingFace byte-level BPE tokenizer.json (e.g. GPT-NeoX 20B_tokenizer.json, the\n"
      "RWKV-4 Pile tokenizer) into PREFIX.bin / PREFIX.idx (binidx; uint16 when the vocabulary has fewer than\n"
      "65500 tokens, else int32). A .txt input is one document; a .jsonl input has one JSON object per line\n"
      "whose --text_key string is a document. Each document is followed by the end-of-document token\n"
      "(--eod_id, 0 = <|endoftext|>); empty documents and blank lines are skipped. With --ctx_len the\n"
      "RWKV-LM magic_prime for the result is printed. Nothing named PREFIX.idx is left behind unless the\n"
      "whole run succeeds.\n\noptions");
  description.add_options()("help,h", "show this help")("tokenizer", po::value(&options.tokenizer)->required(),
                                                        "tokenizer.json file")(
      "input", po::value(&options.inputs)->required()->composing(), "input .txt or .jsonl file (repeatable)")(
      "output", po::value(&options.output)->required(), "output prefix (writes PREFIX.bin and PREFIX.idx)")(
      "format", po::value(&options.format)->default_value("auto"), "auto (by extension: .jsonl/.json), txt or jsonl")(
      "text_key", po::value(&options.text_key)->default_value("text"), "key of the document text in .jsonl lines")(
      "ctx_len", po::value(&options.ctx_len), "also print the magic_prime for this context length")(
      "micro_bsz", po::value(&options.micro_bsz)->default_value(12),
      "with --ctx_len: the global batch (micro_bsz x GPUs) for the printed step count")(
      "threads", po::value(&options.threads), "encoding threads (default: all cores)")(
      "eod_id", po::value(&options.eod_id)->default_value(0), "end-of-document token id (-1: none)")(
      "invalid_utf8", po::value(&options.invalid_utf8)->default_value("error"),
      "for .txt input that is not valid UTF-8: error, or replace (bad bytes become U+FFFD)");
  po::variables_map vm;
  if (!parse_options(args, description, vm)) return 0;
  if (options.threads == 0) options.threads = std::max(1u, std::thread::hardware_concurrency());
  RWKV_CHECK(options.invalid_utf8 == "error" || options.invalid_utf8 == "replace",
             "--invalid_utf8 must be error or replace, not '", options.invalid_utf8, "'");

  const data::Tokenizer tokenizer = data::Tokenizer::from_file(options.tokenizer);
  RWKV_CHECK(options.eod_id < tokenizer.vocab_size(), "--eod_id ", options.eod_id, " is not a token id of ",
             options.tokenizer, " (vocabulary size ", tokenizer.vocab_size(), ")");
  std::uint64_t total_bytes = 0;
  for (const std::string& input : options.inputs) {
    std::error_code error;
    const auto size = std::filesystem::file_size(input, error);
    RWKV_CHECK(!error, "cannot read ", input, ": ", error.message());
    total_bytes += size;
  }

  const data::TokenDtype dtype = data::token_dtype_for_vocab(static_cast<std::uint64_t>(tokenizer.vocab_size()));
  // `--output data/mytext` works without a prior `mkdir data`, as RWKV-LM users expect.
  if (const std::filesystem::path parent = std::filesystem::path(options.output).parent_path(); !parent.empty()) {
    std::error_code error;
    std::filesystem::create_directories(parent, error);
    RWKV_CHECK(!error, "--output: cannot create the directory '", parent.string(), "': ", error.message());
  }
  data::BinidxWriter writer = data::BinidxWriter::open(options.output, dtype);
  TokenizeJob job(options, tokenizer, writer, total_bytes);
  for (const std::string& input : options.inputs) {
    if (input_format(options, input) == InputFormat::jsonl) {
      job.add_jsonl_file(input);
    } else {
      job.add_text_file(input);
    }
  }
  // Only a complete run publishes the dataset; an exception above leaves no PREFIX.idx.
  const data::BinidxSummary summary = writer.finish();
  job.progress().done();
  const double seconds = job.progress().seconds();
  const Totals& totals = job.totals();

  std::cout << std::fixed << std::setprecision(1);
  std::cout << "wrote " << summary.prefix << ".bin and .idx (" << data::dtype_name(summary.dtype) << ")\n";
  std::cout << "  documents: " << summary.documents;
  if (totals.empty_documents > 0) std::cout << " (" << totals.empty_documents << " empty skipped)";
  if (totals.blank_lines > 0) std::cout << " (" << totals.blank_lines << " blank lines skipped)";
  std::cout << "\n  tokens:    " << summary.tokens;
  if (options.eod_id >= 0) std::cout << " (incl. " << summary.documents << " end-of-document " << options.eod_id << ")";
  std::cout << "\n  input:     " << totals.bytes / 1e6 << " MB in " << seconds
            << " s = " << totals.bytes / 1e6 / std::max(seconds, 1e-9) << " MB/s, "
            << summary.tokens / std::max(seconds, 1e-9) / 1e6 << " M tokens/s (" << options.threads << " threads)\n";
  if (vm.count("ctx_len")) {
    RWKV_CHECK(options.ctx_len > 0, "--ctx_len must be positive");
    const std::optional<std::uint64_t> prime = data::best_magic_prime(summary.tokens, options.ctx_len);
    if (prime) {
      // RWKV-LM's make_data.py line, plus the data and vocabulary, so that it runs straight into `rwkv train`.
      std::cout << "  ctx_len " << options.ctx_len << ": magic_prime " << *prime << "\n  train with: --my_exit_tokens "
                << data::magic_exit_tokens(*prime, options.ctx_len) << " --magic_prime " << *prime << " --ctx_len "
                << options.ctx_len << " --data_file " << summary.prefix << " --vocab_size " << tokenizer.vocab_size()
                << "\n  that run:   " << data::magic_run_steps(*prime, options.micro_bsz) << "\n";
    } else {
      std::cout << "  ctx_len " << options.ctx_len << ": "
                << data::magic_prime_suggestion(summary.tokens, options.ctx_len) << "\n";
    }
  }
  return 0;
}

}  // namespace

RWKV_COMMAND("tokenize", "text (.txt / .jsonl) -> binidx tokens with a tokenizer.json", run_tokenize);

}  // namespace rwkv::cli

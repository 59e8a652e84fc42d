#include "data/dataset.h"

#include <glob.h>

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "data/binidx.h"
#include "data/npy.h"
#include "data/text_source.h"

namespace rwkv::data {
namespace {

constexpr const char* kDataTypes = "binidx, numpy, utf-8 or bytes";

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    std::string item = text.substr(start, comma - start);
    const auto first = item.find_first_not_of(" \t");
    const auto last = item.find_last_not_of(" \t");
    if (first != std::string::npos) items.push_back(item.substr(first, last - first + 1));
    start = comma + 1;
  }
  return items;
}

bool is_pattern(const std::string& item) { return item.find_first_of("*?[") != std::string::npos; }

std::vector<std::string> glob_paths(const std::string& pattern) {
  glob_t found{};
  std::vector<std::string> paths;
  if (::glob(pattern.c_str(), 0, nullptr, &found) == 0) {
    for (std::size_t i = 0; i < found.gl_pathc; ++i) paths.emplace_back(found.gl_pathv[i]);
  }
  ::globfree(&found);
  return paths;  // glob() sorts its matches
}

bool has_extension(const std::string& path, const char* extension) {
  return std::filesystem::path(path).extension() == extension;
}

}  // namespace

std::string detect_data_type(const std::string& data_file) {
  const std::vector<std::string> items = split_list(data_file);
  RWKV_CHECK(!items.empty(), "no data file given");
  const std::string& item = items.front();
  if (has_extension(item, ".npy")) return "numpy";
  if (has_extension(item, ".bin") || has_extension(item, ".idx")) return "binidx";
  if (is_pattern(item) ? !glob_paths(item + ".idx").empty() || !glob_paths(item + "*.idx").empty()
                       : std::filesystem::exists(item + ".idx")) {
    return "binidx";
  }
  if (is_pattern(item)) {
    const std::vector<std::string> matches = glob_paths(item);
    if (!matches.empty() && matches.front() != item) return detect_data_type(matches.front());
  }
  RWKV_FAIL("cannot tell the data type of '", item, "' from its name; set data_type to ", kDataTypes,
            " (text: utf-8 = character-level vocabulary, bytes = vocabulary of 256; a BPE model needs the text "
            "tokenized first with `rwkv tokenize`)");
}

std::vector<std::string> expand_data_files(const std::string& data_file, const std::string& data_type) {
  std::vector<std::string> files;
  const bool binidx = data_type == "binidx";
  for (const std::string& item : split_list(data_file)) {
    if (!is_pattern(item)) {
      files.push_back(binidx ? binidx_prefix(item) : item);
      continue;
    }
    std::vector<std::string> matches = glob_paths(item);
    if (binidx) {
      // "data/part-*" matches the files themselves only with their extensions; also try "<pattern>.idx".
      for (std::string& match : glob_paths(item + ".idx")) matches.push_back(std::move(match));
      std::vector<std::string> prefixes;
      for (const std::string& match : matches) {
        if (has_extension(match, ".bin") || has_extension(match, ".idx")) prefixes.push_back(binidx_prefix(match));
      }
      std::sort(prefixes.begin(), prefixes.end());
      prefixes.erase(std::unique(prefixes.begin(), prefixes.end()), prefixes.end());
      matches = std::move(prefixes);
    }
    RWKV_CHECK(!matches.empty(), "no ", (binidx ? "binidx files" : "files"), " match '", item, "'");
    files.insert(files.end(), matches.begin(), matches.end());
  }
  RWKV_CHECK(!files.empty(), "no data file given");
  return files;
}

TokenSource open_dataset(const DatasetSpec& spec) {
  const std::string type = spec.data_type.empty() ? detect_data_type(spec.data_file) : spec.data_type;
  const std::vector<std::string> files = expand_data_files(spec.data_file, type);
  std::vector<TokenShard> shards;
  if (type == "binidx") {
    for (const std::string& prefix : files) shards.push_back(open_binidx_shard(prefix));
    return TokenSource(type, std::move(shards));
  }
  if (type == "numpy") {
    for (const std::string& path : files) shards.push_back(open_npy_shard(path));
    return TokenSource(type, std::move(shards));
  }
  if (type == "bytes") {
    for (const std::string& path : files) shards.push_back(open_bytes_shard(path));
    return TokenSource(type, std::move(shards), 256);
  }
  if (type == "utf-8") return open_char_text(files, spec.vocab_dir);
  RWKV_FAIL("unknown data_type '", type, "'; expected ", kDataTypes);
}

}  // namespace rwkv::data

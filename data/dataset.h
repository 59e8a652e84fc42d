// Opening a dataset from the config's data_file + data_type (RWKV-LM's --data_file / --data_type).
//
// data_file is a path, a binidx prefix, a glob ("data/part-*"), or a comma-separated list of these; the
// files are concatenated in list order (glob matches sorted by name) into one token stream.
// data_type is "binidx", "numpy", "utf-8" or "bytes"; when empty it is taken from the names:
// .npy -> numpy; .bin/.idx, or a prefix with a .idx next to it -> binidx. Text needs an explicit
// choice, because a character vocabulary cannot be used with a BPE model (a classic silent mistake).
#pragma once

#include <string>
#include <vector>

#include "data/token_source.h"

namespace rwkv::data {

struct DatasetSpec {
  std::string data_file;
  std::string data_type;  // "" = detect
  std::string vocab_dir;  // utf-8 only: where vocab.json is read or written ("" = neither)
};

// The data type data_file implies; throws with the list of types when it cannot tell.
std::string detect_data_type(const std::string& data_file);

// The files (binidx: prefixes) data_file names, in concatenation order. Throws when a glob matches
// nothing.
std::vector<std::string> expand_data_files(const std::string& data_file, const std::string& data_type);

// Opens and validates every file. The trainer calls this once per rank.
TokenSource open_dataset(const DatasetSpec& spec);

}  // namespace rwkv::data

// A loaded model: the mapped GGUF file, its validated llama configuration and its tokenizer.
// Loading maps the file and parses its header; tensor data is not read until a kernel touches it, and the weights
// are views into the mapping.
#pragma once

#include <memory>
#include <string>

#include "engine/gguf.h"
#include "engine/llama_config.h"
#include "engine/tokenizer.h"
#include "engine/weights.h"

namespace pc {

class Model {
 public:
  // Throws GgufError naming the file and the defect.
  static std::shared_ptr<const Model> load(const std::string& path);

  const GgufFile& file() const { return *file_; }
  const LlamaConfig& config() const { return config_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }
  const ModelWeights& weights() const { return weights_; }

 private:
  Model(std::shared_ptr<const GgufFile> file, LlamaConfig config, Tokenizer tokenizer);

  std::shared_ptr<const GgufFile> file_;
  LlamaConfig config_;
  Tokenizer tokenizer_;
  ModelWeights weights_;
};

}  // namespace pc

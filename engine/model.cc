#include "engine/model.h"

#include <utility>

namespace pc {

Model::Model(std::shared_ptr<const GgufFile> file, LlamaConfig config, Tokenizer tokenizer)
    : file_(std::move(file)),
      config_(std::move(config)),
      tokenizer_(std::move(tokenizer)),
      weights_(viewWeights(*file_, config_)) {}

std::shared_ptr<const Model> Model::load(const std::string& path) {
  std::shared_ptr<const GgufFile> file = GgufFile::open(path);
  LlamaConfig config = readLlamaConfig(*file);
  Tokenizer tokenizer(readVocabulary(*file));
  return std::shared_ptr<const Model>(new Model(std::move(file), std::move(config), std::move(tokenizer)));
}

}  // namespace pc

#include "engine/weights.h"

#include <string>

#include "kernels/cpu/repacked.h"

namespace pc {
namespace {

const GgufTensorInfo& tensor(const GgufFile& file, const std::string& name) {
  const GgufTensorInfo* info = file.findTensor(name);
  if (!info) throw GgufError(file.path() + ": missing tensor '" + name + "'");
  return *info;
}

// GGUF dims are (row length, rows): dims[0] is the contiguous dimension. Types with repacked kernels are read by
// products through a copy made on first use; only a matrix that is read by products alone may give its mapped pages
// back afterwards (the token embedding is also read row by row).
cpu::MatrixView matrix(const GgufFile& file, const std::string& name, bool only_products = true) {
  const GgufTensorInfo& info = tensor(file, name);
  cpu::MatrixView view;
  view.type = info.type();
  view.cols = info.dims[0];
  view.rows = info.rows();
  view.data = info.data;
  view.row_bytes = static_cast<size_t>(info.byte_size / static_cast<uint64_t>(view.rows));
  if (cpu::detectIsa() >= cpu::Isa::Avx2 && cpu::canRepack(view.type, view.rows, view.cols)) {
    view.repack = std::make_shared<cpu::RepackOnFirstUse>(only_products && file.isMapped());
  }
  return view;
}

const float* vector(const GgufFile& file, const std::string& name) {
  return reinterpret_cast<const float*>(tensor(file, name).data);
}

}  // namespace

ModelWeights viewWeights(const GgufFile& file, const LlamaConfig& config) {
  ModelWeights weights;
  weights.token_embedding = matrix(file, "token_embd.weight", /*only_products=*/false);
  weights.output_norm = vector(file, "output_norm.weight");
  weights.output = config.tied_output ? weights.token_embedding : matrix(file, "output.weight");
  weights.layers.resize(static_cast<size_t>(config.n_layers));
  for (int64_t l = 0; l < config.n_layers; ++l) {
    const std::string prefix = "blk." + std::to_string(l) + ".";
    LayerWeights& layer = weights.layers[static_cast<size_t>(l)];
    layer.attn_norm = vector(file, prefix + "attn_norm.weight");
    layer.wq = matrix(file, prefix + "attn_q.weight");
    layer.wk = matrix(file, prefix + "attn_k.weight");
    layer.wv = matrix(file, prefix + "attn_v.weight");
    layer.wo = matrix(file, prefix + "attn_output.weight");
    layer.ffn_norm = vector(file, prefix + "ffn_norm.weight");
    layer.w_gate = matrix(file, prefix + "ffn_gate.weight");
    layer.w_up = matrix(file, prefix + "ffn_up.weight");
    layer.w_down = matrix(file, prefix + "ffn_down.weight");
  }
  return weights;
}

uint64_t weightBytes(const GgufFile& file) {
  uint64_t total = 0;
  for (const GgufTensorInfo& info : file.tensors()) total += info.byte_size;
  return total;
}

}  // namespace pc

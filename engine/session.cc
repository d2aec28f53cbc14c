#include "engine/session.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <thread>

#include "engine/memory.h"
#include "engine/stop_matcher.h"

namespace pc {
namespace {

double millisecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

int64_t resolveContextSize(const Model& model, int64_t requested) {
  const int64_t model_context = model.config().context_length;
  if (requested <= 0) return model_context;
  if (requested > model_context)
    throw std::invalid_argument("context size " + std::to_string(requested) + " exceeds the model's context length " +
                                std::to_string(model_context));
  return requested;
}

int resolveThreads(int requested) {
  if (requested > 0) return requested;
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace

const char* stopReasonName(StopReason reason) {
  switch (reason) {
    case StopReason::EndOfGeneration: return "eos";
    case StopReason::StopString: return "stop";
    case StopReason::MaxTokens: return "length";
    case StopReason::ContextFull: return "context";
    case StopReason::Cancelled: return "cancelled";
  }
  return "unknown";
}

Session::Session(std::shared_ptr<const Model> model, const SessionOptions& options)
    : model_(std::move(model)),
      context_size_(resolveContextSize(*model_, options.context_size)),
      pool_(resolveThreads(options.threads)),
      cache_(model_->config().n_layers, model_->config().n_kv_heads * model_->config().head_dim),
      compressor_(options.kv, model_->config().n_layers),
      forward_(model_->config(), model_->weights(), pool_, cpu::detectIsa()),
      logits_(static_cast<size_t>(model_->config().vocab_size)) {}

void Session::reset() {
  cache_.clear();
  compressor_.reset();
  tokens_.clear();
  positions_.clear();
}

int64_t Session::reusePrefix(const std::vector<TokenId>& prompt, int64_t reserve) {
  const int64_t needed = static_cast<int64_t>(prompt.size()) + reserve;
  if (prompt.empty()) throw std::invalid_argument("the prompt is empty");
  if (static_cast<int64_t>(prompt.size()) > context_size_)
    throw std::length_error("the prompt has " + std::to_string(prompt.size()) + " tokens, more than the context size " +
                            std::to_string(context_size_));
  // Keep at least the prompt's last token to compute: its logits start generation.
  size_t common = 0;
  const size_t limit = std::min(tokens_.size(), prompt.size() - 1);
  while (common < limit && tokens_[common] == prompt[common]) ++common;
  // The most the cache will hold for this request: pyramid drops tokens before deeper layers see them (the plan);
  // streaming and h2o evict only after the whole prompt ran, so their prompt peaks at the full size; generated
  // tokens count in full (bounded by the per-layer cap when one is set).
  const KvPolicyConfig& kv = compressor_.config();
  const int64_t layers = cache_.layerCount();
  const auto prompt_tokens = static_cast<int64_t>(prompt.size());
  const int64_t generated = std::max<int64_t>(0, std::min(needed, context_size_) - prompt_tokens);
  int64_t rows = kv.kind == KvPolicyKind::Pyramid ? planKv(kv, layers, prompt_tokens).total_tokens : prompt_tokens * layers;
  rows += kv.max_layer_tokens > 0 ? std::min(generated, kv.max_layer_tokens) * layers : generated * layers;
  const uint64_t peak = static_cast<uint64_t>(rows) * static_cast<uint64_t>(cache_.layer(0).rowBytes());
  const uint64_t kept = cache_.bytesBefore(static_cast<int32_t>(common));
  const uint64_t growth = peak > kept ? peak - kept : 0;
  const uint64_t available = availableMemoryBytes();
  if (growth > available)
    throw std::runtime_error("the KV cache for " + std::to_string(std::min(needed, context_size_)) + " tokens needs " +
                             formatBytes(growth) + " more memory, but only " + formatBytes(available) +
                             " is available: use a smaller context, a lower KV target ratio or a per-layer cap");
  cache_.truncateFrom(static_cast<int32_t>(common));
  compressor_.truncated(cache_);
  tokens_.assign(prompt.begin(), prompt.end());
  positions_.resize(prompt.size());
  std::iota(positions_.begin(), positions_.end(), 0);
  return static_cast<int64_t>(common);
}

bool Session::extend(size_t from, bool prompt, const std::atomic<bool>* cancel, float* all_logits) {
  const auto fresh = static_cast<int64_t>(tokens_.size() - from);
  if (prompt) {
    compressor_.beginPrompt(static_cast<int64_t>(from), fresh);
  } else {
    compressor_.beginDecode();
  }
  const bool finished = forward_.run(&tokens_[from], &positions_[from], fresh, cache_,
                                     all_logits ? LogitsWanted::All : LogitsWanted::Last,
                                     all_logits ? all_logits : logits_.data(), cancel, &compressor_);
  if (!finished) {
    tokens_.resize(from);
    positions_.resize(from);
    return false;
  }
  compressor_.compress(cache_);
  return true;
}

GenerateResult Session::generate(const std::vector<TokenId>& prompt, const GenerateOptions& options,
                                 const TokenCallback& on_token, const std::atomic<bool>* cancel) {
  GenerateResult result;
  const auto prompt_start = std::chrono::steady_clock::now();
  const int64_t reused = reusePrefix(prompt, std::max<int64_t>(options.max_tokens, 0));
  result.timings.prompt_tokens = static_cast<int64_t>(prompt.size());
  result.timings.reused_tokens = reused;
  if (!extend(static_cast<size_t>(reused), /*prompt=*/true, cancel)) {
    result.stop_reason = StopReason::Cancelled;
    result.timings.prompt_ms = millisecondsSince(prompt_start);
    return result;
  }

  const Tokenizer& tokenizer = model_->tokenizer();
  Sampler sampler(options.sampling);
  // Generated text continues the prompt: its first space (an infill's indentation) is real, not the leading-space rule.
  StreamDecoder decoder(tokenizer, /*at_text_start=*/false);
  StopMatcher stops(options.stop);
  const int64_t vocab = model_->config().vocab_size;
  auto generate_start = std::chrono::steady_clock::now();
  result.stop_reason = StopReason::MaxTokens;
  for (int64_t step = 0; step < options.max_tokens; ++step) {
    if (cancel && cancel->load(std::memory_order_relaxed)) {
      result.stop_reason = StopReason::Cancelled;
      break;
    }
    const TokenId token = sampler.sample(logits_.data(), vocab, tokens_);
    if (step == 0) {
      result.timings.prompt_ms = millisecondsSince(prompt_start);
      generate_start = std::chrono::steady_clock::now();
    }
    if (!options.ignore_eos && tokenizer.isEndOfGeneration(token)) {
      result.stop_reason = StopReason::EndOfGeneration;
      break;
    }
    result.tokens.push_back(token);
    const StopMatcher::Step released = stops.push(decoder.push(token));
    result.text += released.released;
    if (on_token) on_token(token, released.released);
    if (released.stopped) {
      result.stop_reason = StopReason::StopString;
      break;
    }
    if (static_cast<int64_t>(tokens_.size()) >= context_size_) {
      result.stop_reason = StopReason::ContextFull;
      break;
    }
    // The sampled token joins the sequence when the next token is needed: its entries are computed then.
    if (step + 1 == options.max_tokens) break;
    tokens_.push_back(token);
    positions_.push_back(static_cast<int32_t>(tokens_.size() - 1));
    if (!extend(tokens_.size() - 1, /*prompt=*/false, cancel)) {
      result.stop_reason = StopReason::Cancelled;
      break;
    }
  }
  if (result.stop_reason != StopReason::StopString) {
    const std::string tail = stops.push(decoder.flush()).released + stops.flush();
    result.text += tail;
    if (on_token && !tail.empty()) on_token(kNoToken, tail);
  }
  if (result.timings.prompt_ms == 0) result.timings.prompt_ms = millisecondsSince(prompt_start);
  result.timings.generated_tokens = static_cast<int64_t>(result.tokens.size());
  result.timings.generate_ms = result.tokens.empty() ? 0 : millisecondsSince(generate_start);
  return result;
}

std::vector<float> Session::evaluate(const std::vector<TokenId>& tokens, LogitsWanted wanted,
                                     const std::atomic<bool>* cancel) {
  if (tokens.empty()) throw std::invalid_argument("nothing to evaluate");
  if (static_cast<int64_t>(tokens.size()) > context_size_)
    throw std::length_error(std::to_string(tokens.size()) + " tokens exceed the context size " + std::to_string(context_size_));
  if (wanted == LogitsWanted::All && compressor_.kind() != KvPolicyKind::Full)
    throw std::invalid_argument(std::string("logits for every position need the full KV policy, not ") +
                                kvPolicyName(compressor_.kind()) + ": use logProbs() to score text under compression");
  reset();
  tokens_ = tokens;
  positions_.resize(tokens.size());
  std::iota(positions_.begin(), positions_.end(), 0);
  const int64_t vocab = model_->config().vocab_size;
  std::vector<float> logits(static_cast<size_t>(wanted == LogitsWanted::All ? vocab * static_cast<int64_t>(tokens.size()) : vocab));
  if (!extend(0, /*prompt=*/true, cancel, wanted == LogitsWanted::All ? logits.data() : nullptr)) {
    reset();
    throw std::runtime_error("cancelled");
  }
  if (wanted == LogitsWanted::Last) logits = logits_;
  return logits;
}

std::vector<double> Session::logProbs(const std::vector<TokenId>& tokens, int64_t context, const std::atomic<bool>* cancel) {
  const auto n = static_cast<int64_t>(tokens.size());
  if (context < 1 || context >= n)
    throw std::invalid_argument("scoring needs 1 <= context (" + std::to_string(context) + ") < tokens (" + std::to_string(n) + ")");
  if (n > context_size_)
    throw std::length_error(std::to_string(n) + " tokens exceed the context size " + std::to_string(context_size_));
  const int64_t vocab = model_->config().vocab_size;
  evaluate(std::vector<TokenId>(tokens.begin(), tokens.begin() + context), LogitsWanted::Last, cancel);
  // The full cache never changes between tokens, so its continuation runs as one batch; compressing policies feed
  // one token per forward, as generation does.
  const int64_t step = compressor_.kind() == KvPolicyKind::Full ? n - context : 1;
  std::vector<float> batch(static_cast<size_t>(step * vocab));
  std::vector<double> result;
  const auto logProbOf = [vocab](const float* logits, TokenId token) {
    const float max = *std::max_element(logits, logits + vocab);
    double sum = 0;
    for (int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(logits[i] - max));
    return static_cast<double>(logits[token] - max) - std::log(sum);
  };
  result.push_back(logProbOf(logits_.data(), tokens[static_cast<size_t>(context)]));
  for (int64_t t = context; t + 1 < n; t += step) {
    const int64_t count = std::min(step, n - 1 - t);
    const size_t from = tokens_.size();
    for (int64_t i = 0; i < count; ++i) {
      tokens_.push_back(tokens[static_cast<size_t>(t + i)]);
      positions_.push_back(static_cast<int32_t>(t + i));
    }
    if (!extend(from, /*prompt=*/false, cancel, batch.data())) throw std::runtime_error("cancelled");
    for (int64_t i = 0; i < count; ++i) result.push_back(logProbOf(&batch[static_cast<size_t>(i * vocab)], tokens[static_cast<size_t>(t + i + 1)]));
  }
  return result;
}

KvStats Session::kvStats() const {
  KvStats stats;
  stats.policy = kvPolicyName(compressor_.kind());
  stats.decay_ratio = compressor_.schedule().decay_ratio;
  stats.recent_ratio = compressor_.schedule().recent_ratio;
  stats.bytes = cache_.bytes();
  stats.tokens = static_cast<int64_t>(tokens_.size());
  stats.full_bytes = cache_.fullBytes(stats.tokens);
  for (int64_t l = 0; l < cache_.layerCount(); ++l) {
    stats.layers.push_back({cache_.layer(l).length(), cache_.layer(l).bytes()});
  }
  return stats;
}

}  // namespace pc

#include "engine/session.h"

#include <algorithm>
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
      forward_(model_->config(), model_->weights(), pool_, cpu::detectIsa()),
      logits_(static_cast<size_t>(model_->config().vocab_size)) {}

void Session::reset() {
  cache_.clear();
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
  const uint64_t growth = cache_.fullBytes(std::min(needed, context_size_)) - cache_.fullBytes(static_cast<int64_t>(common));
  const uint64_t available = availableMemoryBytes();
  if (growth > available)
    throw std::runtime_error("the KV cache for " + std::to_string(std::min(needed, context_size_)) + " tokens needs " +
                             formatBytes(growth) + " more memory, but only " + formatBytes(available) +
                             " is available: use a smaller context or a compressing KV policy");
  cache_.truncateFrom(static_cast<int32_t>(common));
  tokens_.assign(prompt.begin(), prompt.end());
  positions_.resize(prompt.size());
  std::iota(positions_.begin(), positions_.end(), 0);
  return static_cast<int64_t>(common);
}

bool Session::extend(size_t from, const std::atomic<bool>* cancel) {
  const bool finished = forward_.run(&tokens_[from], &positions_[from], static_cast<int64_t>(tokens_.size() - from), cache_,
                                     LogitsWanted::Last, logits_.data(), cancel);
  if (!finished) {
    tokens_.resize(from);
    positions_.resize(from);
  }
  return finished;
}

GenerateResult Session::generate(const std::vector<TokenId>& prompt, const GenerateOptions& options,
                                 const TokenCallback& on_token, const std::atomic<bool>* cancel) {
  GenerateResult result;
  const auto prompt_start = std::chrono::steady_clock::now();
  const int64_t reused = reusePrefix(prompt, std::max<int64_t>(options.max_tokens, 0));
  result.timings.prompt_tokens = static_cast<int64_t>(prompt.size());
  result.timings.reused_tokens = reused;
  if (!extend(static_cast<size_t>(reused), cancel)) {
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
    // The sampled token joins the sequence; its entries are computed when the next token is needed.
    tokens_.push_back(token);
    positions_.push_back(static_cast<int32_t>(tokens_.size() - 1));
    if (step + 1 < options.max_tokens && !extend(tokens_.size() - 1, cancel)) {
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
  // The cache holds entries only for tokens that went through the model: forget a sampled token that did not.
  if (cache_.layer(0).length() < static_cast<int64_t>(tokens_.size())) {
    tokens_.resize(static_cast<size_t>(cache_.layer(0).length()));
    positions_.resize(tokens_.size());
  }
  return result;
}

std::vector<float> Session::evaluate(const std::vector<TokenId>& tokens, LogitsWanted wanted,
                                     const std::atomic<bool>* cancel) {
  if (tokens.empty()) throw std::invalid_argument("nothing to evaluate");
  if (static_cast<int64_t>(tokens.size()) > context_size_)
    throw std::length_error(std::to_string(tokens.size()) + " tokens exceed the context size " + std::to_string(context_size_));
  reset();
  tokens_ = tokens;
  positions_.resize(tokens.size());
  std::iota(positions_.begin(), positions_.end(), 0);
  const int64_t vocab = model_->config().vocab_size;
  std::vector<float> logits(static_cast<size_t>(wanted == LogitsWanted::All ? vocab * static_cast<int64_t>(tokens.size()) : vocab));
  if (!forward_.run(tokens_.data(), positions_.data(), static_cast<int64_t>(tokens.size()), cache_, wanted, logits.data(), cancel)) {
    reset();
    throw std::runtime_error("cancelled");
  }
  return logits;
}

KvStats Session::kvStats() const {
  KvStats stats;
  stats.policy = "full";
  stats.bytes = cache_.bytes();
  stats.tokens = static_cast<int64_t>(tokens_.size());
  stats.full_bytes = cache_.fullBytes(stats.tokens);
  for (int64_t l = 0; l < cache_.layerCount(); ++l) {
    stats.layers.push_back({cache_.layer(l).length(), cache_.layer(l).bytes()});
  }
  return stats;
}

}  // namespace pc

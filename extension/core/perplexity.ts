// Perplexity from logits: exp of the mean negative log-likelihood of each token given those before it.

/**
 * logits: (n, vocab) row-major for tokens[0..n-1]; row i predicts tokens[i + 1].
 * Returns the mean NLL over the n - 1 predicted tokens (natural log), accumulated in double precision.
 */
export function meanNegativeLogLikelihood(logits: Float32Array, vocab: number, tokens: ArrayLike<number>): number {
  const n = tokens.length;
  if (n < 2) throw new Error("perplexity needs at least two tokens");
  if (logits.length !== n * vocab) throw new Error(`expected ${n} x ${vocab} logits, got ${logits.length}`);
  let total = 0;
  for (let i = 0; i < n - 1; i++) {
    const row = logits.subarray(i * vocab, (i + 1) * vocab);
    let max = -Infinity;
    for (let j = 0; j < vocab; j++) if (row[j] > max) max = row[j];
    let sum = 0;
    for (let j = 0; j < vocab; j++) sum += Math.exp(row[j] - max);
    total += max + Math.log(sum) - row[tokens[i + 1]];
  }
  return total / (n - 1);
}

export function perplexity(logits: Float32Array, vocab: number, tokens: ArrayLike<number>): number {
  return Math.exp(meanNegativeLogLikelihood(logits, vocab, tokens));
}

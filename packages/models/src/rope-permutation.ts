/**
 * The Q/K row permutation of llama.cpp's Hugging Face converter (convert_hf_to_gguf.py, `permute`
 * for `llama`/`mistral`).
 *
 * Hugging Face Llama checkpoints rotate the pairs (k, k + d/2) of each head (half-split RoPE), but
 * llama.cpp's `llama` graph rotates the pairs (2k, 2k + 1) (interleaved). The converter therefore
 * reorders the output rows of wq and wk inside every head: with head size d,
 *
 *     permuted row  h*d + 2k     = original row  h*d + k
 *     permuted row  h*d + 2k + 1 = original row  h*d + k + d/2        (k = 0 .. d/2 - 1)
 *
 * (numpy: reshape(heads, 2, d/2, in).swapaxes(1, 2)). Then interleaved RoPE on the permuted
 * projections gives exactly the permuted half-split result, and since attention only takes dot
 * products between q and k, the logits are unchanged. wk uses head_count_kv heads. Biases (if any)
 * get the same permutation. llama2.c checkpoints are already interleaved and are never permuted.
 */
function reorderRows(
  weights: Float32Array,
  headCount: number,
  inputSize: number,
  sourceRow: (head: number, headSize: number, row: number) => number,
): Float32Array {
  const rowCount = weights.length / inputSize;
  if (!Number.isInteger(rowCount) || rowCount % headCount !== 0 || (rowCount / headCount) % 2 !== 0) {
    throw new RangeError(
      `${weights.length} values with rows of ${inputSize} cannot be split into ${headCount} heads of an even size`,
    );
  }
  const headSize = rowCount / headCount;
  const result = new Float32Array(weights.length);
  for (let head = 0; head < headCount; head++) {
    for (let row = 0; row < headSize; row++) {
      const from = (head * headSize + sourceRow(head, headSize, row)) * inputSize;
      result.set(weights.subarray(from, from + inputSize), (head * headSize + row) * inputSize);
    }
  }
  return result;
}

/**
 * Half-split (Hugging Face) rows to interleaved (llama.cpp) rows. `weights` is row-major
 * [headCount * headSize, inputSize]; pass inputSize 1 for a bias vector.
 */
export function permuteForInterleavedRope(
  weights: Float32Array,
  headCount: number,
  inputSize: number,
): Float32Array {
  return reorderRows(weights, headCount, inputSize, (_head, headSize, row) =>
    row % 2 === 0 ? row / 2 : (row - 1) / 2 + headSize / 2,
  );
}

/** The inverse: interleaved (llama.cpp) rows back to half-split (Hugging Face) rows. */
export function unpermuteFromInterleavedRope(
  weights: Float32Array,
  headCount: number,
  inputSize: number,
): Float32Array {
  return reorderRows(weights, headCount, inputSize, (_head, headSize, row) =>
    row < headSize / 2 ? 2 * row : 2 * (row - headSize / 2) + 1,
  );
}

/**
 * The dense kernels of the forward pass, written for V8: flat typed arrays, no per-element objects,
 * outputs written into buffers the caller owns.
 *
 * Weights are float32 row-major [out, in] (the layout of LlamaWeights); activations are float64,
 * so every product and sum runs in double precision (the reference's promise) while weights keep
 * the exact values the file holds.
 */

/**
 * Tokens projected together in one pass over the weights. A tile of activations
 * (tileTokens x in x 8 bytes) stays in cache while every weight row streams past it once.
 */
const tileTokens = 32;

/**
 * output[t, o] = sum_i weights[o, i] * input[t, i] (+ bias[o]) for t < rowCount.
 *
 * Loop order: for each tile of tokens, each weight row is read once and dotted with four token rows
 * at a time, so the weights stream from memory once per tile instead of once per token.
 */
export function projectRows(
  weights: Float32Array,
  outputSize: number,
  inputSize: number,
  input: Float64Array,
  rowCount: number,
  output: Float64Array,
  bias?: Float32Array,
): void {
  for (let tileStart = 0; tileStart < rowCount; tileStart += tileTokens) {
    const tileEnd = Math.min(rowCount, tileStart + tileTokens);
    for (let row = 0; row < outputSize; row++) {
      const weightOffset = row * inputSize;
      const biasValue = bias === undefined ? 0 : bias[row];
      let token = tileStart;
      for (; token + 4 <= tileEnd; token += 4) {
        const input0 = token * inputSize;
        const input1 = input0 + inputSize;
        const input2 = input1 + inputSize;
        const input3 = input2 + inputSize;
        let sum0 = 0;
        let sum1 = 0;
        let sum2 = 0;
        let sum3 = 0;
        for (let index = 0; index < inputSize; index++) {
          const weight = weights[weightOffset + index];
          sum0 += weight * input[input0 + index];
          sum1 += weight * input[input1 + index];
          sum2 += weight * input[input2 + index];
          sum3 += weight * input[input3 + index];
        }
        output[token * outputSize + row] = sum0 + biasValue;
        output[(token + 1) * outputSize + row] = sum1 + biasValue;
        output[(token + 2) * outputSize + row] = sum2 + biasValue;
        output[(token + 3) * outputSize + row] = sum3 + biasValue;
      }
      for (; token < tileEnd; token++) {
        const inputOffset = token * inputSize;
        let sum = 0;
        for (let index = 0; index < inputSize; index++)
          sum += weights[weightOffset + index] * input[inputOffset + index];
        output[token * outputSize + row] = sum + biasValue;
      }
    }
  }
}

/**
 * RMSNorm of each of `rowCount` rows of `size` values: x / sqrt(mean(x^2) + epsilon) * gain.
 * The epsilon sits inside the square root, as in llama2.c and llama.cpp.
 */
export function rmsNormRows(
  input: Float64Array,
  rowCount: number,
  size: number,
  gain: Float32Array,
  epsilon: number,
  output: Float64Array,
): void {
  for (let row = 0; row < rowCount; row++) {
    const offset = row * size;
    let sumOfSquares = 0;
    for (let index = 0; index < size; index++) sumOfSquares += input[offset + index] * input[offset + index];
    const inverse = 1 / Math.sqrt(sumOfSquares / size + epsilon);
    for (let index = 0; index < size; index++)
      output[offset + index] = input[offset + index] * inverse * gain[index];
  }
}

/** gate[k] = silu(gate[k]) * up[k] for the first `count` values: the SwiGLU gating, in place. */
export function swiGluInPlace(gate: Float64Array, up: Float64Array, count: number): void {
  for (let index = 0; index < count; index++) {
    const value = gate[index];
    gate[index] = (value / (1 + Math.exp(-value))) * up[index];
  }
}

/**
 * gate[k] = gelu(gate[k]) * up[k] with the tanh approximation Gemma trained with (Hugging Face's
 * gelu_pytorch_tanh, llama.cpp's ggml_gelu): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
 */
export function geluTanhGluInPlace(gate: Float64Array, up: Float64Array, count: number): void {
  const sqrtTwoOverPi = Math.sqrt(2 / Math.PI);
  for (let index = 0; index < count; index++) {
    const value = gate[index];
    const gelu = 0.5 * value * (1 + Math.tanh(sqrtTwoOverPi * (value + 0.044715 * value * value * value)));
    gate[index] = gelu * up[index];
  }
}

/** target[k] += addend[k] for the first `count` values: the residual connection. */
export function addInPlace(target: Float64Array, addend: Float64Array, count: number): void {
  for (let index = 0; index < count; index++) target[index] += addend[index];
}
